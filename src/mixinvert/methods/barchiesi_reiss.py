"""``barchiesi-reiss``: per-song least squares, then console v1 settings fitted to the result.

After Barchiesi & Reiss (JAES 2010, "Reverse engineering of a mix"), summarised in EAMI
section 2: every track reaches each mix channel through a linear filter (gain, pan and EQ
together), with dynamic range compression as a time-varying gain per track. Here:

1. **Filters**, frame-wise: on a short-time Fourier transform (sqrt-Hann, 4096 samples,
   50 % overlap) the mix channel is ``M_c(f, t) = sum_k H_kc(f) X_kc(f, t)``; for every
   frequency bin the ``H_kc(f)`` of all tracks are solved jointly by least squares over
   frames (ridge-regularized relative to each track's energy in the bin). ``X_kc`` is a
   mono track, or channel ``c`` of a stereo track (the console never crosses channels).
   Normal equations are accumulated frame block by frame block, so memory stays small and
   a 3-minute, 16-track song takes seconds.
2. **Compression** as a gain envelope: with the filters fixed, every frame's per-track
   gains ``g_k(t)`` are solved by least squares (pulled towards 1 where a track is quiet),
   then the filters are solved again on the gain-weighted tracks.
3. **Direct rendering**: ``sum_k H_kc g_k X_kc``, overlap-added: the method's mix
   (``mix.wav``, ``"mix_wav": "direct FIR rendering"``).
4. **Console v1 settings**, where v1 can express them: pan from the left/right energy of
   the filters, gain and the three EQ sections fitted (weighted least squares, on a
   log-frequency grid, weighted by where the track has energy) to the filters' magnitude,
   compressor threshold and ratio fitted to the gain envelope with JUCE's envelope
   detector, attack and release picked from a grid. Reverb is not part of the model
   (the paper's method has none): ``reverb_wet`` is 0. The console rendering of those
   settings is kept too (``mix_console.wav``).
5. **Console v2 settings** (``console="v2"``): the same analysis mapped to v2's strip:
   the fader, the high-pass and every EQ band fitted to the filters' magnitude, the
   compressor to the gain envelope, and each track's time offset and polarity from
   GCC-PHAT against the mix (:mod:`mixinvert.dsp.alignment`) where its peak is sharp and
   does not drift over the song; the reverb bus and the master chain stay neutral.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
from scipy.optimize import least_squares

from mixinvert.console.eq import eq_response_db, v2_sections
from mixinvert.console.mixing import render_mix
from mixinvert.console.params_io import MixParams
from mixinvert.console.render import gain_eq_processors
from mixinvert.console.render_v2 import for_mono_mix
from mixinvert.console.schema import CONSOLE_V1, CONSOLE_V2, NEUTRAL_V1, ParamSchema, get_schema
from mixinvert.data.song import Song, SongError
from mixinvert.dsp.alignment import Alignment, estimate_alignment
from mixinvert.methods.base import Estimate, register
from mixinvert.twin.ballistics import peak_envelope_numpy, time_constant

N_FFT = 4096
HOP = N_FFT // 2
#: Frames per block when accumulating normal equations (bounds memory).
BLOCK_FRAMES = 256
#: Most memory for the tracks' STFT frames kept between passes (1.5 GB: a 3-minute song of
#: 16 stereo tracks); longer songs recompute them per pass.
CACHE_BYTES = 1536 * 2**20
#: The filters are solved on every FILTER_FRAME_STRIDE-th frame (non-overlapping frames at
#: 2): thousands of frames per bin for at most 16 unknowns; half the work.
FILTER_FRAME_STRIDE = 2
#: Ridge weight relative to a track's mean energy in a bin (filters) or a frame (gains).
FILTER_RIDGE = 1e-3
GAIN_RIDGE = 1e-2
#: Frames where a track is this far below its loudest frame are "quiet" (gain pulled to 1).
QUIET_DB = 40.0
#: Gain reduction (dB, 90th percentile over loud frames) below which no compressor is fitted.
MIN_REDUCTION_DB = 1.0
#: Seconds of a track used to fit its compressor (its loudest stretch).
COMP_FIT_SECONDS = 20.0

_SQRT_HANN = np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT))  # periodic: perfect reconstruction at 50 %


@dataclass
class FilterFit:
    """Filters ``(n_tracks, 2, bins)`` complex, gains ``(n_tracks, frames)``, per-track spectra."""

    filters: np.ndarray
    gains: np.ndarray
    track_power: np.ndarray  # (n_tracks, bins): mean |X|^2 over frames, averaged over the two mix channels
    frame_energy: np.ndarray  # (n_tracks, frames)
    spectra: "_Spectra | None" = None  # the tracks' STFT frames, reused by render_direct


def _num_frames(n: int) -> int:
    return (n + N_FFT) // HOP + 1


def _padded(x: np.ndarray) -> np.ndarray:
    n = x.shape[-1]
    total = (_num_frames(n) - 1) * HOP + N_FFT
    return np.pad(np.asarray(x, dtype=np.float32), [(0, 0)] * (x.ndim - 1) + [(N_FFT, total - n - N_FFT)])


def _blocks(num_frames: int) -> Iterator[tuple[int, int]]:
    for a in range(0, num_frames, BLOCK_FRAMES):
        yield a, min(num_frames, a + BLOCK_FRAMES)


def _stft_block(padded: np.ndarray, a: int, b: int) -> np.ndarray:
    """Frames ``a..b`` of a padded signal ``(..., samples)`` -> ``(..., frames, bins)`` complex64."""
    idx = np.arange(a, b)[:, None] * HOP + np.arange(N_FFT)[None, :]
    frames = padded[..., idx] * _SQRT_HANN.astype(np.float32)
    return np.fft.rfft(frames, axis=-1).astype(np.complex64)


class _Spectra:
    """STFT frames of every track channel, computed once and kept when they fit in
    :data:`CACHE_BYTES` (else recomputed per block: slower, same result)."""

    def __init__(self, tracks_padded: Sequence[np.ndarray], frames: int) -> None:
        self.tracks = tracks_padded
        channels = sum(t.shape[0] for t in tracks_padded)
        self.keep = channels * frames * (N_FFT // 2 + 1) * 8 <= CACHE_BYTES
        self.frames = frames
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def block(self, k: int, ch: int, a: int, b: int) -> np.ndarray:
        if not self.keep:
            return _stft_block(self.tracks[k][ch], a, b)
        key = (k, ch)
        if key not in self._cache:
            self._cache[key] = np.concatenate(
                [_stft_block(self.tracks[k][ch], x, y) for x, y in _blocks(self.frames)])
        return self._cache[key][a:b]

    def regressors(self, channel: int, a: int, b: int) -> np.ndarray:
        """``(n_tracks, frames, bins)``: each track's signal that can reach mix ``channel``."""
        return np.stack([self.block(k, min(channel, t.shape[0] - 1), a, b) for k, t in enumerate(self.tracks)])


def fit_filters(tracks: Sequence[np.ndarray], mix: np.ndarray, *, gain_envelopes: bool = True) -> FilterFit:
    """Steps 1 and 2 of the module doc: filters, gain envelopes, filters again.

    With ``gain_envelopes=False``, step 1 alone: the best time-invariant per-bin filters
    (every gain 1), the bound of what any linear, static per-track processing reaches."""
    n = mix.shape[-1]
    k = len(tracks)
    frames = _num_frames(n)
    bins = N_FFT // 2 + 1
    tracks_p = [_padded(t) for t in tracks]
    spectra = _Spectra(tracks_p, frames)
    mix_spectra = _Spectra([_padded(mix)], frames)
    gains = np.ones((k, frames), dtype=np.float64)
    filters = np.zeros((k, 2, bins), dtype=np.complex128)
    track_power = np.zeros((k, bins))
    frame_energy = np.zeros((k, frames))

    def solve_filters(weighted: bool) -> None:
        for c in range(2):
            normal = np.zeros((bins, k, k), dtype=np.complex128)
            rhs = np.zeros((bins, k), dtype=np.complex128)
            for a, b in _blocks(frames):
                x = spectra.regressors(c, a, b)  # (k, t, bins)
                if weighted:
                    x = x * gains[:, a:b, None].astype(np.float32)
                else:  # what reaches either channel counts (a stereo track may be silent on one)
                    power = np.abs(x) ** 2
                    track_power[:] += power.sum(axis=1) / 2
                    frame_energy[:, a:b] += power.sum(axis=2) / 2
                m = mix_spectra.block(0, c, a, b)  # (t, bins)
                x, m = x[:, ::FILTER_FRAME_STRIDE], m[::FILTER_FRAME_STRIDE]
                xt = np.ascontiguousarray(x.transpose(2, 0, 1))  # (bins, k, t)
                normal += xt.conj() @ xt.transpose(0, 2, 1)
                rhs += (xt.conj() @ m.T[:, :, None])[..., 0]
            diag = np.real(np.einsum("fkk->fk", normal))
            ridge = FILTER_RIDGE * diag.mean(axis=1, keepdims=True) + 1e-12
            normal[:, np.arange(k), np.arange(k)] += ridge
            filters[:, c, :] = np.linalg.solve(normal, rhs[..., None])[..., 0].T

    solve_filters(weighted=False)
    track_power /= max(frames, 1)
    if not gain_envelopes:
        return FilterFit(filters, gains, track_power, frame_energy, spectra)
    # gain envelopes: per frame, real gains of the filtered tracks
    normal_t = np.zeros((frames, k, k))
    rhs_t = np.zeros((frames, k))
    for c in range(2):
        for a, b in _blocks(frames):
            y = spectra.regressors(c, a, b) * filters[:, c, None, :].astype(np.complex64)  # (k, t, bins)
            m = mix_spectra.block(0, c, a, b)
            yt = np.ascontiguousarray(y.transpose(1, 0, 2))  # (t, k, bins)
            normal_t[a:b] += np.real(yt.conj() @ yt.transpose(0, 2, 1))
            rhs_t[a:b] += np.real((yt.conj() @ m[:, :, None])[..., 0])
    diag = normal_t[:, np.arange(k), np.arange(k)]  # (t, k)
    loudest = frame_energy.max(axis=1, keepdims=True) + 1e-30
    quiet = frame_energy.T < loudest.T * 10 ** (-QUIET_DB / 10)
    ridge = GAIN_RIDGE * diag + np.where(quiet, diag + 1e-12, 0.0) * 100.0 + 1e-12
    normal_t[:, np.arange(k), np.arange(k)] += ridge
    rhs_t += ridge  # pulls towards g = 1
    gains[:] = np.clip(np.linalg.solve(normal_t, rhs_t[..., None])[..., 0].T, 0.0, None)
    solve_filters(weighted=True)
    return FilterFit(filters, gains, track_power, frame_energy, spectra)


def render_direct(tracks: Sequence[np.ndarray], fit: FilterFit, num_samples: int) -> np.ndarray:
    """The model's own mix ``(2, samples)``: ``sum_k H_kc g_k X_kc``, overlap-added."""
    frames = fit.gains.shape[1]
    spectra = fit.spectra if fit.spectra is not None else _Spectra([_padded(t) for t in tracks], frames)
    total = (frames - 1) * HOP + N_FFT
    out = np.zeros((2, total), dtype=np.float64)
    for c in range(2):
        for a, b in _blocks(frames):
            x = spectra.regressors(c, a, b)
            y = np.einsum("kfb,kb->fb", x * fit.gains[:, a:b, None], fit.filters[:, c, :])
            seg = np.fft.irfft(y, N_FFT, axis=-1) * _SQRT_HANN
            halves = out[c].reshape(frames + 1, HOP)  # frame j covers halves j and j + 1
            halves[a:b] += seg[:, :HOP]
            halves[a + 1:b + 1] += seg[:, HOP:]
    return out[:, N_FFT:N_FFT + num_samples].astype(np.float32)


# -- console v1 settings from the filters -------------------------------------------------------


#: The parameters fitted to a filter's magnitude, in this order.
_EQ_NAMES = ("gain_db", "eq_low_shelf_cutoff_hz", "eq_low_shelf_gain_db", "eq_peak_cutoff_hz", "eq_peak_gain_db",
             "eq_peak_q", "eq_high_shelf_cutoff_hz", "eq_high_shelf_gain_db")


def eq_curve_db(values: dict[str, float], freqs_hz: np.ndarray, sample_rate: float) -> np.ndarray:
    """``gain_db`` plus the three EQ sections' magnitude (dB) at ``freqs_hz``."""
    return eq_response_db(values, freqs_hz, sample_rate, with_gain=True)


def _physical(names: Sequence[str], lo: np.ndarray, hi: np.ndarray, is_log: np.ndarray):
    """``u`` (normalized, clipped to [-1, 1]) to ``{name: physical value}`` for a subset of a
    schema's settings: the schema's conversion without its range checks, which the least
    squares' finite differences would trip at the bounds."""
    def to_values(u: np.ndarray) -> dict[str, float]:
        u01 = (np.clip(u, -1, 1) + 1) / 2
        vals = np.where(is_log, lo * (hi / np.where(is_log, lo, 1)) ** u01, lo + u01 * (hi - lo))
        return dict(zip(names, vals.tolist()))

    return to_values


def fit_gain_eq(
    target_db: np.ndarray, weights: np.ndarray, freqs_hz: np.ndarray, sample_rate: float
) -> dict[str, float]:
    """Gain and EQ (v1 units) whose curve best matches ``target_db`` (weighted least squares).

    Fitted in normalized units with bounds, from three starts of the peak frequency.
    """
    schema = CONSOLE_V1
    idx = [schema.index(n) for n in _EQ_NAMES]
    lo, hi, is_log = schema.lo[idx], schema.hi[idx], schema.is_log[idx]
    sw = np.sqrt(weights / (weights.sum() + 1e-30))
    to_values = _physical(_EQ_NAMES, lo, hi, is_log)

    def residual(u: np.ndarray) -> np.ndarray:
        return sw * (eq_curve_db(to_values(u), freqs_hz, sample_rate) - target_db)

    base = float(np.sum(weights * target_db) / (weights.sum() + 1e-30))
    neutral = schema.normalize(np.array([NEUTRAL_V1[n] for n in schema.names]))[idx]
    neutral[0] = np.clip(2 * (base - lo[0]) / (hi[0] - lo[0]) - 1, -1, 1)
    best = None
    for peak_hz in (300.0, 1000.0, 3000.0):
        u0 = neutral.copy()
        u0[3] = 2 * math.log(peak_hz / lo[3]) / math.log(hi[3] / lo[3]) - 1
        res = least_squares(residual, u0, bounds=(-1.0, 1.0), x_scale=1.0, max_nfev=100)
        if best is None or res.cost < best.cost:
            best = res
    return to_values(best.x)


def fit_compressor(
    x: np.ndarray, reduction_db: np.ndarray, loud: np.ndarray, sample_rate: int
) -> dict[str, float]:
    """Threshold, ratio, attack and release whose JUCE compressor best gives ``reduction_db`` per frame.

    ``x``: the track after gain and EQ ``(channels, samples)``; ``reduction_db``: the
    measured gain reduction per STFT frame (<= 0); ``loud``: frames to fit on.
    """
    n = x.shape[-1]
    level = np.abs(np.asarray(x, dtype=np.float64)).max(axis=0)
    # the loudest COMP_FIT_SECONDS
    span = min(n, int(COMP_FIT_SECONDS * sample_rate))
    frame_of = np.clip((np.arange(n) + N_FFT // 2) // HOP, 0, reduction_db.shape[0] - 1)  # centre frame per sample
    energy = np.cumsum(np.concatenate([[0.0], level ** 2]))
    starts = np.arange(0, n - span + 1, max(1, span // 4))
    s0 = int(starts[np.argmax(energy[starts + span] - energy[starts])])
    lvl = level[s0:s0 + span][None]
    frames = frame_of[s0:s0 + span]
    step = 8  # envelopes are smooth: every 8th sample is enough to average per frame
    frames_s = frames[::step]
    weight_s = (lvl[0, ::step] ** 2)
    mask = loud[frames_s]
    if not mask.any():
        return {"comp_threshold_db": 0.0, "comp_ratio": 1.0, "comp_attack_ms": 10.0, "comp_release_ms": 100.0}
    frame_ids = frames_s[mask]
    w = weight_s[mask]
    counts = np.bincount(frame_ids, weights=w)
    used = counts > 0
    target = (np.bincount(frame_ids, weights=w * reduction_db[frames_s][mask])[used] / counts[used])
    thresholds = np.arange(-40.0, 0.1, 1.0)

    def envelope_db(attack_ms: float, release_ms: float) -> np.ndarray:
        ca, cr = float(time_constant(attack_ms, sample_rate)), float(time_constant(release_ms, sample_rate))
        env = peak_envelope_numpy(lvl, ca, cr)
        return 20 * np.log10(env[0, ::step] + 1e-9)[mask]

    def over_threshold(env_db: np.ndarray, threshold_db: float) -> np.ndarray:
        """Per frame, the level-weighted mean of ``max(0, env - threshold)`` in dB."""
        return np.bincount(frame_ids, weights=w * np.maximum(0.0, env_db - threshold_db))[used] / counts[used]

    def best_static(env_db: np.ndarray) -> tuple[float, float, float]:
        """(cost, threshold, ratio): the gain curve is ``-s * max(0, env - T)``, ``s = 1 - 1 / ratio``;
        for every threshold on a 1 dB grid the best slope is closed-form least squares."""
        best = (float(np.mean(target ** 2)), 0.0, 1.0)
        for t in thresholds:
            hinge = over_threshold(env_db, t)
            denom = float(hinge @ hinge)
            if denom <= 0:
                continue
            slope = float(np.clip(-(hinge @ target) / denom, 0.0, 0.95))
            c = float(np.mean((target + slope * hinge) ** 2))
            if c < best[0]:
                best = (c, float(t), 1.0 / (1.0 - slope))
        return best

    def cost(env_db: np.ndarray, threshold_db: float, ratio: float) -> float:
        return float(np.mean((target + (1 - 1 / ratio) * over_threshold(env_db, threshold_db)) ** 2))

    attack, release = 10.0, 100.0
    _, threshold, ratio = best_static(envelope_db(attack, release))
    candidates = [(a, r) for a in (1.0, 10.0, 50.0) for r in (30.0, 100.0, 500.0)]
    _, attack, release = min((cost(envelope_db(a, r), threshold, ratio), a, r) for a, r in candidates)
    _, threshold, ratio = best_static(envelope_db(attack, release))
    return {"comp_threshold_db": float(threshold), "comp_ratio": float(ratio),
            "comp_attack_ms": float(attack), "comp_release_ms": float(release)}


@dataclass
class TrackTarget:
    """What one track's filters and gain envelope ask of a console: its pan, the magnitude
    (dB, per channel pair, before any pan law) on a log-frequency grid with weights where
    the track has energy, and the gain reduction per frame (``None``: a silent track)."""

    pan: float
    target_db: np.ndarray
    weights: np.ndarray
    reduction_db: np.ndarray
    loud: np.ndarray

    @property
    def compressed(self) -> bool:
        """Whether the gain envelope asks for a compressor."""
        return bool(self.loud.any() and np.quantile(-self.reduction_db[self.loud], 0.9) > MIN_REDUCTION_DB)


def track_targets(song: Song, fit: FilterFit, grid: np.ndarray, laws: dict[int, float]) -> list[TrackTarget | None]:
    """:class:`TrackTarget` of every track (None for a silent one), its magnitude divided by
    the console's pan law for the track's channels (``laws``: channels -> gain at centre)."""
    sr = song.sample_rate
    bins = np.fft.rfftfreq(N_FFT, 1.0 / sr)
    out: list[TrackTarget | None] = []
    for i in range(song.num_tracks):
        loud = fit.frame_energy[i] > fit.frame_energy[i].max() * 10 ** (-QUIET_DB / 10)
        g = fit.gains[i]
        g_ref = float(np.quantile(g[loud], 0.9)) if loud.any() and np.quantile(g[loud], 0.9) > 0 else 1.0
        reduction_db = 20 * np.log10(np.clip(g / g_ref, 1e-4, 1.0))
        h = np.abs(fit.filters[i]) * g_ref  # (2, bins)
        w = fit.track_power[i]
        if w.sum() <= 0 or not np.isfinite(h).all():
            out.append(None)
            continue
        energy = (w[None] * h ** 2).sum(axis=1)
        theta = math.atan2(math.sqrt(energy[1]), math.sqrt(energy[0]))
        law = laws[song.tracks[i].shape[0]]
        magnitude_db = 20 * np.log10(np.sqrt((h ** 2).sum(axis=0)) / law + 1e-12)
        w_db = 10 * np.log10(w / w.max() + 1e-12)
        weights = np.clip(w_db + 60.0, 0.0, 60.0) / 60.0
        out.append(TrackTarget(float(np.clip(theta * 4 / math.pi - 1, -1, 1)), np.interp(grid, bins, magnitude_db),
                               np.interp(grid, bins, weights), reduction_db, loud))
    return out


def _grid(sample_rate: int) -> np.ndarray:
    return np.geomspace(30.0, min(18000.0, 0.45 * sample_rate), 96)


def console_settings(song: Song, fit: FilterFit) -> np.ndarray:
    """Console v1 values ``(n_tracks, 16)`` expressing ``fit`` (module doc, step 4)."""
    import pedalboard as pb

    sr = song.sample_rate
    grid = _grid(sr)
    rows = []
    laws = {1: 2.0, 2: 2.0 * math.sqrt(2.0)}  # the reverb's dry x2, and the stereo pan law
    for x, t in zip(song.tracks, track_targets(song, fit, grid, laws)):
        row = dict(NEUTRAL_V1)
        if t is None:
            row["gain_db"] = CONSOLE_V1.spec("gain_db").lo
            rows.append(CONSOLE_V1.from_dict(row))
            continue
        row["pan"] = t.pan
        row.update(fit_gain_eq(t.target_db, t.weights, grid, sr))
        if t.compressed:
            pre = pb.Pedalboard(gain_eq_processors(row))(np.ascontiguousarray(x, dtype=np.float32), sr, reset=True)
            row.update(fit_compressor(pre, t.reduction_db, t.loud, sr))
        rows.append(CONSOLE_V1.from_dict({k: float(np.clip(v, CONSOLE_V1.spec(k).lo, CONSOLE_V1.spec(k).hi))
                                          for k, v in row.items()}))
    return np.stack(rows)


def fit_sections(target_db: np.ndarray, weights: np.ndarray, freqs_hz: np.ndarray, sample_rate: float,
                 schema: ParamSchema, sections: tuple, gain_name: str, start: dict[str, float]) -> dict[str, float]:
    """The level setting ``gain_name`` and the settings of the filter ``sections`` whose
    curve best matches ``target_db`` (weighted least squares in normalized units, within
    the ranges), from ``start``."""
    names = [gain_name] + list(dict.fromkeys(n for sec in sections for n in sec[1:] if n is not None))
    idx = [schema.index(n) for n in names]
    lo, hi, is_log = schema.lo[idx], schema.hi[idx], schema.is_log[idx]
    sw = np.sqrt(weights / (weights.sum() + 1e-30))
    to_values = _physical(names, lo, hi, is_log)

    def residual(u: np.ndarray) -> np.ndarray:
        curve = eq_response_db(to_values(u), freqs_hz, sample_rate, with_gain=True, sections=sections,
                               gain_name=gain_name)
        return sw * (curve - target_db)

    u0 = schema.normalize(np.array([start[n] for n in schema.names]))[idx]
    base = float(np.sum(weights * target_db) / (weights.sum() + 1e-30))
    u0[0] = np.clip(2 * (base - lo[0]) / (hi[0] - lo[0]) - 1, -0.99, 0.99)
    u0 = np.clip(u0, -0.99, 0.99)  # inside the bounds, where least squares can move
    return to_values(least_squares(residual, u0, bounds=(-1.0, 1.0), x_scale=1.0, max_nfev=200).x)


def console_settings_v2(song: Song, fit: FilterFit, schema: ParamSchema = CONSOLE_V2, *,
                        alignments: Sequence[Alignment] | None = None, compressor: bool = True) -> np.ndarray:
    """Console v2 values ``(n_tracks, schema.size)`` expressing ``fit``: pan, fader, the
    high-pass and every EQ band fitted to the filters' magnitude, the compressor to the
    gain envelope (unless ``compressor`` is False), and each track's time offset and
    polarity from ``alignments`` where they were measured reliably and do not drift
    (the filters' phase holds them too, but a magnitude fit cannot read it)."""
    import pedalboard as pb

    from mixinvert.console.render_v2 import bells_of, filter_processors

    sr = song.sample_rate
    grid = _grid(sr)
    sections = v2_sections(bells_of(schema))
    rows = []
    laws = {1: 1.0, 2: math.sqrt(2.0)}  # the stereo balance law (mono: cos^2 + sin^2 = 1)
    for i, (x, t) in enumerate(zip(song.tracks, track_targets(song, fit, grid, laws))):
        row = schema.neutral()
        if t is None:
            row["fader_db"] = schema.spec("fader_db").lo
            rows.append(schema.from_dict(row))
            continue
        a = alignments[i] if alignments is not None else None
        if a is not None and a.usable:
            limit = schema.spec("offset_ms").hi
            row["offset_ms"] = float(np.clip(1000.0 * a.applied_offset_samples() / sr, -limit, limit))
            row["polarity"] = float(a.polarity)
        row["pan"] = t.pan
        row.update(fit_sections(t.target_db, t.weights, grid, sr, schema, sections, "fader_db",
                                {**row, "hpf_cutoff_hz": 12.0}))
        if compressor and t.compressed:
            pre = pb.Pedalboard(filter_processors(row, sections, schema))(np.ascontiguousarray(x, dtype=np.float32),
                                                                         sr, reset=True)
            row.update(fit_compressor(pre, t.reduction_db, t.loud, sr))
        rows.append(schema.from_dict({k: float(np.clip(v, schema.spec(k).lo, schema.spec(k).hi))
                                      for k, v in row.items()}))
    return np.stack(rows)


@register(
    "barchiesi-reiss",
    "per-song least squares: FIR filters and gain envelopes per track (Barchiesi & Reiss 2010)",
    options=("console",),
)
def estimate_barchiesi_reiss(song: Song, *, rng: np.random.Generator, console: str = "v1") -> Estimate:
    if song.mix is None:
        raise SongError(f"{song.name}: barchiesi-reiss needs the reference mix")
    schema = get_schema(console)
    start = time.perf_counter()
    fit = fit_filters(song.tracks, song.mix)
    direct = render_direct(song.tracks, fit, song.num_samples)
    if schema.version == "v1":
        values = console_settings(song, fit)
    else:
        alignments = [estimate_alignment(t, song.mix, song.sample_rate) for t in song.tracks]
        values = console_settings_v2(song, fit, schema, alignments=alignments)
        if song.mono_mix:
            values, _ = for_mono_mix(values, None, schema)
    params = MixParams(schema, song.track_names, values, song.sample_rate)
    console_mix = render_mix(song.tracks, song.sample_rate, params)
    info = {"seconds": time.perf_counter() - start, "mix_source": "direct FIR rendering"}
    return Estimate(params, direct, info, extra_mixes={"console": console_mix})
