"""The ``colonel-reiss`` method: the differentiable twin fitted per song by gradient descent."""

from __future__ import annotations

import numpy as np
import pytest

from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
from mixinvert.data.song import Song, SongError
from mixinvert.methods.baseline import plain_sum, sum_params
from mixinvert.methods.colonel_reiss import start_point
from mixinvert.methods.registry import get_method
from mixinvert.metrics.audio import compare_mixes
from mixinvert.twin.fit import (
    P_LIMIT,
    ReferenceLoss,
    TwinFitConfig,
    _mrstft_loss,
    fit_twin,
)
from tests.conftest import SR, noise_track


@pytest.fixture(scope="module")
def song():
    """1.5 s, three noise tracks (one stereo) mixed with clearly non-neutral gains and pans."""
    rng = np.random.default_rng(7)
    tracks = [noise_track(rng, 1, 1.5), noise_track(rng, 1, 1.5), noise_track(rng, 2, 1.5)]
    values = np.stack([CONSOLE_V1.from_dict({**NEUTRAL_V1, "gain_db": g, "pan": p})
                       for g, p in [(-12.0, -0.7), (0.0, 0.6), (-6.0, 0.0)]])
    mix = Console(tracks, SR).render(values)
    return Song("s", ("a.wav", "b.wav", "c.wav"), tracks, SR, mix)


def test_start_point_is_the_plain_sum_with_compressor_and_reverb_barely_on(song):
    p = start_point(song)
    assert p.shape == (3, CONSOLE_V1.size) and np.abs(p).max() <= P_LIMIT
    values = CONSOLE_V1.denormalize(p)
    others = [i for i, n in enumerate(CONSOLE_V1.names) if n not in ("comp_threshold_db", "comp_ratio", "reverb_wet")]
    np.testing.assert_allclose(values[:, others], sum_params(song).values[:, others], atol=1e-9)
    assert (values[:, CONSOLE_V1.index("comp_threshold_db")] == pytest.approx(-20.0))
    ratio = values[:, CONSOLE_V1.index("comp_ratio")]
    wet = values[:, CONSOLE_V1.index("reverb_wet")]
    assert ((ratio > 1.0) & (ratio < 1.1)).all() and ((wet > 0.0) & (wet < 0.05)).all()


def test_fit_twin_lowers_the_loss_deterministically(song, one_torch_thread):
    config = TwinFitConfig(steps=3, eval_every=2)
    seen = []
    fit = fit_twin(song.tracks, song.mix, SR, start_point(song), config, progress=lambda s, b: seen.append((s, b)))
    assert fit.loss < fit.start_loss
    assert fit.p.shape == (3, CONSOLE_V1.size) and np.abs(fit.p).max() <= 1.0
    assert fit.history[0] == (0, fit.start_loss)
    assert [s for s, _ in fit.history] == [0, 2, 3] and [s for s, _ in seen] == [2, 3]
    assert fit.loss == min(loss for _, loss in fit.history)
    assert fit.steps == 3 and fit.stopped == "steps" and fit.seconds > 0
    again = fit_twin(song.tracks, song.mix, SR, start_point(song), config)
    np.testing.assert_array_equal(fit.p, again.p)
    assert again.loss == fit.loss


def test_fit_twin_never_returns_worse_than_its_start(song, one_torch_thread):
    p_start = np.clip(start_point(song) * 3.0, -1.0, 1.0)  # partly outside [-P_LIMIT, P_LIMIT]
    fit = fit_twin(song.tracks, song.mix, SR, p_start, TwinFitConfig(steps=0))
    np.testing.assert_allclose(fit.p, np.clip(p_start, -P_LIMIT, P_LIMIT), atol=1e-12)
    assert fit.loss == fit.start_loss and fit.steps == 0 and fit.history == [(0, fit.start_loss)]
    # a learning rate far too large: whatever the steps do, the start is kept if they are worse
    wild = fit_twin(song.tracks, song.mix, SR, start_point(song),
                    TwinFitConfig(steps=2, learning_rate=50.0, eval_every=1))
    assert min(loss for _, loss in wild.history[1:]) > wild.start_loss  # the steps did make it worse
    assert wild.loss == wild.start_loss
    np.testing.assert_allclose(wild.p, start_point(song), atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": -1}, "steps"),
    ({"eval_every": 0}, "eval_every"),
    ({"patience": 0}, "patience"),
    ({"excerpts": 0}, "excerpts"),
    ({"eq_flat_weight": -1e-4}, "eq_flat_weight"),
    ({"eq_flat_weight": float("nan")}, "eq_flat_weight"),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TwinFitConfig(**kwargs)


def test_config_accepts_edges():
    assert TwinFitConfig(steps=0).steps == 0


def test_fit_twin_checks_the_start_shape(song):
    with pytest.raises(ValueError, match="p_start"):
        fit_twin(song.tracks, song.mix, SR, np.zeros((2, CONSOLE_V1.size)), TwinFitConfig(steps=0))
    with pytest.raises(ValueError, match="p_start"):
        fit_twin(song.tracks, song.mix, SR, np.zeros((3, CONSOLE_V1.size - 1)), TwinFitConfig(steps=0))


def test_registered_method_beats_the_plain_sum(song, rng, one_torch_thread):
    entry = get_method("colonel-reiss")
    assert set(entry.options) == {"steps", "budget", "budget_seconds", "console"}
    est = entry.fn(song, rng=rng, steps=8)
    CONSOLE_V1.validate(est.params.values)
    assert est.params.track_names == song.track_names
    assert est.mix.shape == (2, song.num_samples) and est.extra_mixes == {}
    np.testing.assert_allclose(est.mix, Console(song.tracks, SR).render(est.params.values), atol=1e-6)
    assert est.info["mix_source"] == "console v1"
    assert est.info["steps"] <= 8 and est.info["fit_loss"] < est.info["fit_loss_start"]
    assert compare_mixes(est.mix, song.mix, SR).mrsd < compare_mixes(plain_sum(song), song.mix, SR).mrsd


def test_the_work_budget_stops_the_fit_at_a_step_count_that_depends_on_the_work_alone(song, one_torch_thread):
    from mixinvert.dsp.excerpts import choose_excerpts
    from mixinvert.twin.fit import twin_evaluation_units, twin_step_units
    from mixinvert.work import WorkMeter

    config = TwinFitConfig(steps=50, eval_every=4)
    excerpts = choose_excerpts(song.mix, SR, count=config.excerpts, seconds=config.excerpt_seconds,
                               preroll_seconds=config.preroll_seconds)
    step = [twin_step_units(3, [e], SR, config.tail_seconds) for e in excerpts]
    evaluation = twin_evaluation_units(3, excerpts, SR, config.tail_seconds)
    # the first evaluation, 6 steps and the evaluations at steps 4 and 6 (the last, which
    # closes the fit: a 7th step and its evaluation would not be paid for)
    six = 3 * evaluation + sum(step[i % len(step)] for i in range(6))
    meter = WorkMeter(six + 0.5 * step[6 % len(step)])
    fit = fit_twin(song.tracks, song.mix, SR, start_point(song), config, excerpts=excerpts, meter=meter)
    assert fit.stopped == "budget" and fit.steps == 6 and [s for s, _ in fit.history] == [0, 4, 6]
    assert meter.used == pytest.approx(six) and meter.used <= meter.units
    # the method: the budget recorded, and what a wall-clock cap cut short
    est = get_method("colonel-reiss").fn(song, rng=np.random.default_rng(0), steps=50, budget=six)
    assert est.info["budget"]["work_units"] == six and est.info["budget"]["cut_short_by_seconds_cap"] == []
    assert est.info["budget"]["work_used"] <= six  # the result's render was kept back from the fit
    capped = get_method("colonel-reiss").fn(song, rng=np.random.default_rng(0), steps=50, budget_seconds=1e-9)
    assert capped.info["stopped"] == "seconds cap" and capped.info["steps"] == 1
    assert capped.info["budget"]["cut_short_by_seconds_cap"] == ["twin"]
    assert capped.info["fit_loss"] <= capped.info["fit_loss_start"]
    CONSOLE_V1.validate(capped.params.values)
    with pytest.raises(ValueError, match="work budget must be a positive number"):
        get_method("colonel-reiss").fn(song, rng=np.random.default_rng(0), budget=0.0)


def test_needs_a_mix(song, rng):
    with pytest.raises(SongError, match="reference mix"):
        get_method("colonel-reiss").fn(Song("nomix", song.track_names, song.tracks, SR), rng=rng, steps=1)


def test_too_short_song_is_a_clear_error():
    rng = np.random.default_rng(3)
    tracks = [noise_track(rng, 1, 0.01)]
    song = Song("tiny", ("a.wav",), tracks, SR, np.repeat(tracks[0], 2, axis=0))
    with pytest.raises(SongError, match="too short"):
        get_method("colonel-reiss").fn(song, rng=rng, steps=2)


def test_fit_twin_free_mask_keeps_other_settings_exact(song, one_torch_thread):
    p_start = sum_params(song).normalized  # ratio exactly 1:1 and wet exactly 0 (at -1)
    free = np.zeros(CONSOLE_V1.size, dtype=bool)
    free[CONSOLE_V1.index("gain_db")] = True
    config = TwinFitConfig(steps=4, eval_every=2)
    fit = fit_twin(song.tracks, song.mix, SR, p_start, config, free=free)
    np.testing.assert_array_equal(fit.p[:, ~free], p_start[:, ~free])  # not even clipped to P_LIMIT
    assert fit.loss < fit.start_loss
    assert not np.array_equal(fit.p[:, free], p_start[:, free])


def test_eq_flat_weight_pulls_the_eq_gains_the_audio_does_not_decide_to_0_db(song, one_torch_thread):
    from mixinvert.twin.fit import EQ_FLAT_EPS, EQ_GAINS

    tracks = [song.tracks[0], song.tracks[1], np.zeros_like(song.tracks[2])]  # silent: its EQ changes nothing
    mix = Console(tracks, SR).render(sum_params(song).values)
    gains = [CONSOLE_V1.index(n) for n in EQ_GAINS]
    p_start = start_point(song)
    p_start[:, gains] = 0.4  # +4.8 dB on every band of every track
    free = np.zeros(CONSOLE_V1.size, dtype=bool)
    free[gains] = True
    fits = {w: fit_twin(tracks, mix, SR, p_start, TwinFitConfig(steps=30, eval_every=5,
                                                                eq_flat_weight=w), free=free)
            for w in (0.0, 0.01)}
    np.testing.assert_array_equal(fits[0.0].p[2, gains], p_start[2, gains])  # no gradient, no move
    assert np.abs(fits[0.01].p[2, gains]).max() < 0.1  # the penalty alone moves it to flat
    # the fitted loss is the distance plus the penalty
    penalty = 0.01 * (np.sqrt(p_start[:, gains] ** 2 + EQ_FLAT_EPS ** 2) - EQ_FLAT_EPS).sum()
    assert fits[0.01].start_loss == pytest.approx(fits[0.0].start_loss + penalty, rel=1e-5)
    with pytest.raises(ValueError, match="eq_flat_weight"):
        TwinFitConfig(eq_flat_weight=-1.0)


def test_fit_twin_takes_given_excerpts(song, one_torch_thread):
    from mixinvert.dsp.excerpts import Excerpt

    whole = [Excerpt(0, 0, song.num_samples)]
    fit = fit_twin(song.tracks, song.mix, SR, start_point(song), TwinFitConfig(steps=0), excerpts=whole)
    default = fit_twin(song.tracks, song.mix, SR, start_point(song), TwinFitConfig(steps=0, excerpt_seconds=0.5))
    assert fit.start_loss != default.start_loss  # scored on other audio


def test_reference_loss_equals_auraloss_and_its_gradient():
    import torch

    g = torch.Generator().manual_seed(0)
    reference = torch.randn(1, 2, 9000, generator=g)
    x = (0.5 * reference + 0.1 * torch.randn(1, 2, 9000, generator=g)).requires_grad_(True)
    expected = _mrstft_loss()(x, reference)
    (expected_grad,) = torch.autograd.grad(expected, x)
    got = ReferenceLoss(reference)(x)
    (got_grad,) = torch.autograd.grad(got, x)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.allclose(got_grad, expected_grad, rtol=1e-4, atol=1e-4 * expected_grad.abs().max().item())
    assert ReferenceLoss(reference)(reference).item() == pytest.approx(0.0, abs=1e-5)
