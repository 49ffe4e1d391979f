"""MedleyDB loader on a miniature fake of the real layout (tiny 44.1 kHz wav files)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixinvert.data.medleydb import (
    MedleyDBEntry,
    MedleyDBError,
    iter_medleydb,
    list_medleydb_songs,
    load_medleydb_song,
    parse_yes_no,
)
from mixinvert.data.song import Song, SongError

SR = 44100
N = 4410  # 0.1 s


def _noise(rng: np.random.Generator, channels: int, n: int = N) -> np.ndarray:
    """(channels, n) noise on the 16-bit grid, so a PCM_16 round trip is exact."""
    x = rng.uniform(-0.5, 0.5, size=(channels, n))
    return (np.round(x * 32768) / 32768).astype(np.float32)


def _write(path: Path, x: np.ndarray, sr: int = SR) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x.T, sr, subtype="PCM_16")


def _yaml_stems(name: str, stems: dict[str, list[tuple[str, str]]]) -> str:
    """The ``stems:`` block as in real MedleyDB metadata; stems: S01 -> [(RAW suffix, instrument)]."""
    lines = ["stems:"]
    for sid, raws in stems.items():
        nn = sid[1:]
        lines += [
            f"  {sid}:",
            "    component: ''",
            f"    filename: {name}_STEM_{nn}.wav",
            f"    instrument: {raws[0][1]}",
            "    raw:",
        ]
        for i, (mm, instrument) in enumerate(raws, start=1):
            lines += [
                f"      R{i:02d}:",
                f"        filename: {name}_RAW_{nn}_{mm}.wav",
                f"        instrument: {instrument}",
            ]
    return "\n".join(lines) + "\n"


def make_song(
    root: Path,
    name: str,
    stems: dict[str, list[tuple[str, str]]],
    *,
    has_bleed: str = "'no'",
    instrumental: str = "'no'",
    seed: int = 0,
    write_audio: bool = True,
) -> dict[str, np.ndarray]:
    """Write ``<root>/Audio/<name>/`` like MedleyDB; return the audio written, by file name."""
    rng = np.random.default_rng(seed)
    song_dir = root / "Audio" / name
    song_dir.mkdir(parents=True)
    meta = (
        "album: ''\n"
        "artist: Fake Artist\n"
        "composer:\n- Someone\n"
        "excerpt: 'no'\n"
        "genre: Rock\n"
        f"has_bleed: {has_bleed}\n"
        f"instrumental: {instrumental}\n"
        f"mix_filename: {name}_MIX.wav\n"
        "origin: Test\n"
        "producer: ''\n"
        f"raw_dir: {name}_RAW\n"
        f"stem_dir: {name}_STEMS\n"
        + _yaml_stems(name, stems)
        + "title: Fake Title\nversion: 1.2\nwebsite: ''\n"
    )
    (song_dir / f"{name}_METADATA.yaml").write_text(meta)
    written: dict[str, np.ndarray] = {}
    if write_audio:
        written[f"{name}_MIX.wav"] = _noise(rng, 2)
        _write(song_dir / f"{name}_MIX.wav", written[f"{name}_MIX.wav"])
        for sid, raws in stems.items():
            nn = sid[1:]
            _write(song_dir / f"{name}_STEMS" / f"{name}_STEM_{nn}.wav", _noise(rng, 2))
            for mm, _ in raws:
                fname = f"{name}_RAW_{nn}_{mm}.wav"
                written[fname] = _noise(rng, 1)
                _write(song_dir / f"{name}_RAW" / fname, written[fname])
    return written


# S02 is listed first on purpose: track order must follow the file names, not the YAML.
TWO_STEMS = {
    "S02": [("01", "male singer")],
    "S01": [("01", "electric bass"), ("02", "electric bass")],
}


def test_song_found_with_tracks_in_name_order_and_audio_as_written(tmp_path: Path) -> None:
    written = make_song(tmp_path, "Fake_Song", TWO_STEMS)
    entries = list_medleydb_songs(tmp_path)
    assert [e.name for e in entries] == ["Fake_Song"]
    entry = entries[0]
    expected = ("Fake_Song_RAW_01_01.wav", "Fake_Song_RAW_01_02.wav", "Fake_Song_RAW_02_01.wav")
    assert entry.track_names == expected
    assert entry.num_raw_tracks == 3
    assert entry.instruments == {
        "Fake_Song_RAW_01_01.wav": "electric bass",
        "Fake_Song_RAW_01_02.wav": "electric bass",
        "Fake_Song_RAW_02_01.wav": "male singer",
    }
    assert [t.stem_id for t in entry.raw_tracks] == ["S01", "S01", "S02"]
    assert entry.mix_path == tmp_path / "Audio" / "Fake_Song" / "Fake_Song_MIX.wav"
    assert (entry.artist, entry.title, entry.genre, entry.version) == ("Fake Artist", "Fake Title", "Rock", "1.2")

    song = load_medleydb_song(entry)
    assert isinstance(song, Song)
    assert song.name == "Fake_Song"
    assert song.track_names == expected
    assert song.sample_rate == SR
    assert song.path == tmp_path / "Audio" / "Fake_Song"
    for name, track in zip(song.track_names, song.tracks):
        np.testing.assert_array_equal(track, written[name])
    np.testing.assert_array_equal(song.mix, written["Fake_Song_MIX.wav"])

    # A song folder path loads the same song.
    again = load_medleydb_song(tmp_path / "Audio" / "Fake_Song")
    assert again.track_names == expected
    for a, b in zip(again.tracks, song.tracks):
        np.testing.assert_array_equal(a, b)


def test_iter_yields_the_loaded_songs_and_applies_filters(tmp_path: Path) -> None:
    written = make_song(tmp_path, "A_Song", TWO_STEMS, seed=1)
    make_song(tmp_path, "B_Bleed", TWO_STEMS, has_bleed="'yes'", seed=2)
    songs = list(iter_medleydb(tmp_path, exclude_bleed=True))
    assert [s.name for s in songs] == ["A_Song"]
    np.testing.assert_array_equal(songs[0].tracks[0], written["A_Song_RAW_01_01.wav"])
    assert [s.name for s in iter_medleydb(tmp_path)] == ["A_Song", "B_Bleed"]


def test_max_raw_tracks_filter(tmp_path: Path) -> None:
    make_song(tmp_path, "Small_Song", TWO_STEMS, seed=1)
    many = {"S01": [(f"{i:02d}", "violin") for i in range(1, 18)]}  # 17 raw tracks
    make_song(tmp_path, "Big_Song", many, seed=2)
    make_song(tmp_path, "Edge_Song", {"S01": [(f"{i:02d}", "violin") for i in range(1, 17)]}, seed=3)
    assert [e.name for e in list_medleydb_songs(tmp_path)] == ["Edge_Song", "Small_Song"]
    assert [e.name for e in list_medleydb_songs(tmp_path, max_raw_tracks=16)] == ["Edge_Song", "Small_Song"]
    everything = list_medleydb_songs(tmp_path, max_raw_tracks=None)
    assert [e.name for e in everything] == ["Big_Song", "Edge_Song", "Small_Song"]
    assert everything[0].num_raw_tracks == 17
    big = load_medleydb_song(everything[0])
    assert big.num_tracks == 17
    with pytest.raises(SongError, match="17 tracks"):
        load_medleydb_song(everything[0], max_tracks=16)


def test_bleed_and_instrumental_filters_and_flags(tmp_path: Path) -> None:
    make_song(tmp_path, "Clean_Vocal", TWO_STEMS, has_bleed="'no'", instrumental="'no'", seed=1)
    make_song(tmp_path, "Bleed_Instr", TWO_STEMS, has_bleed="'yes'", instrumental="'yes'", seed=2)
    make_song(tmp_path, "Clean_Instr", TWO_STEMS, has_bleed="no", instrumental="yes", seed=3)  # YAML bools
    flags = {e.name: (e.has_bleed, e.instrumental) for e in list_medleydb_songs(tmp_path)}
    assert flags == {
        "Bleed_Instr": (True, True),
        "Clean_Instr": (False, True),
        "Clean_Vocal": (False, False),
    }
    assert all(type(v) is bool for pair in flags.values() for v in pair)
    names = lambda **kw: [e.name for e in list_medleydb_songs(tmp_path, **kw)]  # noqa: E731
    assert names(exclude_bleed=True) == ["Clean_Instr", "Clean_Vocal"]
    assert names(instrumental_only=True) == ["Bleed_Instr", "Clean_Instr"]
    assert names(exclude_bleed=True, instrumental_only=True) == ["Clean_Instr"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("yes", True), ("no", False), ("Yes", True), (" NO ", False), (True, True), (False, False),
     ("true", True), ("false", False)],
)
def test_parse_yes_no(value: object, expected: bool) -> None:
    assert parse_yes_no(value, field_name="has_bleed", where="x.yaml") is expected


@pytest.mark.parametrize("value", ["maybe", None, 1, ""])
def test_parse_yes_no_rejects_other_values(value: object) -> None:
    with pytest.raises(MedleyDBError, match=r"x\.yaml: has_bleed"):
        parse_yes_no(value, field_name="has_bleed", where="x.yaml")


def test_bad_flag_in_metadata_names_the_yaml(tmp_path: Path) -> None:
    make_song(tmp_path, "Odd_Song", TWO_STEMS, has_bleed="'sometimes'")
    with pytest.raises(MedleyDBError, match="Odd_Song_METADATA.yaml: has_bleed"):
        list_medleydb_songs(tmp_path)


def test_missing_audio_folder(tmp_path: Path) -> None:
    with pytest.raises(SongError, match=re.escape(str(tmp_path / "Audio"))):
        list_medleydb_songs(tmp_path)


def test_missing_metadata_file_is_named(tmp_path: Path) -> None:
    make_song(tmp_path, "Fake_Song", TWO_STEMS)
    meta = tmp_path / "Audio" / "Fake_Song" / "Fake_Song_METADATA.yaml"
    meta.unlink()
    with pytest.raises(MedleyDBError, match="Fake_Song_METADATA.yaml: metadata file not found"):
        list_medleydb_songs(tmp_path)
    with pytest.raises(MedleyDBError, match="Fake_Song_METADATA.yaml"):
        load_medleydb_song(tmp_path / "Audio" / "Fake_Song")


@pytest.mark.parametrize(
    ("text", "message"),
    [("stems: [unclosed\n", "not valid YAML"), ("- just\n- a list\n", "expected a YAML mapping"),
     ("has_bleed: 'no'\n", "no 'stems' mapping")],
)
def test_invalid_metadata_is_named(tmp_path: Path, text: str, message: str) -> None:
    make_song(tmp_path, "Fake_Song", TWO_STEMS)
    meta = tmp_path / "Audio" / "Fake_Song" / "Fake_Song_METADATA.yaml"
    meta.write_text(text)
    with pytest.raises(MedleyDBError, match=f"Fake_Song_METADATA.yaml: {message}"):
        list_medleydb_songs(tmp_path)


def test_metadata_pointing_to_missing_raw_file(tmp_path: Path) -> None:
    make_song(tmp_path, "Fake_Song", TWO_STEMS)
    (tmp_path / "Audio" / "Fake_Song" / "Fake_Song_RAW" / "Fake_Song_RAW_01_02.wav").unlink()
    with pytest.raises(MedleyDBError, match="Fake_Song_RAW_01_02.wav: raw file named in"):
        list_medleydb_songs(tmp_path)


def test_metadata_pointing_to_missing_mix(tmp_path: Path) -> None:
    make_song(tmp_path, "Fake_Song", TWO_STEMS)
    (tmp_path / "Audio" / "Fake_Song" / "Fake_Song_MIX.wav").unlink()
    with pytest.raises(MedleyDBError, match="Fake_Song_MIX.wav: mix file named in"):
        load_medleydb_song(tmp_path / "Audio" / "Fake_Song")


def test_unlisted_raw_files_are_ignored(tmp_path: Path) -> None:
    make_song(tmp_path, "Fake_Song", TWO_STEMS)
    extra = tmp_path / "Audio" / "Fake_Song" / "Fake_Song_RAW" / "Fake_Song_RAW_09_01.wav"
    _write(extra, np.zeros((1, N), dtype=np.float32))
    song = load_medleydb_song(list_medleydb_songs(tmp_path)[0])
    assert "Fake_Song_RAW_09_01.wav" not in song.track_names
    assert song.num_tracks == 3


def test_input_rules_of_load_tracks_and_mix_apply(tmp_path: Path) -> None:
    """A raw track at another rate is resampled to the mix's rate, with a note."""
    make_song(tmp_path, "Fake_Song", TWO_STEMS)
    raw = tmp_path / "Audio" / "Fake_Song" / "Fake_Song_RAW" / "Fake_Song_RAW_02_01.wav"
    _write(raw, _noise(np.random.default_rng(5), 1, n=N // 2), sr=SR // 2)
    song = load_medleydb_song(tmp_path / "Audio" / "Fake_Song")
    assert song.sample_rate == SR
    assert song.num_samples == N
    assert any("Fake_Song_RAW_02_01.wav: resampled" in note for note in song.notes)


def test_entry_is_a_dataclass_with_the_whole_metadata(tmp_path: Path) -> None:
    make_song(tmp_path, "Fake_Song", TWO_STEMS, write_audio=True)
    entry = list_medleydb_songs(tmp_path)[0]
    assert isinstance(entry, MedleyDBEntry)
    assert entry.metadata["origin"] == "Test"
    assert entry.raw_dir.name == "Fake_Song_RAW"
    assert entry.stem_dir.name == "Fake_Song_STEMS"


# ----------------------------------------------------------------- raw tracks only (no mixes)


def _raw_only(root: Path, name: str, stems: dict, *, flac: bool = True, seed: int = 0) -> None:
    """A song as ``../shared/data/medleydb-raw`` ships it: ``root/<name>/``, raw files only,
    stored as FLAC where the metadata names WAV files."""
    make_song(root, name, stems, seed=seed)
    src = root / "Audio" / name
    dst = root / name
    src.rename(dst)
    (dst / f"{name}_MIX.wav").unlink()
    if flac:
        for wav in (dst / f"{name}_RAW").glob("*.wav"):
            x, sr = sf.read(str(wav))
            sf.write(str(wav.with_suffix(".flac")), x, sr, subtype="PCM_16")
            wav.unlink()
    if not any((root / "Audio").iterdir()):
        (root / "Audio").rmdir()


def test_raw_songs_read_without_a_mix_and_with_flac_files(tmp_path: Path) -> None:
    from mixinvert.data.medleydb import list_raw_songs, read_medleydb_entry

    _raw_only(tmp_path, "Fake_B", TWO_STEMS)
    _raw_only(tmp_path, "Fake_A", {"S01": [("01", "drum set")]}, flac=False)
    entries = list_raw_songs(tmp_path)
    assert [e.name for e in entries] == ["Fake_A", "Fake_B"]
    assert entries[1].track_names == ("Fake_B_RAW_01_01.flac", "Fake_B_RAW_01_02.flac", "Fake_B_RAW_02_01.flac")
    assert all(t.path.is_file() for e in entries for t in e.raw_tracks)
    assert entries[0].track_names == ("Fake_A_RAW_01_01.wav",)
    with pytest.raises(MedleyDBError, match="mix file"):  # a song with its mix still needs it
        read_medleydb_entry(tmp_path / "Fake_B")


def test_raw_songs_missing_file_and_empty_folder_are_named(tmp_path: Path) -> None:
    from mixinvert.data.medleydb import list_raw_songs

    with pytest.raises(MedleyDBError, match="no MedleyDB song folders"):
        list_raw_songs(tmp_path)
    _raw_only(tmp_path, "Fake_B", TWO_STEMS)
    (tmp_path / "Fake_B" / "Fake_B_RAW" / "Fake_B_RAW_02_01.flac").unlink()
    with pytest.raises(MedleyDBError, match=r"Fake_B_RAW_02_01\.wav: raw file named"):
        list_raw_songs(tmp_path)


@pytest.mark.parametrize("label, category", [
    ("drum set", "snare"), ("bass drum", "kick"), ("kick drum", "kick"), ("electric bass", "bass"),
    ("double bass", "bass"), ("bassoon", "winds"), ("male singer", "vocals"), ("female singer", "vocals"),
    ("distorted electric guitar", "guitar"), ("acoustic guitar", "guitar"), ("piano", "keys"),
    ("violin section", "strings"), ("trumpet", "brass"), ("synthesizer", "synth"), ("theremin", "other"),
])
def test_instrument_labels_map_to_engineer_categories(label: str, category: str) -> None:
    from mixinvert.data.engineer import CATEGORIES
    from mixinvert.data.medleydb import instrument_category

    assert instrument_category(label) == category
    assert category in CATEGORIES
