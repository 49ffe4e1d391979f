"""Where each raw track sits in the mix in time, and with which polarity (GCC-PHAT).

Engineers nudge tracks (a vocal 1 ms early, a mic's delay compensated) and flip polarity;
a console that cannot say so leaves comb filtering no EQ can fit. This module measures
both from the audio, per track, as a start for the fit:

- **Offset**: the generalized cross-correlation with phase transform (Knapp & Carter
  1976) of the track's mono sum against the mix's mono sum, searched within
  ``+-max_offset_ms``; the peak is refined to a fraction of a sample by a parabola
  through it and its neighbours. Positive: the track sits later in the mix than in its
  file.
- **Polarity**: the sign of the correlation at that peak (-1: the mix holds the track
  inverted).
- **Trust**: the peak's *sharpness* (its height over the median magnitude of the
  correlation within the search range). Tracks whose peak is blunt (a bass under a full
  mix, a track the engineer replaced) are marked unreliable, and their offset is not
  used.
- **Drift**: the same measurement in windows over the song (where the track is loud).
  A track whose offset moves between windows by more than ``drift_tolerance_ms`` is not
  a time-invariant copy in the mix (an edited or pitch-corrected vocal, a retimed part):
  it is flagged with what was measured, never silently fitted with one offset. One
  window alone that disagrees is not a drift: against a full mix, another track can
  correlate with this one in a window (:func:`window_drift`).

Why by hand: GCC-PHAT is a few lines of FFTs; the libraries that ship it (pyroomacoustics,
for microphone arrays) would add a large dependency for them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: Search range of the offset (ms): wider than any nudge or mic delay in a mix, narrow
#: enough that a repeated bar cannot be mistaken for the track.
MAX_OFFSET_MS = 20.0
#: A peak this many times the median correlation magnitude is a measurement; below, noise.
MIN_SHARPNESS = 20.0
#: Windows (s) of the drift check, hopped by half their length.
WINDOW_S = 4.0
#: Windows where the track is this far below its loudest window are not measured (dB).
QUIET_WINDOW_DB = 30.0
#: Offsets that move more than this between windows (ms) mean the mix holds no fixed copy.
DRIFT_TOLERANCE_MS = 0.25
#: Offsets under one sample are within what the measurement resolves on real recordings
#: (tracks that the engineer did not move measure a few tenths of a sample against a full
#: mix): :meth:`Alignment.applied_offset_samples` reads them as 0.
MIN_OFFSET_SAMPLES = 1.0


@dataclass(frozen=True)
class Alignment:
    """One track's place in the mix (see the module doc)."""

    #: Samples (fractional); positive: later in the mix than in the track's file.
    offset_samples: float
    #: +1, or -1 when the mix holds the track inverted.
    polarity: int
    #: Peak over median correlation magnitude; :attr:`reliable` when at least MIN_SHARPNESS.
    sharpness: float
    reliable: bool
    #: Offsets (samples) of the windows that gave a reliable measurement, in time order.
    window_offsets_samples: tuple[float, ...]
    #: How far the window offsets move (samples), one outlier set aside (:func:`window_drift`).
    drift_samples: float
    #: The offset moves over the song: the mix holds no time-invariant copy of the track.
    drifts: bool

    def offset_ms(self, sample_rate: int) -> float:
        return 1000.0 * self.offset_samples / sample_rate

    @property
    def usable(self) -> bool:
        """Whether a fit may use the measurement: a sharp peak that does not drift."""
        return self.reliable and not self.drifts

    def applied_offset_samples(self) -> float:
        """The offset a console is set to: the measured one when :attr:`usable` and at least
        :data:`MIN_OFFSET_SAMPLES`, else 0."""
        if not self.usable or abs(self.offset_samples) < MIN_OFFSET_SAMPLES:
            return 0.0
        return self.offset_samples

    def to_dict(self, sample_rate: int) -> dict[str, object]:
        """Plain data for params.json and the report (offsets also in ms)."""
        out = asdict(self)
        out["window_offsets_samples"] = list(self.window_offsets_samples)
        out["offset_ms"] = self.offset_ms(sample_rate)
        out["drift_ms"] = 1000.0 * self.drift_samples / sample_rate
        return out


def _mono(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=0) if x.ndim == 2 else x


def gcc_phat(track: np.ndarray, mix: np.ndarray, max_lag: int) -> np.ndarray:
    """The phase-transformed cross-correlation of mono ``track`` and ``mix`` (same length)
    at lags ``-max_lag .. max_lag`` (``2 max_lag + 1`` values; lag > 0: the track sits
    later in the mix)."""
    n = len(track) + len(mix)
    n_fft = 1 << int(np.ceil(np.log2(max(n, 2))))
    cross = np.fft.rfft(mix, n_fft) * np.conj(np.fft.rfft(track, n_fft))
    magnitude = np.abs(cross)
    cross = np.where(magnitude > magnitude.max() * 1e-9, cross / np.maximum(magnitude, 1e-300), 0.0)
    cc = np.fft.irfft(cross, n_fft)
    return np.concatenate([cc[n_fft - max_lag:], cc[: max_lag + 1]])


def _peak(cc: np.ndarray, max_lag: int) -> tuple[float, int, float]:
    """(fractional lag, polarity, sharpness) of the largest-magnitude peak of ``cc``."""
    magnitude = np.abs(cc)
    i = int(np.argmax(magnitude))
    median = float(np.median(magnitude)) + 1e-30
    sharpness = float(magnitude[i] / median)
    shift = 0.0
    if 0 < i < len(cc) - 1:  # a parabola through the peak and its neighbours
        a, b, c = magnitude[i - 1], magnitude[i], magnitude[i + 1]
        denominator = a - 2.0 * b + c
        if denominator < 0:
            shift = float(np.clip(0.5 * (a - c) / denominator, -0.5, 0.5))
    return i - max_lag + shift, 1 if cc[i] >= 0 else -1, sharpness


def window_drift(offsets: list[float] | tuple[float, ...]) -> float:
    """How far window ``offsets`` (samples) move: their range once the one window farthest
    from their median is set aside, so that one window alone (another track correlating
    there) does not count and two or more that moved do; 0 with fewer than three windows."""
    if len(offsets) < 3:
        return 0.0
    values = np.asarray(offsets, dtype=np.float64)
    kept = np.delete(values, int(np.argmax(np.abs(values - np.median(values)))))
    return float(kept.max() - kept.min())


def estimate_alignment(
    track: np.ndarray,
    mix: np.ndarray,
    sample_rate: int,
    *,
    max_offset_ms: float = MAX_OFFSET_MS,
    window_s: float = WINDOW_S,
    min_sharpness: float = MIN_SHARPNESS,
    drift_tolerance_ms: float = DRIFT_TOLERANCE_MS,
) -> Alignment:
    """Offset, polarity and drift of ``track`` ``(channels, samples)`` in ``mix`` ``(channels, samples)``."""
    x, m = _mono(track), _mono(mix)
    if x.shape[-1] != m.shape[-1]:
        raise ValueError(f"track and mix differ in length ({x.shape[-1]} and {m.shape[-1]} samples)")
    max_lag = max(1, int(round(max_offset_ms * sample_rate / 1000.0)))
    offset, polarity, sharpness = _peak(gcc_phat(x, m, max_lag), max_lag)
    reliable = sharpness >= min_sharpness

    window = int(window_s * sample_rate)
    windows: list[float] = []
    if reliable and x.shape[-1] >= 2 * window:
        starts = range(0, x.shape[-1] - window + 1, window // 2)
        energy = np.array([float(np.sum(x[a:a + window] ** 2)) for a in starts])
        loud = energy >= energy.max() * 10 ** (-QUIET_WINDOW_DB / 10)
        for a, keep in zip(starts, loud):
            if not keep:
                continue
            lag, _, sharp = _peak(gcc_phat(x[a:a + window], m[a:a + window], max_lag), max_lag)
            if sharp >= min_sharpness:
                windows.append(lag)
    drift = window_drift(windows)
    return Alignment(
        offset_samples=float(offset),
        polarity=int(polarity),
        sharpness=sharpness,
        reliable=bool(reliable),
        window_offsets_samples=tuple(float(w) for w in windows),
        drift_samples=drift,
        drifts=bool(drift > drift_tolerance_ms * sample_rate / 1000.0),
    )
