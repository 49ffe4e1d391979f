"""Work budgets: per-song fits count what they compute, not the seconds it takes.

A budget of seconds makes the answer depend on the machine and on whatever else runs on
it: a busy machine buys fewer fitting steps, so the same song and seed give another
answer. ``colonel-reiss`` and ``eami+refine`` count their budget in **work units**
instead, so that their answer is a function of the song, the settings and the seed.

One unit is about one second of a quiet 2-core machine of the kind CI runs on, so a
budget reads as it did in seconds. Each kind of work has a fixed price in units per
second of audio per track (:data:`PRICES`: a real-console render, a twin step, a twin
evaluation, a score, the network's pass, the level match, the uncertainty's rules),
measured on that machine kind by ``bench/bench_refine.py prices``, which also reports
how today's timings stand against them. A faster machine spends a budget sooner, a
slower or busier one later, and both reach the same settings.

Every fit runs torch with :data:`FIT_THREADS` threads, so that its arithmetic, and not
only its amount, is the same on every machine.

A wall-clock cap (:attr:`WorkMeter.seconds_cap`) may be set as well, for a deadline: the
stages it cuts short are recorded (:meth:`WorkMeter.record`), and the answer then depends
on the machine.

Why by hand: no library of the field meters work across a pipeline of stages; the
stages' own counters (twin steps, CMA-ES evaluations) are priced here so that one budget
can be split between them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Sequence

from mixinvert.dsp.excerpts import Excerpt
from mixinvert.errors import InputError


@dataclass(frozen=True)
class Prices:
    """Work units per second of audio per track (for ``score`` and ``evaluation``, per
    second of the stereo mix) of each kind of work."""

    #: The real console (pedalboard) rendering a track over the whole song.
    render: float
    #: The whole song's MRSD against the reference (loudness normalization included).
    score: float
    #: One candidate on the search's excerpts: its track rendered there and the mix scored
    #: against the cached reference spectra (per second of excerpt, pre-roll included; the
    #: candidates run two at a time on the thread pool).
    evaluation: float
    #: One Adam step of the differentiable twin: forward, loss and gradient.
    twin_step: float
    #: The twin's forward pass and loss alone (its periodic evaluations).
    twin_eval: float
    #: The network's start: log-mel and transfer features of the track and its pass.
    network: float
    #: The closed-form level and reverb-wet match (two renders per track and the solve).
    match: float
    #: The uncertainty's rules (each track's gain and EQ rendered, its level measured).
    rules: float
    #: Each track's time offset and polarity measured against the mix (GCC-PHAT over the
    #: song and its windows; :mod:`mixinvert.dsp.alignment`), console v2's first step.
    alignment: float = 0.028


#: Measured by ``bench/bench_refine.py prices`` on a quiet 2-core machine (BENCHMARKS.md,
#: "Work budgets: prices").
PRICES = Prices(render=0.0029, score=0.0290, evaluation=0.0088, twin_step=0.0102, twin_eval=0.0037,
                network=0.0037, match=0.0028, rules=0.0026)


#: Console v2's prices where they differ from v1's, measured the same way on the real songs
#: of ``../shared/data/real-dev`` (what v2 is for: the twin's compressors, on from the start,
#: work on nearly every sample of real tracks, which costs about twice a v1 step;
#: BENCHMARKS.md, "Work budgets: prices").
PRICES_V2 = replace(PRICES, render=0.0026, evaluation=0.0101, twin_step=0.0203, twin_eval=0.0068)


def prices_for(console: str) -> Prices:
    """The prices of work on console ``console`` (``"v1"`` or ``"v2"``)."""
    return PRICES_V2 if console == "v2" else PRICES


#: The torch threads every fit runs with, whatever the machine's cores: torch splits a
#: reduction's sum by its thread count, so another count rounds differently, and a fit that
#: follows its gradients for hundreds of steps carries that difference into its settings.
#: Set explicitly, it also makes repeated runs on one machine agree, which torch's default
#: set-up did not for the twin's fit.
FIT_THREADS = 2


def span_seconds(excerpts: Sequence[Excerpt], sample_rate: int) -> list[float]:
    """Seconds rendered for each excerpt (its pre-roll included)."""
    return [(e.stop - e.render_start) / sample_rate for e in excerpts]


def excerpt_evaluation_units(excerpts: Sequence[Excerpt], sample_rate: int, tracks: int = 1,
                             prices: Prices = PRICES) -> float:
    """One evaluation of :class:`~mixinvert.methods.refine.objective.ExcerptObjective` with
    ``tracks`` tracks rendered on every excerpt (1: a candidate; all: the objective built)."""
    span = sum(span_seconds(excerpts, sample_rate))
    return prices.evaluation * span + prices.render * (tracks - 1) * span


def whole_song_units(seconds: float, tracks: int, *, renders: int = 1, scores: int = 0,
                     prices: Prices = PRICES) -> float:
    """``renders`` renders of ``tracks`` tracks of ``seconds`` and ``scores`` scores of the mix."""
    return prices.render * renders * tracks * seconds + prices.score * scores * seconds


class WorkMeter:
    """Counts work units against a budget, and wall time against an optional cap.

    ``units``: the budget (None: unlimited, the stages' own step counts bound the work);
    ``seconds_cap``: a wall-clock cap (None: none). A stage asks :meth:`can_afford` before
    each piece of work and :meth:`charge`s it after; :meth:`time_is_up` checks the cap and
    records which stage it cut short. :meth:`share` gives a stage a part of what is left.
    """

    def __init__(self, units: float | None = None, seconds_cap: float | None = None, *,
                 _parent: WorkMeter | None = None) -> None:
        for name, value in (("work budget", units), ("seconds cap", seconds_cap)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InputError(f"the {name} must be a positive number of {'units' if 'work' in name else 'seconds'}"
                                 f", got {value}")
        self.units = None if units is None else float(units)
        self.seconds_cap = None if seconds_cap is None else float(seconds_cap)
        self.used = 0.0
        self._parent = _parent
        self._start = time.perf_counter() if _parent is None else _parent._start
        self.cut_short: list[str] = [] if _parent is None else _parent.cut_short

    def left(self) -> float:
        """Units left (``inf`` without a budget)."""
        mine = math.inf if self.units is None else self.units - self.used
        return mine if self._parent is None else min(mine, self._parent.left())

    def can_afford(self, units: float) -> bool:
        return units <= self.left()

    def charge(self, units: float) -> None:
        self.used += units
        if self._parent is not None:
            self._parent.charge(units)

    def share(self, units: float | None) -> WorkMeter:
        """A meter for one stage: at most ``units`` (None: what is left), charged here too."""
        child = WorkMeter(_parent=self)
        child.units = None if units is None else max(0.0, float(units))
        return child

    def seconds(self) -> float:
        """Wall time since the (outermost) meter was made."""
        return time.perf_counter() - self._start

    def time_is_up(self, stage: str) -> bool:
        """True once the (outermost) meter's wall-clock cap has passed; the first time per
        ``stage``, it is recorded as cut short."""
        if self._parent is not None:
            return self._parent.time_is_up(stage)
        if self.seconds_cap is None or self.seconds() < self.seconds_cap:
            return False
        if stage not in self.cut_short:
            self.cut_short.append(stage)
        return True

    def record(self) -> dict:
        """What params.json says of the budget: units given and used, the cap, the seconds."""
        return {"work_units": self.units, "work_used": round(self.used, 3), "seconds_cap": self.seconds_cap,
                "seconds": round(self.seconds(), 3), "cut_short_by_seconds_cap": list(self.cut_short)}
