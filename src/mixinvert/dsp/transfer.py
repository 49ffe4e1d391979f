"""Transfer spectra: how much of each track reaches each mix channel, per mel band.

Beyond the EAMI paper. Its network must find each track's share of the mix in log-mel
spectrograms alone, where ten tracks overlap in most bins; on this project's corpora those
reveal about half of the variance of gain (BENCHMARKS.md, "What the network can read"),
and the network trained on them kept a median gain error of 4 dB. Least squares reads
each track's share directly, as in Barchiesi & Reiss's
"Reverse engineering of a mix": in every frequency bin, solve for the complex filters
``H_kc`` that best give the mix channel ``c`` from the tracks over the frames,
``M_c(f, t) ~ sum_k H_kc(f) X_kc(f, t)``. ``|H_kc|`` is gain, EQ and pan law together
(reverb and compression blur it), a curve the network maps to console settings.

Per track the result is 3 x 80 values on the network's mel bands:

0. ``log |H_kL|``, averaged over the band weighted by the track's power (natural log of
   amplitude; silent bands and silent tracks read as :data:`LOG_GAIN_FLOOR`),
1. the same for the right channel,
2. the track's mean log power in the band (where its level sits against a compressor's
   threshold).

With ``reverb=True``, 3 x 80 more: where each track's reverb went. A reverb's tail
follows the track's sound by tens to hundreds of milliseconds, so the least squares
above (one frame) leave it in the residual ``R_c = M_c - sum_k H_kc X_kc``. Per band, the
residual's power over the frames is fitted, by nonnegative least squares, on three
regressors per track built from its direct power ``Y_k = sum_c |H_kc X_kc|^2``: ``Y_k``
passed through a one-pole decay of 0.7 and of 0.93 per hop (23 ms; about 0.15 s and
0.75 s to -20 dB) after a one-frame delay, and ``Y_k`` itself (what the one-frame fit
misses: compression, the reverb's first reflections). The channels are
``log(coefficient + 1e-4)`` of the three (natural log; silent bands read as
:data:`LOG_COEF_FLOOR`). On the corpora they raise the share of reverb wet's variance a
supervised MLP explains (BENCHMARKS.md, "What the network can read").

With ``compressor=True``, 2 x 80 more: how a track's gain into the mix changes with its
level, which is what a compressor does. Per frame, least squares of the mix (both
channels, every other bin) on every track's direct part ``H_kc X_kc(t)`` gives per-frame gains
``g_k(t)`` (ridged towards 1, the long-term average); their logs are averaged per 1 dB
bin of the track's own frame level (-80 to 0 dBFS of its mean square, Gaussian-smoothed
by 1.5 dB, weighted by the direct part's energy). Channel 0: that mean log gain (natural
log; 0 where the track never plays at that level), channel 1: the log share of frames
near that level (:data:`LOG_OCC_FLOOR` where none). Under a compressor the curve falls
above the level where the threshold bites (after gain and EQ), with a slope that grows
with the ratio. On the corpora they raise the share of the threshold's variance that a
supervised MLP explains (BENCHMARKS.md, "What the network can read").

The function is pure and deterministic. The STFT (sqrt-Hann, 2048 samples, 50 % overlap)
runs in torch. A song of up to :data:`MAX_FRAMES` frames uses them all; a longer one
uses :data:`BLOCKS` evenly spread blocks of consecutive frames (each with
:data:`HISTORY` frames before it that only feed the reverb's decays), so a long song
costs no more time or memory than a 12 s one.

Why by hand: no maintained library solves multichannel per-bin least squares;
:mod:`mixinvert.methods.barchiesi_reiss` does the same for its own method, with a
gain-envelope pass and longer frames that this feature does not need.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch

from mixinvert.dsp.features import FMAX_HZ, FMIN_HZ, N_MELS

N_FFT = 2048
HOP = N_FFT // 2
#: Most frames used per song: 12 s at 44.1 kHz.
MAX_FRAMES = 512
#: A longer song is read in this many evenly spread blocks of consecutive frames.
BLOCKS = 8
#: Frames at the start of each block of a long song that only feed the reverb regressors.
HISTORY = 16
#: Ridge weight relative to the tracks' mean energy in a bin.
RIDGE = 1e-3
#: Smallest log amplitude gain reported (about -87 dB): bands where a track is silent.
LOG_GAIN_FLOOR = -10.0
#: Largest log amplitude gain reported (about +35 dB).
LOG_GAIN_CEIL = 4.0
#: Floor of the track power channel (natural log of power).
LOG_POWER_FLOOR = -25.0
#: The transfer spectra's channels, group by group in the order they are stacked (the one
#: table of their layout): each channel's name and the affine ``(x + offset) / scale`` that
#: brings it to about unit range for a network. ``direct`` is always there; ``reverb`` and
#: ``compressor`` are optional (:func:`transfer_features`'s flags).
CHANNEL_GROUPS: dict[str, tuple[tuple[str, float, float], ...]] = {
    "direct": (("log gain, left", 2.0, 3.0), ("log gain, right", 2.0, 3.0), ("log power", 10.0, 6.0)),
    "reverb": (("log coefficient, decay 0.7", 4.6, 4.6), ("log coefficient, decay 0.93", 4.6, 4.6),
               ("log coefficient, this frame", 4.6, 4.6)),
    "compressor": (("mean log gain by level", 0.0, 1.0), ("log share of frames by level", 3.5, 3.5)),
}
CHANNELS = len(CHANNEL_GROUPS["direct"])
REVERB_CHANNELS = len(CHANNEL_GROUPS["reverb"])
#: Decays per hop of the reverb regressors (after a one-frame delay).
REVERB_DECAYS = (0.7, 0.93)
#: Floor of the reverb coefficients before the log (and the log of silent bands).
COEF_EPS = 1e-4
LOG_COEF_FLOOR = float(np.log(COEF_EPS))
LOG_COEF_CEIL = 4.0
#: Compressor channels: 1 dB level bins from -80 dBFS, smoothed by a Gaussian of 1.5 dB.
COMP_CHANNELS = len(CHANNEL_GROUPS["compressor"])
COMP_LEVEL_BINS = N_MELS
COMP_LEVEL_MIN_DB = -80.0
COMP_LEVEL_SMOOTH_DB = 1.5
#: Ridge of the per-frame gains towards 1, relative to the track's own energy in the frame.
COMP_RIDGE = 0.1


def channel_groups(*, reverb: bool = False, compressor: bool = False) -> list[str]:
    """The groups of :data:`CHANNEL_GROUPS` that transfer spectra with these flags hold, in order."""
    return ["direct"] + (["reverb"] if reverb else []) + (["compressor"] if compressor else [])


def channel_count(*, reverb: bool = False, compressor: bool = False) -> int:
    """Channels of transfer spectra with these flags."""
    return sum(len(CHANNEL_GROUPS[g]) for g in channel_groups(reverb=reverb, compressor=compressor))
COMP_GAIN_MIN = 1e-3
#: The per-frame fit uses every COMP_BIN_STEP-th frequency bin.
COMP_BIN_STEP = 2
COMP_LOG_GAIN_CEIL = 2.0
COMP_OCC_EPS = 1e-3
LOG_OCC_FLOOR = float(np.log(COMP_OCC_EPS))
#: Projected-gradient steps of the nonnegative least squares (after a clamped exact solve).
NNLS_STEPS = 200


@functools.lru_cache(maxsize=8)
def _mel(sample_rate: int) -> torch.Tensor:
    import librosa

    fmax = min(FMAX_HZ, sample_rate / 2.0)
    basis = librosa.filters.mel(sr=sample_rate, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN_HZ, fmax=fmax, norm=None)
    return torch.from_numpy(basis.astype(np.float64))


@functools.lru_cache(maxsize=2)
def _window() -> torch.Tensor:
    return torch.hann_window(N_FFT, periodic=True, dtype=torch.float32).sqrt()


def _frames(num_samples: int) -> tuple[torch.Tensor, int]:
    """The frames to cut, in blocks of consecutive frames, and the block length.

    Up to :data:`MAX_FRAMES` frames: all of them, one block. More: :data:`BLOCKS` evenly
    spread blocks of ``MAX_FRAMES / BLOCKS`` frames (whose first :data:`HISTORY` frames
    only feed the reverb regressors' decays).
    """
    total = num_samples // HOP + 1
    if total <= MAX_FRAMES:
        return torch.arange(total), total
    length = MAX_FRAMES // BLOCKS
    starts = np.linspace(0, total - length, BLOCKS).round().astype(np.int64)
    return torch.from_numpy((starts[:, None] + np.arange(length)[None]).ravel()), length


def _abs2(z: torch.Tensor) -> torch.Tensor:
    """``|z|^2`` of a complex tensor, without the square root of ``abs`` (and twice as fast as
    summing the squares of ``view_as_real``, with the same result)."""
    return z.real.square() + z.imag.square()


def _stft(x: np.ndarray, keep: torch.Tensor) -> torch.Tensor:
    """``(channels, samples)`` -> ``(channels, kept frames, bins)`` complex64.

    The spectra and their products (normal equations, per-frame fits) stay in single
    precision, which halves their memory traffic; the solves, the residual and every sum
    over frames are in double precision. ``bench_eami.py table1`` gave the same eami rows,
    to the third decimal, before and after the change (BENCHMARKS.md has the cost now).

    Only the kept frames are cut and transformed (centred frames, reflect-padded ends, as
    :func:`torch.stft` with ``center=True``), so memory stays bounded on long songs.
    """
    t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
    pad = "reflect" if t.shape[-1] > N_FFT // 2 else "constant"
    padded = torch.nn.functional.pad(t[None], (N_FFT // 2, N_FFT // 2), mode=pad)[0]
    frames = padded.unfold(-1, N_FFT, HOP)[:, keep]  # a view: (channels, kept, N_FFT)
    return torch.fft.rfft(frames * _window(), dim=-1)


def transfer_features(
    tracks: Sequence[np.ndarray], mix: np.ndarray, sample_rate: int, *, reverb: bool = False,
    compressor: bool = False,
) -> np.ndarray:
    """Transfer spectra of every track into the mix: ``(n_tracks, C, 80)`` float32, with
    ``C = 3``, plus 3 with ``reverb``, plus 2 with ``compressor``.

    Parameters
    ----------
    tracks : each ``(1 or 2, samples)`` float; all of one length
    mix : ``(2, samples)`` float, the mix the tracks went into
    sample_rate : Hz (bands above the Nyquist frequency read as silent)
    reverb : add the three reverb channels
    compressor : add the two compressor channels (after the reverb ones)

    See the module doc for what the channels hold.
    """
    if not tracks:
        raise ValueError("transfer_features needs at least one track")
    if mix.ndim != 2 or mix.shape[0] != 2:
        raise ValueError(f"the mix must be (2, samples), got shape {mix.shape}")
    n = mix.shape[-1]
    for i, t in enumerate(tracks):
        if t.ndim != 2 or t.shape[0] not in (1, 2) or t.shape[-1] != n:
            raise ValueError(f"track {i}: expected (1 or 2, {n}) samples, got shape {t.shape}")
        if not np.isfinite(t).all():
            raise ValueError(f"track {i} has NaN or infinite samples")
    if not np.isfinite(mix).all():
        raise ValueError("the mix has NaN or infinite samples")
    keep, block = _frames(n)
    k = len(tracks)
    x = [_stft(t, keep) for t in tracks]  # each (1 or 2, frames, bins)
    m = _stft(mix, keep)  # (2, frames, bins)
    bins = m.shape[-1]
    mel = _mel(sample_rate)  # (80, bins)
    # each track's power per bin (k, bins) and, for the compressor channels, per frame (k, frames)
    power_bins, power_frames = [], []
    for xi in x:
        p2 = _abs2(xi).double()  # (channels, frames, bins)
        power_bins.append(p2.mean(dim=(0, 1)))
        if compressor:
            power_frames.append(p2.sum(-1).mean(0))
    power = torch.stack(power_bins)
    gains = torch.empty(2, k, bins, dtype=torch.float64)
    if reverb:
        resid_pow = torch.zeros(keep.numel(), mel.shape[0], dtype=torch.float64)
        direct_pow = torch.zeros(k, keep.numel(), mel.shape[0], dtype=torch.float64)
    if compressor:
        frame_gram = torch.zeros(keep.numel(), k, k, dtype=torch.float64)
        frame_rhs = torch.zeros(keep.numel(), k, dtype=torch.float64)
    for c in range(2):
        a = torch.stack([xi[min(c, xi.shape[0] - 1)] for xi in x], dim=-1).transpose(0, 1)  # (bins, frames, k)
        # products in single precision, solved in double
        normal = (a.conj().transpose(1, 2) @ a).to(torch.complex128)  # (bins, k, k)
        rhs = (a.conj().transpose(1, 2) @ m[c].transpose(0, 1)[:, :, None]).to(torch.complex128)  # (bins, k, 1)
        diag = normal.diagonal(dim1=1, dim2=2).real
        ridge = RIDGE * diag.mean(dim=1, keepdim=True) + 1e-12
        normal = normal + torch.diag_embed(ridge.expand(-1, k).to(normal.dtype))
        h = torch.linalg.solve(normal, rhs)  # (bins, k, 1)
        gains[c] = _abs2(h[..., 0]).T
        if reverb:
            resid = m[c].transpose(0, 1).to(torch.complex128) - (a.to(torch.complex128) @ h)[..., 0]  # (bins, frames)
            resid_pow += _abs2(resid).T @ mel.T
            # |H X|^2 per track, frame and bin, summed into bands
            direct = _abs2(a).permute(2, 1, 0).double() * gains[c][:, None, :]  # (k, frames, bins)
            direct_pow += (direct.reshape(-1, bins) @ mel.T).reshape(k, keep.numel(), -1)
        if compressor:
            # each track's direct part (frames, k, bins), on every other bin: a frame's gains are
            # broadband, neighbouring bins of the window overlap, and it halves the cost
            sel = slice(None, None, COMP_BIN_STEP)
            d = (a[sel] * h[sel, None, :, 0].to(torch.complex64)).permute(1, 2, 0)
            frame_gram += (d @ d.conj().transpose(1, 2)).real.double()
            frame_rhs += (d @ m[c][:, sel, None].conj())[..., 0].real.double()
    weight = power + 1e-30  # the track's own spectrum weights its bins
    num = torch.einsum("mb,ckb->ckm", mel, gains * weight)
    den = torch.einsum("mb,kb->km", mel, weight)[None]
    band_gain = torch.where(den > 0, num / den, torch.zeros_like(num))
    log_gain = (0.5 * torch.log(band_gain + 1e-30)).clamp(LOG_GAIN_FLOOR, LOG_GAIN_CEIL)
    mel_power = torch.einsum("mb,kb->km", mel, power)  # (k, 80)
    silent = mel_power <= 1e-20  # nothing of the track in the band
    log_gain = torch.where(silent[None], torch.full_like(log_gain, LOG_GAIN_FLOOR), log_gain)
    band_power = mel_power / mel.sum(dim=1).clamp_min(1e-12)
    log_power = torch.log(band_power + 1e-30).clamp_min(LOG_POWER_FLOOR)
    out = [log_gain.permute(1, 0, 2), log_power[:, None]]
    if reverb:
        coef = _reverb_coefficients(direct_pow, resid_pow, block)  # (k, 3, 80)
        log_coef = torch.log(coef + COEF_EPS).clamp(LOG_COEF_FLOOR, LOG_COEF_CEIL)
        out.append(torch.where(silent[:, None], torch.full_like(log_coef, LOG_COEF_FLOOR), log_coef))
    if compressor:
        comp = _compressor_channels(frame_gram, frame_rhs, torch.stack(power_frames))
        out.append(torch.where(mel_power.sum(1, keepdim=True)[:, :, None] <= 1e-20,
                               torch.tensor([0.0, LOG_OCC_FLOOR], dtype=comp.dtype)[None, :, None], comp))
    return torch.cat(out, dim=1).numpy().astype(np.float32)


def _compressor_channels(gram: torch.Tensor, rhs: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
    """How a track's gain into the mix changes with its level: ``(k, 2, 80)``.

    Per frame, least squares of the mix (every other bin) on every track's direct part (its
    long-term transfer applied), ``M(t) ~ sum_k g_k(t) H_k X_k(t)``, ridged towards ``g = 1``; the
    log gains are then averaged per level bin (1 dB bins of the track's own frame level,
    Gaussian-smoothed, weighted by the direct part's energy). Channel 0: that mean log
    gain (0 where the track never plays at that level), channel 1: the log share of
    frames near that level.
    """
    frames, k, _ = gram.shape
    diag = gram.diagonal(dim1=1, dim2=2)
    lam = COMP_RIDGE * diag + 1e-12 * diag.mean() + 1e-30
    g = torch.linalg.solve(gram + torch.diag_embed(lam), rhs + lam)  # ridge towards 1
    log_g = torch.log(g.clamp_min(COMP_GAIN_MIN)).clamp(max=COMP_LOG_GAIN_CEIL).T  # (k, frames)
    level_db = 10.0 * torch.log10(4.0 * energy / N_FFT**2 + 1e-30)  # ~ mean square of the frame, dBFS
    centres = torch.arange(COMP_LEVEL_BINS, dtype=torch.float64) + COMP_LEVEL_MIN_DB + 0.5
    kern = torch.exp(-0.5 * ((level_db[:, :, None] - centres) / COMP_LEVEL_SMOOTH_DB) ** 2)  # (k, frames, bins)
    w = kern * diag.T[:, :, None]
    den = w.sum(1)
    mean = torch.where(den > 1e-30, (w * log_g[:, :, None]).sum(1) / den.clamp_min(1e-300), torch.zeros_like(den))
    occ = torch.log(kern.sum(1) / frames + COMP_OCC_EPS)
    return torch.stack([mean, occ], dim=1)


def _reverb_coefficients(direct_pow: torch.Tensor, resid_pow: torch.Tensor, block: int) -> torch.Tensor:
    """Per band, nonnegative least squares of the residual power on each track's decayed
    direct power: ``(k, frames, 80)`` and ``(frames, 80)`` in, ``(k, 3, 80)`` out.

    Frames come in blocks of ``block`` consecutive ones; the decays run within a block, and
    where there are several blocks their first :data:`HISTORY` frames are left out of the fit.
    """
    from scipy.signal import lfilter

    k, frames, bands = direct_pow.shape
    nb = frames // block
    y = direct_pow.numpy().reshape(k, nb, block, bands)
    regs = [lfilter([0.0, (1.0 - r) * r], [1.0, -r], y, axis=2) for r in REVERB_DECAYS]  # one-frame delay, decay
    x = torch.from_numpy(np.stack([*regs, y], axis=1))  # (k, 3, nb, block, bands)
    target = resid_pow.reshape(nb, block, bands)
    if nb > 1:
        x, target = x[:, :, :, HISTORY:], target[:, HISTORY:]
    q = k * REVERB_CHANNELS
    a = x.reshape(q, -1, bands).permute(2, 1, 0)  # (bands, used frames, q)
    scale = a.pow(2).mean(dim=1, keepdim=True).sqrt() + 1e-30
    a = a / scale
    b_vec = target.reshape(-1, bands).T[:, :, None]  # (bands, used frames, 1)
    gram = a.transpose(1, 2) @ a + 1e-3 * torch.eye(q, dtype=a.dtype)
    rhs = a.transpose(1, 2) @ b_vec
    coef = torch.linalg.solve(gram, rhs).clamp_min(0.0)
    step = 1.0 / torch.linalg.matrix_norm(gram, ord=2)[:, None, None]
    for _ in range(NNLS_STEPS):  # projected gradient from the clamped exact solution
        coef = (coef - step * (gram @ coef - rhs)).clamp_min(0.0)
    coef = coef / scale.transpose(1, 2)  # back to the unscaled regressors
    return coef[..., 0].T.reshape(k, REVERB_CHANNELS, bands)


__all__ = ["transfer_features", "CHANNELS", "REVERB_CHANNELS", "COMP_CHANNELS", "N_FFT", "MAX_FRAMES"]
