"""The network's input features: log-magnitude mel spectrograms (EAMI paper, 4.2).

80 mel bands from 20 Hz to 20 kHz, 50 ms frames, 25 ms hop, natural log of the mel
magnitude with a floor of :data:`LOG_FLOOR` (about -100 dB, far below 24-bit noise).

How stereo enters: as two channels, left and right, each with its own spectrogram; mono
tracks are given to both channels. Why L/R and not mid/side: pan, the parameter that most
needs stereo information, shows up in L/R as a simple difference of log levels
(``log L - log R``) that a convolution reads directly, in every band; a side channel is
near silent for centred content and its log is dominated by the floor. Tracks and the mix
then share one layout, so one encoder serves both (as the paper's network requires).

The function is pure: same input, same output, no state. The STFT runs in torch (fast on
CPU, batched over channels); the mel filter bank is librosa's (Slaney-normalized), built
once per (sample rate, FFT size) and cached.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

N_MELS = 80
FMIN_HZ = 20.0
FMAX_HZ = 20000.0
FRAME_MS = 50.0
HOP_MS = 25.0
#: Floor added to mel magnitudes before the log: exp(-11.5) ~ 1e-5, i.e. -100 dBFS.
LOG_FLOOR = 1e-5
#: The lowest sample rate whose Nyquist frequency covers FMAX_HZ.
MIN_SAMPLE_RATE = 40000


def frame_sizes(sample_rate: int) -> tuple[int, int, int]:
    """``(win_length, hop_length, n_fft)`` in samples for ``sample_rate``."""
    win = int(round(sample_rate * FRAME_MS / 1000.0))
    hop = int(round(sample_rate * HOP_MS / 1000.0))
    n_fft = 1 << (win - 1).bit_length()
    return win, hop, n_fft


def num_frames(num_samples: int, sample_rate: int) -> int:
    """How many feature frames :func:`log_mel` gives for ``num_samples`` samples."""
    _, hop, _ = frame_sizes(sample_rate)
    return num_samples // hop + 1


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int) -> torch.Tensor:
    import librosa

    basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=N_MELS, fmin=FMIN_HZ, fmax=FMAX_HZ)
    return torch.from_numpy(basis.astype(np.float32))


@functools.lru_cache(maxsize=8)
def _window(win: int) -> torch.Tensor:
    return torch.hann_window(win, periodic=True)


def _as_float_tensor(audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    if torch.is_tensor(audio):
        return audio.to(torch.float32)
    return torch.as_tensor(np.ascontiguousarray(audio, dtype=np.float32))


def log_mel(audio: np.ndarray | torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Log-magnitude mel spectrogram of every channel.

    Parameters
    ----------
    audio : array [shape=(..., samples)], float; any leading dimensions (channels, tracks)
    sample_rate : int, Hz, at least :data:`MIN_SAMPLE_RATE`

    Returns
    -------
    torch.Tensor [shape=(..., frames, 80)], float32, natural log of mel magnitude
        ``frames = samples // hop + 1`` (centred frames, reflect-padded ends)
    """
    if sample_rate < MIN_SAMPLE_RATE:
        raise ValueError(
            f"features need a sample rate of at least {MIN_SAMPLE_RATE} Hz to cover {FMAX_HZ:.0f} Hz, "
            f"got {sample_rate} Hz (resample first)"
        )
    x = _as_float_tensor(audio)
    if x.ndim < 1 or x.shape[-1] < 2:
        raise ValueError(f"audio must be (..., samples) with at least 2 samples, got shape {tuple(x.shape)}")
    win, hop, n_fft = frame_sizes(sample_rate)
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    pad_mode = "reflect" if flat.shape[-1] > n_fft // 2 else "constant"
    spec = torch.stft(
        flat,
        n_fft=n_fft,
        hop_length=hop,
        win_length=win,
        window=_window(win),
        center=True,
        pad_mode=pad_mode,
        return_complex=True,
    )
    # |X| as sqrt(re^2 + im^2): the same to float32 rounding as .abs(), and faster on CPU
    spec = (spec.real.square() + spec.imag.square()).sqrt()  # (B, freq, frames)
    mel = torch.matmul(_mel_basis(sample_rate, n_fft), spec)  # (B, 80, frames)
    out = torch.log(mel + LOG_FLOOR).transpose(-1, -2)
    return out.reshape(*lead, out.shape[-2], N_MELS).contiguous()


def stereo_log_mel(audio: np.ndarray | torch.Tensor, sample_rate: int) -> torch.Tensor:
    """:func:`log_mel` of a track or mix as 2 channels (L, R): ``(2, frames, 80)``.

    A mono input ``(1, samples)`` gives the same spectrogram in both channels.
    """
    x = _as_float_tensor(audio)
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        raise ValueError(f"expected (1 or 2, samples), got shape {tuple(x.shape)}")
    feats = log_mel(x, sample_rate)
    return feats.expand(2, -1, -1).contiguous() if feats.shape[0] == 1 else feats


def log_floor() -> float:
    """The feature value of digital silence, ``log(LOG_FLOOR)``."""
    return math.log(LOG_FLOOR)
