"""Sensitivity intervals and the rules for settings the audio does not determine."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
from mixinvert.dsp.excerpts import Excerpt
from mixinvert.methods.refine.objective import ExcerptObjective
from mixinvert.methods.refine.uncertainty import (
    Intervals,
    measure_uncertainty,
    parabola_interval,
    sensitivity_intervals,
    uncertainty_evaluations,
    uncertainty_rows,
    undetermined_settings,
)
from tests.conftest import SR, noise_track

S = CONSOLE_V1


def _row(**kw):
    return S.from_dict({**NEUTRAL_V1, **kw})


def test_parabola_interval_cases():
    # l = d^2: within tolerance 0.04 for |d| <= 0.2
    lo, hi = parabola_interval(0.01, 0.0, 0.01, 0.1, 0.04)
    assert (lo, hi) == pytest.approx((-0.2, 0.2))
    # l = d^2 + d: asymmetric, roots of d^2 + d = 0.04
    h = 0.1
    lo, hi = parabola_interval(h * h - h, 0.0, h * h + h, h, 0.04)
    r = math.sqrt(1 + 0.16)
    assert (lo, hi) == pytest.approx(((-1 - r) / 2, (-1 + r) / 2))
    assert parabola_interval(0.0, 0.0, 0.0, 0.1, 0.04) == (-np.inf, np.inf)  # flat
    lo, hi = parabola_interval(-0.1, 0.0, 0.1, 0.1, 0.04)  # a pure slope of 1
    assert lo == -np.inf and hi == pytest.approx(0.04)
    lo, hi = parabola_interval(0.1, 0.0, -0.1, 0.1, 0.04)  # falling to the right
    assert lo == pytest.approx(-0.04) and hi == np.inf


@pytest.fixture(scope="module")
def fitted():
    """Two tracks at their true settings: a loud one and one 30 dB down, both dry."""
    rng = np.random.default_rng(5)
    tracks = [noise_track(rng, 1, 2.0), noise_track(rng, 1, 2.0)]
    values = np.stack([_row(gain_db=0.0, pan=-0.3), _row(gain_db=-24.0, pan=0.4)])
    # a slightly wrong loud track, so that the distance is not exactly 0
    start = values.copy()
    start[0, S.index("gain_db")] = 0.3
    mix = Console(tracks, SR).render(values)
    obj = ExcerptObjective(tracks, mix, SR, [Excerpt(0, 0, 2 * SR)], start, workers=2)
    return tracks, obj, start


def test_sensitivity_intervals_track_what_the_mix_depends_on(fitted):
    _, obj, start = fitted
    p = S.normalize(start)
    free = np.ones_like(p, dtype=bool)
    free[:, S.index("eq_peak_q")] = False
    iv = sensitivity_intervals(obj, p, free, step=0.05, tolerance=0.05)
    width = iv.high - iv.low
    g, wet, room = S.index("gain_db"), S.index("reverb_wet"), S.index("reverb_room_size")
    assert np.isnan(iv.low[:, S.index("eq_peak_q")]).all()  # not free: not measured
    assert (iv.low[free] <= p[free]).all() and (iv.high[free] >= p[free]).all()
    assert (iv.low[free] >= -1).all() and (iv.high[free] <= 1).all()
    # the loud track's gain is pinned far better than the quiet one's
    assert width[0, g] < 0.2 and width[0, g] < width[1, g]
    # reverb room size at zero wet changes nothing: the whole range
    assert width[0, room] == pytest.approx(2.0)
    # edges: wet sits at -1 (dry) and is still measured (stepped inward)
    assert iv.low[0, wet] == -1.0 and iv.high[0, wet] < 1.0


def test_measure_uncertainty_skips_what_the_rules_settle(fitted):
    tracks, obj, start = fitted
    p = S.normalize(start)
    free = np.ones_like(p, dtype=bool)
    before = obj.evaluations
    iv, flags = measure_uncertainty(obj, p, free, tracks, SR, step=0.05, tolerance=0.05)
    # both tracks are dry, with the compressor at 1:1 and the EQ flat: reverb room and
    # damping, the compressor's threshold and timing, and the EQ cutoffs and Q are not
    # measured (the whole range); the other 7 (gain, the three EQ gains, ratio, pan, wet)
    # are, 2 or 3 evaluations each
    room, threshold, g = S.index("reverb_room_size"), S.index("comp_threshold_db"), S.index("gain_db")
    for i in range(2):
        assert "reverb_room_size" in flags[i] and "comp_threshold_db" in flags[i]
        assert (iv.low[i, room], iv.high[i, room]) == (-1.0, 1.0)
        assert (iv.low[i, threshold], iv.high[i, threshold]) == (-1.0, 1.0)
    assert 2 * 7 * 2 <= obj.evaluations - before <= 2 * 7 * 3  # the objective's own count
    # what the refinement charges for it is known before it runs
    rules = undetermined_settings(tracks, SR, S.denormalize(p))
    assert uncertainty_evaluations(p, free, rules) == obj.evaluations - before
    # what is measured matches a plain sensitivity measurement
    plain = sensitivity_intervals(obj, p, free, step=0.05, tolerance=0.05)
    assert iv.low[:, g] == pytest.approx(plain.low[:, g]) and iv.high[:, g] == pytest.approx(plain.high[:, g])


def test_undetermined_rules():
    rng = np.random.default_rng(1)
    sine = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(SR) / SR)).astype(np.float32)[None]
    noise = noise_track(rng, 1, 1.0, level=0.3)
    silent = np.zeros((1, SR), dtype=np.float32)
    values = np.stack([
        _row(comp_threshold_db=-3.0, comp_ratio=4.0, eq_high_shelf_gain_db=6.0, eq_high_shelf_cutoff_hz=10000.0),
        _row(comp_threshold_db=-40.0, comp_ratio=4.0, reverb_wet=0.3, eq_peak_gain_db=0.2),
        _row(),
    ])
    flags = undetermined_settings([sine, noise, silent], SR, values)
    # the sine peaks at -6 dB: a -3 dB threshold is never reached
    assert "never reached" in flags[0]["comp_ratio"] and "comp_attack_ms" in flags[0]
    assert "-6.0 dB" in flags[0]["comp_threshold_db"]
    # no energy above 5 kHz: the high shelf is undetermined
    assert "no energy" in flags[0]["eq_high_shelf_gain_db"] and "eq_high_shelf_cutoff_hz" in flags[0]
    # dry reverb: room and damping
    assert "dry" in flags[0]["reverb_room_size"] and "reverb_damping" in flags[0]
    # noise through a -40 dB threshold: the compressor acts; wet reverb: its settings count
    assert not any(k.startswith("comp_") for k in flags[1])
    assert "reverb_room_size" not in flags[1]
    assert "flat" in flags[1]["eq_peak_cutoff_hz"] and "eq_peak_q" in flags[1]
    assert "eq_peak_gain_db" not in flags[1]  # a flat band's gain is itself determined
    assert set(flags[2]) == set(S.names) and "silent" in flags[2]["gain_db"]
    # ratio 1:1 (neutral): the threshold and times do nothing
    neutral = undetermined_settings([noise], SR, np.stack([_row()]))
    assert "1:1" in neutral[0]["comp_threshold_db"]


def test_wide_intervals_are_flagged_and_rows_are_physical():
    rng = np.random.default_rng(2)
    noise = noise_track(rng, 1, 1.0, level=0.3)
    values = np.stack([_row(gain_db=-6.0)])
    p = S.normalize(values)
    low, high = p.copy(), p.copy()
    g, pan = S.index("gain_db"), S.index("pan")
    low[0, g], high[0, g] = p[0, g] - 0.1, p[0, g] + 0.1
    low[0, pan], high[0, pan] = -1.0, 1.0
    iv = Intervals(low, high, 0.05)
    flags = undetermined_settings([noise], SR, values, iv)
    assert "barely changes" in flags[0]["pan"] and "gain_db" not in flags[0]
    rows = uncertainty_rows(values, iv, flags)
    gain = rows[0]["uncertainty"]["gain_db"]
    assert gain["low"] == pytest.approx(-6.0 - 0.1 * 18.0) and gain["high"] == pytest.approx(-6.0 + 0.1 * 18.0)
    assert gain["std_normalized"] == pytest.approx(0.1)
    assert rows[0]["uncertainty"]["pan"] == {"low": -1.0, "high": 1.0, "std_normalized": 1.0}
    assert rows[0]["undetermined"] == flags[0]
