"""A differentiable twin of console v1 in PyTorch (gain, EQ, compressor, pan, reverb).

Same chain, parameters and units as :mod:`mixinvert.console.render`, written so that
gradients reach every parameter. Each stage is a pure function, checked against the real
pedalboard processor (BENCHMARKS.md, "The differentiable twin against the real console, per
processor"; the tests bound the distance per stage):

=========== ===========================================================================
stage       how
=========== ===========================================================================
gain        ``x * 10 ** (gain_db / 20)``
EQ          the three RBJ biquads pedalboard (JUCE) uses, coefficients from
            ``dasp_pytorch.signal.biquad``; applied as their exact frequency response on
            a zero-padded FFT grid (LTI, so only the tail past the padding is lost)
compressor  JUCE's peak ballistics (:mod:`mixinvert.twin.ballistics`, numba forward
            and backward) and its gain curve ``(env / threshold) ** (1 / ratio - 1)``
            above the threshold; per channel, as JUCE does
pan         constant power, the console's law (mono and stereo tracks)
reverb      JUCE's Freeverb (8 damped combs and 4 allpasses per channel, mono input x
            0.015, wet x 3, dry x 2) as its closed-form transfer function on an FFT grid:
            differentiable in room size and damping; a tail longer than the grid would
            wrap around, and is weakened 40 dB first (:func:`reverb`)
=========== ===========================================================================

Audio is float32 ``(channels, samples)``; parameters are physical values ``(16,)`` (or
normalized ``p`` through :func:`denormalize`), float64 tensors.

Why by hand: dasp-pytorch's compressor has one time constant and its reverb is
filtered noise, and torchcomp smooths the gain rather than the level; none of them is
the processor console v1 renders with, and the twin must be. dasp-pytorch's RBJ biquad
design is the same as JUCE's and is used.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
from dasp_pytorch.signal import biquad

from mixinvert.console.eq import EQ_SECTIONS, SHELF_Q
from mixinvert.console.schema import CONSOLE_V1, ParamSchema
from mixinvert.twin import responses
from mixinvert.twin.ballistics import compress, peak_envelope, time_constant

#: dasp-pytorch's name of each kind of EQ section.
_DASP_KIND = {"low_shelf": "low_shelf", "peak": "peaking", "high_shelf": "high_shelf"}
#: JUCE Reverb constants (juce_Reverb.h): tunings at 44.1 kHz, stereo spread, scale factors.
COMB_TUNINGS = (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617)
ALLPASS_TUNINGS = (556, 441, 341, 225)
STEREO_SPREAD = 23
REVERB_INPUT_GAIN = 0.015
REVERB_WET_SCALE = 3.0
REVERB_DRY_SCALE = 2.0
#: Samples of EQ tail kept past the signal before the FFT grid wraps (0.19 s at 44.1 kHz).
EQ_TAIL_SAMPLES = 8192
#: Default seconds of reverb tail kept past the signal by :func:`reverb`.
REVERB_TAIL_SECONDS = 2.0

#: The chain's stages in order: the schema's effects.
STAGES = tuple(CONSOLE_V1.effects)


def _idx(name: str) -> int:
    return CONSOLE_V1.index(name)


def denormalize(p: torch.Tensor, schema: ParamSchema = CONSOLE_V1) -> torch.Tensor:
    """:meth:`ParamSchema.denormalize` in torch (differentiable); ``p`` in [-1, 1], ``(..., 16)``."""
    lo = torch.tensor(schema.lo, dtype=p.dtype)
    hi = torch.tensor(schema.hi, dtype=p.dtype)
    is_log = torch.tensor(schema.is_log)
    u = (p + 1.0) / 2.0
    lin = lo + u * (hi - lo)
    safe_lo = torch.where(is_log, lo, torch.ones_like(lo))
    log = safe_lo * torch.exp(u * torch.log(torch.where(is_log, hi / safe_lo, torch.ones_like(lo))))
    return torch.where(is_log, log, lin)


def fft_size(num_samples: int, tail_samples: int) -> int:
    """The smallest fast FFT length at or above ``num_samples + tail_samples``: a power of
    two, or (above 1024) a multiple of 64 whose other factors are 3s and 5s, which the FFT
    runs about as fast per sample and which wastes less padding (a 2.5 s excerpt with the
    EQ's tail: 120 000 points instead of 131 072)."""
    need = max(2, num_samples + tail_samples)
    best = 1 << max(1, int(math.ceil(math.log2(need))))
    if need > 1024:
        m = -(-need // 64)
        while 64 * m < best:
            q = m
            for f in (3, 5):
                while q % f == 0:
                    q //= f
            if q & (q - 1) == 0:  # what is left is a power of two
                return 64 * m
            m += 1
    return best


# -- stages -------------------------------------------------------------------------------------


def gain(x: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
    """pedalboard ``Gain``: ``x * 10 ** (gain_db / 20)``."""
    return x * torch.pow(10.0, gain_db / 20.0).to(x.dtype)


def eq_response(values: torch.Tensor, sample_rate: float, n_fft: int) -> torch.Tensor:
    """Complex response ``(n_fft // 2 + 1,)`` of the low shelf, peak and high shelf in series
    for one track's settings ``(16,)``."""
    return eq_responses(values[None], sample_rate, n_fft)[0]


def eq_responses(values: torch.Tensor, sample_rate: float, n_fft: int) -> torch.Tensor:
    """:func:`eq_response` of every row of ``values`` ``(tracks, 16)``: ``(tracks, n_fft // 2 + 1)``
    (float64 inside: low cutoffs put poles next to z = 1, where float32 loses the response)."""
    sections = []
    for kind, gain_name, cutoff_name, q_name in EQ_SECTIONS:
        q = values[:, _idx(q_name)] if q_name else torch.full_like(values[:, 0], SHELF_Q)
        sections.append(biquad(values[:, _idx(gain_name)], values[:, _idx(cutoff_name)], q, float(sample_rate),
                               _DASP_KIND[kind]))
    b = torch.stack([b for b, _ in sections], dim=1)  # (tracks, 3 sections, 3)
    a = torch.stack([a for _, a in sections], dim=1)
    return responses.biquad_chain_responses(b, a, _z1_grid(n_fft))


def filter_fft(x: torch.Tensor, response: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Apply a frequency response ``(n_fft // 2 + 1,)`` to ``x`` ``(..., samples)``; same length out."""
    n = x.shape[-1]
    spectrum = torch.fft.rfft(x, n_fft) * response.to(torch.complex64 if x.dtype == torch.float32 else torch.complex128)
    return torch.fft.irfft(spectrum, n_fft)[..., :n]


def eq(x: torch.Tensor, values: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """The three EQ sections on ``x`` ``(channels, samples)``."""
    n_fft = fft_size(x.shape[-1], EQ_TAIL_SAMPLES)
    return filter_fft(x, eq_response(values, sample_rate, n_fft), n_fft)


def compressor(
    x: torch.Tensor,
    threshold_db: torch.Tensor,
    ratio: torch.Tensor,
    attack_ms: torch.Tensor,
    release_ms: torch.Tensor,
    sample_rate: float,
) -> torch.Tensor:
    """``juce::dsp::Compressor`` on every channel of ``x`` ``(channels, samples)``.

    float32 on the CPU (every fit) runs the fused numba kernel
    (:func:`mixinvert.twin.ballistics.compress`); other inputs run the same as torch
    operations, against which the tests check the kernel."""
    exponent = 1.0 / ratio - 1.0
    if x.dtype == torch.float32 and x.device.type == "cpu":
        threshold = 10.0 ** (torch.as_tensor(threshold_db, dtype=torch.float64) / 20.0)
        return compress(x, threshold, exponent, time_constant(attack_ms, sample_rate),
                        time_constant(release_ms, sample_rate))
    env = peak_envelope(x.abs(), time_constant(attack_ms, sample_rate), time_constant(release_ms, sample_rate))
    threshold = torch.pow(10.0, threshold_db / 20.0)
    # (env / threshold) ** (1 / ratio - 1) above the threshold, 1 below; the clamp keeps
    # the unused branch finite so that its gradient is zero, not NaN.
    over = torch.clamp(env.to(torch.float64) / threshold, min=1.0)
    g = torch.pow(over, exponent)
    return x * g.to(x.dtype)


def pan_gains(pan_value: torch.Tensor, channels: int) -> torch.Tensor:
    """The left and right gains ``(2,)`` (float64) of :func:`pan` for a track of ``channels``."""
    theta = (torch.as_tensor(pan_value, dtype=torch.float64) + 1.0) * math.pi / 4.0
    gains = torch.stack([torch.cos(theta), torch.sin(theta)])
    return gains if channels == 1 else math.sqrt(2.0) * gains


def pan(y: torch.Tensor, pan_value: torch.Tensor) -> torch.Tensor:
    """Constant-power pan to stereo; a stereo input keeps its channels (x sqrt 2 law)."""
    return y * pan_gains(pan_value, y.shape[0]).to(y.dtype)[:, None]


@lru_cache(maxsize=4)
def _angular_grid(n_fft: int) -> torch.Tensor:
    """Angular frequencies (rad / sample) of the rfft grid, float64."""
    return 2.0 * math.pi * torch.fft.rfftfreq(n_fft, dtype=torch.float64)


@lru_cache(maxsize=4)
def _z1_grid(n_fft: int) -> np.ndarray:
    """``z^-1`` on the rfft grid, complex128."""
    return np.exp(-1j * _angular_grid(n_fft).numpy())


#: Time-aliasing guard of the reverb, in nepers over the FFT grid (40 dB): the response is
#: evaluated on the circle ``|z| = r``, ``r = exp(WRAP_GUARD_NEPERS / n_fft)``, with the input
#: weighted by ``r^-t`` and the output by ``r^t`` (exact for an LTI filter), so that a tail
#: longer than the grid wraps around 40 dB weaker than it would on the unit circle.
WRAP_GUARD_NEPERS = math.log(100.0)


@lru_cache(maxsize=2)
def _reverb_grid(n_fft: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """On ``|z| = r``: ``z^-N`` of every comb ``(2, 8, bins)``, the fixed allpass chain
    ``(2, bins)`` and ``z^-1`` ``(bins,)``, complex128 arrays."""
    w = _angular_grid(n_fft).numpy()
    scale = sample_rate / 44100.0
    alpha = WRAP_GUARD_NEPERS / n_fft  # log r per sample

    def phasor(delays: Sequence[int]) -> np.ndarray:
        d = np.array([int(t * scale) for t in delays], dtype=np.float64)[:, None]
        return np.exp(-alpha * d - 1j * d * w[None, :])

    combs = np.stack([phasor(COMB_TUNINGS), phasor([t + STEREO_SPREAD for t in COMB_TUNINGS])])
    allpasses = np.stack([phasor(ALLPASS_TUNINGS), phasor([t + STEREO_SPREAD for t in ALLPASS_TUNINGS])])
    chain = (allpasses / (1.0 - 0.5 * allpasses) - 1.0).prod(axis=1)
    z1 = np.exp(-alpha - 1j * w)
    return combs, chain, z1


def reverb_response(
    room_size: torch.Tensor, damping: torch.Tensor, sample_rate: int, n_fft: int
) -> torch.Tensor:
    """Freeverb's wet transfer functions ``(2, n_fft // 2 + 1)`` (left, right), complex64,
    on the circle ``|z| = exp(WRAP_GUARD_NEPERS / n_fft)`` (see :func:`reverb`).

    A comb of delay N, feedback f and damping d is ``z^-N (1 - d z^-1) / (1 - d z^-1 - f (1 - d) z^-N)``;
    an allpass of delay M is ``z^-M / (1 - z^-M / 2) - 1``; per channel, the 8 combs in
    parallel, then the 4 allpasses in series (JUCE ``Reverb::processStereo``). Evaluated in
    one fused loop (:mod:`mixinvert.twin.responses`).
    """
    feedback = torch.as_tensor(room_size, dtype=torch.float64) * 0.28 + 0.7
    damp = torch.as_tensor(damping, dtype=torch.float64) * 0.4
    return responses.reverb_response(feedback, damp, _reverb_grid(int(n_fft), int(sample_rate)))


def reverb_responses(
    room_size: torch.Tensor, damping: torch.Tensor, sample_rate: int, n_fft: int
) -> torch.Tensor:
    """:func:`reverb_response` for ``(tracks,)`` settings: ``(tracks, 2, n_fft // 2 + 1)``."""
    feedback = torch.as_tensor(room_size, dtype=torch.float64) * 0.28 + 0.7
    damp = torch.as_tensor(damping, dtype=torch.float64) * 0.4
    return responses.reverb_responses(feedback, damp, _reverb_grid(int(n_fft), int(sample_rate)))


def reverb(
    stereo: torch.Tensor,
    room_size: torch.Tensor,
    damping: torch.Tensor,
    wet: torch.Tensor,
    sample_rate: int,
    *,
    tail_seconds: float = REVERB_TAIL_SECONDS,
) -> torch.Tensor:
    """pedalboard ``Reverb(room_size, damping, wet_level=wet, dry_level=1 - wet, width=1)``.

    The wet path is filtered on an FFT grid of at least ``samples + tail_seconds``. Reverb
    tails (up to about 10 s at room size 1) can outlast the grid: what would wrap around
    onto the start is weakened by :data:`WRAP_GUARD_NEPERS` beyond its own decay
    (exponential weighting), so the error stays small without a grid as long as the tail.
    """
    n = stereo.shape[-1]
    n_fft = fft_size(n, int(tail_seconds * sample_rate))
    alpha = WRAP_GUARD_NEPERS / n_fft
    t = torch.arange(n, dtype=torch.float64)
    mono = ((stereo[0] + stereo[1]) * REVERB_INPUT_GAIN) * torch.exp(-alpha * t).to(stereo.dtype)
    response = reverb_response(room_size, damping, sample_rate, n_fft)
    wet_paths = filter_fft(mono, response, n_fft) * torch.exp(alpha * t).to(stereo.dtype)  # (2, n)
    wet_gain = (wet * REVERB_WET_SCALE).to(stereo.dtype)  # 0.5 * wet * 3 * (1 + width), width 1
    dry_gain = ((1.0 - wet) * REVERB_DRY_SCALE).to(stereo.dtype)
    return wet_paths * wet_gain + stereo * dry_gain


# -- the chain -----------------------------------------------------------------------------------


def render_track(
    x: torch.Tensor,
    sample_rate: int,
    values: torch.Tensor,
    *,
    tail_seconds: float = REVERB_TAIL_SECONDS,
) -> torch.Tensor:
    """One track's stereo contribution ``(2, samples)``, as :func:`mixinvert.console.render.render_track`.

    ``x``: ``(1 or 2, samples)`` float32; ``values``: physical ``(16,)`` float64 tensor.
    """
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        raise ValueError(f"a track must be (1 or 2, samples), got {tuple(x.shape)}")
    v = values
    n_fft = fft_size(x.shape[-1], EQ_TAIL_SAMPLES)
    # gain and EQ are linear: one FFT for both
    y = filter_fft(x, eq_response(v, sample_rate, n_fft) * torch.pow(10.0, v[_idx("gain_db")] / 20.0), n_fft)
    y = compressor(
        y, v[_idx("comp_threshold_db")], v[_idx("comp_ratio")], v[_idx("comp_attack_ms")], v[_idx("comp_release_ms")],
        sample_rate,
    )
    y = pan(y, v[_idx("pan")])
    return reverb(
        y, v[_idx("reverb_room_size")], v[_idx("reverb_damping")], v[_idx("reverb_wet")], sample_rate,
        tail_seconds=tail_seconds,
    )


class PreparedTracks:
    """Tracks that many renders share (a fit's excerpts), prepared for the chain's FFTs.

    Gain and EQ are linear, so each track's spectrum on the EQ grid is computed once here;
    the reverb is linear too, so the tracks' wet paths are summed as spectra and
    transformed back once per mix instead of once per track. Every stage runs on all the
    tracks at once (mono and stereo tracks as two batches): one call per stage, not one
    per track, and the fused kernels split the tracks over threads. The mix equals the sum
    of :func:`render_track` over the tracks to float precision, with the same gradients
    (tested).
    """

    def __init__(self, tracks: Sequence[torch.Tensor], sample_rate: int, *,
                 tail_seconds: float = REVERB_TAIL_SECONDS) -> None:
        for x in tracks:
            if x.ndim != 2 or x.shape[0] not in (1, 2):
                raise ValueError(f"a track must be (1 or 2, samples), got {tuple(x.shape)}")
        if len({x.shape[-1] for x in tracks}) > 1:
            raise ValueError("tracks must all have the same length")
        self.sample_rate = int(sample_rate)
        self.num_tracks = len(tracks)
        self.num_samples = n = tracks[0].shape[-1] if tracks else 0
        self.eq_fft = fft_size(n, EQ_TAIL_SAMPLES)
        self.reverb_fft = fft_size(n, int(tail_seconds * sample_rate))
        # (track indices, spectra (tracks, channels, bins)) for the mono and the stereo tracks
        self.groups: list[tuple[torch.Tensor, torch.Tensor]] = []
        for channels in (1, 2):
            index = [i for i, x in enumerate(tracks) if x.shape[0] == channels]
            if index:
                spectra = torch.fft.rfft(torch.stack([tracks[i].to(torch.float32) for i in index]), self.eq_fft)
                self.groups.append((torch.tensor(index), spectra))
        self.order = torch.cat([index for index, _ in self.groups]) if self.groups else torch.zeros(0, dtype=torch.long)
        alpha = WRAP_GUARD_NEPERS / self.reverb_fft  # the wrap guard of :func:`reverb`
        t = torch.arange(n, dtype=torch.float64)
        self._down = (torch.exp(-alpha * t) * REVERB_INPUT_GAIN).to(torch.float32)  # with the reverb's input gain
        self._up = torch.exp(alpha * t).to(torch.float32)

    def render(self, values: torch.Tensor) -> torch.Tensor:
        """The stereo mix ``(2, samples)`` for physical ``values`` ``(n_tracks, 16)``."""
        if values.ndim != 2 or values.shape[0] != self.num_tracks:
            raise ValueError(f"expected parameters ({self.num_tracks}, {CONSOLE_V1.size}), got {tuple(values.shape)}")
        n, sr = self.num_samples, self.sample_rate
        v = values[self.order]  # mono tracks first, then stereo, as the groups
        gain = torch.pow(10.0, v[:, _idx("gain_db")] / 20.0)
        eq = eq_responses(v, sr, self.eq_fft) * gain.to(torch.complex64)[:, None]  # (tracks, bins)
        thresholds = torch.pow(10.0, v[:, _idx("comp_threshold_db")] / 20.0)
        exponents = 1.0 / v[:, _idx("comp_ratio")] - 1.0
        attacks = time_constant(v[:, _idx("comp_attack_ms")], sr)
        releases = time_constant(v[:, _idx("comp_release_ms")], sr)
        theta = (v[:, _idx("pan")] + 1.0) * math.pi / 4.0
        wet = v[:, _idx("reverb_wet")]
        dry, sends, first = None, [], 0
        for _, spectra in self.groups:
            count, channels = spectra.shape[0], spectra.shape[1]
            rows = slice(first, first + count)
            first += count
            y = torch.fft.irfft(spectra * eq[rows, None, :], self.eq_fft)[..., :n]  # (count, channels, n)
            # the compressor per channel, each track with its own settings
            y = compress(y.reshape(count * channels, n), *(s[rows].repeat_interleave(channels) for s in
                                                           (thresholds, exponents, attacks, releases)))
            y = y.reshape(count, channels, n)
            # pan, the dry level and the reverb's send as gains on the track's own channels
            # (what :func:`pan` and :func:`reverb` do, with fewer passes over the samples)
            pans = torch.stack([torch.cos(theta[rows]), torch.sin(theta[rows])], dim=1)  # (count, 2)
            if channels == 2:
                pans = pans * math.sqrt(2.0)
            send = (pans * (wet[rows] * REVERB_WET_SCALE)[:, None]).to(torch.float32)
            level = (pans * ((1.0 - wet[rows]) * REVERB_DRY_SCALE)[:, None]).to(torch.float32)
            if channels == 1:
                sends.append(y[:, 0] * send.sum(dim=1)[:, None])
                part = level.T @ y[:, 0]  # (2, n)
            else:
                sends.append((y * send[:, :, None]).sum(dim=1))
                part = torch.einsum("tc,tcn->cn", level, y)
            dry = part if dry is None else dry + part
        if dry is None:
            return torch.zeros(2, n)
        mono = torch.cat(sends) * self._down  # (tracks, n)
        responses_ = reverb_responses(v[:, _idx("reverb_room_size")], v[:, _idx("reverb_damping")], sr,
                                      self.reverb_fft)  # (tracks, 2, bins)
        wet_spectrum = (torch.fft.rfft(mono, self.reverb_fft)[:, None, :] * responses_).sum(dim=0)  # (2, bins)
        return dry + torch.fft.irfft(wet_spectrum, self.reverb_fft)[..., :n] * self._up


def render(
    tracks: Sequence[torch.Tensor],
    sample_rate: int,
    values: torch.Tensor,
    *,
    tail_seconds: float = REVERB_TAIL_SECONDS,
) -> torch.Tensor:
    """The stereo mix ``(2, samples)`` for physical ``values`` ``(n_tracks, 16)``
    (:class:`PreparedTracks` for one render)."""
    if values.ndim != 2 or values.shape[0] != len(tracks):
        raise ValueError(f"expected parameters ({len(tracks)}, {CONSOLE_V1.size}), got {tuple(values.shape)}")
    return PreparedTracks(tracks, sample_rate, tail_seconds=tail_seconds).render(values)


def as_tensor_tracks(tracks: Sequence[np.ndarray]) -> list[torch.Tensor]:
    """Tracks as float32 tensors (shared memory with the arrays where possible)."""
    return [torch.from_numpy(np.ascontiguousarray(t, dtype=np.float32)) for t in tracks]
