"""The distance to one fixed reference mix, with the reference's spectrograms computed once.

A search or a final check scores many estimates against the same reference: computing the
reference's STFT magnitudes once halves the cost of every score. The formulas are the
metric's own (:func:`mixinvert.metrics.audio.mrsd`, :func:`mixinvert.metrics.audio.compare_mixes`;
cross-tested in ``tests/metrics``). Why not auraloss: its loss recomputes the reference's
STFT on every call and uses other resolutions than the paper's MRSD.
"""

from __future__ import annotations

import numpy as np
import torch

from mixinvert.dsp.loudness import TARGET_LUFS, loudness_normalize
from mixinvert.metrics.audio import MAG_FLOOR, MRSD_RESOLUTIONS


def _magnitudes(x: torch.Tensor) -> list[torch.Tensor]:
    """``|STFT|`` of ``x`` ``(2, samples)`` at the MRSD resolutions (librosa's framing)."""
    out = []
    for n_fft, hop, win in MRSD_RESOLUTIONS:
        window = torch.hann_window(win, periodic=True, dtype=x.dtype)
        spec = torch.stft(x, n_fft, hop_length=hop, win_length=win, window=window, center=True,
                          pad_mode="reflect", return_complex=True)
        out.append(torch.hypot(spec.real, spec.imag))  # several times faster than spec.abs() here
    return out


class ReferenceSpectra:
    """The reference's STFT magnitudes at the MRSD resolutions, for scoring many estimates.

    ``distance(estimate)`` equals :func:`mixinvert.metrics.audio.mrsd` (``sc_L + sc_R +
    lm_L + lm_R``, averaged over resolutions) to float32 precision.
    """

    def __init__(self, reference: np.ndarray) -> None:
        ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32))
        if ref.ndim != 2 or ref.shape[0] != 2:
            raise ValueError(f"the reference must be stereo (2, samples), got {tuple(ref.shape)}")
        self.num_samples = int(ref.shape[-1])
        self.mags = _magnitudes(ref)
        self.norms = [torch.linalg.vector_norm(m, dim=(-2, -1)) for m in self.mags]
        self.logs = [torch.log(torch.clamp(m, min=MAG_FLOOR)) for m in self.mags]

    def distance(self, estimate: np.ndarray | torch.Tensor) -> float:
        y = torch.as_tensor(estimate, dtype=torch.float32)
        if tuple(y.shape) != (2, self.num_samples):
            raise ValueError(f"expected (2, {self.num_samples}), got {tuple(y.shape)}")
        total = 0.0
        for Y, R, norm, logR in zip(_magnitudes(y), self.mags, self.norms, self.logs):
            diff = torch.linalg.vector_norm(R - Y, dim=(-2, -1))
            sc = torch.where(norm > 0, diff / torch.clamp(norm, min=1e-30), (diff > 0).to(diff.dtype))
            lm = torch.mean(torch.abs(logR - torch.log(torch.clamp(Y, min=MAG_FLOOR))), dim=(-2, -1))
            total += float(sc.sum() + lm.sum())
        return total / len(MRSD_RESOLUTIONS)


class LoudnessNormalizedReference:
    """:func:`~mixinvert.metrics.audio.compare_mixes`'s MRSD against one fixed reference:
    both mixes normalized to ``target_lufs``, the reference's spectra computed once (about
    0.6 GB per minute of audio). ``mrsd(estimate)`` equals ``compare_mixes(estimate,
    reference, sample_rate).mrsd`` to float32 precision."""

    def __init__(self, reference: np.ndarray, sample_rate: int, *, target_lufs: float = TARGET_LUFS) -> None:
        self.sample_rate = int(sample_rate)
        self.target_lufs = target_lufs
        self.spectra = ReferenceSpectra(self._normalized(reference))

    def _normalized(self, x: np.ndarray) -> np.ndarray:
        return loudness_normalize(x, self.sample_rate, self.target_lufs)[0]

    def mrsd(self, estimate: np.ndarray) -> float:
        return self.spectra.distance(self._normalized(estimate))
