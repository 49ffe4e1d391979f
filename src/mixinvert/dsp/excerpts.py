"""Excerpts of a song for per-song fitting: loud, spread out, with pre-roll.

Fitting on a whole 3-minute song every step is wasteful; a few windows where the mix is
loud, spread over the song, carry most of what the settings change. Each window gets
``preroll`` samples before it, rendered but not scored, so that filter, compressor and
reverb state has built up by the time scoring starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Excerpt:
    """Samples ``[start, stop)`` are scored; ``[render_start, stop)`` are rendered."""

    render_start: int
    start: int
    stop: int

    @property
    def preroll(self) -> int:
        return self.start - self.render_start


def _window_grid(
    n: int, sample_rate: int, count: int, seconds: float, preroll_seconds: float
) -> Excerpt | tuple[np.ndarray, int, int]:
    """Candidate window starts (a grid of half a window, after the pre-roll), the window
    and the pre-roll in samples; or the one excerpt of a song shorter than a window."""
    if count < 1:
        raise ValueError("count must be at least 1")
    win = int(round(seconds * sample_rate))
    pre = int(round(preroll_seconds * sample_rate))
    if win <= 0 or n <= win + pre:
        return Excerpt(0, 0, n)
    return np.arange(pre, n - win + 1, max(1, win // 2)), win, pre


def _window_energy(x: np.ndarray, starts: np.ndarray, win: int) -> np.ndarray:
    """Energy of ``x`` ``(channels, samples)`` in each window ``[start, start + win)``."""
    power = np.square(np.asarray(x, dtype=np.float64)).sum(axis=0)
    cumulative = np.concatenate([[0.0], np.cumsum(power)])
    return cumulative[starts + win] - cumulative[starts]


def choose_excerpts(
    mix: np.ndarray,
    sample_rate: int,
    *,
    count: int,
    seconds: float,
    preroll_seconds: float,
) -> list[Excerpt]:
    """Up to ``count`` windows of ``seconds``, loudest first, not overlapping, in time order.

    Candidate windows start on a grid of half a window; the loudest (RMS of the mix) is
    taken, its neighbours that overlap it are dropped, and so on. A song shorter than one
    window is one excerpt: the whole song, no pre-roll.

    Parameters
    ----------
    mix : np.ndarray [shape=(channels, samples)]
    """
    grid = _window_grid(mix.shape[-1], sample_rate, count, seconds, preroll_seconds)
    if isinstance(grid, Excerpt):
        return [grid]
    starts, win, pre = grid
    energy = _window_energy(mix, starts, win)
    chosen: list[int] = []
    for i in np.argsort(-energy, kind="stable"):
        s = int(starts[i])
        if all(abs(s - c) >= win for c in chosen):
            chosen.append(s)
        if len(chosen) == count:
            break
    return [Excerpt(s - pre, s, s + win) for s in sorted(chosen)]


def choose_excerpts_covering(
    mix: np.ndarray,
    tracks: Sequence[np.ndarray],
    sample_rate: int,
    *,
    count: int,
    seconds: float,
    preroll_seconds: float,
    extra: int = 2,
    heard: float = 0.3,
) -> list[Excerpt]:
    """The ``count`` loudest windows, plus up to ``extra`` more so that every track is heard.

    :func:`choose_excerpts` takes the loudest windows of the mix; a tom that plays only in
    one fill, or a part that enters late, may then never sound in them, and nothing fitted
    on those excerpts can learn its settings. Here, after the loudest windows, a track
    counts as heard when some chosen window has at least ``heard`` of the RMS of its own
    loudest window (0.3: within about 10 dB). While some tracks are not heard, the window
    that raises their coverage most (relative RMS, summed over those tracks) is added, up
    to ``extra`` windows. Silent tracks count for nothing. Windows do not overlap; they
    come back in time order.

    Parameters
    ----------
    mix : np.ndarray [shape=(channels, samples)]
    tracks : sequence of np.ndarray [shape=(channels, samples)], the mix's length
    """
    if extra < 0:
        raise ValueError("extra must be at least 0")
    loudest = choose_excerpts(mix, sample_rate, count=count, seconds=seconds, preroll_seconds=preroll_seconds)
    grid = _window_grid(mix.shape[-1], sample_rate, count, seconds, preroll_seconds)
    if isinstance(grid, Excerpt):
        return loudest
    starts, win, pre = grid
    per_track = np.array([_window_energy(t, starts, win) for t in tracks]) if len(tracks) else np.zeros((0, starts.size))
    peak = per_track.max(axis=1, keepdims=True) if per_track.size else np.zeros((0, 1))
    # relative amplitude (not energy): a track 10 dB below its loudest is still well heard
    relative = np.sqrt(np.divide(per_track, peak, out=np.zeros_like(per_track), where=peak > 0))
    chosen = [e.start for e in loudest]
    index = {int(s): i for i, s in enumerate(starts)}
    covered = relative[:, [index[c] for c in chosen]].max(axis=1)
    sounding = peak[:, 0] > 0
    available = np.all(np.abs(starts[:, None] - np.array(chosen)[None, :]) >= win, axis=1)
    for _ in range(extra):
        missing = sounding & (covered < heard)
        if not missing.any() or not available.any():
            break
        gain = np.maximum(relative[missing] - covered[missing, None], 0.0).sum(axis=0)
        gain[~available] = -np.inf
        best = int(np.argmax(gain))
        if gain[best] <= 0:
            break
        chosen.append(int(starts[best]))
        covered = np.maximum(covered, relative[:, best])
        available &= np.abs(starts - starts[best]) >= win
    return [Excerpt(s - pre, s, s + win) for s in sorted(chosen)]
