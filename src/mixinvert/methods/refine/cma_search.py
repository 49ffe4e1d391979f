"""CMA-ES on the real console, one track at a time (the search stage of ``eami+refine``).

The whole song's settings (16 per track on console v1, up to 16 tracks or more) are too many for one
CMA-ES run to learn a covariance for in a minute or two. The search is organised in
blocks instead: one CMA-ES run (the ``cma`` package) per track over that track's free
normalized settings, the other tracks held where they are, tracks taken loudest first
(their share of the mix's energy) in rounds, each round with a smaller step size; on
console v2 the shared settings (reverb bus, master) are one more block, after the tracks.
Candidates are scored by :class:`~mixinvert.methods.refine.objective.ExcerptObjective` (the real
console on excerpts, re-rendering only the track being searched), on a thread pool.

A block only replaces a track's settings when its best candidate beats them, so the
distance never rises. The result depends only on the inputs, the seed and the work
budget (a :class:`~mixinvert.work.WorkMeter`), unless a wall-clock cap on the
meter cuts it short.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from mixinvert.methods.refine.objective import ExcerptObjective
from mixinvert.work import WorkMeter, excerpt_evaluation_units, prices_for


@dataclass(frozen=True)
class CmaConfig:
    """Settings of :func:`cma_search`."""

    rounds: int = 2
    #: Initial CMA-ES step size, normalized units (settings span [-1, 1]); halved each round.
    #: The search starts where the twin stopped, close to a minimum: steps of 0.05 found
    #: nothing better there (a dozen settings moved at once by that much are almost always
    #: worse), steps of 0.01 do (BENCHMARKS.md, the budget table's search column).
    sigma: float = 0.01
    #: Candidates per generation: few, so that a block takes more generations (more steps
    #: of the mean) for the same renders; a local refinement more than a global search.
    popsize: int = 4
    #: Most generations per block (one track in one round).
    generations: int = 12
    #: A block stops early when its best distance improves by less than this over
    #: ``block_patience`` generations (relative).
    min_improvement: float = 0.002
    block_patience: int = 3

    def __post_init__(self) -> None:
        if self.rounds < 0 or self.generations < 1 or self.popsize < 2:
            raise ValueError("rounds must be >= 0, generations >= 1 and popsize >= 2")
        if not 0 < self.sigma <= 1:
            raise ValueError("sigma must be in (0, 1]")


@dataclass
class CmaResult:
    """Best normalized settings, the distance before and after, and per-block records."""

    p: np.ndarray
    start_loss: float
    loss: float
    evaluations: int
    seconds: float
    stopped: str
    #: (round, track, distance before, distance after, generations)
    blocks: list[tuple[int, int, float, float, int]] = field(default_factory=list)
    #: Per track: the last CMA-ES standard deviations of its free settings (normalized), or None.
    stds: list[np.ndarray | None] = field(default_factory=list)
    #: The best normalized shared settings (console v2's buses and master), or None for v1.
    shared_p: np.ndarray | None = None


def _block_seed(seed: int, rnd: int, track: int) -> int:
    """A distinct CMA-ES seed per (seed, round, track), in cma's range (1 .. 2**32 - 1).

    cma seeds numpy's global generator with it (its own design); blocks run one at a time."""
    return int(np.random.SeedSequence([int(seed), rnd, track]).generate_state(1)[0]) % (2**32 - 2) + 1


def _must_stop(meter: WorkMeter, generation_units: float) -> str | None:
    """Why the search stops before its next generation: the work budget or the wall-clock
    cap (None: it goes on)."""
    if not meter.can_afford(generation_units):
        return "budget"
    if meter.time_is_up("search"):
        return "seconds cap"
    return None


def _block(losses: Callable[[list[np.ndarray]], list[float]], x0: np.ndarray, sigma: float, seed: int,
           current: float, config: CmaConfig, meter: WorkMeter, per_evaluation: float, generation_units: float
           ) -> tuple[float, np.ndarray | None, int, int, np.ndarray, str | None]:
    """One CMA-ES run from ``x0`` (normalized, searched within [-1, 1]) scored by ``losses``
    (a list of candidates in, their distances out) against the current distance: the best
    distance, its candidate (None if none beat ``current``), the generations, the
    evaluations, the last standard deviations, and why the search must stop (None: it may
    go on)."""
    import cma

    size = x0.size
    options = {"bounds": [-1.0, 1.0], "popsize": config.popsize, "seed": seed, "verbose": -9,
               "maxiter": config.generations, "tolfun": 0.0, "tolx": 1e-6}
    if size == 1:  # cma needs 2 dimensions or more: search a dummy second one
        x0 = np.append(x0, 0.0)
    es = cma.CMAEvolutionStrategy(x0, sigma, options)
    best_f, best_x, history, generations, evaluations, why = current, None, [current], 0, 0, None
    while not es.stop():
        why = _must_stop(meter, generation_units)
        if why is not None:
            break
        xs = es.ask()
        candidates = [np.clip(np.asarray(x)[:size], -1.0, 1.0) for x in xs]
        fs = losses(candidates)
        meter.charge(len(fs) * per_evaluation)
        evaluations += len(fs)
        es.tell(xs, fs)
        generations += 1
        k = int(np.argmin(fs))
        if fs[k] < best_f:
            best_f, best_x = fs[k], candidates[k]
        history.append(best_f)
        if (len(history) > config.block_patience
                and history[-1 - config.block_patience] - best_f
                < config.min_improvement * history[-1 - config.block_patience]):
            break
    stds = np.asarray(es.sigma * np.sqrt(np.diag(es.C)))[:size]
    return best_f, best_x, generations, evaluations, stds, why


def cma_search(
    objective: ExcerptObjective,
    p_start: np.ndarray,
    free: np.ndarray,
    config: CmaConfig = CmaConfig(),
    *,
    seed: int = 0,
    meter: WorkMeter | None = None,
    progress: Callable[[float], None] | None = None,
    shared_start: np.ndarray | None = None,
    free_shared: np.ndarray | None = None,
) -> CmaResult:
    """Search normalized settings ``(n_tracks, schema.size)`` with CMA-ES, block by block.

    ``objective`` must hold the settings ``p_start`` (denormalized) when called; it holds
    the result afterwards. ``free`` ``(n_tracks, schema.size)`` marks the settings to search.
    On a console with shared settings (v2), ``shared_start`` are those the objective holds
    (normalized) and ``free_shared`` marks those to search: one more block per round,
    after the tracks (track ``-1`` in :attr:`CmaResult.blocks`); the result's ``shared_p``
    holds them.
    ``meter`` is charged for every candidate and every accepted block (one evaluation each:
    :func:`~mixinvert.work.excerpt_evaluation_units`); no generation starts that it
    cannot pay for (``stopped`` ``"budget"``), nor after its wall-clock cap (``"seconds
    cap"``). ``progress(distance)`` is called after every block.
    """
    t0 = time.perf_counter()
    schema = objective.schema
    p = np.array(p_start, dtype=np.float64)
    free = np.broadcast_to(np.asarray(free, dtype=bool), p.shape)
    ps = None if shared_start is None else np.array(shared_start, dtype=np.float64)
    shared_dims = (np.flatnonzero(np.asarray(free_shared, dtype=bool)) if ps is not None and free_shared is not None
                   else np.zeros(0, dtype=int))
    current = start = objective.loss()
    evaluations = 0
    blocks: list[tuple[int, int, float, float, int]] = []
    stds: list[np.ndarray | None] = [None] * p.shape[0]
    stopped = "rounds"
    meter = meter if meter is not None else WorkMeter()
    per_evaluation = excerpt_evaluation_units(objective.excerpts, objective.sample_rate,
                                              prices=prices_for(schema.version))
    # a block that improves re-renders its track and rescores the mix: one evaluation more
    generation_units = (config.popsize + 1) * per_evaluation
    order = [int(t) for t in np.argsort(-objective.track_energy(), kind="stable")]
    for rnd in range(config.rounds):
        sigma = config.sigma * 0.5 ** rnd
        for track in order + ([-1] if shared_dims.size else []):
            row = p[track] if track >= 0 else ps
            dims = np.flatnonzero(free[track]) if track >= 0 else shared_dims
            if dims.size == 0:
                continue
            why = _must_stop(meter, generation_units)
            if why is not None:
                stopped = why
                break

            def candidate(x: np.ndarray, row: np.ndarray = row, dims: np.ndarray = dims) -> np.ndarray:
                out = row.copy()
                out[dims] = x
                return out

            if track >= 0:
                def losses(xs: list[np.ndarray], track: int = track, candidate=candidate) -> list[float]:
                    return objective.track_losses(track, [schema.denormalize(candidate(x)) for x in xs])
            else:
                def losses(xs: list[np.ndarray], candidate=candidate) -> list[float]:
                    return objective.shared_losses([schema.shared.denormalize(candidate(x)) for x in xs])

            block_seed = _block_seed(seed, rnd, track if track >= 0 else p.shape[0])
            best_f, best_x, generations, used, last_stds, why = _block(
                losses, row[dims], sigma, block_seed, current, config, meter, per_evaluation, generation_units)
            evaluations += used
            if why is not None:
                stopped = why
            if track >= 0:
                stds[track] = last_stds
            before = current
            if best_x is not None:
                if track >= 0:
                    p[track] = candidate(best_x)
                    objective.set_track(track, schema.denormalize(p[track]))
                else:
                    ps = candidate(best_x)
                    objective.set_shared(schema.shared.denormalize(ps))
                current = objective.loss()
                meter.charge(per_evaluation)
            blocks.append((rnd, track, before, current, generations))
            if progress is not None:
                progress(current)
            if stopped != "rounds":
                break
        if stopped != "rounds":
            break
    return CmaResult(p, start, current, evaluations, time.perf_counter() - t0, stopped, blocks, stds, ps)
