"""The model that ships in the package: it loads, is the default, and inverts a drum song."""

from __future__ import annotations

import numpy as np
import pytest

from mixinvert.console.schema import CONSOLE_V1
from mixinvert.methods.registry import best_method, get_method
from mixinvert.models.checkpoint import DEFAULT_MODEL_PATH, load_model, read_checkpoint
from mixinvert.models.inverter import get_model_config


def test_the_shipped_model_is_small_loads_and_says_how_it_was_trained():
    assert DEFAULT_MODEL_PATH.is_file(), "the package must ship its default EAMI model"
    assert DEFAULT_MODEL_PATH.stat().st_size < 8 * 2**20  # a few MB, fine for a repository
    obj = read_checkpoint(DEFAULT_MODEL_PATH)
    assert obj["kind"] == "model" and "optimizer" not in obj  # weights only, no training state
    model, schema, meta = load_model(None)
    assert schema is CONSOLE_V1 and not model.training
    assert model.config == get_model_config("small")  # today's small network, reverb channels and all
    assert meta["iteration"] >= 1 and meta["corpora"] and meta["train_config"]["sampling"] == "exp"


def test_default_methods():
    assert best_method() == "eami+refine"  # the most accurate at default settings (BENCHMARKS.md)
    assert best_method(options=("model",)) == "eami+refine"  # --model: the network, refined


@pytest.fixture(scope="module")
def drum_songs(tmp_path_factory):
    from mixinvert.data.corpus import CorpusConfig, make_corpus
    from mixinvert.data.song import load_song
    from tests.conftest import KIT_DIR

    if not KIT_DIR.is_dir():
        pytest.skip(f"drum kit not found at {KIT_DIR}")
    out = tmp_path_factory.mktemp("shipped") / "drums"
    make_corpus(out, CorpusConfig("drums", 4, 4.0, 11, str(KIT_DIR)), jobs=1)
    return [load_song(out / f"song_{i:04d}") for i in range(4)]


def test_the_shipped_model_recovers_drum_mixes_better_than_a_plain_sum(drum_songs):
    from mixinvert.metrics.audio import compare_mixes

    eami, plain = [], []
    for song in drum_songs:
        rng = np.random.default_rng(0)
        est = get_method("eami").fn(song, rng=rng)
        CONSOLE_V1.validate(est.params.values)
        eami.append(compare_mixes(est.mix, song.mix, song.sample_rate).mrsd)
        plain.append(compare_mixes(get_method("sum").fn(song, rng=rng).mix, song.mix, song.sample_rate).mrsd)
    assert np.mean(eami) < np.mean(plain)


def test_the_shipped_v2_model_is_small_and_was_trained_on_real_sources_without_the_yardstick():
    from mixinvert.console.schema import CONSOLE_V2
    from mixinvert.models.checkpoint import DEFAULT_MODEL_PATHS
    from mixinvert.models.inverter import for_schema

    path = DEFAULT_MODEL_PATHS["v2"]
    assert path.is_file(), "the package must ship its console v2 EAMI model"
    assert path.stat().st_size < 8 * 2**20
    obj = read_checkpoint(path)
    assert obj["kind"] == "model" and "optimizer" not in obj
    model, schema, meta = load_model(None, "v2")
    assert schema is CONSOLE_V2 and model.config == for_schema(get_model_config("small"), CONSOLE_V2)
    assert meta["train_config"]["console"] == "v2" and not meta["train_config"].get("adapt")
    assert "real_v2" in meta["corpora"] and "adapted_on" not in meta


@pytest.fixture(scope="module")
def v2_songs(tmp_path_factory):
    from mixinvert.data.corpus import CorpusConfig, make_corpus
    from mixinvert.data.song import load_song
    from tests.conftest import KIT_DIR

    if not KIT_DIR.is_dir():
        pytest.skip(f"drum kit not found at {KIT_DIR}")
    out = tmp_path_factory.mktemp("shipped_v2") / "songs"
    make_corpus(out, CorpusConfig("songs", 3, 4.0, 17, str(KIT_DIR), console="v2"), jobs=1)
    return [load_song(out / f"song_{i:04d}") for i in range(3)]


def test_the_shipped_v2_model_recovers_v2_mixes_better_than_a_plain_sum(v2_songs):
    from mixinvert.console.mixing import render_mix
    from mixinvert.console.schema import CONSOLE_V2
    from mixinvert.methods.run import run_method
    from mixinvert.metrics.audio import compare_mixes

    eami, plain = [], []
    for song in v2_songs:
        r = run_method(song, "eami", rng=np.random.default_rng(0))
        assert r.estimate.params.schema is CONSOLE_V2  # the truth's console, so the shipped v2 network
        np.testing.assert_allclose(r.estimate.mix, render_mix(song.tracks, song.sample_rate, r.estimate.params),
                                   atol=1e-5)
        eami.append(r.scores.mrsd)
        plain.append(compare_mixes(run_method(song, "sum", rng=np.random.default_rng(0)).estimate.mix, song.mix,
                                   song.sample_rate).mrsd)
    assert np.mean(eami) < 0.8 * np.mean(plain)
