import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from mixinvert.console.params_io import read_params
from mixinvert.console.render import Console
from mixinvert.data.corpus import CorpusConfig, CorpusError, make_corpus
from mixinvert.data.dataset import iter_songs, list_song_dirs, split_names
from mixinvert.data.song import load_song
from tests.conftest import SHARED

GROOVE = SHARED / "data" / "groove" / "groove_1_funk-groove1_138.mid"


@pytest.fixture
def drums_config(kit_dir):
    return CorpusConfig(preset="drums", songs=3, seconds=1.5, seed=7, kit_dir=str(kit_dir),
                        midi_path=str(GROOVE) if GROOVE.is_file() else None)


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_drums_preset_layout_and_truth(tmp_path, drums_config):
    out = make_corpus(tmp_path / "c", drums_config, jobs=1)
    dirs = list_song_dirs(out)
    assert [d.name for d in dirs] == ["song_0000", "song_0001", "song_0002"]
    song = load_song(dirs[0])
    assert song.track_names == ("hi-hat.wav", "kick.wav", "overhead_L.wav", "overhead_R.wav",
                                "snare.wav", "tom_1.wav", "tom_2.wav", "tom_3.wav")
    assert sf.info(dirs[0] / "tracks" / "kick.wav").subtype == "PCM_24"
    assert song.num_samples == int(1.5 * 44100) and song.mix.shape == (2, song.num_samples)
    # the mix is exactly the console's rendering of the tracks with the stored settings
    np.testing.assert_allclose(Console(song.tracks, song.sample_rate).render(song.params.values), song.mix, atol=1e-6)
    meta = json.loads((dirs[0] / "song.json").read_text())
    assert {t["category"] for t in meta["tracks"]} <= {"kick", "snare", "hihat", "tom", "overhead"}
    # settings are not all alike: the engineer draws them per track
    assert np.ptp(song.params.values[:, 0]) > 0.5
    splits = json.loads((out / "splits.json").read_text())
    assert sorted(sum(splits.values(), [])) == ["song_0000", "song_0001", "song_0002"]


def test_deterministic_and_parallel_equal(tmp_path, drums_config):
    a = make_corpus(tmp_path / "a", drums_config, jobs=1)
    b = make_corpus(tmp_path / "b", drums_config, jobs=2)
    assert _files(a) == _files(b)
    other = make_corpus(tmp_path / "o", CorpusConfig(**{**drums_config.__dict__, "seed": 8}), jobs=1)
    assert (other / "song_0000" / "mix.wav").read_bytes() != (a / "song_0000" / "mix.wav").read_bytes()


def test_resume_after_interruption(tmp_path, drums_config):
    out = make_corpus(tmp_path / "c", drums_config, jobs=1)
    before = _files(out)
    shutil.rmtree(out / "song_0001")
    (out / ".song_0001.partial" / "tracks").mkdir(parents=True)  # what a killed run leaves
    (out / ".song_0001.partial" / "tracks" / "kick.wav").write_bytes(b"half")
    kept = (out / "song_0000" / "mix.wav").stat().st_mtime_ns
    make_corpus(out, drums_config, jobs=1)
    assert _files(out) == before
    assert (out / "song_0000" / "mix.wav").stat().st_mtime_ns == kept  # finished songs untouched


def test_refuses_foreign_or_different_folders(tmp_path, drums_config):
    make_corpus(tmp_path / "c", drums_config, jobs=1)
    with pytest.raises(CorpusError, match="other settings"):
        make_corpus(tmp_path / "c", CorpusConfig(**{**drums_config.__dict__, "seed": 99}), jobs=1)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(CorpusError, match="not a corpus"):
        make_corpus(tmp_path / "mine", drums_config, jobs=1)
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "precious"


def test_bad_requests(tmp_path, kit_dir):
    with pytest.raises(CorpusError, match="--kit"):
        make_corpus(tmp_path / "x", CorpusConfig(preset="drums", songs=1, seconds=1, seed=0))
    with pytest.raises(CorpusError, match="unknown preset"):
        make_corpus(tmp_path / "x", CorpusConfig(preset="jazz", songs=1, seconds=1, seed=0))
    with pytest.raises(CorpusError, match="not found"):
        make_corpus(tmp_path / "x", CorpusConfig(preset="drums", songs=1, seconds=1, seed=0, kit_dir=str(tmp_path / "nokit")))
    assert not (tmp_path / "x").exists()


def test_songs_preset(tmp_path, kit_dir):
    pytest.importorskip("music21")
    if shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth is not installed (scripts/setup.sh installs it)")
    config = CorpusConfig(preset="songs", songs=2, seconds=2.0, seed=3, kit_dir=str(kit_dir))
    out = make_corpus(tmp_path / "s", config, jobs=1)
    songs = list(iter_songs(out))
    assert len(songs) == 2
    for song in songs:
        assert 2 <= song.num_tracks <= 16
        meta = json.loads((song.path / "song.json").read_text())
        assert meta["melodic"], "every song has melodic parts"
        np.testing.assert_allclose(
            Console(song.tracks, song.sample_rate).render(read_params(song.path / "params.json").reordered(song.track_names).values),
            song.mix, atol=1e-6)
        assert not song.silent_tracks


def test_split_ratios():
    names = [f"s{i:03d}" for i in range(100)]
    s = split_names(names, seed=0)
    assert (len(s["train"]), len(s["valid"]), len(s["test"])) == (80, 10, 10)
    assert sorted(s["train"] + s["valid"] + s["test"]) == names
    assert split_names(names, seed=0) == s and split_names(names, seed=1) != s
    small = split_names(["a", "b", "c"], seed=0)
    assert [len(small[k]) for k in ("train", "valid", "test")] == [1, 1, 1]
    assert split_names(["a"], seed=0) == {"train": ["a"], "valid": [], "test": []}


def test_console_v2_corpus(tmp_path, drums_config):
    """The v2 engineer: the mix is console v2's rendering of the stored settings (buses and
    master included), the tracks are the v1 corpus's, and the engineer uses v2's means."""
    from dataclasses import replace

    from mixinvert.console.mixing import render_mix
    from mixinvert.console.schema import CONSOLE_V2

    config = replace(drums_config, songs=2, console="v2")
    out = make_corpus(tmp_path / "c2", config, jobs=1)
    v1 = make_corpus(tmp_path / "c1", replace(drums_config, songs=2), jobs=1)
    assert json.loads((out / "corpus.json").read_text())["identity"]["console"] == "v2"
    for d in list_song_dirs(out):
        song = load_song(d)
        assert song.params.schema is CONSOLE_V2 and song.params.shared is not None
        np.testing.assert_allclose(render_mix(song.tracks, song.sample_rate, song.params), song.mix, atol=1e-6)
        same = load_song(v1 / d.name)
        assert all(np.array_equal(a, b) for a, b in zip(song.tracks, same.tracks))
    values = np.concatenate([load_song(d).params.values for d in list_song_dirs(out)])
    hpf = values[:, CONSOLE_V2.index("hpf_cutoff_hz")]
    assert (hpf > CONSOLE_V2.spec("hpf_cutoff_hz").lo).mean() > 0.5  # most drum mics are high-passed
    with pytest.raises(CorpusError, match="unknown console"):
        make_corpus(tmp_path / "c3", replace(drums_config, console="v9"))
