"""The numbers behind the report's pictures: pure functions, arrays in, arrays out.

- :func:`eq_response_db`: the magnitude response of a track's EQ, measured by passing a
  unit impulse through console v1's own EQ processors
  (:func:`mixinvert.console.render.gain_eq_processors`, the gain left out) and taking its
  FFT, so the curve is what the console does, with no filter formulas written twice.
- :func:`compressor_curve_db`: the compressor's static transfer curve (hard knee, as
  pedalboard's JUCE compressor): ``out = in`` below the threshold,
  ``out = thr + (in - thr) / ratio`` above it.
- :func:`spectrogram_db`: a power spectrogram in dB, averaged over channels, with a hop
  that keeps the number of frames bounded for long songs.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pedalboard as pb

from mixinvert.console.render import gain_eq_processors

#: The report's frequency axis, Hz.
F_MIN_HZ, F_MAX_HZ = 20.0, 20000.0


def eq_response_db(
    settings: Mapping[str, float],
    sample_rate: int,
    freqs_hz: np.ndarray | None = None,
    *,
    n_points: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """The EQ's magnitude response ``(freqs_hz, gain_db)`` for one track's settings.

    Parameters
    ----------
    settings : ``{name: physical value}`` with at least console v1's gain and EQ names
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
    # 2**16 samples at 44.1 kHz: 0.67 Hz bins, and far longer than any v1 filter rings
    n = 1 << int(np.ceil(np.log2(1.5 * sample_rate)))
    impulse = np.zeros((1, n), dtype=np.float32)
    impulse[0, 0] = 1.0
    eq = pb.Pedalboard(gain_eq_processors(dict(settings))[1:])  # [0] is the gain
    h = eq(impulse, int(sample_rate), reset=True)[0].astype(np.float64)
    mag = np.abs(np.fft.rfft(h))
    bins = np.fft.rfftfreq(n, 1.0 / sample_rate)
    return freqs_hz, 20.0 * np.log10(np.maximum(np.interp(freqs_hz, bins, mag), 1e-12))


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
