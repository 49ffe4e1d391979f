"""Distributed training: the ranks' shards make the single-process step, torchrun runs."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mixinvert.models.checkpoint import load_model
from mixinvert.models.inverter import Inverter, get_model_config
from mixinvert.train.config import TrainConfig
from mixinvert.train.distributed import (
    Dist,
    backend_for,
    current,
    init_from_env,
    launched_by_torchrun,
    resolve_device,
)
from mixinvert.train.sampling import sampling_step
from mixinvert.train.songs import load_split
from tests.conftest import REPO, make_tiny_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_tiny_corpus(tmp_path_factory.mktemp("ddp") / "corpus", n_songs=8, seconds=1.0)


def test_the_ranks_shards_together_are_the_whole_step(corpus):
    songs = load_split([corpus], "train")
    config = TrainConfig(samples_per_song=2, excerpt_seconds=0.5, seed=4)
    torch.manual_seed(0)
    model = Inverter(get_model_config("small"))
    whole = sampling_step(model, songs, config, 1, workers=1)
    shards = [sampling_step(model, songs, config, 1, workers=1, shard=Dist(r, 3)) for r in range(3)]
    assert sum(len(s) for s in shards) == len(whole)
    # song j of the step is rank j mod 3's; its pairs are the whole step's pairs for song j
    for r, shard in enumerate(shards):
        mine = [j for j in range(len(songs)) if j % 3 == r]
        for k, j in enumerate(mine):
            assert torch.equal(shard.track_feats[k], whole.track_feats[j])
            got = [(p, m) for s, p, m in zip(shard.pair_song, shard.pair_p, shard.pair_mix) if s == k]
            want = [(p, m) for s, p, m in zip(whole.pair_song, whole.pair_p, whole.pair_mix) if s == j]
            assert len(got) == len(want) == 2
            for (p1, m1), (p2, m2) in zip(got, want):
                assert torch.equal(p1, p2) and torch.equal(m1, m2)


def test_without_torchrun_nothing_is_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not launched_by_torchrun() and init_from_env() is None and current() is None


def test_device_resolution_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device("cpu") == torch.device("cpu")
    for asked in ("cuda", "cuda:0", "CUDA"):
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device(asked)
    with pytest.raises(ValueError, match="expected auto, cpu, cuda"):
        resolve_device("tpu")
    assert backend_for(torch.device("cpu")) == "gloo"


def test_device_resolution_with_gpus(monkeypatch):
    # what a node with two GPUs resolves to (no GPU is needed: torch.device only names one)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda", local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("cuda", local_rank=3) == torch.device("cuda", 1)  # ranks beyond the GPUs share them
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="only 2 GPU"):
        resolve_device("cuda:2")
    assert backend_for(resolve_device("cuda")) == "nccl"


def test_train_refuses_a_gpu_it_does_not_have(corpus, tmp_path, monkeypatch):
    from mixinvert.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    run = tmp_path / "run"
    assert main(["train", str(corpus), "--out", str(run), "--iterations", "1", "--device", "cuda"]) != 0
    assert not run.exists()


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "mixinvert", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_torchrun_trains_on_two_processes_and_resumes(corpus, tmp_path):
    run = tmp_path / "run"
    argv = ["train", str(corpus), "--out", str(run), "--samples", "2", "--epochs", "2", "--excerpt-seconds", "0.5",
            "--workers", "1"]
    done = _torchrun([*argv, "--iterations", "1"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "distributed training: 2 processes" in done.stderr
    assert done.stdout.count("iteration 1/1") == 1  # rank 0 alone speaks
    rows = list(csv.DictReader((run / "log.csv").open()))
    n_train = len(json.loads((corpus / "splits.json").read_text())["train"])
    assert len(rows) == 1 and int(rows[0]["pairs"]) == 2 * n_train  # both ranks' pairs counted
    model, _, meta = load_model(run / "model.pt")
    assert meta["iteration"] == 1
    # resumed on two processes from the checkpoint rank 0 wrote
    again = _torchrun([*argv, "--iterations", "2"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming" in again.stdout and "iteration 2/2" in again.stdout
    assert len(list(csv.DictReader((run / "log.csv").open()))) == 2


def test_torchrun_with_ray_local_is_refused(corpus, tmp_path):
    done = _torchrun(["train", str(corpus), "--out", str(tmp_path / "run"), "--iterations", "1", "--ray", "local"],
                     tmp_path)
    assert done.returncode != 0 and "--ray auto" in done.stderr
    assert not (tmp_path / "run").exists()
