"""Embodied self-supervised training: schedule, sampling modes, runs, resume, bad runs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1
from mixinvert.dsp.features import log_mel
from mixinvert.models.checkpoint import CheckpointError, load_model, read_checkpoint
from mixinvert.models.inverter import Inverter, get_model_config
from mixinvert.models.predict import song_features, song_transfer
from mixinvert.train.config import TrainConfig, TrainError
from mixinvert.train.essl import train
from mixinvert.train.fitting import training_step
from mixinvert.train.sampling import prior_settings, sampling_step
from mixinvert.train.songs import load_split
from tests.conftest import make_tiny_corpus

TINY = dict(iterations=2, samples_per_song=2, epochs=1, excerpt_seconds=0.5, valid_songs=2)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_tiny_corpus(tmp_path_factory.mktemp("corpus"), n_songs=8, seconds=1.0, seed=3)


@pytest.fixture(scope="module")
def songs(corpus):
    return load_split([corpus], "train")


def _model(seed: int = 0) -> Inverter:
    torch.manual_seed(seed)
    return Inverter(get_model_config("small"))


def test_sigma_schedules():
    exp = TrainConfig(sampling="exp", sigma_init=0.5, gamma=0.8)
    assert [exp.sigma(t) for t in range(3)] == pytest.approx([0.5, 0.4, 0.32])
    assert TrainConfig(sampling="fixed", sigma_init=0.1).sigma(7) == 0.1
    assert TrainConfig(sampling="none").sigma(3) == 0.0
    assert np.isnan(TrainConfig(sampling="random").sigma(0))


@pytest.mark.parametrize(
    "bad",
    [
        {"sampling": "sometimes"},
        {"iterations": 0},
        {"gamma": 0.0},
        {"gamma": 1.5},
        {"sigma_init": -0.1},
        {"epochs": 0},
        {"batch_size": 0},
        {"lr": 0.0},
        {"beta1": 1.0},
        {"excerpt_seconds": 0.0},
        {"songs_per_iteration": 0},
    ],
)
def test_bad_config_is_refused(bad):
    with pytest.raises(TrainError):
        TrainConfig(**bad)


def test_unknown_model_config_is_refused():
    with pytest.raises(ValueError, match="unknown model config"):
        TrainConfig(model="huge")


def test_config_round_trip():
    c = TrainConfig(iterations=3, sampling="fixed", sigma_init=0.05)
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(TrainError, match="unknown"):
        TrainConfig.from_dict({**c.to_dict(), "momentum": 0.9})


def _predictions(model, songs, config, t):
    """What the network predicts for the excerpts sampling_step draws at iteration t."""
    rng = np.random.default_rng([config.seed, t, 0])
    out = []
    for s in songs:
        n = int(round(config.excerpt_seconds * s.sample_rate))
        start = int(rng.integers(0, s.num_samples - n + 1)) if s.num_samples > n else 0
        tracks = [x[:, start : start + n] for x in s.tracks]
        mix = s.mix[:, start : start + n]
        tf, mf = song_features(tracks, mix, s.sample_rate)
        model.eval()
        with torch.no_grad():
            transfer = song_transfer(tracks, mix, s.sample_rate, **model.transfer_options)
            out.append((model(tf, mf, transfer=transfer).numpy(), tracks, start))
    return out


def test_sampling_none_renders_the_prediction_itself(songs):
    config = TrainConfig(sampling="none", samples_per_song=2, excerpt_seconds=0.5)
    model = _model()
    data = sampling_step(model, songs, config, 0, workers=1)
    assert len(data) == 2 * len(songs)
    preds = _predictions(model, songs, config, 0)
    for k in range(len(data)):
        j = data.pair_song[k]
        p_hat, tracks, _ = preds[j]
        np.testing.assert_allclose(data.pair_p[k].numpy(), p_hat, atol=1e-5)
        # the stored mix features are those of the console's render of p on the excerpt
        mix = Console(tracks, songs[j].sample_rate).render(CONSOLE_V1.denormalize(data.pair_p[k].numpy()))
        torch.testing.assert_close(data.pair_mix[k], log_mel(mix, songs[j].sample_rate), atol=1e-4, rtol=1e-4)
        # and the stored transfer spectra are the tracks' into that render
        torch.testing.assert_close(data.pair_transfer[k], song_transfer(tracks, mix, songs[j].sample_rate, reverb=True, compressor=True),
                                   atol=1e-4, rtol=1e-4)


def test_sampling_exp_perturbs_around_the_prediction(songs):
    config = TrainConfig(sampling="exp", sigma_init=0.3, gamma=0.5, samples_per_song=8, excerpt_seconds=0.5)
    model = _model()
    t = 1  # sigma = 0.15
    data = sampling_step(model, songs, config, t, workers=2)
    preds = _predictions(model, songs, config, t)
    dev = []
    for k in range(len(data)):
        p = data.pair_p[k].numpy()
        assert p.min() >= -1.0 and p.max() <= 1.0
        dev.append(p - preds[data.pair_song[k]][0])
    dev = np.concatenate(dev).ravel()
    inside = np.abs(dev) < 0.999  # not touched by clipping
    assert abs(dev.mean()) < 0.03
    assert np.std(dev[inside]) == pytest.approx(0.15, rel=0.2)


def test_sampling_random_ignores_the_network(songs):
    config = TrainConfig(sampling="random", samples_per_song=3, excerpt_seconds=0.5)
    a = sampling_step(_model(0), songs, config, 0, workers=1)
    b = sampling_step(_model(1), songs, config, 0, workers=1)
    for pa, pb in zip(a.pair_p, b.pair_p):
        torch.testing.assert_close(pa, pb)
    allp = torch.cat(a.pair_p)
    assert allp.min() >= -1 and allp.max() <= 1 and allp.std() > 0.4  # uniform on [-1, 1]: 0.577


def test_sampling_is_deterministic_and_depends_on_the_iteration(songs):
    config = TrainConfig(samples_per_song=2, excerpt_seconds=0.5)
    a = sampling_step(_model(), songs, config, 0, workers=2)
    b = sampling_step(_model(), songs, config, 0, workers=1)
    c = sampling_step(_model(), songs, config, 1, workers=1)
    for pa, pb, ma, mb in zip(a.pair_p, b.pair_p, a.pair_mix, b.pair_mix):
        torch.testing.assert_close(pa, pb)
        torch.testing.assert_close(ma, mb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.pair_p, c.pair_p))


def test_songs_per_iteration_takes_a_subset(songs):
    config = TrainConfig(samples_per_song=1, excerpt_seconds=0.5, songs_per_iteration=2)
    data = sampling_step(_model(), songs, config, 0, workers=1)
    assert len(data) == 2 and len(data.track_feats) == 2


def test_training_step_fits_the_pairs(songs):
    config = TrainConfig(sampling="random", samples_per_song=2, excerpt_seconds=0.5, epochs=1, lr=2e-3)
    model = _model()
    data = sampling_step(model, songs, config, 0, workers=2)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    first = training_step(model, opt, data, config, 0)
    for t in range(1, 8):
        last = training_step(model, opt, data, config, t)
    assert np.isfinite(first) and last < first


def test_train_writes_a_run_and_a_usable_model(corpus, tmp_path):
    run = tmp_path / "run"
    lines = []
    result = train(corpus, run, TrainConfig(**TINY), workers=2, progress=False, log=lines.append)
    assert [h["iteration"] for h in result.history] == [1, 2]
    for name in ("run.json", "checkpoint.pt", "model.pt", "log.csv", "training.png"):
        assert (run / name).is_file(), name
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [r["iteration"] for r in rows] == ["1", "2"]
    assert all(np.isfinite(float(r["valid_mrsd"])) and float(r["train_loss"]) > 0 for r in rows)
    assert len(lines) == 3 and "plain sum on them: MRSD" in lines[0] and "iteration 2/2" in lines[-1]
    assert (run / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model, schema, meta = load_model(run / "model.pt")
    assert schema is CONSOLE_V1 and meta["iteration"] in (1, 2) and model.config.name == "small"
    best = min(h["valid_mrsd"] for h in result.history)
    assert meta["valid_mrsd"] == pytest.approx(best)


def _weights(path):
    return read_checkpoint(path)["state_dict"]


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(corpus, tmp_path):
    cfg2 = TrainConfig(**TINY)
    cfg1 = TrainConfig(**{**TINY, "iterations": 1})
    train(corpus, tmp_path / "straight", cfg2, workers=1, progress=False, log=lambda s: None)
    train(corpus, tmp_path / "resumed", cfg1, workers=1, progress=False, log=lambda s: None)
    lines = []
    res = train(corpus, tmp_path / "resumed", cfg2, workers=1, progress=False, log=lines.append)
    assert res.resumed_from == 1 and "resuming" in lines[0]
    assert json.loads((tmp_path / "resumed" / "run.json").read_text())["config"]["iterations"] == 2
    a, b = _weights(tmp_path / "straight" / "checkpoint.pt"), _weights(tmp_path / "resumed" / "checkpoint.pt")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    # finished: running again does nothing and says so
    lines.clear()
    train(corpus, tmp_path / "resumed", cfg2, workers=1, progress=False, log=lines.append)
    assert "already trained" in lines[0]


def test_other_settings_on_an_existing_run_are_refused(corpus, tmp_path):
    run = tmp_path / "run"
    train(corpus, run, TrainConfig(**{**TINY, "iterations": 1}), workers=1, progress=False, log=lambda s: None)
    before = (run / "checkpoint.pt").read_bytes()
    with pytest.raises(TrainError, match="sigma_init"):
        train(corpus, run, TrainConfig(**{**TINY, "sigma_init": 0.1}), workers=1, progress=False)
    assert (run / "checkpoint.pt").read_bytes() == before


def test_a_folder_that_is_not_a_run_is_refused(corpus, tmp_path):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(TrainError, match="not a mixinvert run folder"):
        train(corpus, other, TrainConfig(**TINY), progress=False)
    assert (other / "notes.txt").read_text() == "keep me"


def test_a_corrupt_checkpoint_gives_a_clear_error(corpus, tmp_path):
    run = tmp_path / "run"
    train(corpus, run, TrainConfig(**{**TINY, "iterations": 1}), workers=1, progress=False, log=lambda s: None)
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="checkpoint.pt"):
        train(corpus, run, TrainConfig(**TINY), workers=1, progress=False)


def test_missing_corpus_or_training_split(tmp_path):
    with pytest.raises(TrainError, match="no such corpus"):
        train(tmp_path / "nowhere", tmp_path / "run", TrainConfig(**TINY), progress=False)


def test_prior_settings_are_realistic_and_seeded():
    a = prior_settings(np.random.default_rng(5), 200)
    b = prior_settings(np.random.default_rng(5), 200)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (200, CONSOLE_V1.size) and a.min() >= -1 and a.max() <= 1
    phys = CONSOLE_V1.denormalize(a)
    # settings of human mixes, not uniform: most EQ bands and reverbs unused, many tracks centred
    assert np.mean(phys[:, CONSOLE_V1.index("reverb_wet")] == 0) > 0.3
    assert np.mean(phys[:, CONSOLE_V1.index("eq_high_shelf_gain_db")] == 0) > 0.3
    assert np.mean(phys[:, CONSOLE_V1.index("pan")] == 0) > 0.2
    assert np.mean(phys[:, CONSOLE_V1.index("comp_ratio")] == 1) > 0.2


def test_prior_samples_add_prior_pairs_after_the_network_pairs(songs):
    config = TrainConfig(sampling="none", samples_per_song=1, prior_samples=2, excerpt_seconds=0.5)
    model = _model()
    data = sampling_step(model, songs, config, 0, workers=2)
    assert len(data) == 3 * len(songs) and len(data.pair_transfer) == len(data)
    # (the prior's draws follow each song's excerpt, so only the first song's excerpt is where
    # _predictions, which knows nothing of them, looks)
    np.testing.assert_allclose(data.pair_p[0].numpy(), _predictions(model, songs, config, 0)[0][0], atol=1e-5)
    for j in range(len(songs)):
        ks = [k for k in range(len(data)) if data.pair_song[k] == j]
        assert len(ks) == 3
        for k in ks[1:]:  # the prior's: not the network's answer, and the same with another network
            assert not np.allclose(data.pair_p[k].numpy(), data.pair_p[ks[0]].numpy(), atol=1e-2)
    other = sampling_step(_model(1), songs, config, 0, workers=1)
    for k in range(len(data)):
        if k % 3:
            torch.testing.assert_close(data.pair_p[k], other.pair_p[k])
    # the default adds none, and so do older run settings without the field
    assert TrainConfig().prior_samples == 0
    assert len(sampling_step(model, songs, TrainConfig(sampling="none", samples_per_song=1, excerpt_seconds=0.5),
                             0, workers=1)) == len(songs)


def test_prior_samples_in_random_mode_too(songs):
    config = TrainConfig(sampling="random", samples_per_song=1, prior_samples=1, excerpt_seconds=0.5)
    assert len(sampling_step(_model(), songs, config, 0, workers=1)) == 2 * len(songs)


def test_a_run_can_start_from_a_model_file(corpus, tmp_path):
    first = tmp_path / "first"
    train(corpus, first, TrainConfig(**{**TINY, "iterations": 1}), workers=1, progress=False, log=lambda s: None)
    start = read_checkpoint(first / "model.pt")["state_dict"]
    cfg = TrainConfig(**{**TINY, "iterations": 1, "seed": 4})
    lines = []
    train(corpus, tmp_path / "tuned", cfg, workers=1, progress=False, log=lines.append, init=first / "model.pt")
    assert "starting from" in lines[0]
    stored = json.loads((tmp_path / "tuned" / "run.json").read_text())
    assert len(stored["init"]["sha256"]) == 64
    # it trained on from the given weights: closer to them than a fresh start with the same seed
    train(corpus, tmp_path / "fresh", cfg, workers=1, progress=False, log=lambda s: None)
    tuned, fresh = _weights(tmp_path / "tuned" / "checkpoint.pt"), _weights(tmp_path / "fresh" / "checkpoint.pt")
    key = next(k for k in start if start[k].dtype.is_floating_point and start[k].numel() > 100)
    assert (tuned[key] - start[key]).abs().mean() < (fresh[key] - start[key]).abs().mean()
    # resuming with another starting file, or with none, is refused; a model of another configuration too
    before = (tmp_path / "tuned" / "checkpoint.pt").read_bytes()
    with pytest.raises(TrainError, match=f"started from model file sha256 {stored['init']['sha256'][:12]}.*same --init"):
        train(corpus, tmp_path / "tuned", TrainConfig(**{**TINY, "seed": 4}), workers=1, progress=False,
              init=tmp_path / "fresh" / "model.pt")
    with pytest.raises(TrainError, match="started from model file sha256"):
        train(corpus, tmp_path / "tuned", TrainConfig(**{**TINY, "seed": 4}), workers=1, progress=False)
    with pytest.raises(TrainError, match="started from an untrained network"):
        train(corpus, tmp_path / "fresh", cfg, workers=1, progress=False, init=first / "model.pt")
    assert (tmp_path / "tuned" / "checkpoint.pt").read_bytes() == before
    with pytest.raises(TrainError, match="not the 'paper' configuration"):
        train(corpus, tmp_path / "x", TrainConfig(**{**TINY, "model": "paper"}), progress=False,
              init=first / "model.pt")
    with pytest.raises(CheckpointError, match="no such model file"):
        train(corpus, tmp_path / "y", cfg, progress=False, init=tmp_path / "missing.pt")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_run_started_before_a_setting_existed_still_resumes(corpus, tmp_path):
    run = tmp_path / "run"
    train(corpus, run, TrainConfig(**{**TINY, "iterations": 1}), workers=1, progress=False, log=lambda s: None)
    stored = json.loads((run / "run.json").read_text())
    del stored["config"]["prior_samples"]  # as written by an earlier mixinvert
    (run / "run.json").write_text(json.dumps(stored))
    lines = []
    train(corpus, run, TrainConfig(**TINY), workers=1, progress=False, log=lines.append)
    assert "resuming" in lines[0]


def test_a_model_from_before_the_reverb_and_compressor_channels_is_widened_to_start_a_run(corpus, songs, tmp_path):
    from dataclasses import replace

    from mixinvert.models.checkpoint import model_payload, save_atomic
    from mixinvert.train.surgery import widen_transfer

    small = get_model_config("small")
    s = songs[0]
    tf, mf = s.features
    for reverb, compressor in ((False, False), (True, False), (False, True)):
        narrow_config = replace(small, transfer_reverb=reverb, transfer_compressor=compressor)
        torch.manual_seed(2)
        narrow = Inverter(narrow_config).eval()
        wide = widen_transfer(narrow, small).eval()
        assert wide.transfer_options == {"reverb": True, "compressor": True}
        with torch.no_grad():  # the same answers: the new channels start with zero weight
            torch.testing.assert_close(wide(tf, mf, transfer=s.transfer(True, True)),
                                       narrow(tf, mf, transfer=s.transfer(reverb, compressor)), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="only adds transfer channel groups"):
        widen_transfer(Inverter(small), replace(small, transfer_compressor=False))
    path = tmp_path / "narrow.pt"
    save_atomic(model_payload(narrow, CONSOLE_V1), path)
    lines = []
    train(corpus, tmp_path / "run", TrainConfig(**{**TINY, "iterations": 1}), workers=1, progress=False,
          log=lines.append, init=path)
    model, _, _ = load_model(tmp_path / "run" / "model.pt")
    assert model.transfer_reverb and model.config == small
    # any other difference of configuration is refused
    other = replace(narrow_config, transfer_hidden=64)
    save_atomic(model_payload(Inverter(other), CONSOLE_V1), tmp_path / "other.pt")
    with pytest.raises(TrainError, match="not the 'small' configuration"):
        train(corpus, tmp_path / "run2", TrainConfig(**TINY), progress=False, init=tmp_path / "other.pt")


def test_cli_train_takes_prior_samples_and_init(corpus, tmp_path, capsys):
    from mixinvert.cli import main

    first = tmp_path / "first"
    args = ["--iterations", "1", "--samples", "1", "--epochs", "1", "--excerpt-seconds", "0.5", "--valid-songs", "1"]
    assert main(["train", str(corpus), "--out", str(first), *args, "--prior-samples", "1"]) == 0
    stored = json.loads((first / "run.json").read_text())
    assert stored["config"]["prior_samples"] == 1 and "init" not in stored
    assert main(["train", str(corpus), "--out", str(tmp_path / "tuned"), *args, "--init", str(first / "model.pt")]) == 0
    assert "starting from" in capsys.readouterr().out
    assert json.loads((tmp_path / "tuned" / "run.json").read_text())["init"]["sha256"]
    assert main(["train", str(corpus), "--out", str(tmp_path / "bad"), *args, "--prior-samples", "-1"]) == 2
    assert "prior samples" in capsys.readouterr().err


def test_keep_models_then_average_them(corpus, tmp_path, capsys):
    from dataclasses import replace

    from mixinvert.cli import main
    from mixinvert.models.checkpoint import model_payload, save_atomic
    from mixinvert.train.surgery import average_models

    run = tmp_path / "run"
    train(corpus, run, TrainConfig(**TINY), workers=1, progress=False, log=lambda _: None, keep_models=True)
    kept = sorted((run / "models").glob("iteration_*.pt"))
    assert [p.name for p in kept] == ["iteration_001.pt", "iteration_002.pt"]
    first, second = (read_checkpoint(p)["state_dict"] for p in kept)
    assert any((first[k] != second[k]).any() for k in first)  # two different networks
    out = tmp_path / "avg.pt"
    assert main(["average-models", *map(str, kept), "--out", str(out)]) == 0
    model, _, meta = load_model(out)
    assert [s["path"] for s in meta["averaged"]] == [str(p) for p in kept]
    assert meta["iteration"] == 2 and meta["train_config"]["iterations"] == 2 and "valid_mrsd" not in meta
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, (first[k] + second[k]) / 2, atol=1e-6, rtol=0)
    # the user's files are never overwritten, nor is a source
    before = out.read_bytes()
    assert main(["average-models", *map(str, kept), "--out", str(out)]) == 2  # bad input
    assert main(["average-models", str(kept[0]), str(out), "--out", str(out), "--overwrite"]) == 2
    assert out.read_bytes() == before
    assert "exists" in capsys.readouterr().err
    # a network without the compressor channels is widened; any other difference is refused
    small = get_model_config("small")
    narrow = tmp_path / "narrow.pt"
    save_atomic(model_payload(Inverter(replace(small, transfer_compressor=False)), CONSOLE_V1), narrow)
    averaged, _ = average_models([kept[0], narrow])
    assert averaged.config == small
    other = tmp_path / "other.pt"
    save_atomic(model_payload(Inverter(replace(small, transfer_hidden=64)), CONSOLE_V1), other)
    with pytest.raises(TrainError, match="only networks of one configuration"):
        average_models([kept[0], other])
    with pytest.raises(TrainError, match="at least two"):
        average_models([kept[0]])
