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

The function is pure and deterministic. The STFT (sqrt-Hann, 2048 samples, 50 % overlap)
runs in torch; at most :data:`MAX_FRAMES` frames, evenly spread, are cut and enter the
normal equations, so a long song costs no more time or memory than a 12 s one.

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
#: Most frames used per song (evenly spread): 12 s at 44.1 kHz.
MAX_FRAMES = 512
#: Ridge weight relative to the tracks' mean energy in a bin.
RIDGE = 1e-3
#: Smallest log amplitude gain reported (about -87 dB): bands where a track is silent.
LOG_GAIN_FLOOR = -10.0
#: Largest log amplitude gain reported (about +35 dB).
LOG_GAIN_CEIL = 4.0
#: Floor of the track power channel (natural log of power).
LOG_POWER_FLOOR = -25.0
#: Values per track: ``(3, N_MELS)``.
CHANNELS = 3


@functools.lru_cache(maxsize=8)
def _mel(sample_rate: int) -> torch.Tensor:
    import librosa

    fmax = min(FMAX_HZ, sample_rate / 2.0)
    basis = librosa.filters.mel(sr=sample_rate, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN_HZ, fmax=fmax, norm=None)
    return torch.from_numpy(basis.astype(np.float64))


@functools.lru_cache(maxsize=2)
def _window() -> torch.Tensor:
    return torch.hann_window(N_FFT, periodic=True, dtype=torch.float32).sqrt()


def _frames(num_samples: int) -> torch.Tensor:
    total = num_samples // HOP + 1
    if total <= MAX_FRAMES:
        return torch.arange(total)
    return torch.from_numpy(np.linspace(0, total - 1, MAX_FRAMES).round().astype(np.int64))


def _stft(x: np.ndarray, keep: torch.Tensor) -> torch.Tensor:
    """``(channels, samples)`` -> ``(channels, kept frames, bins)`` complex128.

    Only the kept frames are cut and transformed (centred frames, reflect-padded ends, as
    :func:`torch.stft` with ``center=True``), so memory stays bounded on long songs.
    """
    t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
    pad = "reflect" if t.shape[-1] > N_FFT // 2 else "constant"
    padded = torch.nn.functional.pad(t[None], (N_FFT // 2, N_FFT // 2), mode=pad)[0]
    frames = padded.unfold(-1, N_FFT, HOP)[:, keep]  # a view: (channels, kept, N_FFT)
    return torch.fft.rfft(frames * _window(), dim=-1).to(torch.complex128)


def transfer_features(tracks: Sequence[np.ndarray], mix: np.ndarray, sample_rate: int) -> np.ndarray:
    """Transfer spectra of every track into the mix: ``(n_tracks, 3, 80)`` float32.

    Parameters
    ----------
    tracks : each ``(1 or 2, samples)`` float; all of one length
    mix : ``(2, samples)`` float, the mix the tracks went into
    sample_rate : Hz (bands above the Nyquist frequency read as silent)

    See the module doc for what the three channels hold.
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
    keep = _frames(n)
    k = len(tracks)
    x = [_stft(t, keep) for t in tracks]  # each (1 or 2, frames, bins)
    m = _stft(mix, keep)  # (2, frames, bins)
    bins = m.shape[-1]
    power = torch.stack([(xi.abs() ** 2).mean(dim=(0, 1)) for xi in x])  # (k, bins)
    gains = torch.empty(2, k, bins, dtype=torch.float64)
    for c in range(2):
        a = torch.stack([xi[min(c, xi.shape[0] - 1)] for xi in x], dim=-1).transpose(0, 1)  # (bins, frames, k)
        normal = a.conj().transpose(1, 2) @ a  # (bins, k, k)
        rhs = a.conj().transpose(1, 2) @ m[c].transpose(0, 1)[:, :, None]  # (bins, k, 1)
        diag = normal.diagonal(dim1=1, dim2=2).real
        ridge = RIDGE * diag.mean(dim=1, keepdim=True) + 1e-12
        normal = normal + torch.diag_embed(ridge.expand(-1, k).to(normal.dtype))
        h = torch.linalg.solve(normal, rhs)[..., 0]  # (bins, k)
        gains[c] = (h.abs() ** 2).T
    mel = _mel(sample_rate)  # (80, bins)
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
    out = torch.cat([log_gain.permute(1, 0, 2), log_power[:, None]], dim=1)
    return out.numpy().astype(np.float32)


__all__ = ["transfer_features", "CHANNELS", "N_FFT", "MAX_FRAMES"]
