"""ENST-Drums loader on a miniature fake of the real layout (tiny 44.1 kHz wav files)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixinvert.data.enst import EnstError, EnstItem, iter_enst, list_enst_items, load_enst_item
from mixinvert.data.song import Song, SongError

SR = 44100
N = 4410  # 0.1 s
KIT = ("kick", "snare", "hi-hat", "tom_1", "tom_2", "overhead_L", "overhead_R")


def _noise(rng: np.random.Generator, channels: int) -> np.ndarray:
    """(channels, N) noise on the 16-bit grid, so a PCM_16 round trip is exact."""
    x = rng.uniform(-0.5, 0.5, size=(channels, N))
    return (np.round(x * 32768) / 32768).astype(np.float32)


def _write(path: Path, x: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x.T, SR, subtype="PCM_16")


def make_item(
    root: Path,
    drummer: int,
    name: str,
    mics: tuple[str, ...] = KIT,
    *,
    seed: int = 0,
    mix_channels: int = 2,
) -> dict[str, np.ndarray]:
    """Write one recording under ``<root>/drummer_N/audio/``; return the audio by folder."""
    rng = np.random.default_rng(seed)
    audio = root / f"drummer_{drummer}" / "audio"
    written = {mic: _noise(rng, 1) for mic in mics}
    written["wet_mix"] = _noise(rng, mix_channels)
    written["dry_mix"] = _noise(rng, 2)
    for folder, x in written.items():
        _write(audio / folder / f"{name}.wav", x)
    (root / f"drummer_{drummer}" / "annotation").mkdir(exist_ok=True)
    return written


def test_items_found_with_and_without_tom_3(tmp_path: Path) -> None:
    make_item(tmp_path, 1, "001_hits_snare-drum_sticks", seed=1)
    make_item(tmp_path, 3, "042_phrase_rock_simple_slow_sticks", KIT + ("tom_3",), seed=2)
    items = list_enst_items(tmp_path)
    assert [(i.drummer, i.name) for i in items] == [
        (1, "001_hits_snare-drum_sticks"),
        (3, "042_phrase_rock_simple_slow_sticks"),
    ]
    assert items[0].track_names == (
        "hi-hat.wav", "kick.wav", "overhead_L.wav", "overhead_R.wav", "snare.wav", "tom_1.wav", "tom_2.wav",
    )
    assert items[1].track_names == items[0].track_names + ("tom_3.wav",)
    assert items[1].mic_files["tom_3"] == (
        tmp_path / "drummer_3" / "audio" / "tom_3" / "042_phrase_rock_simple_slow_sticks.wav"
    )
    assert items[0].mix_path == tmp_path / "drummer_1" / "audio" / "wet_mix" / "001_hits_snare-drum_sticks.wav"


def test_loaded_audio_equals_written_and_wet_mix_is_the_reference(tmp_path: Path) -> None:
    written = make_item(tmp_path, 3, "take", KIT + ("tom_3",), seed=3)
    (item,) = list_enst_items(tmp_path)
    song = load_enst_item(item)
    assert isinstance(song, Song)
    assert song.name == "drummer_3_take"
    assert song.sample_rate == SR
    assert song.num_tracks == 8
    assert list(song.track_names) == sorted(song.track_names)
    for tname, track in zip(song.track_names, song.tracks):
        np.testing.assert_array_equal(track, written[tname.removesuffix(".wav")])
    np.testing.assert_array_equal(song.mix, written["wet_mix"])
    assert not np.array_equal(song.mix, written["dry_mix"])
    assert song.path == item.mix_path


def test_missing_mic_is_left_out(tmp_path: Path) -> None:
    mics = tuple(m for m in KIT if m != "tom_2")
    written = make_item(tmp_path, 2, "no_tom2", mics, seed=4)
    (item,) = list_enst_items(tmp_path)
    assert "tom_2" not in item.mic_files
    song = load_enst_item(item)
    assert "tom_2.wav" not in song.track_names
    assert song.num_tracks == 6
    np.testing.assert_array_equal(song.tracks[song.track_names.index("tom_1.wav")], written["tom_1"])


def test_only_wet_mix_names_define_items_and_accompaniment_is_not_a_track(tmp_path: Path) -> None:
    make_item(tmp_path, 1, "a", seed=5)
    audio = tmp_path / "drummer_1" / "audio"
    # A recording with mics and a dry_mix but no wet_mix is not an item.
    _write(audio / "kick" / "orphan.wav", np.zeros((1, N), dtype=np.float32))
    _write(audio / "dry_mix" / "orphan.wav", np.zeros((2, N), dtype=np.float32))
    # Minus-one accompaniment music is not a drum microphone.
    _write(audio / "accompaniment" / "a.wav", np.zeros((2, N), dtype=np.float32))
    items = list_enst_items(tmp_path)
    assert [i.name for i in items] == ["a"]
    assert "accompaniment" not in items[0].mic_files


def test_drummers_filter_and_iter(tmp_path: Path) -> None:
    make_item(tmp_path, 1, "x", seed=6)
    make_item(tmp_path, 2, "x", seed=7)
    w3 = make_item(tmp_path, 3, "y", seed=8)
    assert [i.drummer for i in list_enst_items(tmp_path)] == [1, 2, 3]
    assert [i.drummer for i in list_enst_items(tmp_path, drummers=[3, 1])] == [1, 3]
    songs = list(iter_enst(tmp_path, drummers=[3]))
    assert [s.name for s in songs] == ["drummer_3_y"]
    np.testing.assert_array_equal(songs[0].mix, w3["wet_mix"])
    assert [s.name for s in iter_enst(tmp_path)] == ["drummer_1_x", "drummer_2_x", "drummer_3_y"]
    with pytest.raises(EnstError, match="drummer.s. 4"):
        list_enst_items(tmp_path, drummers=[4])


def test_a_mono_wet_mix_loads_as_a_mono_mix(tmp_path: Path) -> None:
    # as any mono mix: held on both sides, for console v2 (see mixinvert.data.song)
    make_item(tmp_path, 1, "mono_take", mix_channels=1)
    (item,) = list_enst_items(tmp_path)
    song = load_enst_item(item)
    assert song.mono_mix and np.array_equal(song.mix[0], song.mix[1])
    assert any("mono_take.wav: a mono mix" in n for n in song.notes)


def test_item_without_mics_is_an_error_naming_it(tmp_path: Path) -> None:
    make_item(tmp_path, 1, "good", seed=9)
    _write(tmp_path / "drummer_1" / "audio" / "wet_mix" / "lonely.wav", np.zeros((2, N), dtype=np.float32))
    with pytest.raises(EnstError, match="lonely.*no microphone file"):
        list_enst_items(tmp_path)
    bare = EnstItem("lonely", 1, tmp_path / "drummer_1", tmp_path / "drummer_1/audio/wet_mix/lonely.wav", {})
    with pytest.raises(EnstError, match="'lonely' has no microphone file"):
        load_enst_item(bare)


def test_root_without_drummers_is_named(tmp_path: Path) -> None:
    (tmp_path / "something_else").mkdir()
    with pytest.raises(EnstError, match=re.escape(str(tmp_path)) + ": no drummer_N folders"):
        list_enst_items(tmp_path)
    with pytest.raises(EnstError, match="ENST-Drums folder not found"):
        list_enst_items(tmp_path / "missing")


def test_drummer_without_wet_mix_is_named(tmp_path: Path) -> None:
    (tmp_path / "drummer_1" / "audio" / "kick").mkdir(parents=True)
    with pytest.raises(EnstError, match=re.escape(str(tmp_path / "drummer_1" / "audio" / "wet_mix"))):
        list_enst_items(tmp_path)


def test_max_tracks_is_passed_on(tmp_path: Path) -> None:
    make_item(tmp_path, 1, "t", seed=10)
    (item,) = list_enst_items(tmp_path)
    with pytest.raises(SongError, match="7 tracks, more than the 4"):
        load_enst_item(item, max_tracks=4)
