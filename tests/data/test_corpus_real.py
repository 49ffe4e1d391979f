"""The ``real`` corpus preset on a miniature fake of a MedleyDB raw-tracks folder."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixinvert.console.mixing import render_mix
from mixinvert.data.corpus import CorpusConfig, CorpusError, make_corpus
from mixinvert.data.dataset import list_song_dirs
from mixinvert.data.song import load_song

SR = 44100
INSTRUMENTS = ("drum set", "electric bass", "male singer", "clean electric guitar")


def _source(root: Path, name: str, n_tracks: int, seconds: float = 1.5, seed: int = 0) -> None:
    """``root/<name>/`` with metadata and ``n_tracks`` FLAC raw files (the metadata names WAV files)."""
    rng = np.random.default_rng(seed)
    song = root / name
    (song / f"{name}_RAW").mkdir(parents=True)
    lines = ["has_bleed: 'no'", "instrumental: 'no'", f"raw_dir: {name}_RAW", "stems:"]
    for k in range(n_tracks):
        nn = f"{k + 1:02d}"
        lines += [f"  S{nn}:", f"    instrument: {INSTRUMENTS[k % 4]}", "    raw:", "      R01:",
                  f"        filename: {name}_RAW_{nn}_01.wav", f"        instrument: {INSTRUMENTS[k % 4]}"]
        x = 0.3 * np.sin(2 * np.pi * (110 * (k + 1)) * np.arange(int(seconds * SR)) / SR) * rng.uniform(0.5, 1)
        sf.write(str(song / f"{name}_RAW" / f"{name}_RAW_{nn}_01.flac"), x.astype(np.float32), SR, subtype="PCM_16")
    (song / f"{name}_METADATA.yaml").write_text("\n".join(lines) + "\n")


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    root = tmp_path / "raw"
    for i, name in enumerate(("Song_A", "Song_B", "Song_C", "Song_D")):
        _source(root, name, 2 + i % 3, seed=i)
    return root


def _config(sources: Path, **kw) -> CorpusConfig:
    return CorpusConfig(**{"preset": "real", "songs": 8, "seconds": 1.0, "seed": 3, "sources_dir": str(sources),
                           "console": "v2", **kw})  # type: ignore[arg-type]


def test_real_songs_come_from_their_split_sources_and_render_exactly(tmp_path: Path, sources: Path) -> None:
    out = make_corpus(tmp_path / "c", _config(sources), jobs=1)
    doc = json.loads((out / "corpus.json").read_text())
    source_splits = doc["source_splits"]
    assert sorted(sum(source_splits.values(), [])) == ["Song_A", "Song_B", "Song_C", "Song_D"]
    assert all(source_splits[k] for k in ("train", "valid", "test"))
    splits = json.loads((out / "splits.json").read_text())
    used: dict[str, set[str]] = {k: set() for k in splits}
    for split, names in splits.items():
        for name in names:
            meta = json.loads((out / name / "song.json").read_text())["real"]
            assert meta["split"] == split and meta["source"] in source_splits[split]
            used[split].add(meta["source"])
    # held out by song: no source song's tracks in two splits
    assert not (used["train"] & (used["valid"] | used["test"])) and not (used["valid"] & used["test"])
    song = load_song(list_song_dirs(out)[0])
    assert song.num_tracks >= 2 and song.num_samples == SR
    assert all(n.startswith("Song_") and "_RAW_" in n for n in song.track_names)
    # the mix is console v2's rendering of the tracks with the stored settings
    np.testing.assert_allclose(render_mix(song.tracks, song.sample_rate, song.params), song.mix, atol=1e-5)
    cats = {t["category"] for t in json.loads((list_song_dirs(out)[0] / "song.json").read_text())["tracks"]}
    assert cats <= {"snare", "bass", "vocals", "guitar"}


def test_real_songs_differ_from_their_sources_as_sessions_do(tmp_path: Path, sources: Path) -> None:
    out = make_corpus(tmp_path / "c", _config(sources, songs=12), jobs=1)
    tracks = [t for d in list_song_dirs(out) for t in json.loads((d / "song.json").read_text())["real"]["tracks"]]
    levels = np.array([t["level_db"] for t in tracks])
    assert np.all(np.abs(levels) <= 6.0 + 1e-9) and np.ptp(levels) > 3.0
    assert any(t["offset_samples"] != 0 for t in tracks)
    assert all(abs(t["offset_samples"]) <= round(3e-3 * SR) for t in tracks)


def test_real_corpus_is_reproducible_song_by_song(tmp_path: Path, sources: Path) -> None:
    a = make_corpus(tmp_path / "a", _config(sources, songs=3), jobs=1)
    b = make_corpus(tmp_path / "b", _config(sources, songs=3), jobs=2)
    for d in ("song_0000", "song_0002"):
        assert (a / d / "mix.wav").read_bytes() == (b / d / "mix.wav").read_bytes()


def test_real_preset_refuses_yardstick_sources_few_sources_and_misplaced_options(tmp_path: Path,
                                                                                 sources: Path) -> None:
    with pytest.raises(CorpusError, match="needs a folder of MedleyDB raw multitracks"):
        make_corpus(tmp_path / "x", _config(sources, sources_dir=None))
    _source(tmp_path / "few", "Song_A", 2)
    _source(tmp_path / "few", "Song_B", 2)
    with pytest.raises(CorpusError, match="at least 3 source songs"):
        make_corpus(tmp_path / "x", _config(tmp_path / "few"))
    _source(sources, "MusicDelta_Reggae", 2)
    with pytest.raises(CorpusError, match="yardstick song.*MusicDelta_Reggae"):
        make_corpus(tmp_path / "x", _config(sources))
    with pytest.raises(CorpusError, match="--sources is for the real preset"):
        make_corpus(tmp_path / "x", CorpusConfig(preset="songs", songs=1, seconds=1.0, seed=0,
                                                 sources_dir=str(sources)))
    assert not (tmp_path / "x").exists()


def test_a_corpus_made_before_the_sources_field_resumes(tmp_path: Path) -> None:
    config = CorpusConfig(preset="songs", songs=1, seconds=1.0, seed=0)
    out = tmp_path / "c"
    out.mkdir()
    old = config.identity()
    del old["sources_dir"]  # as corpus.json was written before the real preset
    (out / "corpus.json").write_text(json.dumps({"config": {}, "identity": old}))
    (out / "song_0000").mkdir()
    (out / "song_0000" / "params.json").write_text("{}")  # finished: nothing left to make
    make_corpus(out, config, jobs=1)
    assert json.loads((out / "splits.json").read_text())["train"] == ["song_0000"]
