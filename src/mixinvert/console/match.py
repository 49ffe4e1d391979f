"""Least-squares gain and reverb-wet match: the closed-form part of fitting console v1.

Console v1 is linear in two places, so two of its settings per track can be fitted to a
reference mix exactly, by linear least squares, once the others are fixed:

- **reverb wet.** JUCE's reverb (pedalboard's ``Reverb``) adds its wet and dry paths, so a
  track's contribution with wet level ``w`` is ``(1 - w) D + w W``, where ``D = 2 P`` is the
  fully dry output (see :mod:`mixinvert.console.render`: the dry path is scaled by 2), ``P``
  the track after gain, EQ, compressor and pan, and ``W`` the reverb's output at wet 1, dry 0.
- **level.** Scaling a track's contribution by ``a`` is the same as raising both its
  ``gain_db`` and its ``comp_threshold_db`` by ``20 log10 a``: EQ, pan and reverb are linear,
  and the compressor compares its input's level with its threshold (scale-equivariant).

With ``alpha_k = a_k (1 - w_k)`` and ``beta_k = a_k w_k`` the mix ``sum_k alpha_k D_k +
beta_k W_k`` is linear in the 2 N unknowns, so the best level and wet of every track for the
other settings as they stand is a bounded linear least squares (``alpha, beta >= 0``) on the
waveforms: no search, one render of ``D`` and ``W`` per track. Gains, wet levels and
thresholds then map back exactly (``a = alpha + beta``, ``w = beta / a``), and the matched
mix is ``sum_k alpha_k D_k + beta_k W_k``, which is what :class:`~mixinvert.console.render.Console`
renders for the new settings (to float32 rounding of the compressor's level detector;
tested). Where a new gain or threshold leaves its range it is clipped, and a track whose
compressor (ratio above 1) got a clipped threshold is rendered again with it, so the
returned mix is always the render of the returned settings.

A ridge (``ridge`` times the mean of the normal matrix's diagonal) pulls the unknowns
towards the settings given, which keeps tracks that are nearly collinear (microphones of
one drum kit) from trading level against each other.

Why written here: this is a property of console v1's chain, not something a library does.
scipy's ``lsq_linear`` solves the bounded problem.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pedalboard as pb
from scipy.optimize import lsq_linear

from mixinvert.console.render import RENDER_BLOCK, ChannelStrip, Console
from mixinvert.console.schema import CONSOLE_V1, ParamSchema

#: Default ridge (share of the normal matrix's mean diagonal), chosen on the benchmark
#: corpora's validation splits (BENCHMARKS.md, "Gain and wet match").
RIDGE = 0.01
#: Parts (``D`` and ``W`` of every track) are kept in memory up to this many bytes; above,
#: the matched mix is rendered again in blocks (same result, one more render).
MAX_PART_BYTES = 1 << 30


@dataclass
class MatchResult:
    """What :func:`match_gain_wet` found.

    values : np.ndarray [shape=(n_tracks, n_params)], physical, the matched settings
    mix : np.ndarray [shape=(2, samples)], float32, the render of ``values``
    level_db : np.ndarray [shape=(n_tracks,)], the level change applied to each track
        (added to ``gain_db`` and ``comp_threshold_db`` before clipping)
    residual_db : dict, the waveform residual ``10 log10(|mix - reference|^2 / |reference|^2)``
        of the settings given (``"before"``) and matched (``"after"``)
    rerendered : tuple of int, tracks rendered again because a setting was clipped
    skipped : str or None, why nothing was changed (e.g. a silent reference mix)
    """

    values: np.ndarray
    mix: np.ndarray
    level_db: np.ndarray
    residual_db: dict[str, float] = field(default_factory=dict)
    rerendered: tuple[int, ...] = ()
    skipped: str | None = None


class _PartStrip:
    """One track's chain up to the pan, and its reverb at wet 1, dry 0 (stateful over blocks)."""

    def __init__(self, channels: int, values: np.ndarray, schema: ParamSchema) -> None:
        strip = ChannelStrip(channels, values, schema.names)  # the console's own chain and pan law
        self.board, self.gains = strip.board, strip.gains
        v = dict(zip(schema.names, (float(x) for x in values)))
        self.reverb = pb.Reverb(room_size=v["reverb_room_size"], damping=v["reverb_damping"],
                                wet_level=1.0, dry_level=0.0, width=1.0)

    def process(self, x: np.ndarray, sample_rate: int, first: bool, dry: np.ndarray, wet: np.ndarray) -> None:
        """The next block's dry part ``D`` into ``dry`` and wet part ``W`` into ``wet`` (both ``(2, n)``)."""
        y = self.board(np.ascontiguousarray(x, dtype=np.float32), sample_rate, reset=first) * self.gains
        wet[:] = self.reverb(y, sample_rate, reset=first)
        np.multiply(y, np.float32(2.0), out=dry)


def _ridge_nnls(g: np.ndarray, c: np.ndarray, x_start: np.ndarray, ridge: float) -> np.ndarray:
    """``argmin_{x >= 0} x.g.x - 2 c.x + ridge s |x - x_start|^2`` (``s``: the mean of
    ``g``'s diagonal), from the normal equations ``g``, ``c``."""
    scale = float(np.mean(np.diag(g)))
    reg = ridge * scale * np.eye(len(g))
    # a touch of diagonal loading keeps the Cholesky factor defined when two parts coincide
    g_reg = g + reg + 1e-10 * scale * np.eye(len(g))
    chol = np.linalg.cholesky(g_reg)
    rhs = np.linalg.solve(chol, c + reg @ x_start)
    return lsq_linear(chol.T, rhs, bounds=(0.0, np.inf), method="bvls").x


def _residual_db(err2: float, ref2: float) -> float:
    return float(10.0 * np.log10(max(err2, 1e-300) / ref2))


def match_gain_wet(
    tracks: Sequence[np.ndarray],
    sample_rate: int,
    values: np.ndarray,
    mix: np.ndarray,
    *,
    ridge: float = RIDGE,
    fit_wet: bool = True,
    schema: ParamSchema = CONSOLE_V1,
    workers: int | None = None,
    max_part_bytes: int = MAX_PART_BYTES,
) -> MatchResult:
    """Fit every track's level and reverb wet to ``mix`` by least squares (module doc).

    Parameters
    ----------
    tracks : sequence of np.ndarray [shape=(channels, samples)], channels 1 or 2
    sample_rate : int, Hz
    values : np.ndarray [shape=(n_tracks, n_params)], physical console v1 settings to start
        from; every setting but ``gain_db``, ``comp_threshold_db`` and ``reverb_wet`` is kept
    mix : np.ndarray [shape=(2, samples)], the reference mix
    ridge : float >= 0, pull towards ``values`` (share of the normal matrix's mean diagonal)
    fit_wet : bool, also fit the reverb wet levels (False: levels only, wet levels kept)
    workers : threads rendering the tracks (default: all cores)
    max_part_bytes : keep the tracks' parts in memory up to this size, else render again

    Returns
    -------
    MatchResult. A reference mix that is silent gives back ``values`` unchanged (and their
    render), with ``skipped`` saying why; so does a song whose tracks are all silent.
    """
    console = Console(tracks, sample_rate, schema=schema, workers=workers)
    values = console.validate(values)
    mix = np.asarray(mix)
    if mix.shape != (2, console.num_samples):
        raise ValueError(f"the reference mix must be (2, {console.num_samples}), got {mix.shape}")
    if not np.all(np.isfinite(mix)):
        raise ValueError("the reference mix holds NaN or infinite samples")
    if ridge < 0 or not np.isfinite(ridge):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge}")
    n = console.num_tracks
    samples = console.num_samples
    keep_parts = 2 * n * 2 * samples * 4 <= max_part_bytes
    # rows 0..n-1: every track's dry part D, rows n..2n-1: its wet part W
    parts = np.empty((2 * n, 2, samples), dtype=np.float32) if keep_parts else None
    buffer = None if keep_parts else np.empty((2 * n, 2, min(samples, RENDER_BLOCK)), dtype=np.float32)
    gram = np.zeros((2 * n, 2 * n))
    cross = np.zeros(2 * n)
    ref2 = 0.0
    strips = [_PartStrip(t.shape[0], v, schema) for t, v in zip(console.tracks, values)]
    n_workers = max(1, min(console.workers, n))
    pool = ThreadPoolExecutor(max_workers=n_workers) if n_workers > 1 else None
    try:
        for a in range(0, samples, RENDER_BLOCK):
            b = min(samples, a + RENDER_BLOCK)
            block = parts[:, :, a:b] if parts is not None else buffer[:, :, : b - a]

            def _one(i: int, a: int = a, b: int = b, block: np.ndarray = block) -> None:
                strips[i].process(console.tracks[i][:, a:b], sample_rate, a == 0, block[i], block[n + i])

            list(pool.map(_one, range(n)) if pool is not None else map(_one, range(n)))
            # normal equations per block in float32 (BLAS), summed over blocks in float64
            for c in range(2):
                rows = block[:, c]
                target = np.ascontiguousarray(mix[c, a:b], dtype=np.float32)
                gram += (rows @ rows.T).astype(np.float64)
                cross += (rows @ target).astype(np.float64)
                ref2 += float(np.dot(target.astype(np.float64), target.astype(np.float64)))
    finally:
        if pool is not None:
            pool.shutdown()

    gi, ti, wi = schema.index("gain_db"), schema.index("comp_threshold_db"), schema.index("reverb_wet")
    w0 = values[:, wi]
    x0 = np.concatenate([1.0 - w0, w0])
    # the given settings' residual: |m|^2 - 2 x0.c + x0.G.x0
    before = ref2 - 2.0 * x0 @ cross + x0 @ gram @ x0

    def _unchanged(why: str) -> MatchResult:
        rendered = _combine(parts, np.ones(n), w0) if parts is not None else console.render(values)
        residual = {} if ref2 == 0.0 else {"before": _residual_db(before, ref2), "after": _residual_db(before, ref2)}
        return MatchResult(values.copy(), rendered, np.zeros(n), residual, (), why)

    if ref2 == 0.0:
        return _unchanged("the reference mix is silent")
    live = np.diag(gram)[:n] > 0.0  # tracks that make a sound (D_k != 0)
    if not live.any():
        return _unchanged("every track is silent after the console")
    if fit_wet:  # unknowns (alpha, beta) of the live tracks
        basis = np.eye(2 * n)[:, np.concatenate([live, live])]
    else:  # one unknown per live track, its level a: (alpha, beta) = a (1 - w0, w0)
        basis = np.concatenate([np.diag(1.0 - w0), np.diag(w0)])[:, live]
    x_start = x0[np.concatenate([live, live])] if fit_wet else np.ones(int(live.sum()))  # the settings given
    x = np.array(x0)
    x[np.concatenate([live, live])] = 0.0
    x += basis @ _ridge_nnls(basis.T @ gram @ basis, basis.T @ cross, x_start, ridge)
    alpha, beta = x[:n], x[n:]
    level = alpha + beta
    wet = np.where(level > 0.0, beta / np.where(level > 0.0, level, 1.0), w0) if fit_wet else w0.copy()
    level_db = np.where(level > 0.0, 20.0 * np.log10(np.where(level > 0.0, level, 1.0)), -np.inf)
    level_db[~live] = 0.0
    wet[~live] = w0[~live]

    new = values.copy()
    gain = values[:, gi] + level_db
    new[:, gi] = np.clip(gain, schema.lo[gi], schema.hi[gi])
    applied_db = new[:, gi] - values[:, gi]  # what the gain could take
    threshold = values[:, ti] + applied_db
    new[:, ti] = np.clip(threshold, schema.lo[ti], schema.hi[ti])
    new[:, wi] = np.clip(wet, schema.lo[wi], schema.hi[wi])
    # a track whose threshold was clipped compresses differently (unless its ratio is 1, where
    # the threshold does nothing): render it again
    clipped = (np.abs(new[:, ti] - threshold) > 1e-9) & (values[:, schema.index("comp_ratio")] > 1.0) & live
    redo = tuple(int(k) for k in np.flatnonzero(clipped))
    scales = 10.0 ** (applied_db / 20.0)
    if parts is not None:
        mixed = _combine(parts, scales, new[:, wi], skip=redo)
        for k in redo:
            mixed += console.render_track(k, new[k])
    else:
        mixed = console.render(new)
    # the matched residual, from the normal equations (the scales and wet levels applied)
    x_new = np.concatenate([scales * (1.0 - new[:, wi]), scales * new[:, wi]])
    after = ref2 - 2.0 * x_new @ cross + x_new @ gram @ x_new
    if redo:  # the clipped tracks' parts no longer hold: measure on the mix
        err = mixed.astype(np.float64) - mix
        after = float(np.sum(err * err))
    residual = {"before": _residual_db(before, ref2), "after": _residual_db(after, ref2)}
    return MatchResult(new, mixed.astype(np.float32), applied_db, residual, redo)


def _combine(parts: np.ndarray, scales: np.ndarray, wet: np.ndarray, skip: Sequence[int] = ()) -> np.ndarray:
    """``sum_k scales_k ((1 - wet_k) D_k + wet_k W_k)`` over tracks not in ``skip``."""
    n = parts.shape[0] // 2
    coef = np.concatenate([scales * (1.0 - wet), scales * wet])
    for k in skip:
        coef[k] = coef[n + k] = 0.0
    flat = parts.reshape(2 * n, -1)
    return (coef.astype(np.float32) @ flat).reshape(parts.shape[1:])


#: The v2 match reads at most this many seconds of a song (its middle): enough to set
#: levels, and its parts stay small in memory whatever the song's length.
V2_MATCH_SECONDS = 60.0


def match_fader_send_v2(
    tracks: Sequence[np.ndarray],
    sample_rate: int,
    values: np.ndarray,
    shared: np.ndarray,
    mix: np.ndarray,
    *,
    ridge: float = RIDGE,
    schema: ParamSchema | None = None,
    max_seconds: float = V2_MATCH_SECONDS,
) -> tuple[np.ndarray, dict[str, float]]:
    """Console v2's counterpart of :func:`match_gain_wet`: every track's fader and reverb
    send fitted to ``mix`` by least squares, the other settings kept.

    On console v2 the fader follows the track's compressor and the send is taken after the
    fader and the pan, and the reverb bus (JUCE's reverb, filters, a gain) is linear, so
    before the master chain the mix is ``sum_k alpha_k D_k + beta_k W_k``: ``D_k`` the
    track's strip output, ``W_k`` the bus's output for its send alone, ``alpha_k`` the
    fader's scale and ``beta_k`` the fader's times the send's. The master EQ and gain are
    linear too and are applied to both parts; the master compressor and limiter are not,
    so where they act the match is the best linear one, not exact. The bounded least
    squares (``alpha, beta >= 0``, a ``ridge`` towards the settings given) runs on the
    middle ``max_seconds`` of the song; faders and sends map back as
    ``fader += 20 log10 alpha``, ``send += 20 log10 (beta / alpha)`` (clipped to their
    ranges; a send whose ``beta`` is 0 is closed).

    Returns the matched ``values`` and the waveform residual (``"before"``, ``"after"``,
    dB over the reference's energy, on the part read, master compressor and limiter left
    out); a silent reference or song gives ``values`` back and an empty dict.
    """
    from mixinvert.console.render_v2 import MASTER_EQ_SECTIONS, filter_processors, render_strip, reverb_bus
    from mixinvert.console.schema import CONSOLE_V2

    schema = schema or CONSOLE_V2
    shared_schema = schema.shared
    values = schema.validate(np.asarray(values, dtype=np.float64))
    sv = dict(zip(shared_schema.names, (float(t) for t in shared_schema.validate(np.asarray(shared, np.float64)))))
    n, samples = len(tracks), int(tracks[0].shape[-1])
    mix = np.asarray(mix, dtype=np.float64)
    if mix.shape != (2, samples):
        raise ValueError(f"the reference mix must be (2, {samples}), got {mix.shape}")
    length = min(samples, int(max_seconds * sample_rate))
    a = (samples - length) // 2
    window = slice(a, a + length)
    bus = reverb_bus(sv, shared_schema)
    master = pb.Pedalboard([*filter_processors(sv, MASTER_EQ_SECTIONS, shared_schema),
                            pb.Gain(gain_db=sv["master_gain_db"])])
    parts = np.zeros((2 * n, 2, length))
    has_send = np.zeros(n, dtype=bool)
    for k, (x, v) in enumerate(zip(tracks, values)):
        dry, send = render_strip(x, sample_rate, v, schema)
        parts[k] = master(dry, sample_rate)[:, window]
        if send is not None:
            has_send[k] = True
            parts[n + k] = master(bus(send, sample_rate), sample_rate)[:, window]
    flat = parts.reshape(2 * n, -1)
    target = mix[:, window].reshape(-1)
    gram, cross, ref2 = flat @ flat.T, flat @ target, float(target @ target)
    live = np.concatenate([np.diag(gram)[:n] > 0.0, has_send & (np.diag(gram)[n:] > 0.0)])
    x0 = np.concatenate([np.ones(n), has_send.astype(np.float64)])
    before = ref2 - 2.0 * x0 @ cross + x0 @ gram @ x0
    if ref2 == 0.0 or not live[:n].any():
        return values, {}
    x = x0.copy()
    x[live] = _ridge_nnls(gram[np.ix_(live, live)], cross[live], x0[live], ridge)
    fi, si = schema.index("fader_db"), schema.index("reverb_send_db")
    alpha, beta = x[:n], x[n:]
    new = values.copy()
    ok = live[:n] & (alpha > 0.0)
    new[ok, fi] = np.clip(values[ok, fi] + 20.0 * np.log10(alpha[ok]), schema.lo[fi], schema.hi[fi])
    sends = ok & has_send
    with np.errstate(divide="ignore"):
        send_db = values[:, si] + 20.0 * np.log10(np.where(sends, beta, 1.0) / np.where(ok, alpha, 1.0))
    new[sends, si] = np.clip(send_db[sends], schema.lo[si], schema.hi[si])
    # the residual of the settings as mapped back (clipping included), from the normal equations
    scale = 10.0 ** ((new[:, fi] - values[:, fi]) / 20.0)
    x_new = np.concatenate([scale, scale * np.where(has_send, 10.0 ** ((new[:, si] - values[:, si]) / 20.0), 0.0)])
    after = ref2 - 2.0 * x_new @ cross + x_new @ gram @ x_new
    return new, {"before": _residual_db(before, ref2), "after": _residual_db(after, ref2)}
