"""Excerpts of a song for per-song fitting: loud, spread out, with pre-roll.

Fitting on a whole 3-minute song every step is wasteful; a few windows where the mix is
loud, spread over the song, carry most of what the settings change. Each window gets
``preroll`` samples before it, rendered but not scored, so that filter, compressor and
reverb state has built up by the time scoring starts.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    if count < 1:
        raise ValueError("count must be at least 1")
    n = mix.shape[-1]
    win = int(round(seconds * sample_rate))
    pre = int(round(preroll_seconds * sample_rate))
    if win <= 0 or n <= win + pre:
        return [Excerpt(0, 0, n)]
    hop = max(1, win // 2)
    starts = np.arange(pre, n - win + 1, hop)
    power = np.asarray(mix, dtype=np.float64) ** 2
    cumulative = np.concatenate([[0.0], np.cumsum(power.sum(axis=0))])
    energy = cumulative[starts + win] - cumulative[starts]
    chosen: list[int] = []
    for i in np.argsort(-energy, kind="stable"):
        s = int(starts[i])
        if all(abs(s - c) >= win for c in chosen):
            chosen.append(s)
        if len(chosen) == count:
            break
    return [Excerpt(s - pre, s, s + win) for s in sorted(chosen)]
