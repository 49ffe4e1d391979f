"""Integrated loudness (ITU-R BS.1770-4, via pyloudnorm) and normalization to a target.

pyloudnorm needs at least one 400 ms gating block; shorter signals raise ``ValueError``.
A silent signal has no loudness (``-inf`` LUFS): :func:`loudness_normalize` returns it
unchanged with a gain of 1, so that comparing against silence stays defined.
"""

from __future__ import annotations

import functools

import numpy as np

#: Loudness target of the paper's metrics, LUFS integrated.
TARGET_LUFS = -23.0


@functools.lru_cache(maxsize=8)
def _meter(sample_rate: int):
    import pyloudnorm

    return pyloudnorm.Meter(sample_rate)


def integrated_loudness(x: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness of ``x`` in LUFS (``-inf`` for silence).

    Shape: ``x`` is ``(channels, samples)``.
    """
    channels, samples = x.shape
    if samples < int(0.4 * sample_rate):
        raise ValueError(
            f"loudness needs at least 0.4 s of audio, got {samples / sample_rate:.3f} s"
        )
    data = np.asarray(x, dtype=np.float64).T
    with np.errstate(divide="ignore"):
        return float(_meter(int(sample_rate)).integrated_loudness(data))


def loudness_normalize(
    x: np.ndarray, sample_rate: int, target_lufs: float = TARGET_LUFS
) -> tuple[np.ndarray, float]:
    """Scale ``x`` to ``target_lufs``; returns ``(scaled (channels, samples), gain_db)``.

    Silence (loudness ``-inf``) is returned unchanged with ``gain_db = 0``.
    """
    lufs = integrated_loudness(x, sample_rate)
    if not np.isfinite(lufs):
        return np.asarray(x, dtype=np.float64), 0.0
    gain_db = target_lufs - lufs
    return np.asarray(x, dtype=np.float64) * 10.0 ** (gain_db / 20.0), float(gain_db)
