"""Mix-to-mix distances of the paper (EAMI section 5.1), after loudness normalization.

Both signals are first normalized to -23 LUFS integrated (pyloudnorm). With ``y`` the
estimate and ``r`` the reference, both stereo ``(2, samples)``:

- ``MAE = mean_i (|yL_i - rL_i| + |yR_i - rR_i|)`` (eq. 1).
- ``MRSD = mean over resolutions (n_fft, hop, win) in (1024, 120, 600), (2048, 240, 1200),
  (512, 50, 240), Hann, of sc_L + sc_R + lm_L + lm_R`` (eqs. 2-4), with
  ``sc = ||R - Y||_F / ||R||_F`` on STFT magnitudes and
  ``lm = mean over bins and frames of |log(max(R, 1e-7)) - log(max(Y, 1e-7))|``
  (the multi-resolution STFT loss of Yamamoto et al., 2020, as in auraloss).

The STFT is librosa's (centred frames, reflect padding, periodic Hann of ``win``
samples zero-padded to ``n_fft``), the same framing as ``torch.stft`` in auraloss, so the
two agree (tested).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from mixinvert.dsp.loudness import TARGET_LUFS, loudness_normalize

#: (n_fft, hop, win) of the paper's MRSD.
MRSD_RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))
#: Floor of the STFT magnitudes before the log (the ``lm`` term).
MAG_FLOOR = 1e-7
#: Samples per block of :func:`mae`, and STFT values (frames x n_fft) per channel and
#: block of :func:`stft_distance`: what bounds the metrics' memory on long mixes (a few
#: tens of MB per block).
BLOCK_SAMPLES = 1 << 20
BLOCK_VALUES = 1 << 21


def _check_pair(estimate: np.ndarray, reference: np.ndarray) -> None:
    if estimate.shape != reference.shape:
        raise ValueError(f"estimate {estimate.shape} and reference {reference.shape} differ in shape")
    if estimate.ndim != 2 or estimate.shape[0] != 2:
        raise ValueError(f"expected stereo (2, samples), got {estimate.shape}")


def mae(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Eq. 1 on signals as given (no normalization): mean of |yL-rL| + |yR-rR|.

    Summed over blocks of :data:`BLOCK_SAMPLES` (bounded memory on long mixes).
    """
    _check_pair(estimate, reference)
    n = estimate.shape[-1]
    total = 0.0
    for a in range(0, n, BLOCK_SAMPLES):
        diff = np.abs(np.asarray(estimate[:, a : a + BLOCK_SAMPLES], np.float64)
                      - np.asarray(reference[:, a : a + BLOCK_SAMPLES], np.float64))
        total += float(diff.sum())
    return total / n


def stft_magnitude(x: np.ndarray, n_fft: int, hop: int, win: int) -> np.ndarray:
    """``|STFT|`` of ``x`` ``(..., samples)`` -> ``(..., n_fft // 2 + 1, frames)``."""
    import librosa

    return np.abs(
        librosa.stft(
            np.asarray(x, dtype=np.float64), n_fft=n_fft, hop_length=hop, win_length=win,
            window="hann", center=True, pad_mode="reflect",
        )
    )


def _stft_magnitude_blocks(x: np.ndarray, n_fft: int, hop: int, win: int) -> Iterator[np.ndarray]:
    """:func:`stft_magnitude` of ``x`` ``(channels, samples)``, ``BLOCK_VALUES // n_fft``
    frames at a time: ``(channels, n_fft // 2 + 1, frames)`` blocks, in order.

    The same framing as librosa's ``stft(center=True, pad_mode="reflect")`` (tested to
    agree), but only one block of frames is ever held. Short signals go through librosa
    itself.
    """
    n = x.shape[-1]
    pad = n_fft // 2
    n_frames = 1 + n // hop
    block = max(1, BLOCK_VALUES // n_fft)
    if n_frames <= block or n <= pad:
        yield stft_magnitude(x, n_fft, hop, win)
        return
    import librosa

    window = librosa.util.pad_center(librosa.filters.get_window("hann", win, fftbins=True), size=n_fft)
    for f0 in range(0, n_frames, block):
        f1 = min(n_frames, f0 + block)
        # samples of the reflect-padded signal that frames f0..f1-1 cover, mapped back to x
        idx = np.arange(f0 * hop, (f1 - 1) * hop + n_fft) - pad
        idx = np.where(idx < 0, -idx, idx)
        idx = np.where(idx >= n, 2 * (n - 1) - idx, idx)
        seg = np.asarray(x[:, idx], dtype=np.float64)
        frames = np.lib.stride_tricks.sliding_window_view(seg, n_fft, axis=-1)[:, ::hop]  # (ch, frames, n_fft)
        yield np.abs(np.fft.rfft(frames * window, axis=-1)).transpose(0, 2, 1)


def stft_distance(estimate: np.ndarray, reference: np.ndarray, n_fft: int, hop: int, win: int) -> float:
    """``sc_L + sc_R + lm_L + lm_R`` at one resolution, on signals as given.

    The sums behind each term are accumulated block by block of frames, so memory stays
    bounded however long the mixes are.
    """
    _check_pair(estimate, reference)
    diff2 = np.zeros(2)
    ref2 = np.zeros(2)
    log_abs = np.zeros(2)
    count = 0
    for Y, R in zip(_stft_magnitude_blocks(estimate, n_fft, hop, win),
                    _stft_magnitude_blocks(reference, n_fft, hop, win)):
        diff2 += ((R - Y) ** 2).sum(axis=(1, 2))
        ref2 += (R**2).sum(axis=(1, 2))
        log_abs += np.abs(np.log(np.maximum(R, MAG_FLOOR)) - np.log(np.maximum(Y, MAG_FLOOR))).sum(axis=(1, 2))
        count += R.shape[1] * R.shape[2]
    total = 0.0
    for ch in range(2):
        if ref2[ch] > 0:
            total += float(np.sqrt(diff2[ch]) / np.sqrt(ref2[ch]))
        else:  # silent reference channel: 0 if the estimate is silent too, else 1 per channel
            total += 0.0 if diff2[ch] == 0 else 1.0
        total += float(log_abs[ch] / count)
    return float(total)


def mrsd(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Eq. 4 on signals as given: mean over :data:`MRSD_RESOLUTIONS` of :func:`stft_distance`."""
    return float(np.mean([stft_distance(estimate, reference, *res) for res in MRSD_RESOLUTIONS]))


@dataclass(frozen=True)
class MixScores:
    """Distances between an estimated and a reference mix after loudness normalization."""

    mae: float
    mrsd: float


def compare_mixes(
    estimate: np.ndarray, reference: np.ndarray, sample_rate: int, *, target_lufs: float = TARGET_LUFS
) -> MixScores:
    """The paper's MAE and MRSD after normalizing both mixes to ``target_lufs``.

    Shape: both ``(2, samples)``. A silent mix is compared as it is (no loudness to
    normalize); see :func:`mixinvert.dsp.loudness.loudness_normalize`.
    """
    _check_pair(estimate, reference)
    y, _ = loudness_normalize(estimate, sample_rate, target_lufs)
    r, _ = loudness_normalize(reference, sample_rate, target_lufs)
    return MixScores(mae=mae(y, r), mrsd=mrsd(y, r))
