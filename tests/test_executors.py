"""Executors: local threads and Ray give the same numbers for the same seed."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

from mixinvert.cli import main
from mixinvert.evaluation import evaluate
from mixinvert.executors import ExecutorError, LocalExecutor, RayExecutor
from mixinvert.models.inverter import Inverter, get_model_config
from mixinvert.train.config import TrainConfig
from mixinvert.train.fitting import validate
from mixinvert.train.sampling import sampling_step
from mixinvert.train.songs import load_split
from mixinvert.train.tasks import SongAudio, render_log_mel, render_scores
from tests.conftest import make_tiny_corpus

REQUIRE_RAY = os.environ.get("MIXINVERT_REQUIRE_RAY") == "1"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_tiny_corpus(tmp_path_factory.mktemp("executors") / "corpus", n_songs=6, seconds=1.0)


@pytest.fixture(scope="module")
def songs(corpus):
    return load_split([corpus], "train")


@pytest.fixture(scope="module")
def ray_local():
    """A local two-CPU Ray instance, started by the test and stopped after the module."""
    try:
        import ray  # noqa: F401
    except ImportError:
        if REQUIRE_RAY:
            raise
        pytest.skip('Ray is not installed (pip install "mixinvert[ray]"; CI requires it)')
    executor = RayExecutor("local", workers=2)
    yield executor
    executor.close()


def _model(seed: int = 0) -> Inverter:
    torch.manual_seed(seed)
    return Inverter(get_model_config("small"))


def _same_pairs(a, b) -> None:
    assert a.pair_song == b.pair_song
    assert len(a.pair_mix) == len(b.pair_mix) > 0
    for x, y in zip(a.pair_mix, b.pair_mix):
        assert torch.equal(x, y)
    for x, y in zip(a.pair_p, b.pair_p):
        assert torch.equal(x, y)
    assert len(a.pair_transfer) == len(b.pair_transfer) == len(a.pair_mix)  # the small network's transfer spectra
    for x, y in zip(a.pair_transfer, b.pair_transfer):
        assert torch.equal(x, y)


class CountingExecutor(LocalExecutor):
    """Local threads that count what is put and check what comes back."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.puts = 0
        self.returned: list = []

    def put(self, value):
        self.puts += 1
        return value

    def map(self, fn, jobs, *, cpus_per_task: int = 1):
        for result in super().map(fn, jobs, cpus_per_task=cpus_per_task):
            self.returned.append(result)
            yield result


def test_local_executor_keeps_order_and_checks_workers():
    from threadpoolctl import threadpool_info

    before = (torch.get_num_threads(), [i["num_threads"] for i in threadpool_info()])
    with LocalExecutor(2) as ex:
        # the caller's own work between results runs with the thread counts it had
        assert [(torch.get_num_threads(), [i["num_threads"] for i in threadpool_info()])
                for _ in ex.map(pow, [(k, 2) for k in range(20)])] == [before] * 20
        assert list(ex.map(pow, [(k, 2) for k in range(20)])) == [k * k for k in range(20)]
        assert list(ex.map(pow, [(k, 3) for k in range(5)], cpus_per_task=2)) == [k**3 for k in range(5)]
    with pytest.raises(ValueError, match="workers"):
        LocalExecutor(0)


def test_each_song_is_put_once_and_renders_return_features(songs):
    config = TrainConfig(samples_per_song=3, excerpt_seconds=0.5, seed=3)
    ex = CountingExecutor(2)
    data = sampling_step(_model(), songs, config, 0, executor=ex)
    # each song's audio goes out once, not once per render; the network's weights once
    assert ex.puts == len(songs) + 1
    # per song, one task for the network's input features and its prediction, then K renders
    inputs, mixes = ex.returned[:len(songs)], ex.returned[len(songs):]
    assert len(mixes) == len(data) == 3 * len(songs)
    for (tf, p_hat, shared_hat), song in zip(inputs, songs):
        assert tf.shape[:2] == (len(song.tracks), 2) and p_hat.shape == (len(song.tracks), 16)
        assert shared_hat is None  # console v1 has no shared settings
    for (feats, transfer), song_index in zip(mixes, data.pair_song):  # features, not audio
        assert feats.dtype == np.float32 and feats.ndim == 3 and feats.shape[0] == 2 and feats.shape[2] == 80
        assert transfer.dtype == np.float32 and transfer.shape == (len(songs[song_index].tracks), 8, 80)


def test_thread_count_does_not_change_the_pairs(songs):
    config = TrainConfig(samples_per_song=2, excerpt_seconds=0.5, seed=5)
    with LocalExecutor(1) as one, LocalExecutor(2) as two:
        _same_pairs(sampling_step(_model(), songs, config, 1, executor=one),
                    sampling_step(_model(), songs, config, 1, executor=two))


def test_ray_gives_the_same_pairs_and_scores_as_local_threads(songs, ray_local):
    config = TrainConfig(samples_per_song=2, excerpt_seconds=0.5, seed=5)
    with LocalExecutor(2) as local:
        expected = sampling_step(_model(), songs, config, 2, executor=local)
        expected_valid = validate(_model(), songs[:3], executor=local)
    _same_pairs(expected, sampling_step(_model(), songs, config, 2, executor=ray_local))  # bit for bit
    # scores: the same to the last digits; BLAS sums in an order that depends on its
    # thread count, which Ray sets to one per task
    assert validate(_model(), songs[:3], executor=ray_local) == pytest.approx(expected_valid, rel=1e-12)


def test_ray_tasks_read_the_put_audio(ray_local, songs):
    song = songs[0]
    audio = SongAudio(list(song.tracks), song.sample_rate, song.mix)
    ref = ray_local.put(audio)
    p = np.zeros((len(song.tracks), 16))
    got = list(ray_local.map(render_scores, [(ref, p, "v1"), (ref, p + 0.1, "v1")]))
    assert got == [render_scores(audio, p), render_scores(audio, p + 0.1)]
    feats = list(ray_local.map(render_log_mel, [(ref, p, "v1")]))[0]
    np.testing.assert_array_equal(feats, render_log_mel(audio, p))


def test_evaluate_on_ray_matches_one_song_after_another(corpus, ray_local):
    methods = ["sum", "random", "barchiesi-reiss"]
    plain = evaluate(corpus, methods, split="test", seed=1)
    parallel = evaluate(corpus, methods, split="test", seed=1, executor=ray_local)
    assert parallel.methods == plain.methods  # barchiesi-reiss:console included, in the same place
    assert [(r.song, r.method, r.param_errors) for r in parallel.rows] == \
        [(r.song, r.method, r.param_errors) for r in plain.rows]  # the settings found: exactly
    for a, b in zip(parallel.rows, plain.rows):  # the scores: up to BLAS's summation order
        assert (a.mae, a.mrsd) == pytest.approx((b.mae, b.mrsd), rel=1e-12)


def test_cli_evaluate_and_train_on_ray(corpus, ray_local, tmp_path, capsys):
    assert main(["evaluate", str(corpus), "--methods", "sum,random", "--ray", "local", "--quiet"]) == 0
    assert main(["train", str(corpus), "--out", str(tmp_path / "run"), "--iterations", "1", "--samples", "1",
                 "--epochs", "1", "--excerpt-seconds", "0.5", "--ray", "local"]) == 0
    out = capsys.readouterr()
    assert "iteration 1/1" in out.out and "Ray" in out.err


def test_missing_ray_is_one_clear_error(corpus, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ExecutorError, match=r"mixinvert\[ray\]"):
        RayExecutor("local")
    assert main(["evaluate", str(corpus), "--methods", "sum", "--ray", "local"]) == 2
    assert 'pip install "mixinvert[ray]"' in capsys.readouterr().err


def test_local_songs_at_once_matches_one_after_another(corpus):
    plain = evaluate(corpus, ["sum", "random"], seed=2)
    with LocalExecutor(2) as ex:
        parallel = evaluate(corpus, ["sum", "random"], seed=2, executor=ex)
    assert [(r.song, r.method, r.param_errors) for r in parallel.rows] == \
        [(r.song, r.method, r.param_errors) for r in plain.rows]
    assert [r.mrsd for r in parallel.rows] == pytest.approx([r.mrsd for r in plain.rows], rel=1e-12)


@pytest.mark.parametrize("option", ["--songs-at-once", "--cpus-per-song"])
def test_cli_parallel_settings_below_one_are_refused(corpus, option, capsys):
    assert main(["evaluate", str(corpus), "--methods", "sum", option, "0"]) == 2
    assert f"{option} must be at least 1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="cpus_per_song"):
        evaluate(corpus, ["sum"], cpus_per_song=0)
