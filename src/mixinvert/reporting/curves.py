"""The numbers behind the report's pictures: pure functions, arrays in, arrays out.

- :func:`eq_response_db`: the magnitude response of a track's EQ on the report's frequency
  axis: console v1's EQ as :mod:`mixinvert.console.eq` defines it (tested there against
  the console's own pedalboard filters).
- :func:`compressor_curve_db`: the compressor's static transfer curve (hard knee, as
  pedalboard's JUCE compressor): ``out = in`` below the threshold,
  ``out = thr + (in - thr) / ratio`` above it.
- :func:`spectrogram_db`: a power spectrogram in dB, averaged over channels, with a hop
  that keeps the number of frames bounded for long songs.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from mixinvert.console import eq

#: The report's frequency axis, Hz.
F_MIN_HZ, F_MAX_HZ = 20.0, 20000.0


def eq_response_db(
    settings: Mapping[str, float],
    sample_rate: int,
    freqs_hz: np.ndarray | None = None,
    *,
    n_points: int = 256,
    sections: tuple = eq.EQ_SECTIONS,
) -> tuple[np.ndarray, np.ndarray]:
    """The EQ's magnitude response ``(freqs_hz, gain_db)`` for one track's settings.

    Parameters
    ----------
    settings : ``{name: physical value}`` with at least the settings ``sections`` read
        (default console v1's EQ; :func:`mixinvert.console.eq.v2_sections` for v2's
        high-pass and EQ, ``MASTER_EQ_SECTIONS``, ``REVERB_BUS_SECTIONS``)
    sample_rate : Hz (the response of a digital filter depends on it)
    freqs_hz : where to evaluate; default ``n_points`` log-spaced from 20 Hz to
        20 kHz (or just below Nyquist, if lower)

    Returns
    -------
    freqs_hz : np.ndarray [shape=(n,)]
    gain_db : np.ndarray [shape=(n,)], the EQ's gain at each frequency (the track's
        ``gain_db`` is not included: it is the fader)
    """
    if freqs_hz is None:
        top = min(F_MAX_HZ, 0.99 * sample_rate / 2.0)
        freqs_hz = np.geomspace(F_MIN_HZ, top, n_points)
    freqs_hz = np.asarray(freqs_hz, dtype=np.float64)
    return freqs_hz, eq.eq_response_db(settings, freqs_hz, sample_rate, sections=sections)


def compressor_curve_db(in_db: np.ndarray, threshold_db: float, ratio: float) -> np.ndarray:
    """Static output level (dB) of a hard-knee compressor for input levels ``in_db`` (dB).

    ``out = in`` for ``in <= threshold_db``, else ``threshold_db + (in - threshold_db) / ratio``.
    Shape: same as ``in_db``.
    """
    if ratio < 1.0:
        raise ValueError(f"a compressor's ratio must be at least 1, got {ratio}")
    in_db = np.asarray(in_db, dtype=np.float64)
    return np.where(in_db > threshold_db, threshold_db + (in_db - threshold_db) / ratio, in_db)


def spectrogram_db(
    x: np.ndarray,
    sample_rate: int,
    *,
    n_fft: int = 2048,
    max_frames: int = 1200,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Power spectrogram in dB (0 dB: a full-scale sine), averaged over channels.

    Parameters
    ----------
    x : np.ndarray [shape=(channels, samples)]
    sample_rate : Hz
    n_fft : frame length (Hann window)
    max_frames : the hop grows beyond ``n_fft // 4`` so that there are at most this many

    Returns
    -------
    times_s : np.ndarray [shape=(frames,)], frame centres
    freqs_hz : np.ndarray [shape=(n_fft // 2 + 1,)]
    db : np.ndarray [shape=(n_fft // 2 + 1, frames)], float32, floored at -200 dB
    """
    channels, samples = np.atleast_2d(x).shape
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    hop = max(n_fft // 4, int(np.ceil(samples / max_frames)))
    pad = n_fft // 2
    padded = np.pad(x, ((0, 0), (pad, pad)))
    n_frames = 1 + max(0, (padded.shape[-1] - n_fft) // hop)
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann
    power = np.zeros((n_fft // 2 + 1, n_frames), dtype=np.float64)
    for ch in range(channels):
        frames = np.lib.stride_tricks.sliding_window_view(padded[ch], n_fft)[::hop][:n_frames]
        spec = np.fft.rfft(frames * window, axis=-1) * (2.0 / window.sum())
        power += (np.abs(spec) ** 2).T
    power /= channels
    db = 10.0 * np.log10(np.maximum(power, 1e-20))
    times = np.arange(n_frames) * hop / sample_rate
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    return times, freqs, db.astype(np.float32)
