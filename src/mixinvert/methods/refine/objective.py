"""The real console scored against a reference mix on excerpts, one track at a time.

Per-song refinement (``eami+refine``) searches console settings with the real
processors (pedalboard), not a model of them. Each candidate is scored by the paper's
multi-resolution STFT distance (the MRSD of :mod:`mixinvert.metrics.audio`, without the
loudness normalization: the fit must get the level right) between the console's mix and
the reference, on a few loud excerpts of the song (:mod:`mixinvert.dsp.excerpts`).

A mix is the sum of per-track contributions, so :class:`ExcerptObjective` keeps every
track's current contribution on every excerpt; changing one track re-renders that track
only (``len(excerpts)`` short renders), and the reference spectrograms are computed once.
On console v2 a track's contribution is its strip's output and its send, both kept with
the excerpt's pre-roll, and every score runs their sums through the reverb bus and the
master chain (a compressor over the whole mix cannot be cached per track); the shared
settings are searched the same way (:meth:`ExcerptObjective.shared_losses`).
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
from mixinvert.console.render_v2 import render_bus_and_master, render_strip
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
    """A console on excerpts of one song, scored against the reference mix.

    Parameters
    ----------
    tracks : sequence of np.ndarray [shape=(channels, samples)]
    mix : np.ndarray [shape=(2, samples)], the reference
    sample_rate : int, Hz
    excerpts : the windows to score (:func:`~mixinvert.dsp.excerpts.choose_excerpts`)
    values : np.ndarray [shape=(n_tracks, schema.size)], physical start settings
    schema : the console (default v1)
    shared : np.ndarray [shape=(schema.shared.size,)], physical shared settings (console v2's
        buses and master; required there, refused for v1)
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
        shared: np.ndarray | None = None,
        workers: int | None = None,
        executor: LocalExecutor | None = None,
    ) -> None:
        if not excerpts:
            raise ValueError("at least one excerpt is needed")
        if (shared is None) != (schema.shared is None):
            raise ValueError(f"console {schema.version} takes {'shared settings' if schema.shared else 'none shared'}")
        self.schema = schema
        self.shared = None if shared is None else schema.shared.validate(np.array(shared, dtype=np.float64))
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
        """Track ``track``'s contribution on ``excerpt``: v1, its output after the pre-roll;
        v2, its output and its send ``(2, 2, samples)``, pre-roll included."""
        segment = self.segments[excerpt][track]
        if self.shared is None:
            out = render_validated(segment, self.sample_rate, values, self.schema.names)
            return out[:, self.excerpts[excerpt].preroll:]
        stereo, send = render_strip(segment, self.sample_rate, values, self.schema)
        return np.stack([stereo, np.zeros_like(stereo) if send is None else send])

    def _mix(self, excerpt: int, total: np.ndarray, shared: np.ndarray | None = None) -> np.ndarray:
        """The console's mix on ``excerpt`` from the summed contributions ``total`` (v2: through
        the bus and the master chain at ``shared``, default the current)."""
        if self.shared is None:
            return total
        sends = total[1] if np.any(total[1]) else None
        out = render_bus_and_master(total[0], sends, self.sample_rate, self.shared if shared is None else shared,
                                    self.schema)
        return out[:, self.excerpts[excerpt].preroll:]

    def _distance(self, excerpt: int, total: np.ndarray, shared: np.ndarray | None = None) -> float:
        return self.references[excerpt].distance(self._mix(excerpt, total, shared))

    def loss(self) -> float:
        """The distance of the current settings (mean over excerpts)."""
        return self.loss_on(range(len(self.references)))

    def loss_on(self, excerpts: Sequence[int]) -> float:
        """The distance of the current settings on some of the excerpts (by index)."""
        return float(np.mean([self._distance(e, self.totals[e]) for e in excerpts]))

    def track_loss(self, track: int, values: np.ndarray, excerpts: Sequence[int] | None = None) -> float:
        """The distance with track ``track`` at physical ``values`` and the others as they
        are (mean over ``excerpts``, by index; default all)."""
        values = self.schema.validate(np.asarray(values, dtype=np.float64))
        which = range(len(self.references)) if excerpts is None else excerpts
        total = 0.0
        for e in which:
            total += self._distance(e, self.totals[e] - self.contrib[track][e] + self._render(track, e, values))
        with self._count_lock:
            self.evaluations += 1
        return total / len(which)

    def shared_loss(self, shared: np.ndarray, excerpts: Sequence[int] | None = None) -> float:
        """The distance with the shared settings at physical ``shared`` and every track as it
        is (console v2; mean over ``excerpts``, default all)."""
        if self.shared is None:
            raise ValueError(f"console {self.schema.version} has no shared settings")
        shared = self.schema.shared.validate(np.asarray(shared, dtype=np.float64))
        which = range(len(self.references)) if excerpts is None else excerpts
        total = sum(self._distance(e, self.totals[e], shared) for e in which)
        with self._count_lock:
            self.evaluations += 1
        return total / len(which)

    def shared_losses(self, candidates: Sequence[np.ndarray]) -> list[float]:
        """:meth:`shared_loss` for many shared settings, on a thread pool."""
        if self.workers == 1 or len(candidates) == 1:
            with single_threaded_torch():
                return [self.shared_loss(c) for c in candidates]
        return list(self.executor.map(self.shared_loss, ((c,) for c in candidates)))

    def set_shared(self, shared: np.ndarray) -> None:
        """Make ``shared`` the current shared settings."""
        if self.shared is None:
            raise ValueError(f"console {self.schema.version} has no shared settings")
        self.shared = self.schema.shared.validate(np.array(shared, dtype=np.float64))

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

    def _energy(self, contribution: np.ndarray) -> float:
        """A contribution's energy (v2: its strip's output, not its send)."""
        return float(np.sum(np.square(contribution if self.shared is None else contribution[0], dtype=np.float64)))

    def loudest_excerpt(self, track: int) -> int:
        """The excerpt where track ``track``'s current contribution has the most energy."""
        return int(np.argmax([self._energy(c) for c in self.contrib[track]]))

    def track_energy(self) -> np.ndarray:
        """Each track's share of the current contributions' energy, ``(n_tracks,)``."""
        energy = np.array([sum(self._energy(c) for c in per) for per in self.contrib])
        total = energy.sum()
        return energy / total if total > 0 else energy
