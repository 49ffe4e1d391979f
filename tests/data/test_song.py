import numpy as np
import pytest
import soundfile as sf

from mixinvert.data.song import Song, SongError, load_song
from tests.conftest import SR, noise_track, write_song


def test_loads_sorted_tracks_and_mix(tmp_path, rng):
    b, a = noise_track(rng, 2, 0.5), noise_track(rng, 1, 0.5)
    mix = noise_track(rng, 2, 0.5)
    write_song(tmp_path / "s", {"b.wav": b, "a.flac": a}, mix)
    song = load_song(tmp_path / "s")
    assert song.track_names == ("a.flac", "b.wav")
    np.testing.assert_allclose(song.tracks[0], a, atol=2 ** -15)  # 16-bit FLAC
    np.testing.assert_array_equal(song.tracks[1], b)
    np.testing.assert_array_equal(song.mix, mix)
    assert song.sample_rate == SR and song.notes == []


def test_a_flac_mix_is_found_and_wav_comes_first(tmp_path, rng):
    write_song(tmp_path / "s", {"a.wav": noise_track(rng, 1, 0.5)}, None)
    with pytest.raises(SongError, match="no mix.wav .nor mix.flac"):
        load_song(tmp_path / "s", require_mix=True)
    flac = noise_track(rng, 2, 0.5)
    sf.write(tmp_path / "s" / "mix.flac", flac.T, SR, subtype="PCM_24")
    np.testing.assert_allclose(load_song(tmp_path / "s", require_mix=True).mix, flac, atol=2 ** -23)
    wav = noise_track(rng, 2, 0.5)
    sf.write(tmp_path / "s" / "mix.wav", wav.T, SR, subtype="FLOAT")
    np.testing.assert_array_equal(load_song(tmp_path / "s").mix, wav)


@pytest.mark.parametrize("suffix", [".aiff", ".ogg"])
def test_other_formats(tmp_path, rng, suffix):
    x = noise_track(rng, 1, 0.5)
    (tmp_path / "tracks").mkdir()
    sf.write(tmp_path / "tracks" / f"t{suffix}", x.T, SR)
    song = load_song(tmp_path)
    assert song.num_tracks == 1 and song.num_samples == pytest.approx(x.shape[1], abs=1)


def test_a_mono_mix_is_held_on_both_sides(tmp_path, rng):
    mono = noise_track(rng, 1, 0.5)
    write_song(tmp_path, {"a.wav": noise_track(rng, 1, 0.5)}, mono)
    song = load_song(tmp_path)
    assert song.mono_mix and song.mix.shape == (2, mono.shape[1])
    np.testing.assert_array_equal(song.mix[0], song.mix[1])
    np.testing.assert_array_equal(song.mix[0], mono[0])
    assert any("mono mix" in n and "console v2" in n for n in song.notes)


def test_multichannel_mix_and_track_are_errors(tmp_path, rng):
    write_song(tmp_path / "m", {"a.wav": noise_track(rng, 1, 0.5)}, noise_track(rng, 4, 0.5))
    with pytest.raises(SongError, match="mono or stereo, got 4"):
        load_song(tmp_path / "m")
    write_song(tmp_path / "t", {"a.wav": noise_track(rng, 3, 0.5)})
    with pytest.raises(SongError, match=r"a\.wav.*3 channels"):
        load_song(tmp_path / "t")


def test_nan_is_an_error_naming_the_file(tmp_path, rng):
    x = noise_track(rng, 1, 0.5)
    x[0, 100] = np.nan
    write_song(tmp_path, {"a.wav": noise_track(rng, 1, 0.5), "bad.wav": x})
    with pytest.raises(SongError, match=r"bad\.wav.*NaN"):
        load_song(tmp_path)


def test_unreadable_file(tmp_path, rng):
    write_song(tmp_path, {"a.wav": noise_track(rng, 1, 0.5)})
    (tmp_path / "tracks" / "broken.wav").write_bytes(b"RIFF not really a wav")
    with pytest.raises(SongError, match=r"broken\.wav.*not a readable audio file"):
        load_song(tmp_path)


def test_empty_folder(tmp_path):
    (tmp_path / "tracks").mkdir()
    (tmp_path / "tracks" / "notes.txt").write_text("hi")
    with pytest.raises(SongError, match="no audio tracks.*1 other"):
        load_song(tmp_path)
    with pytest.raises(SongError, match="not a folder of tracks"):
        load_song(tmp_path / "tracks")


def test_non_audio_files_are_ignored_and_said(tmp_path, rng):
    write_song(tmp_path, {"a.wav": noise_track(rng, 1, 0.5)})
    (tmp_path / "tracks" / "session.ptx").write_bytes(b"x")
    (tmp_path / "tracks" / ".DS_Store").write_bytes(b"x")
    song = load_song(tmp_path)
    assert song.track_names == ("a.wav",)
    assert song.notes == ["session.ptx: not an audio file (.wav, .flac, .aif, .aiff, .ogg); ignored"]


def test_too_many_tracks(tmp_path, rng):
    write_song(tmp_path, {f"t{i:02d}.wav": noise_track(rng, 1, 0.5) for i in range(5)})
    with pytest.raises(SongError, match="5 tracks, more than the 4 supported"):
        load_song(tmp_path, max_tracks=4)
    assert load_song(tmp_path, max_tracks=None).num_tracks == 5


def test_different_rates_are_resampled_and_said(tmp_path, rng):
    write_song(tmp_path, {"a.wav": noise_track(rng, 1, 1.0)}, noise_track(rng, 2, 1.0))
    sf.write(tmp_path / "tracks" / "b.wav", noise_track(rng, 1, 1.0, sr=48000).T, 48000)
    song = load_song(tmp_path)
    assert song.sample_rate == SR
    assert song.tracks[1].shape == (1, SR)
    assert any("b.wav: resampled from 48000 Hz to 44100 Hz" in n for n in song.notes)


def test_the_mix_decides_the_length(tmp_path, rng):
    # tracks shorter than the mix are padded, longer ones cut; the mix is kept whole
    short, long = noise_track(rng, 1, 0.5), noise_track(rng, 1, 1.5)
    mix = noise_track(rng, 2, 1.0)
    write_song(tmp_path, {"long.wav": long, "short.wav": short}, mix)
    song = load_song(tmp_path)
    assert song.num_samples == SR
    np.testing.assert_array_equal(song.mix, mix)
    np.testing.assert_array_equal(song.tracks[0], long[:, :SR])
    np.testing.assert_array_equal(song.tracks[1][:, : short.shape[1]], short)
    assert not song.tracks[1][:, short.shape[1]:].any()
    assert any("short.wav: 0.500 s shorter than the mix; padded" in n for n in song.notes)
    assert any("long.wav: 0.500 s longer than the mix; cut" in n for n in song.notes)


def test_a_short_mix_is_never_padded(tmp_path, rng):
    # a 0.75 s mix against 1 s tracks scores 0.75 s, not 0.25 s of added silence
    mix = noise_track(rng, 2, 0.75)
    write_song(tmp_path, {"a.wav": noise_track(rng, 1, 1.0)}, mix)
    song = load_song(tmp_path)
    np.testing.assert_array_equal(song.mix, mix)
    assert song.tracks[0].shape == (1, mix.shape[1])
    assert any("a.wav: 0.250 s longer than the mix; cut" in n for n in song.notes)


def test_without_a_mix_tracks_are_padded_to_the_longest(tmp_path, rng):
    write_song(tmp_path, {"a.wav": noise_track(rng, 1, 0.5), "b.wav": noise_track(rng, 1, 1.0)})
    song = load_song(tmp_path)
    assert song.num_samples == SR and not song.tracks[0][:, SR // 2:].any()
    assert any("a.wav: 0.500 s shorter than the longest track" in n for n in song.notes)


def test_silent_tracks_are_allowed_and_reported(tmp_path, rng):
    write_song(tmp_path, {"a.wav": noise_track(rng, 1, 0.5), "quiet.wav": np.zeros((1, SR // 2), np.float32)})
    song = load_song(tmp_path)
    assert song.silent_tracks == ("quiet.wav",)
    assert any("quiet.wav: silent" in n for n in song.notes)


def test_params_json_is_read_in_track_order(tmp_path, rng):
    import json

    from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1

    write_song(tmp_path, {"a.wav": noise_track(rng, 1, 0.5), "b.wav": noise_track(rng, 1, 0.5)})
    rows = [{"name": "b.wav", **{**NEUTRAL_V1, "pan": 0.5}}, {"name": "a.wav", **NEUTRAL_V1}]
    (tmp_path / "params.json").write_text(json.dumps({"console": "v1", "tracks": rows}))
    song = load_song(tmp_path)
    assert song.params.values[1, CONSOLE_V1.index("pan")] == 0.5
    rows[0]["name"] = "zzz.wav"
    (tmp_path / "params.json").write_text(json.dumps({"console": "v1", "tracks": rows}))
    with pytest.raises(SongError, match="zzz.wav"):
        load_song(tmp_path)


def test_song_invariants(rng):
    with pytest.raises(SongError, match="stereo"):
        Song("x", ("a",), [noise_track(rng, 1, 0.1)], SR, mix=noise_track(rng, 1, 0.1))
