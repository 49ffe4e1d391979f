"""How well the audio pins down each recovered setting: intervals and "undetermined" flags.

Two complementary answers, both written into params.json beside the values:

- **Sensitivity intervals** (:func:`sensitivity_intervals`): for every free setting, the
  real console's excerpt distance is measured a small step ``h`` either side of the
  result (normalized units), a parabola is fitted through the three points, and the
  interval is where it stays within ``tolerance x`` the result's own distance. A setting
  the mix depends on strongly gets a narrow interval; one it hardly depends on, a wide
  one. It is a local (Laplace-style) measure: two settings that trade off against each
  other (e.g. a gain and a broad EQ boost) each look better determined than the pair is.
- **Rules** (:func:`undetermined_settings`) for settings the audio cannot determine at all,
  with the reason in words: a silent track; a compressor whose threshold the track never
  reaches, or whose ratio is about 1:1; an EQ band that is flat, or where the track has
  almost no energy; reverb settings at (almost) zero wet. A sensitivity interval that
  spans nearly the whole range is flagged too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pedalboard as pb

from mixinvert.console.render import gain_eq_processors
from mixinvert.console.schema import CONSOLE_V1, ParamSchema
from mixinvert.methods.refine.objective import ExcerptObjective

#: Below these, a setting's partners cannot be heard.
FLAT_EQ_DB = 0.5
DRY_REVERB_WET = 0.02
NEUTRAL_RATIO = 1.1
#: A band whose share of the track's energy is below this (-40 dB) is "no energy".
EMPTY_BAND_SHARE = 1e-4
#: An interval wider than this fraction of the normalized range is "undetermined".
WIDE_FRACTION = 0.9


@dataclass(frozen=True)
class Intervals:
    """Normalized intervals ``[low, high]`` ``(n_tracks, 16)`` (NaN where not measured)."""

    low: np.ndarray
    high: np.ndarray
    tolerance: float


def parabola_interval(l_minus: float, l0: float, l_plus: float, h: float, tolerance: float) -> tuple[float, float]:
    """Offsets ``(d_low, d_high)`` around 0 where ``l(d) - l0 <= tolerance`` for the parabola
    through ``(-h, l_minus), (0, l0), (h, l_plus)``; infinite where it never rises that much."""
    b = (l_plus - l_minus) / (2.0 * h)
    a = (l_plus + l_minus - 2.0 * l0) / (2.0 * h * h)
    if a > 1e-12:
        root = np.sqrt(b * b + 4.0 * a * tolerance)
        return float((-b - root) / (2.0 * a)), float((-b + root) / (2.0 * a))
    # flat or concave: only the slope can bound it, on its rising side
    if abs(b) < 1e-12:
        return -np.inf, np.inf
    reach = tolerance / abs(b)
    return (-np.inf, reach) if b > 0 else (-reach, np.inf)


def sensitivity_intervals(
    objective: ExcerptObjective,
    p: np.ndarray,
    free: np.ndarray,
    *,
    step: float = 0.05,
    tolerance: float = 0.05,
) -> Intervals:
    """Intervals for every free setting of every track (see the module doc).

    ``objective`` must hold ``p`` (denormalized). Each track is measured on the excerpt
    where it is loudest, and ``tolerance`` is relative to the distance there. Costs two
    single-excerpt evaluations per free setting, run on the objective's thread pool.
    """
    schema = objective.schema
    p = np.asarray(p, dtype=np.float64)
    free = np.broadcast_to(np.asarray(free, dtype=bool), p.shape)
    low = np.full(p.shape, np.nan)
    high = np.full(p.shape, np.nan)
    for track in range(p.shape[0]):
        dims = np.flatnonzero(free[track])
        if dims.size == 0:
            continue
        where_e = [objective.loudest_excerpt(track)]
        l0 = objective.loss_on(where_e)
        tol = max(tolerance * l0, 1e-6)
        # three points per setting: a centre (the value, moved inward at the range's edges
        # so that both neighbours stay in range) and a step either side
        centres = np.clip(p[track, dims], -1.0 + step, 1.0 - step)
        rows, where = [], []
        for k, j in enumerate(dims):
            offsets = (-step, 0.0, step) if centres[k] != p[track, j] else (-step, step)
            for off in offsets:
                row = p[track].copy()
                row[j] = centres[k] + off
                rows.append(row)
                where.append((k, off))
        losses = objective.track_losses(track, [schema.denormalize(r) for r in rows], where_e)
        at = {key: loss for key, loss in zip(where, losses)}
        for k, j in enumerate(dims):
            l_centre = at.get((k, 0.0), l0)
            d_lo, d_hi = parabola_interval(at[(k, -step)], l_centre, at[(k, step)], step, tol)
            # the interval always contains the value itself
            low[track, j] = min(max(-1.0, centres[k] + d_lo), p[track, j])
            high[track, j] = max(min(1.0, centres[k] + d_hi), p[track, j])
    return Intervals(low, high, tolerance)


def _band_share(power: np.ndarray, freqs: np.ndarray, lo_hz: float, hi_hz: float) -> float:
    total = power.sum()
    if total <= 0:
        return 0.0
    return float(power[(freqs >= lo_hz) & (freqs < hi_hz)].sum() / total)


def pre_compressor_peak_db(
    x: np.ndarray, sample_rate: int, values: np.ndarray, *, schema: ParamSchema = CONSOLE_V1
) -> float:
    """The peak level (dBFS) the compressor sees: track ``x`` after gain and EQ at ``values``."""
    board = pb.Pedalboard(gain_eq_processors(dict(zip(schema.names, (float(a) for a in values)))))
    pre = board(np.ascontiguousarray(x, dtype=np.float32), sample_rate, reset=True)
    return 20.0 * np.log10(max(float(np.max(np.abs(pre))), 1e-12))


def undetermined_settings(
    tracks: Sequence[np.ndarray],
    sample_rate: int,
    values: np.ndarray,
    intervals: Intervals | None = None,
    *,
    schema: ParamSchema = CONSOLE_V1,
) -> list[dict[str, str]]:
    """Per track, ``{setting name: why the audio does not determine it}``.

    ``values``: physical ``(n_tracks, 16)``. Rules first (the module doc), then settings
    whose sensitivity interval spans more than :data:`WIDE_FRACTION` of the range.
    """
    out: list[dict[str, str]] = []
    for i, x in enumerate(tracks):
        v = dict(zip(schema.names, (float(a) for a in values[i])))
        flags: dict[str, str] = {}
        x = np.asarray(x, dtype=np.float32)
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        if peak == 0.0:
            out.append({name: "the track is silent" for name in schema.names})
            continue
        level_db = pre_compressor_peak_db(x, sample_rate, values[i], schema=schema)
        if v["comp_ratio"] < NEUTRAL_RATIO:
            why = f"the compressor's ratio is about 1:1 ({v['comp_ratio']:.2f}:1), so it barely acts"
            for name in ("comp_threshold_db", "comp_attack_ms", "comp_release_ms"):
                flags[name] = why
        elif level_db < v["comp_threshold_db"]:
            why = (f"the threshold ({v['comp_threshold_db']:.1f} dB) is never reached: the track peaks at "
                   f"{level_db:.1f} dB after gain and EQ")
            for name in ("comp_ratio", "comp_attack_ms", "comp_release_ms"):
                flags[name] = why
            flags["comp_threshold_db"] = f"any threshold above {level_db:.1f} dB (the track's peak) sounds the same"
        # the track's long-term spectrum, for the EQ bands
        mono = x.mean(axis=0).astype(np.float64)
        power = np.abs(np.fft.rfft(mono)) ** 2
        freqs = np.fft.rfftfreq(mono.size, 1.0 / sample_rate)
        nyquist = sample_rate / 2.0
        bands = (
            ("low shelf", "eq_low_shelf_gain_db", ("eq_low_shelf_cutoff_hz",), 0.0, v["eq_low_shelf_cutoff_hz"] * 2.0),
            ("peak", "eq_peak_gain_db", ("eq_peak_cutoff_hz", "eq_peak_q"),
             v["eq_peak_cutoff_hz"] / 2.0, v["eq_peak_cutoff_hz"] * 2.0),
            ("high shelf", "eq_high_shelf_gain_db", ("eq_high_shelf_cutoff_hz",),
             v["eq_high_shelf_cutoff_hz"] / 2.0, nyquist + 1.0),
        )
        for label, gain_name, partners, lo_hz, hi_hz in bands:
            share = _band_share(power, freqs, lo_hz, hi_hz)
            if share < EMPTY_BAND_SHARE:
                why = (f"the track has almost no energy where the {label} acts ({lo_hz:.0f}-{min(hi_hz, nyquist):.0f} Hz: "
                       f"{10 * np.log10(max(share, 1e-30)):.0f} dB of its energy)")
                for name in (gain_name, *partners):
                    flags.setdefault(name, why)
            elif abs(v[gain_name]) < FLAT_EQ_DB:
                why = f"the {label} is flat ({v[gain_name]:+.1f} dB), so its shape cannot be heard"
                for name in partners:
                    flags.setdefault(name, why)
        if v["reverb_wet"] < DRY_REVERB_WET:
            why = f"the reverb is almost dry ({100 * v['reverb_wet']:.1f} % wet)"
            for name in ("reverb_room_size", "reverb_damping"):
                flags.setdefault(name, why)
        out.append(flags)
    return out if intervals is None else with_wide_intervals(out, intervals, schema=schema)


def with_wide_intervals(
    rules: Sequence[dict[str, str]], intervals: Intervals, *, schema: ParamSchema = CONSOLE_V1
) -> list[dict[str, str]]:
    """The rules' flags plus the settings whose interval spans more than
    :data:`WIDE_FRACTION` of the range (new dicts; ``rules`` is left as it is)."""
    out = []
    for i, flags in enumerate(rules):
        flags = dict(flags)
        widths = intervals.high[i] - intervals.low[i]
        for j, name in enumerate(schema.names):
            if np.isfinite(widths[j]) and widths[j] >= 2.0 * WIDE_FRACTION:
                flags.setdefault(name, "the mix barely changes across this setting's range")
        out.append(flags)
    return out


def sensitivity_evaluations(p: np.ndarray, free: np.ndarray, *, step: float = 0.05) -> int:
    """The single-excerpt evaluations :func:`sensitivity_intervals` makes for ``free``
    settings at ``p``: two per setting, three for one within ``step`` of its range's edge
    (its centre moved inward)."""
    p = np.asarray(p, dtype=np.float64)
    free = np.broadcast_to(np.asarray(free, dtype=bool), p.shape)
    at_edge = np.clip(p, -1.0 + step, 1.0 - step) != p
    return int((free * np.where(at_edge, 3, 2)).sum())


def uncertainty_evaluations(p: np.ndarray, free: np.ndarray, rules: Sequence[dict[str, str]], *,
                            step: float = 0.05, schema: ParamSchema = CONSOLE_V1) -> int:
    """The single-excerpt evaluations :func:`measure_uncertainty` makes at ``p`` with the
    rules' flags ``rules`` (what it costs, before it runs)."""
    whole_range = undetermined_everywhere(rules, schema.denormalize(p), schema=schema)
    free = np.broadcast_to(np.asarray(free, dtype=bool), np.shape(p))
    return sensitivity_evaluations(p, free & ~whole_range, step=step)


def measure_uncertainty(
    objective: ExcerptObjective,
    p: np.ndarray,
    free: np.ndarray,
    tracks: Sequence[np.ndarray],
    sample_rate: int,
    *,
    step: float = 0.05,
    tolerance: float = 0.05,
    rules: Sequence[dict[str, str]] | None = None,
) -> tuple[Intervals, list[dict[str, str]]]:
    """Intervals and flags for settings ``p`` (normalized): the rules first, then the
    sensitivity of the settings they leave open.

    A setting a rule finds undetermined over its whole range (a dry reverb's room, a flat
    band's cutoff, the compressor's timing at 1:1) gets the whole range as its interval
    without being measured, which saves up to half of the evaluations. The exception is a
    threshold the track never reaches: only the thresholds above its peak sound alike, so
    it is measured like any other setting. ``rules``: :func:`undetermined_settings` at
    ``p`` without intervals, when the caller has them already.
    """
    schema = objective.schema
    values = schema.denormalize(p)
    if rules is None:
        rules = undetermined_settings(tracks, sample_rate, values, schema=schema)
    whole_range = undetermined_everywhere(rules, values, schema=schema)
    free = np.broadcast_to(np.asarray(free, dtype=bool), np.shape(p))
    intervals = sensitivity_intervals(objective, p, free & ~whole_range, step=step, tolerance=tolerance)
    skipped = free & whole_range
    intervals.low[skipped], intervals.high[skipped] = -1.0, 1.0
    return intervals, with_wide_intervals(rules, intervals, schema=schema)


def undetermined_everywhere(
    rules: Sequence[dict[str, str]], values: np.ndarray, *, schema: ParamSchema = CONSOLE_V1
) -> np.ndarray:
    """Boolean ``(n_tracks, 16)``: of the settings ``rules`` (:func:`undetermined_settings`
    at physical ``values``) flag, those undetermined over their whole range: every one but a
    threshold the track never reaches (thresholds below its peak still sound different)."""
    out = np.zeros(np.shape(values), dtype=bool)
    ratio = schema.index("comp_ratio")
    for i, flags in enumerate(rules):
        for name in flags:
            out[i, schema.index(name)] = name != "comp_threshold_db" or values[i, ratio] < NEUTRAL_RATIO
    return out


def uncertainty_rows(
    values: np.ndarray,
    intervals: Intervals,
    flags: Sequence[dict[str, str]],
    *,
    schema: ParamSchema = CONSOLE_V1,
) -> list[dict]:
    """Per track, the params.json entries: ``{"uncertainty": {name: {"low", "high",
    "std_normalized"}}, "undetermined": {name: why}}`` (physical units for low and high)."""
    rows = []
    p = schema.normalize(values)
    for i in range(values.shape[0]):
        unc = {}
        for j, name in enumerate(schema.names):
            lo, hi = intervals.low[i, j], intervals.high[i, j]
            if not (np.isfinite(lo) and np.isfinite(hi)):
                continue
            bounds = np.array([p[i].copy(), p[i].copy()])
            bounds[0, j], bounds[1, j] = lo, hi
            phys = schema.denormalize(bounds)[:, j]
            unc[name] = {"low": float(phys[0]), "high": float(phys[1]), "std_normalized": float((hi - lo) / 2.0)}
        rows.append({"uncertainty": unc, "undetermined": dict(flags[i])})
    return rows
