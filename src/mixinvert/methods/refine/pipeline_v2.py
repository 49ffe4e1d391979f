"""``eami+refine`` on console v2: the same stages as on v1 (:mod:`.pipeline`), with the
shared settings (reverb bus, master) fitted beside the tracks'.

1. **Start.** The candidates are the plain sum, Barchiesi & Reiss's closed-form settings
   mapped to v2 (:func:`~mixinvert.methods.barchiesi_reiss.console_settings_v2`, fitted on
   the twin's excerpts joined end to end) and the answer of the v2 network (the shipped
   one or ``train --console v2``'s, with ``eami``'s fader and send match); all with each track's
   polarity and time offset measured from the audio (:mod:`mixinvert.dsp.alignment`) and
   kept from then on, and with every fitted setting where the twin has a gradient
   (compressors and sends barely on, as colonel-reiss's v2 start). The real console scores
   them on the search's excerpts.
2. **Twin.** console v2's twin (:mod:`mixinvert.twin.model_v2`) fitted from the plain
   sum, freeing what colonel-reiss's v2 fit frees
   (:func:`~mixinvert.methods.colonel_reiss.free_masks_v2`).
3. **Search.** CMA-ES on the real console v2, each track in turn and then the shared
   settings (:func:`~mixinvert.methods.refine.cma_search.cma_search`).
4. **Check** over the whole song, as on v1.
5. **Uncertainty**: intervals from the real console's local sensitivity for every free
   setting of every track (the rules that flag undetermined settings are console v1's and
   are not applied: a v2 row carries intervals without flags).

Work is priced and shared between the stages as on v1 (:class:`~.pipeline.RefineConfig`).
"""

from __future__ import annotations

import time

import numpy as np

from mixinvert.console.render_v2 import for_mono_mix
from mixinvert.data.song import Song
from mixinvert.executors import torch_threads
from mixinvert.methods.barchiesi_reiss import console_settings_v2, fit_filters
from mixinvert.methods.colonel_reiss import start_point_v2
from mixinvert.methods.refine.cma_search import CmaResult, cma_search
from mixinvert.methods.refine.objective import ExcerptObjective
from mixinvert.methods.refine.pipeline import (
    RefineConfig,
    RefineResult,
    Starts,
    _check,
    _joined_excerpts,
    _reserve_units,
    _Run,
    _single_excerpt_units,
)
from mixinvert.methods.refine.uncertainty import (
    NEUTRAL_RATIO,
    Intervals,
    sensitivity_evaluations,
    sensitivity_intervals,
)
from mixinvert.twin.fit import (
    P_LIMIT,
    START_THRESHOLD_P,
    TwinFit,
    check_fittable,
    fit_twin,
    twin_evaluation_units,
    twin_step_units,
)
from mixinvert.work import FIT_THREADS, PRICES_V2, excerpt_evaluation_units

Pair = tuple[np.ndarray, np.ndarray]


def refine_v2(song: Song, config: RefineConfig, *, seed: int = 0, model=None, progress=None) -> RefineResult:
    """:func:`~mixinvert.methods.refine.pipeline.refine` on console v2 (``config.console`` is
    ``"v2"``; see the module doc); ``model``: a network for console v2, a start more."""
    check_fittable(song, "eami+refine")
    with torch_threads(FIT_THREADS):
        run = _Run.begin(song, config, seed, model, progress)
        starts, alignments = _start(run)
        fit, twin_pair, measure = _twin(run, starts)
        search, objective, reserve = _search(run, twin_pair, measure)
        candidates = {starts.best: starts.settings[starts.best], "twin": twin_pair,
                      "search": (search.p, search.shared_p)}
        check = _check(run, candidates)
        p_final, ps_final = candidates[check.chosen]
        intervals, status = _uncertainty(run, (p_final, ps_final), objective if check.chosen == "search" else None,
                                         measure)
    flags = [{} for _ in range(song.num_tracks)]
    return RefineResult(p_final, check.chosen, check.scores, intervals, flags, check.mix, ("console v2",),
                        run.heard_label, starts, fit, search, reserve, status, run.seconds, run.meter.record(),
                        shared_p=ps_final, alignments=alignments)


def _objective(run: _Run, settings: Pair) -> ExcerptObjective:
    """The real console v2 on the search's excerpts at ``settings`` (charged)."""
    song, schema = run.song, run.schema
    objective = ExcerptObjective(song.tracks, song.mix, song.sample_rate, run.search_excerpts,
                                 schema.denormalize(settings[0]), schema=schema,
                                 shared=schema.shared.denormalize(settings[1]))
    run.meter.charge(excerpt_evaluation_units(run.search_excerpts, song.sample_rate, tracks=song.num_tracks,
                                              prices=PRICES_V2))
    return objective


def _alive(p: np.ndarray, free: np.ndarray, run: _Run) -> np.ndarray:
    """``p`` with the fitted settings inside the twin's range and an idle compressor (about
    1:1) at colonel-reiss's start (a -20 dB threshold, 1.05:1), where it has gradients."""
    schema = run.schema
    p = np.where(free, np.clip(p, -P_LIMIT, P_LIMIT), p)
    idle = schema.denormalize(p)[:, schema.index("comp_ratio")] < NEUTRAL_RATIO
    p[idle, schema.index("comp_threshold_db")] = START_THRESHOLD_P
    p[idle, schema.index("comp_ratio")] = -P_LIMIT
    return p


def _start(run: _Run) -> tuple[Starts, list]:
    """Stage 1: the plain sum, Barchiesi & Reiss's settings and the network's answer (given a
    model), scored on the real console."""
    t0 = time.perf_counter()
    song, schema = run.song, run.schema
    p_sum, ps, alignments = start_point_v2(song, schema)
    run.meter.charge(PRICES_V2.alignment * song.num_tracks * song.num_samples / song.sample_rate)
    part = _joined_excerpts(song, run.twin_excerpts)
    values = console_settings_v2(part, fit_filters(part.tracks, part.mix), schema, alignments=alignments)
    if song.mono_mix:
        values, _ = for_mono_mix(values, None, schema)
    run.meter.charge(PRICES_V2.match * song.num_tracks * part.num_samples / song.sample_rate)
    settings = {"sum": (p_sum, ps), "barchiesi-reiss": (_alive(schema.normalize(values), run.free, run), ps)}
    if run.model is not None:
        settings["eami"] = _network_start(run, p_sum)
    losses = {name: _objective(run, pair).loss() for name, pair in settings.items()}
    best = min(losses, key=losses.get)
    run.report("start", losses[best])
    run.timed("start", t0)
    # the twin starts from the plain sum, as on v1: from Barchiesi & Reiss's settings, a
    # better start, it ended worse (their gains and EQ trade off; BENCHMARKS.md, "Real mixes")
    return Starts(settings, losses, best, "sum"), alignments


def _network_start(run: _Run, p_sum: np.ndarray) -> Pair:
    """The v2 network's answer on what the check hears, with the measured offsets and
    polarity and ``eami``'s fader and send match, made fit for the twin as the other
    starts are (charged)."""
    from mixinvert.methods.eami import settle_v2
    from mixinvert.models.checkpoint import load_model
    from mixinvert.models.predict import predict_song

    song, schema, heard = run.song, run.schema, run.heard
    net, _, _ = load_model(run.model)
    p, ps = predict_song(net, heard.tracks, heard.mix, song.sample_rate, with_shared=True)
    if song.mono_mix:
        values, shared = for_mono_mix(schema.denormalize(p), schema.shared.denormalize(ps), schema)
        p, ps = schema.normalize(values), schema.shared.normalize(shared)
    # eami's own answer, its faders and sends fitted to what the check hears
    values, _ = settle_v2(schema.denormalize(p), schema.denormalize(p_sum), heard.tracks, song.sample_rate,
                          schema.shared.denormalize(ps), heard.mix, schema)
    p = schema.normalize(values)
    run.meter.charge((PRICES_V2.network + PRICES_V2.match) * song.num_tracks * heard.num_samples / song.sample_rate)
    return _alive(p, run.free, run), np.clip(ps, -P_LIMIT, P_LIMIT)


def _uncertainty_units(run: _Run, p: np.ndarray) -> float:
    return (sensitivity_evaluations(p, np.broadcast_to(run.free, p.shape), step=run.config.uncertainty_step)
            * _single_excerpt_units(run.search_excerpts, run.song.sample_rate, PRICES_V2))


def _twin(run: _Run, starts: Starts) -> tuple[TwinFit | None, Pair, bool]:
    """Stage 2: the twin's fit from the plain sum, with what the later stages leave."""
    t0 = time.perf_counter()
    song, config, meter, schema = run.song, run.config, run.meter, run.schema
    sr, n_tracks = song.sample_rate, song.num_tracks
    p, ps = starts.settings[starts.twin_from]
    uncertainty = _uncertainty_units(run, p)
    measure = uncertainty <= config.uncertainty_max_share * meter.left()
    reserve = _reserve_units(song, run.heard, run.search_excerpts, uncertainty if measure else 0.0, search_setup=True,
                             prices=PRICES_V2)
    twin_meter = meter.share((meter.left() - reserve) * config.twin_share if meter.units is not None else None)
    least_twin = (twin_step_units(n_tracks, run.twin_excerpts[:1], sr, config.twin.tail_seconds, PRICES_V2)
                  + 2 * twin_evaluation_units(n_tracks, run.twin_excerpts, sr, config.twin.tail_seconds, PRICES_V2))
    fit = None
    if config.twin.steps > 0 and twin_meter.can_afford(least_twin) and not meter.time_is_up("twin"):
        fit = fit_twin(song.tracks, song.mix, sr, p, config.twin, free=run.free[None, :], excerpts=run.twin_excerpts,
                       meter=twin_meter, schema=schema, shared_start=ps, free_shared=run.free_shared,
                       progress=lambda step, loss: run.report("twin", loss))
    run.timed("twin", t0)
    return fit, ((fit.p, fit.shared_p) if fit is not None else starts.settings[starts.best]), measure


def _search(run: _Run, start: Pair, measure: bool) -> tuple[CmaResult, ExcerptObjective, float]:
    """Stage 3: CMA-ES on the real console v2 with what is left before the reserve."""
    t0 = time.perf_counter()
    song, meter = run.song, run.meter
    uncertainty = _uncertainty_units(run, start[0]) if measure else 0.0
    reserve = _reserve_units(song, run.heard, run.search_excerpts, uncertainty, prices=PRICES_V2)
    objective = _objective(run, start)
    search_meter = meter.share(meter.left() - reserve if meter.units is not None else None)
    search = cma_search(objective, start[0], np.broadcast_to(run.free, start[0].shape), run.config.search,
                        seed=run.seed, meter=search_meter, progress=lambda loss: run.report("search", loss),
                        shared_start=start[1], free_shared=run.free_shared)
    run.timed("search", t0)
    return search, objective, reserve


def _uncertainty(run: _Run, final: Pair, objective: ExcerptObjective | None, measure: bool
                 ) -> tuple[Intervals, str]:
    """Stage 5: every free track setting's interval, if the budget still has room for it."""
    t0 = time.perf_counter()
    song, meter, config = run.song, run.meter, run.config
    p = final[0]
    units = _uncertainty_units(run, p)
    rebuild = 0.0 if objective is not None else excerpt_evaluation_units(run.search_excerpts, song.sample_rate,
                                                                         tracks=song.num_tracks, prices=PRICES_V2)
    if measure and meter.can_afford(units + rebuild) and not meter.time_is_up("uncertainty"):
        if objective is None:
            objective = _objective(run, final)
        intervals = sensitivity_intervals(objective, p, np.broadcast_to(run.free, p.shape),
                                          step=config.uncertainty_step, tolerance=config.uncertainty_tolerance)
        meter.charge(units)
        status = "measured"
    else:
        intervals = Intervals(np.full(p.shape, np.nan), np.full(p.shape, np.nan), config.uncertainty_tolerance)
        status = "not measured: no work left in the budget (raise --budget)"
    run.timed("uncertainty", t0)
    return intervals, status
