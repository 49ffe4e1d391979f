"""The training step on a CUDA GPU: run where torch sees one (skipped elsewhere, CI included).

On a GPU machine: ``python -m pytest tests/train/test_gpu.py``. Set
``MIXINVERT_REQUIRE_GPU=1`` to make a missing GPU a failure instead of a skip (for a run
that is meant to check the GPU path).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from mixinvert.models.checkpoint import load_model
from mixinvert.models.predict import predict_features
from mixinvert.train.config import TrainConfig
from mixinvert.train.essl import train
from mixinvert.train.songs import load_split
from tests.conftest import make_tiny_corpus

if not torch.cuda.is_available():
    if os.environ.get("MIXINVERT_REQUIRE_GPU") == "1":
        raise RuntimeError("MIXINVERT_REQUIRE_GPU=1 but torch sees no CUDA GPU")
    pytest.skip("no CUDA GPU here", allow_module_level=True)

CONFIG = TrainConfig(iterations=2, samples_per_song=2, epochs=2, excerpt_seconds=0.5, valid_songs=2)


def test_training_on_the_gpu_resumes_and_its_model_loads_on_the_cpu(tmp_path):
    corpus = make_tiny_corpus(tmp_path / "corpus")
    run = tmp_path / "run"
    first = train(corpus, run, TrainConfig(**{**CONFIG.to_dict(), "iterations": 1}), workers=2, progress=False,
                  device="cuda")
    assert len(first.history) == 1 and np.isfinite(first.history[0]["train_loss"])
    again = train(corpus, run, CONFIG, workers=2, progress=False, device="cuda")
    assert [h["iteration"] for h in again.history] == [1, 2]
    model, _, _ = load_model(run / "model.pt")  # CPU tensors
    assert next(model.parameters()).device.type == "cpu"
    song = load_split([corpus], "valid")[0]
    on_cpu = predict_features(model, *song.features)
    on_gpu = predict_features(model.to("cuda"), *song.features)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-4)


def test_a_cpu_run_resumes_on_the_gpu(tmp_path):
    corpus = make_tiny_corpus(tmp_path / "corpus")
    run = tmp_path / "run"
    train(corpus, run, TrainConfig(**{**CONFIG.to_dict(), "iterations": 1}), workers=2, progress=False, device="cpu")
    resumed = train(corpus, run, CONFIG, workers=2, progress=False, device="cuda")
    assert [h["iteration"] for h in resumed.history] == [1, 2]
