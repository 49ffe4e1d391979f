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


def choose_excerpts_covering(
    mix: np.ndarray,
    tracks: Sequence[np.ndarray],
    sample_rate: int,
    *,
    count: int,
    seconds: float,
    preroll_seconds: float,
) -> list[Excerpt]:
    """Up to ``count`` windows chosen for loudness *and* variety: every track heard.

    :func:`choose_excerpts` takes the loudest windows of the mix; a tom that plays only in
    one fill, or a part that enters late, may then never sound in them, and nothing fitted
    on those excerpts can learn its settings. Here each candidate window (a grid of half a
    window, as there) is worth, per track, its energy relative to that track's loudest
    window; windows are taken greedily by how much they raise the tracks' coverage (the
    largest such relative energy over the windows taken so far, summed over tracks), ties
    broken by the mix's energy. The first window is thus the one where most tracks sound
    near their loudest, and later ones fill in the tracks still missing. Silent tracks
    count for nothing. Windows do not overlap; they come back in time order.

    Parameters
    ----------
    mix : np.ndarray [shape=(channels, samples)]
    tracks : sequence of np.ndarray [shape=(channels, samples)], the mix's length
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

    def window_energy(x: np.ndarray) -> np.ndarray:
        power = np.square(np.asarray(x, dtype=np.float64)).sum(axis=0)
        cumulative = np.concatenate([[0.0], np.cumsum(power)])
        return cumulative[starts + win] - cumulative[starts]

    mix_energy = window_energy(mix)
    per_track = np.array([window_energy(t) for t in tracks]) if len(tracks) else np.zeros((0, starts.size))
    peak = per_track.max(axis=1, keepdims=True) if per_track.size else np.zeros((0, 1))
    # relative amplitude (not energy): a track 10 dB below its loudest is still well heard
    relative = np.sqrt(np.divide(per_track, peak, out=np.zeros_like(per_track), where=peak > 0))
    covered = np.zeros(relative.shape[0])
    chosen: list[int] = []
    available = np.ones(starts.size, dtype=bool)
    tie = mix_energy / (mix_energy.max() + 1e-30) * 1e-6  # mix loudness only breaks ties
    while len(chosen) < count and available.any():
        gain = np.maximum(relative - covered[:, None], 0.0).sum(axis=0) + tie
        gain[~available] = -np.inf
        best = int(np.argmax(gain))
        chosen.append(int(starts[best]))
        covered = np.maximum(covered, relative[:, best])
        available &= np.abs(starts - starts[best]) >= win
    return [Excerpt(s - pre, s, s + win) for s in sorted(chosen)]
