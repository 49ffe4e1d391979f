"""``eami+refine``: the network's answer, refined per song through the real console.

EAMI answers in one pass but only roughly; Colonel & Reiss fit a differentiable console
per song but start from nothing and stop at its model of the processors. This method
chains the strengths (every stage keeps the best settings it has seen, so the result is
never worse than where it started):

1. **Start.** The EAMI network's estimate and the neutral console (a plain sum) are
   scored through the real console; the best is the start (optionally also Barchiesi &
   Reiss's closed-form settings, ``use_least_squares``, and some of the network's
   settings on an otherwise neutral console, ``network_effects``).
2. **Fit on the twin.** Adam on the differentiable twin of console v1
   (:func:`~mixinvert.methods.colonel_reiss.fit_twin`), most of the time budget, until it
   stops improving, from the plain sum (as colonel-reiss): the network's estimate, whole
   or its gain, pan and reverb alone, traps the fit in worse local minima
   (BENCHMARKS.md, "Where the twin starts"). Settings without a gradient there (reverb fully dry, a compressor that
   does nothing) are moved to an equivalent point where they have one.
3. **Search on the real console.** CMA-ES (the ``cma`` package) over each track's
   normalized settings in turn, loudest tracks first, candidates rendered by pedalboard on
   a thread pool (:mod:`mixinvert.methods.refine.cma_search`). This removes what the twin gets
   wrong and what gradient steps cannot cross (the compressor's threshold, near-silent
   regions).
4. **Final check on the whole song.** The start, the twin's and the search's settings
   are rendered over the whole song and scored with the paper's MRSD (after loudness
   normalization, as ``evaluate`` does); the best is returned. Songs longer than
   ``long_song_seconds`` (default 2 minutes) are checked on ``check_excerpts`` windows
   instead (the loudest, plus windows for tracks not heard in them), which is also what
   the network hears for its start: both would otherwise cost more than the budget.
5. **Uncertainty.** An interval for every setting from the real console's local
   sensitivity, and the settings the audio does not determine, with the reason
   (:mod:`mixinvert.methods.refine.uncertainty`); ``invert`` writes both into params.json beside
   the values. On a budget too small for both, the fit comes first: the intervals are
   left out (``uncertainty_max_share``) and the flags come from the rules alone.

Fitting and searching use the loudest excerpts of the song plus windows for tracks not
heard in them (:func:`~mixinvert.dsp.excerpts.choose_excerpts_covering`).

Work: ``budget`` (default 60 work units, :mod:`mixinvert.work`: about 60 s on a
quiet 2-core machine for a 30 s, 8-track song) pays for every stage; the twin gets
``twin_share`` of what is left after the start, the search the rest, less a reserve for
the final check and the uncertainty, all priced from the song's size; the work used never
exceeds the budget. The result is a function of the song, the settings and the seed, under
any load (across machines, the fits follow the CPU's kernels: README, "Development").
``budget_seconds`` adds a wall-clock cap for a deadline: the stages it cuts short are
recorded, and the result then depends on the machine. ``steps`` caps the twin's steps.

``effects`` restricts what is fitted (e.g. ``("gain", "pan")``): the other settings stay
neutral (EQ flat, ratio 1:1, reverb dry). The benchmark of what each effect contributes
uses it.

In the code each stage is a function (:func:`_start`, :func:`_twin`, :func:`_search`,
:func:`_check`, :func:`_uncertainty`) over a small :class:`_Run` state, and :func:`refine`
returns a typed :class:`RefineResult`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from mixinvert.console.mixing import make_console
from mixinvert.console.schema import CONSOLE_V1, ParamSchema, get_schema
from mixinvert.data.song import Song
from mixinvert.dsp.excerpts import Excerpt, choose_excerpts_covering
from mixinvert.errors import InputError
from mixinvert.executors import torch_threads
from mixinvert.methods.colonel_reiss import free_masks_v2
from mixinvert.methods.refine.cma_search import CmaConfig, CmaResult, cma_search
from mixinvert.methods.refine.objective import ExcerptObjective
from mixinvert.methods.refine.uncertainty import (
    Intervals,
    measure_uncertainty,
    uncertainty_evaluations,
    undetermined_settings,
)
from mixinvert.metrics.reference import LoudnessNormalizedReference
from mixinvert.twin.fit import (
    P_LIMIT,
    START_THRESHOLD_P,
    TwinFit,
    TwinFitConfig,
    check_fittable,
    fit_twin,
    twin_evaluation_units,
    twin_step_units,
)
from mixinvert.work import (
    FIT_THREADS,
    PRICES,
    Prices,
    WorkMeter,
    excerpt_evaluation_units,
    prices_for,
    whole_song_units,
)

log = logging.getLogger(__name__)

#: Each effect the refinement can fit and its settings (the schema's effect groups).
EFFECTS: dict[str, tuple[str, ...]] = CONSOLE_V1.effects
ALL_EFFECTS = tuple(EFFECTS)


@dataclass(frozen=True)
class RefineConfig:
    """Settings of :func:`refine` (defaults: the ``eami+refine`` method's)."""

    #: Work units for the whole refinement (:mod:`mixinvert.work`).
    budget: float = 60.0
    #: An optional wall-clock cap (seconds): a deadline, at the price of a machine-dependent answer.
    budget_seconds: float | None = None
    #: Share of the work left after the start and the reserve that the twin may use (it may
    #: stop sooner, on a plateau; the search gets the rest). All of it: at the same work the
    #: twin alone (colonel-reiss) ended lower than a twin cut to 85 % and a search
    #: (BENCHMARKS.md, "MRSD against the budget"), and the search pays only after a plateau.
    twin_share: float = 1.0
    #: The twin's fit: colonel-reiss's, but with a small pull of the EQ's gains towards flat
    #: (``eq_flat_weight``): a quiet track's gain and EQ trade off, and the flatter EQ is
    #: the likelier: it lowers the gain error at about the same MRSD (BENCHMARKS.md,
    #: "eami+refine against every method").
    twin: TwinFitConfig = field(default_factory=lambda: TwinFitConfig(steps=400, patience=3, eq_flat_weight=5e-4))
    twin_excerpts: int = 4
    twin_excerpt_seconds: float = 2.0
    search: CmaConfig = CmaConfig()
    search_excerpts: int = 3
    search_excerpt_seconds: float = 1.5
    preroll_seconds: float = 0.5
    #: Songs longer than this (seconds): the network's start and the final check use
    #: ``check_excerpts`` windows of ``check_excerpt_seconds`` instead of the whole song.
    long_song_seconds: float = 120.0
    check_excerpts: int = 6
    check_excerpt_seconds: float = 10.0
    #: Uncertainty: the interval is where the distance stays within this share of its value.
    uncertainty_tolerance: float = 0.05
    uncertainty_step: float = 0.05
    #: The fit comes first: the uncertainty is measured only if its work is at most this
    #: share of what is left after the start; otherwise that work goes to the twin and the
    #: search, and the result carries the rules' flags alone.
    uncertainty_max_share: float = 0.1
    effects: tuple[str, ...] = ALL_EFFECTS
    #: The console: ``"v1"``, or ``"v2"`` (:mod:`mixinvert.methods.refine.pipeline_v2`: the
    #: starts are the plain sum, Barchiesi & Reiss's settings and a v2 model's answer when one
    #: is given; ``effects``, ``use_network``, ``use_least_squares`` and ``network_effects``
    #: do not apply).
    console: str = "v1"
    use_network: bool = True
    #: Also start from the network's estimate with every track's level and reverb wet fitted
    #: to the mix by least squares (``eami+match``, :func:`mixinvert.console.match.match_gain_wet`;
    #: one render of the song). Like ``eami`` it is a candidate for the final check, not a
    #: start for the twin (``network_effects``).
    match_network: bool = True
    #: The network's settings that the twin may start from (a partial start ``eami-partial``,
    #: the others neutral; the twin takes it if the real console scores it better than the
    #: plain sum). Empty by default: the twin starts from the plain sum, as colonel-reiss's
    #: does. The network's EQ and compressor estimates lead the twin into worse local minima
    #: than a flat EQ and an idle compressor do, and since an idle compressor starts where
    #: colonel-reiss's does (:func:`_alive`), fits from its gain, pan and reverb ended worse
    #: than or level with fits from the sum too (BENCHMARKS.md, "Where the twin starts").
    #: The whole estimate
    #: ``eami`` stays a candidate start for the final check.
    network_effects: tuple[str, ...] = ()
    #: Also start from Barchiesi & Reiss's closed-form settings (a second or two per song).
    #: Off by default: their gain and EQ shelves trade off (BENCHMARKS.md), and a fit from
    #: there ends worse than one from the network's estimate, even from a lower start.
    use_least_squares: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.budget) and self.budget > 0):
            raise InputError(f"budget must be a positive number of work units, got {self.budget}")
        if self.budget_seconds is not None and not self.budget_seconds > 0:
            raise InputError(f"budget_seconds must be positive, got {self.budget_seconds}")
        if self.console not in ("v1", "v2"):
            raise InputError(f"console must be v1 or v2, got {self.console!r}")
        if not 0.0 <= self.twin_share <= 1.0:
            raise InputError("twin_share must be between 0 and 1")
        if not 0.0 <= self.uncertainty_max_share <= 1.0:
            raise InputError("uncertainty_max_share must be between 0 and 1")
        if self.long_song_seconds <= 0 or self.check_excerpt_seconds <= 0 or self.check_excerpts < 1:
            raise InputError("long_song_seconds and check_excerpt_seconds must be positive, check_excerpts at least 1")
        unknown = sorted(set(self.effects) - set(EFFECTS))
        if unknown or not self.effects:
            raise InputError(f"effects must be a non-empty subset of {', '.join(EFFECTS)} (got {', '.join(unknown)})")
        unknown = sorted(set(self.network_effects) - set(EFFECTS))
        if unknown:
            raise InputError(f"network_effects must be a subset of {', '.join(EFFECTS)} (got {', '.join(unknown)})")


def free_mask(effects: Sequence[str]) -> np.ndarray:
    """Boolean ``(16,)``: the settings of ``effects``."""
    names = {n for e in effects for n in EFFECTS[e]}
    return np.array([n in names for n in CONSOLE_V1.names])


def neutral_normalized(song: Song) -> np.ndarray:
    """The plain sum in normalized units ``(n_tracks, 16)`` (EQ flat, 1:1, dry)."""
    from mixinvert.methods.baseline import sum_params

    return sum_params(song).normalized


def _alive(p: np.ndarray, free: np.ndarray, song: Song) -> np.ndarray:
    """Where the twin's gradients vanish, move the start to an equivalent point where they
    do not, and keep every fitted value inside ``[-P_LIMIT, P_LIMIT]`` (the twin's tanh
    variables):

    - reverb at 0 % wet (room size and damping have no gradient): 1.5 % wet;
    - a compressor at about 1:1 (an idle one, as the plain sum and the partial start have):
      colonel-reiss's start, ratio 1.05:1 at a -20 dB threshold. A track that never
      reaches -20 dB keeps an idle compressor, which the fit leaves idle: fits from there
      ended lower on the real console than fits from a threshold 12 dB under every
      track's peak;
    - a compressor set to compress (the network's, when ``network_effects`` has it) with a
      threshold the track never reaches (no gradient for any of its settings): the
      threshold 12 dB under the track's peak after gain and EQ (audibly the same, but alive).
    """
    from mixinvert.methods.refine.uncertainty import (
        NEUTRAL_RATIO,
        pre_compressor_peak_db,
    )

    p = p.copy()
    wet = CONSOLE_V1.index("reverb_wet")
    if free[wet]:
        p[:, wet] = np.maximum(p[:, wet], -P_LIMIT)
    ratio, threshold = CONSOLE_V1.index("comp_ratio"), CONSOLE_V1.index("comp_threshold_db")
    if free[ratio] and free[threshold]:
        values = CONSOLE_V1.denormalize(p)
        spec = CONSOLE_V1.spec("comp_threshold_db")
        for i, x in enumerate(song.tracks):
            if values[i, ratio] < NEUTRAL_RATIO:
                p[i, threshold], p[i, ratio] = START_THRESHOLD_P, -P_LIMIT
                continue
            peak_db = pre_compressor_peak_db(x, song.sample_rate, values[i])
            if values[i, threshold] >= peak_db:
                row = values[i].copy()
                row[threshold] = float(np.clip(peak_db - 12.0, spec.lo, spec.hi))
                p[i, threshold] = CONSOLE_V1.normalize(row)[threshold]
    return np.where(free, np.clip(p, -P_LIMIT, P_LIMIT), p)


#: A candidate's normalized settings: the tracks' ``(n_tracks, schema.size)``, or on a
#: console with shared settings (v2) the pair of the tracks' and the shared ones.
Settings = np.ndarray | tuple[np.ndarray, np.ndarray]


def _pair(settings: Settings) -> tuple[np.ndarray, np.ndarray | None]:
    return settings if isinstance(settings, tuple) else (settings, None)


def same_settings(a: Settings, b: Settings) -> bool:
    """Whether two candidates are the same settings."""
    (pa, sa), (pb, sb) = _pair(a), _pair(b)
    return np.array_equal(pa, pb) and (sa is None) == (sb is None) and (sa is None or np.array_equal(sa, sb))


def render_settings(tracks: Sequence[np.ndarray], sample_rate: int, schema: ParamSchema, settings: Settings
                    ) -> np.ndarray:
    """The mix ``(2, samples)`` of normalized ``settings`` on console ``schema``."""
    p, ps = _pair(settings)
    console = make_console(tracks, sample_rate, schema)
    if ps is None:
        return console.render(schema.denormalize(p))
    return console.render(schema.denormalize(p), schema.shared.denormalize(ps))


class WholeSongCheck:
    """Whole-song renderings of normalized settings scored by the paper's MRSD against the
    reference (:class:`~mixinvert.metrics.reference.LoudnessNormalizedReference`: its
    spectra take about 0.6 GB per minute of audio, so :func:`refine` gives it at most
    ``long_song_seconds``)."""

    def __init__(self, song: Song, schema: ParamSchema = CONSOLE_V1) -> None:
        self.reference = LoudnessNormalizedReference(song.mix, song.sample_rate)
        self.song, self.schema = song, schema

    def render(self, settings: Settings) -> np.ndarray:
        return render_settings(self.song.tracks, self.song.sample_rate, self.schema, settings)

    def mrsd_of(self, mix: np.ndarray) -> float:
        return self.reference.mrsd(mix)


def _joined_excerpts(song: Song, excerpts: Sequence[Excerpt]) -> Song:
    """The song cut down to ``excerpts`` (with their pre-roll), joined end to end."""
    spans = [(e.render_start, e.stop) for e in excerpts]
    tracks = [np.concatenate([t[:, a:b] for a, b in spans], axis=-1) for t in song.tracks]
    mix = np.concatenate([song.mix[:, a:b] for a, b in spans], axis=-1)
    return Song(song.name, song.track_names, tracks, song.sample_rate, mix)


def _single_excerpt_units(excerpts: Sequence[Excerpt], sample_rate: int, prices: Prices = PRICES) -> float:
    """One candidate on one of ``excerpts`` (their mean): the uncertainty measures each
    track on the excerpt where it is loudest."""
    return excerpt_evaluation_units(excerpts, sample_rate, prices=prices) / len(excerpts)


def _uncertainty_units(song: Song, p: np.ndarray, free: np.ndarray, excerpts: Sequence[Excerpt], step: float,
                       rules: Sequence[dict[str, str]] | None = None) -> float:
    """Work units of the uncertainty's measurement at ``p``: its evaluations
    (:func:`~mixinvert.methods.refine.uncertainty.uncertainty_evaluations`), one excerpt each.
    ``rules``: the rules' flags at ``p`` when the caller has them."""
    if rules is None:
        rules = undetermined_settings(song.tracks, song.sample_rate, CONSOLE_V1.denormalize(p))
    return uncertainty_evaluations(p, free, rules, step=step) * _single_excerpt_units(excerpts, song.sample_rate)


def _reserve_units(song: Song, heard: Song, excerpts: Sequence[Excerpt], uncertainty_units: float, *,
                   search_setup: bool = False, prices: Prices = PRICES) -> float:
    """Work units kept back for the stages after the search: the final check (three
    candidates rendered and scored on what the check hears, plus the result over a long
    song), the objective rebuilt for the uncertainty, its rules, and ``uncertainty_units``
    for its measurement; with ``search_setup`` (kept back from the twin), also the
    search's set-up: the rules on the twin's settings and the search's objective built."""
    sr, n = song.sample_rate, song.num_tracks
    check = whole_song_units(heard.num_samples / sr, n, renders=3, scores=3, prices=prices)
    if heard is not song:
        check += whole_song_units(song.num_samples / sr, n, prices=prices)
    built = excerpt_evaluation_units(excerpts, sr, tracks=n, prices=prices)
    rules = prices.rules * n * song.num_samples / sr
    setup = rules + built if search_setup else 0.0
    return check + built + rules + setup + uncertainty_units


@dataclass
class Starts:
    """Stage 1's outcome: the candidate starts (normalized settings), their distances on the
    search's excerpts, the best of them (a candidate for the final check) and the one the
    twin starts from."""

    settings: dict[str, np.ndarray]
    losses: dict[str, float]
    best: str
    twin_from: str


@dataclass
class Check:
    """Stage 4's outcome: each candidate's whole-song MRSD, the chosen one and its mix."""

    scores: dict[str, float]
    chosen: str
    mix: np.ndarray


@dataclass
class RefineResult:
    """The settings chosen, where they came from, what each stage did, and the uncertainty."""

    p: np.ndarray
    chosen: str
    #: Whole-song MRSD of each candidate (start, twin, search).
    candidates: dict[str, float]
    intervals: Intervals
    undetermined: list[dict[str, str]]
    #: The chosen settings rendered through console v1 over the whole song, ``(2, samples)``.
    mix: np.ndarray
    effects: tuple[str, ...]
    #: What the final check heard: ``"whole song"`` or a long song's excerpts.
    heard: str
    starts: Starts
    #: The twin's fit, or None if the budget left no room for it.
    twin: TwinFit | None
    search: CmaResult
    #: Work units kept back for the check and the uncertainty when the search began.
    reserve_units: float
    #: ``"measured"``, or ``"rules only: "`` and why.
    uncertainty: str
    #: Wall seconds of each stage.
    seconds: dict[str, float]
    #: :meth:`~mixinvert.work.WorkMeter.record`.
    budget: dict
    #: The chosen shared settings (console v2's buses and master), normalized; None for v1.
    shared_p: np.ndarray | None = None
    #: Console v2: each track's measured alignment (:class:`~mixinvert.dsp.alignment.Alignment`).
    alignments: list | None = None

    @property
    def info(self) -> dict:
        """The refinement in plain values, as params.json's ``method_info`` holds it."""
        info: dict = {"effects": ",".join(self.effects), "check": self.heard, "start": self.starts.best,
                      "twin_from": self.starts.twin_from,
                      **{f"start_loss_{k}": v for k, v in self.starts.losses.items()},
                      "seconds_start": self.seconds["start"]}
        if self.twin is not None:
            info.update(twin_steps=self.twin.steps, twin_stopped=self.twin.stopped,
                        twin_loss_start=self.twin.start_loss, twin_loss=self.twin.loss)
        info.update(seconds_twin=self.seconds["twin"], reserve_units=self.reserve_units,
                    search_loss_start=self.search.start_loss, search_loss=self.search.loss,
                    search_evaluations=self.search.evaluations, search_stopped=self.search.stopped,
                    seconds_search=self.seconds["search"], seconds_check=self.seconds["check"],
                    uncertainty=self.uncertainty, seconds_uncertainty=self.seconds["uncertainty"],
                    chosen=self.chosen, **{f"mrsd_{k}": v for k, v in self.candidates.items()}, budget=self.budget)
        return info


def refine(
    song: Song,
    config: RefineConfig = RefineConfig(),
    *,
    seed: int = 0,
    model: str | os.PathLike | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> RefineResult:
    """Refine console settings for ``song`` (see the module doc). ``progress(stage, distance)``
    is called as the stages go (stage: ``"start"``, ``"twin"``, ``"search"``, ``"check"``)."""
    if config.console != "v1":
        raise ValueError("refine() runs console v1; console v2 is pipeline_v2.refine_v2's")
    check_fittable(song, "eami+refine")
    with torch_threads(FIT_THREADS):
        run = _Run.begin(song, config, seed, model, progress)
        starts = _start(run)
        twin, p_twin, measure = _twin(run, starts)
        search, objective, reserve = _search(run, p_twin, measure)
        check = _check(run, {starts.best: starts.settings[starts.best], "twin": p_twin, "search": search.p})
        p_final = {starts.best: starts.settings[starts.best], "twin": p_twin, "search": search.p}[check.chosen]
        intervals, flags, uncertainty = _uncertainty(run, p_final, objective if check.chosen == "search" else None,
                                                     measure)
    return RefineResult(p_final, check.chosen, check.scores, intervals, flags, check.mix, tuple(config.effects),
                        run.heard_label, starts, twin, search, reserve, uncertainty, run.seconds, run.meter.record())


@dataclass
class _Run:
    """What every stage of one refinement reads: the song, the settings, the work meter, the
    excerpts the stages fit and score on, and what the final check hears."""

    song: Song
    config: RefineConfig
    seed: int
    model: str | os.PathLike | None
    report: Callable[[str, float], None]
    meter: WorkMeter
    free: np.ndarray
    twin_excerpts: list[Excerpt]
    search_excerpts: list[Excerpt]
    #: The whole song, or on a long song its check excerpts joined end to end (bounded time
    #: and memory): what the network hears and the final check scores.
    heard: Song
    heard_label: str
    seconds: dict[str, float] = field(default_factory=dict)
    schema: ParamSchema = CONSOLE_V1
    #: The shared settings fitted (console v2's buses and master), or None for v1.
    free_shared: np.ndarray | None = None

    @classmethod
    def begin(cls, song: Song, config: RefineConfig, seed: int, model: str | os.PathLike | None,
              progress: Callable[[str, float], None] | None) -> _Run:
        meter = WorkMeter(config.budget, config.budget_seconds)
        sr = song.sample_rate

        def excerpts(count: int, seconds: float) -> list[Excerpt]:
            return list(choose_excerpts_covering(song.mix, song.tracks, sr, count=count, seconds=seconds,
                                                 preroll_seconds=config.preroll_seconds))

        twin_excerpts = excerpts(config.twin_excerpts, config.twin_excerpt_seconds)
        heard, label = song, "whole song"
        if song.num_samples > config.long_song_seconds * sr:
            checked = excerpts(config.check_excerpts, config.check_excerpt_seconds)
            heard = _joined_excerpts(song, checked)
            label = f"{len(checked)} excerpts, {heard.num_samples / sr:.0f} s"
        search_excerpts = excerpts(config.search_excerpts, config.search_excerpt_seconds)
        schema = get_schema(config.console)
        free, free_shared = (free_mask(config.effects), None) if schema.version == "v1" else free_masks_v2(song, schema)
        return cls(song, config, seed, model, progress or (lambda stage, distance: None), meter,
                   free, twin_excerpts, search_excerpts, heard, label, schema=schema, free_shared=free_shared)

    @property
    def track_seconds(self) -> tuple[int, float, float]:
        """Tracks, the song's seconds and the heard seconds."""
        sr = self.song.sample_rate
        return self.song.num_tracks, self.song.num_samples / sr, self.heard.num_samples / sr

    def timed(self, stage: str, since: float) -> None:
        self.seconds[stage] = time.perf_counter() - since

    def excerpt_objective(self, p: np.ndarray) -> ExcerptObjective:
        """The real console on the search's excerpts at normalized ``p`` (charged: every track
        rendered there)."""
        song = self.song
        objective = ExcerptObjective(song.tracks, song.mix, song.sample_rate, self.search_excerpts,
                                     CONSOLE_V1.denormalize(p))
        self.meter.charge(excerpt_evaluation_units(self.search_excerpts, song.sample_rate, tracks=song.num_tracks))
        return objective


def _start(run: _Run) -> Starts:
    """Stage 1: the network's estimate, least squares or the plain sum, whichever the real
    console scores best on the search's excerpts."""
    t0 = time.perf_counter()
    song, config, free, schema = run.song, run.config, run.free, CONSOLE_V1
    n_tracks, _, heard_seconds = run.track_seconds
    neutral = neutral_normalized(song)
    starts = {"sum": neutral}
    if config.use_network:
        from mixinvert.models.checkpoint import load_model
        from mixinvert.models.predict import predict_song

        net, _, _ = load_model(run.model)
        heard = run.heard
        starts["eami"] = np.where(free, predict_song(net, heard.tracks, heard.mix, song.sample_rate), neutral)
        run.meter.charge(PRICES.network * n_tracks * heard_seconds)
        if config.match_network and "gain" in config.effects:
            from mixinvert.console.match import match_gain_wet

            matched = match_gain_wet(heard.tracks, song.sample_rate, schema.denormalize(starts["eami"]), heard.mix,
                                     fit_wet="reverb" in config.effects)
            starts["eami+match"] = np.where(free, schema.normalize(matched.values), neutral)
            run.meter.charge(PRICES.match * n_tracks * heard_seconds)
        partial = free & free_mask(config.network_effects) if config.network_effects else np.zeros_like(free)
        if partial.any() and not np.array_equal(partial, free):
            starts["eami-partial"] = np.where(partial, starts["eami"], neutral)
    if config.use_least_squares:
        from mixinvert.methods.barchiesi_reiss import console_settings, fit_filters

        # on the twin's excerpts joined end to end, not the whole song: seconds instead of
        # minutes on a long song, and those excerpts are where every track sounds
        part = _joined_excerpts(song, run.twin_excerpts)
        least_squares = schema.normalize(console_settings(part, fit_filters(part.tracks, part.mix)))
        starts["barchiesi-reiss"] = np.where(free, least_squares, neutral)
        run.meter.charge(PRICES.match * n_tracks * part.num_samples / song.sample_rate)
        if "eami" in starts:  # least squares has no reverb: borrow the network's
            reverb = free_mask(("reverb",)) & free
            starts["barchiesi-reiss+eami-reverb"] = np.where(reverb, starts["eami"], starts["barchiesi-reiss"])
    losses = {name: run.excerpt_objective(p).loss() for name, p in starts.items()}
    best = min(losses, key=losses.get)
    # the twin starts from the plain sum, or the partial start if it scores better (not from
    # the whole network estimate, whose EQ and compressor settings trap it: see network_effects)
    passed_over = {"eami", "eami+match"} if "eami-partial" in starts or not config.network_effects else set()
    twin_from = min((k for k in losses if k not in passed_over), key=losses.get)
    run.report("start", losses[best])
    run.timed("start", t0)
    return Starts(starts, losses, best, twin_from)


def _twin(run: _Run, starts: Starts) -> tuple[TwinFit | None, np.ndarray, bool]:
    """Stage 2: the twin's fit with all the work left but the reserve for the later stages.
    Returns the fit (None if the budget had no room for it), its settings (the best start's
    without it) and whether the uncertainty will be measured."""
    t0 = time.perf_counter()
    song, config, meter, free = run.song, run.config, run.meter, run.free
    sr, n_tracks, song_seconds = song.sample_rate, song.num_tracks, song.num_samples / song.sample_rate
    p_twin_start = _alive(starts.settings[starts.twin_from], free, song)  # renders each track's gain and EQ: once
    uncertainty = _uncertainty_units(song, p_twin_start, free, run.search_excerpts, config.uncertainty_step)
    meter.charge(2 * PRICES.rules * n_tracks * song_seconds)
    # the fit comes first: an uncertainty that would take a large share of a small budget
    # is not reserved for (and not measured); the reserve is judged on the twin's start
    measure = uncertainty <= config.uncertainty_max_share * meter.left()
    reserve = _reserve_units(song, run.heard, run.search_excerpts, uncertainty if measure else 0.0, search_setup=True)
    twin_meter = meter.share((meter.left() - reserve) * config.twin_share if meter.units is not None else None)
    # the twin runs if it can pay for a step and the evaluations around it
    least_twin = (twin_step_units(n_tracks, run.twin_excerpts[:1], sr, config.twin.tail_seconds)
                  + 2 * twin_evaluation_units(n_tracks, run.twin_excerpts, sr, config.twin.tail_seconds))
    fit = None
    if config.twin.steps > 0 and twin_meter.can_afford(least_twin) and not meter.time_is_up("twin"):
        fit = fit_twin(song.tracks, song.mix, sr, p_twin_start, config.twin, free=free, excerpts=run.twin_excerpts,
                       meter=twin_meter, progress=lambda step, loss: run.report("twin", loss))
    run.timed("twin", t0)
    return fit, (fit.p if fit is not None else starts.settings[starts.best]), measure


def _search(run: _Run, p_twin: np.ndarray, measure: bool) -> tuple[CmaResult, ExcerptObjective, float]:
    """Stage 3: CMA-ES on the real console with what is left before the reserve (judged on
    the twin's settings: what the uncertainty will measure). Returns the search, its
    objective (at the search's settings) and the reserve."""
    t0 = time.perf_counter()
    song, meter, free = run.song, run.meter, run.free
    n_tracks, song_seconds, _ = run.track_seconds
    reserve = _reserve_units(song, run.heard, run.search_excerpts,
                             _uncertainty_units(song, p_twin, free, run.search_excerpts, run.config.uncertainty_step)
                             if measure else 0.0)
    meter.charge(PRICES.rules * n_tracks * song_seconds)
    objective = run.excerpt_objective(p_twin)
    search_meter = meter.share(meter.left() - reserve if meter.units is not None else None)
    search = cma_search(objective, p_twin, np.broadcast_to(free, p_twin.shape), run.config.search, seed=run.seed,
                        meter=search_meter, progress=lambda loss: run.report("search", loss))
    run.timed("search", t0)
    return search, objective, reserve


def _check(run: _Run, candidates: dict[str, Settings]) -> Check:
    """Stage 4: the candidates over the whole song (or a long song's check excerpts), scored
    by the paper's MRSD; the best is chosen, ties going to the later stage (listed last),
    which fitted more. A stage the budget skipped is its start, scored once."""
    t0 = time.perf_counter()
    song, meter, prices = run.song, run.meter, prices_for(run.schema.version)
    n_tracks, song_seconds, heard_seconds = run.track_seconds
    check = WholeSongCheck(run.heard, run.schema)
    mixes: dict[str, np.ndarray] = {}
    scores: dict[str, float] = {}
    for name, p in candidates.items():  # at most long_song_seconds each
        same = next((k for k in mixes if same_settings(candidates[k], p)), None)
        mixes[name] = check.render(p) if same is None else mixes[same]
        scores[name] = check.mrsd_of(mixes[name]) if same is None else scores[same]
        if same is None:
            meter.charge(whole_song_units(heard_seconds, n_tracks, scores=1, prices=prices))
    chosen = min(reversed(list(scores)), key=scores.get)
    mix = mixes[chosen]
    if run.heard is not song:  # the result over the whole song (a long song was checked on its excerpts)
        mix = render_settings(song.tracks, song.sample_rate, run.schema, candidates[chosen])
        meter.charge(whole_song_units(song_seconds, n_tracks, prices=prices))
    run.report("check", scores[chosen])
    run.timed("check", t0)
    return Check(scores, chosen, mix)


def _uncertainty(run: _Run, p_final: np.ndarray, objective: ExcerptObjective | None, measure: bool
                 ) -> tuple[Intervals, list[dict[str, str]], str]:
    """Stage 5: intervals around the chosen settings, if the budget still has room for them
    (``objective``: the search's, when it holds the chosen settings), and the rules' flags.
    A budget too small for the stages that cannot be skipped keeps the rules alone, and so
    does a search that moved settings out of the rules' reach, making the measurement
    longer than what was reserved: then the loudest tracks that the work left can pay for
    are measured, the others keep the rules' flags alone. The work used never exceeds the
    budget."""
    t0 = time.perf_counter()
    song, config, meter, free = run.song, run.config, run.meter, run.free
    n_tracks, song_seconds, _ = run.track_seconds
    rules = undetermined_settings(song.tracks, song.sample_rate, CONSOLE_V1.denormalize(p_final))
    meter.charge(PRICES.rules * n_tracks * song_seconds)
    free = np.broadcast_to(free, p_final.shape)
    single = _single_excerpt_units(run.search_excerpts, song.sample_rate)
    rebuild = 0.0 if objective is not None else excerpt_evaluation_units(run.search_excerpts, song.sample_rate,
                                                                         tracks=n_tracks)
    chosen = np.zeros(n_tracks, dtype=bool)
    if measure and not meter.time_is_up("uncertainty"):
        # each track's measurement, the loudest tracks first, as far as the work left goes
        cost = [uncertainty_evaluations(p_final[i:i + 1], free[i:i + 1], rules[i:i + 1],
                                        step=config.uncertainty_step) * single for i in range(n_tracks)]
        left = meter.left() - rebuild
        loudness = [float(np.mean(np.square(t, dtype=np.float64))) for t in song.tracks]
        for i in sorted(range(n_tracks), key=lambda k: -loudness[k]):
            if cost[i] <= left:
                chosen[i], left = True, left - cost[i]
    if chosen.any():
        if objective is None:
            objective = run.excerpt_objective(p_final)
        measured_free = free & chosen[:, None]
        intervals, flags = measure_uncertainty(objective, p_final, measured_free, song.tracks, song.sample_rate,
                                               step=config.uncertainty_step, tolerance=config.uncertainty_tolerance,
                                               rules=rules)
        meter.charge(sum(c for c, on in zip(cost, chosen) if on))
        status = "measured" if chosen.all() else (
            f"measured for {int(chosen.sum())} of {n_tracks} tracks, the loudest: no work left in the budget "
            "for the others (raise --budget)")
    else:
        intervals = Intervals(np.full(p_final.shape, np.nan), np.full(p_final.shape, np.nan),
                              config.uncertainty_tolerance)
        flags = rules
        why = ("the wall-clock cap had passed (raise --budget-seconds)" if meter.cut_short
               and meter.cut_short[-1] == "uncertainty" else
               "no work left in the budget to measure intervals (raise --budget)" if measure else
               "measuring intervals would take too much of the budget from the fit (raise --budget)")
        status = "rules only: " + why
    if status != "measured":
        log.warning("%s: %s", song.name, status)
    run.timed("uncertainty", t0)
    return intervals, flags, status
