"""The real console scored against a reference mix on excerpts, one track at a time.

Per-song refinement (``eami+refine``) searches console v1's settings with the real
processors (pedalboard), not a model of them. Each candidate is scored by the paper's
multi-resolution STFT distance (the MRSD of :mod:`mixinvert.metrics.audio`, without the
loudness normalization: the fit must get the level right) between the console's mix and
the reference, on a few loud excerpts of the song (:mod:`mixinvert.dsp.excerpts`).

A mix is the sum of per-track contributions, so :class:`ExcerptObjective` keeps every
track's current contribution on every excerpt; changing one track re-renders that track
only (``len(excerpts)`` short renders), and the reference spectrograms are computed once.
:meth:`ExcerptObjective.track_losses` scores many candidates for one track on a thread
pool: pedalboard and ``torch.stft`` release the GIL, so threads use every core without
copying audio between processes.

The distance is :class:`~mixinvert.metrics.reference.ReferenceSpectra`: the metric's own
formula with the reference's spectrograms computed once for the whole search.
"""

from __future__ import annotations

import os
import threading
from typing import Sequence

import numpy as np

from mixinvert.console.render import render_validated
from mixinvert.console.schema import CONSOLE_V1, ParamSchema
from mixinvert.dsp.excerpts import Excerpt
from mixinvert.executors import LocalExecutor, single_threaded_torch
from mixinvert.metrics.reference import ReferenceSpectra

_LOCAL_EXECUTORS: dict[int, LocalExecutor] = {}
_LOCAL_LOCK = threading.Lock()


def _shared_local(workers: int) -> LocalExecutor:
    """One :class:`~mixinvert.executors.LocalExecutor` per thread count for the process (its
    threads are reused from search to search instead of started for every batch)."""
    with _LOCAL_LOCK:
        if workers not in _LOCAL_EXECUTORS:
            _LOCAL_EXECUTORS[workers] = LocalExecutor(workers)
        return _LOCAL_EXECUTORS[workers]


class ExcerptObjective:
    """Console v1 on excerpts of one song, scored against the reference mix.

    Parameters
    ----------
    tracks : sequence of np.ndarray [shape=(channels, samples)]
    mix : np.ndarray [shape=(2, samples)], the reference
    sample_rate : int, Hz
    excerpts : the windows to score (:func:`~mixinvert.dsp.excerpts.choose_excerpts`)
    values : np.ndarray [shape=(n_tracks, 16)], physical start settings
    workers : threads for :meth:`track_losses` (default: all cores)
    executor : where :meth:`track_losses` runs its candidates (default: this process's
        shared :class:`~mixinvert.executors.LocalExecutor` of ``workers`` threads). A
        candidate is a few milliseconds of work on audio this object holds, so it stays
        on local threads; the unit a cluster gets is the song (``evaluate --ray``).
    """

    def __init__(
        self,
        tracks: Sequence[np.ndarray],
        mix: np.ndarray,
        sample_rate: int,
        excerpts: Sequence[Excerpt],
        values: np.ndarray,
        *,
        schema: ParamSchema = CONSOLE_V1,
        workers: int | None = None,
        executor: LocalExecutor | None = None,
    ) -> None:
        if not excerpts:
            raise ValueError("at least one excerpt is needed")
        self.schema = schema
        self.sample_rate = int(sample_rate)
        self.excerpts = list(excerpts)
        self.segments = [[np.ascontiguousarray(t[:, e.render_start:e.stop], dtype=np.float32) for t in tracks]
                         for e in self.excerpts]
        self.references = [ReferenceSpectra(mix[:, e.start:e.stop]) for e in self.excerpts]
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.executor = executor if executor is not None else _shared_local(self.workers)
        self.values = schema.validate(np.array(values, dtype=np.float64))
        if self.values.shape != (len(tracks), schema.size):
            raise ValueError(f"values must be ({len(tracks)}, {schema.size}), got {self.values.shape}")
        self.contrib = [[self._render(i, e, self.values[i]) for e in range(len(self.excerpts))]
                        for i in range(len(tracks))]
        self.totals = [np.sum([c[e] for c in self.contrib], axis=0) for e in range(len(self.excerpts))]
        #: Candidates scored so far (:meth:`track_loss` calls, counted under a lock: they run
        #: on several threads at once).
        self.evaluations = 0
        self._count_lock = threading.Lock()

    @property
    def num_tracks(self) -> int:
        return len(self.contrib)

    def _render(self, track: int, excerpt: int, values: np.ndarray) -> np.ndarray:
        out = render_validated(self.segments[excerpt][track], self.sample_rate, values, self.schema.names)
        return out[:, self.excerpts[excerpt].preroll:]

    def loss(self) -> float:
        """The distance of the current settings (mean over excerpts)."""
        return float(np.mean([ref.distance(tot) for ref, tot in zip(self.references, self.totals)]))

    def loss_on(self, excerpts: Sequence[int]) -> float:
        """The distance of the current settings on some of the excerpts (by index)."""
        return float(np.mean([self.references[e].distance(self.totals[e]) for e in excerpts]))

    def track_loss(self, track: int, values: np.ndarray, excerpts: Sequence[int] | None = None) -> float:
        """The distance with track ``track`` at physical ``values`` and the others as they
        are (mean over ``excerpts``, by index; default all)."""
        values = self.schema.validate(np.asarray(values, dtype=np.float64))
        which = range(len(self.references)) if excerpts is None else excerpts
        total = 0.0
        for e in which:
            mix = self.totals[e] - self.contrib[track][e] + self._render(track, e, values)
            total += self.references[e].distance(mix)
        with self._count_lock:
            self.evaluations += 1
        return total / len(which)

    def track_losses(
        self, track: int, candidates: Sequence[np.ndarray], excerpts: Sequence[int] | None = None
    ) -> list[float]:
        """:meth:`track_loss` for many physical settings of one track, on a thread pool."""
        if self.workers == 1 or len(candidates) == 1:
            with single_threaded_torch():
                return [self.track_loss(track, c, excerpts) for c in candidates]
        return list(self.executor.map(self.track_loss, ((track, c, excerpts) for c in candidates)))

    def set_track(self, track: int, values: np.ndarray) -> None:
        """Make ``values`` track ``track``'s current settings (updates the cached mix)."""
        values = self.schema.validate(np.asarray(values, dtype=np.float64))
        for e in range(len(self.excerpts)):
            self.contrib[track][e] = self._render(track, e, values)
            # summed afresh (not updated in place) so that no rounding drift builds up
            self.totals[e] = np.sum([c[e] for c in self.contrib], axis=0)
        self.values[track] = values

    def loudest_excerpt(self, track: int) -> int:
        """The excerpt where track ``track``'s current contribution has the most energy."""
        return int(np.argmax([float(np.sum(np.square(c, dtype=np.float64))) for c in self.contrib[track]]))

    def track_energy(self) -> np.ndarray:
        """Each track's share of the current contributions' energy, ``(n_tracks,)``."""
        energy = np.array([sum(float(np.sum(np.square(c, dtype=np.float64))) for c in per) for per in self.contrib])
        total = energy.sum()
        return energy / total if total > 0 else energy
