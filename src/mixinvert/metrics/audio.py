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

from dataclasses import dataclass

import numpy as np

from mixinvert.dsp.loudness import TARGET_LUFS, loudness_normalize

#: (n_fft, hop, win) of the paper's MRSD.
MRSD_RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))
_MAG_FLOOR = 1e-7


def _check_pair(estimate: np.ndarray, reference: np.ndarray) -> None:
    if estimate.shape != reference.shape:
        raise ValueError(f"estimate {estimate.shape} and reference {reference.shape} differ in shape")
    if estimate.ndim != 2 or estimate.shape[0] != 2:
        raise ValueError(f"expected stereo (2, samples), got {estimate.shape}")


def mae(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Eq. 1 on signals as given (no normalization): mean of |yL-rL| + |yR-rR|."""
    _check_pair(estimate, reference)
    diff = np.abs(np.asarray(estimate, np.float64) - np.asarray(reference, np.float64))
    return float(diff.sum(axis=0).mean())


def stft_magnitude(x: np.ndarray, n_fft: int, hop: int, win: int) -> np.ndarray:
    """``|STFT|`` of ``x`` ``(..., samples)`` -> ``(..., n_fft // 2 + 1, frames)``."""
    import librosa

    return np.abs(
        librosa.stft(
            np.asarray(x, dtype=np.float64), n_fft=n_fft, hop_length=hop, win_length=win,
            window="hann", center=True, pad_mode="reflect",
        )
    )


def stft_distance(estimate: np.ndarray, reference: np.ndarray, n_fft: int, hop: int, win: int) -> float:
    """``sc_L + sc_R + lm_L + lm_R`` at one resolution, on signals as given."""
    _check_pair(estimate, reference)
    Y = stft_magnitude(estimate, n_fft, hop, win)
    R = stft_magnitude(reference, n_fft, hop, win)
    total = 0.0
    for ch in range(2):
        r_norm = np.linalg.norm(R[ch])
        diff_norm = np.linalg.norm(R[ch] - Y[ch])
        if r_norm > 0:
            total += diff_norm / r_norm
        else:  # silent reference channel: 0 if the estimate is silent too, else 1 per channel
            total += 0.0 if diff_norm == 0 else 1.0
        total += float(np.mean(np.abs(np.log(np.maximum(R[ch], _MAG_FLOOR)) - np.log(np.maximum(Y[ch], _MAG_FLOOR)))))
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
