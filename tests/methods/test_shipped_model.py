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
