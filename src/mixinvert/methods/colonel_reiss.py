"""``colonel-reiss``: the differentiable twin of the console fitted per song by gradient descent.

After Colonel & Reiss (JASA 2021, "Reverse engineering of a recording mix with
differentiable digital signal processing"): every track's settings are free variables
of a differentiable console (:mod:`mixinvert.twin.model`), fitted with Adam to the
reference mix on a multi-resolution STFT loss (auraloss's, at the paper's three
resolutions; :func:`mixinvert.twin.fit.fit_twin`) from the plain sum, then rendered
through the real console v1.

On console v2 (``console="v2"``) the same fit runs on v2's twin
(:mod:`mixinvert.twin.model_v2`): each track's polarity and time offset are measured
from the audio first and kept (a magnitude loss gives them no useful gradient), drive and
the limiter stay off, and everything else a track and the buses have is fitted
(:data:`V2_TRACK_EFFECTS`, :data:`V2_SHARED_EFFECTS`). A track whose offset drifts over
the song is flagged in ``method_info`` and in its row's ``alignment``, not shifted. A
mono mix is fitted with every track centred and folded to mono and a mono reverb
(:data:`~mixinvert.console.render_v2.MONO_FIXED`), so the console's output is mono too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Sequence

import numpy as np

from mixinvert.console.mixing import render_mix, sum_values
from mixinvert.console.params_io import MixParams
from mixinvert.console.render_v2 import MONO_FIXED, MONO_FIXED_SHARED, for_mono_mix
from mixinvert.console.schema import CONSOLE_V1, CONSOLE_V2, ParamSchema, get_schema
from mixinvert.data.song import Song
from mixinvert.dsp.alignment import Alignment, estimate_alignment
from mixinvert.methods.base import Estimate, register
from mixinvert.methods.baseline import sum_params
from mixinvert.twin.fit import (
    P_LIMIT,
    START_THRESHOLD_P,
    TwinFitConfig,
    check_fittable,
    fit_twin,
)
from mixinvert.work import WorkMeter, prices_for, whole_song_units

log = logging.getLogger(__name__)


def start_point(song: Song) -> np.ndarray:
    """Normalized start ``(n_tracks, 16)``: the plain sum, compressor and reverb barely on."""
    p = sum_params(song).normalized
    p[:, CONSOLE_V1.index("comp_threshold_db")] = START_THRESHOLD_P  # -20 dB
    p[:, CONSOLE_V1.index("comp_ratio")] = -P_LIMIT  # 1.05:1
    p[:, CONSOLE_V1.index("reverb_wet")] = -P_LIMIT  # 1.5 % wet
    return np.clip(p, -P_LIMIT, P_LIMIT)


#: Console v2's effects that the twin fits by default (the others stay at the start:
#: polarity and time offset as measured from the audio, drive off), and the shared ones.
V2_TRACK_EFFECTS = ("hpf", "eq", "compressor", "fader", "pan", "sends")
V2_SHARED_EFFECTS = ("reverb bus", "master eq", "master compressor")


def with_alignments(values: np.ndarray, alignments: Sequence[Alignment], sample_rate: int,
                    schema: ParamSchema = CONSOLE_V2) -> np.ndarray:
    """Physical v2 ``values`` with each track's polarity and time offset as measured, where
    its measurement is trusted (:attr:`Alignment.usable`); the other tracks' kept."""
    values = np.array(values, dtype=np.float64, copy=True)
    limit = schema.spec("offset_ms").hi
    for i, a in enumerate(alignments):
        if a.usable:
            offset_ms = 1000.0 * a.applied_offset_samples() / sample_rate
            values[i, schema.index("offset_ms")] = float(np.clip(offset_ms, -limit, limit))
            values[i, schema.index("polarity")] = float(a.polarity)
    return values


def start_point_v2(song: Song, schema: ParamSchema = CONSOLE_V2, *, align: bool = True
                   ) -> tuple[np.ndarray, np.ndarray, list[Alignment]]:
    """Normalized start of a v2 fit: the plain sum, each track's polarity and time offset
    measured from the audio where the measurement is trusted and does not drift
    (:mod:`mixinvert.dsp.alignment`), compressors barely on, the sends barely open;
    and the shared settings (compressor barely on, limiter off). Also the alignments.
    ``align=False`` leaves every track at offset 0 and normal polarity (measured anyway)."""
    alignments = [estimate_alignment(t, song.mix, song.sample_rate) for t in song.tracks]
    values = sum_values(schema, song.tracks)
    if align:
        values = with_alignments(values, alignments, song.sample_rate, schema)
    shared = schema.shared
    shared_values = shared.from_dict(shared.neutral())
    if song.mono_mix:
        values, shared_values = for_mono_mix(values, shared_values, schema)
    p = schema.normalize(values)
    p[:, schema.index("comp_threshold_db")] = START_THRESHOLD_P
    for name in ("comp_ratio", "reverb_send_db", "hpf_cutoff_hz"):
        p[:, schema.index(name)] = -P_LIMIT
    ps = shared.normalize(shared_values)
    ps[shared.index("master_comp_threshold_db")] = START_THRESHOLD_P
    ps[shared.index("master_comp_ratio")] = -P_LIMIT
    return p, ps, alignments


def effect_mask(schema: ParamSchema, effects: tuple[str, ...]) -> np.ndarray:
    """Which of ``schema``'s settings belong to ``effects`` (a boolean row)."""
    unknown = sorted(set(effects) - set(schema.effects))
    if unknown:
        raise ValueError(f"console {schema.version} has no effect {', '.join(unknown)}")
    return np.array([spec.effect in effects for spec in schema.specs])


def free_masks_v2(song: Song, schema: ParamSchema = CONSOLE_V2, track_effects: tuple[str, ...] = V2_TRACK_EFFECTS,
                  shared_effects: tuple[str, ...] = V2_SHARED_EFFECTS) -> tuple[np.ndarray, np.ndarray]:
    """The settings a v2 fit of ``song`` frees: a row over the tracks' settings and one over
    the shared ones (``track_effects`` and ``shared_effects``, less what a mono mix fixes)."""
    free, free_shared = effect_mask(schema, track_effects), effect_mask(schema.shared, shared_effects)
    if song.mono_mix:  # pan and width stay where for_mono_mix put them
        free &= ~np.isin(schema.names, list(MONO_FIXED))
        free_shared &= ~np.isin(schema.shared.names, list(MONO_FIXED_SHARED))
    return free, free_shared


def fit_v2(song: Song, config: TwinFitConfig, meter: WorkMeter, *, schema: ParamSchema = CONSOLE_V2,
           track_effects: tuple[str, ...] = V2_TRACK_EFFECTS, shared_effects: tuple[str, ...] = V2_SHARED_EFFECTS,
           align: bool = True, progress=None) -> tuple[MixParams, dict]:
    """Console v2's twin fitted to ``song`` from :func:`start_point_v2`, freeing ``track_effects``
    and ``shared_effects``; the settings and what the fit reports."""
    p, ps, alignments = start_point_v2(song, schema, align=align)
    free, free_shared = free_masks_v2(song, schema, track_effects, shared_effects)
    fit = fit_twin(song.tracks, song.mix, song.sample_rate, p, config, progress=progress, meter=meter, schema=schema,
                   free=free[None, :], shared_start=ps, free_shared=free_shared)
    details = [{"alignment": a.to_dict(song.sample_rate)} for a in alignments]
    params = MixParams(schema, song.track_names, schema.denormalize(fit.p), song.sample_rate,
                       track_extra=tuple(details), shared=schema.shared.denormalize(fit.shared_p))
    drifting = [n for n, a in zip(song.track_names, alignments) if a.drifts]
    info = {"steps": fit.steps, "stopped": fit.stopped, "fit_loss_start": fit.start_loss, "fit_loss": fit.loss,
            "drifting_tracks": ", ".join(drifting)}
    return params, info


@register(
    "colonel-reiss",
    "a differentiable twin of the console fitted per song by gradient descent (Colonel & Reiss 2021)",
    options=("steps", "budget", "budget_seconds", "console"),
)
def estimate_colonel_reiss(
    song: Song, *, rng: np.random.Generator, steps: int | None = None, budget: float | None = None,
    budget_seconds: float | None = None, console: str = "v1",
) -> Estimate:
    """``steps``: most twin steps (default 200); ``budget``: work units (default none: the
    steps and the plateau bound the work); ``budget_seconds``: an optional wall-clock cap;
    ``console``: ``"v1"`` or ``"v2"`` (:func:`fit_v2`)."""
    check_fittable(song, "colonel-reiss")
    schema = get_schema(console)
    start = time.perf_counter()
    config = TwinFitConfig()
    if steps is not None:
        config = replace(config, steps=int(steps))
    meter = WorkMeter(budget, budget_seconds)
    # the result's render over the whole song is kept back from the fit
    final_render = whole_song_units(song.num_samples / song.sample_rate, song.num_tracks,
                                    prices=prices_for(schema.version))
    fit_meter = meter.share(meter.left() - final_render) if budget is not None else meter
    from mixinvert.progress import progress_bar

    # a progress bar on a terminal (none when output is piped or in tests): fits take a minute or two
    with progress_bar(config.steps, f"colonel-reiss {song.name}", "step") as bar:

        def progress(step: int, best: float) -> None:
            bar.update(step - bar.n)
            bar.set_postfix(loss=f"{best:.3f}")

        if schema.version == "v1":
            fit = fit_twin(song.tracks, song.mix, song.sample_rate, start_point(song), config, progress=progress,
                           meter=fit_meter)
            params = MixParams(schema, song.track_names, schema.denormalize(fit.p), song.sample_rate)
            fit_info = {"steps": fit.steps, "stopped": fit.stopped, "fit_loss_start": fit.start_loss,
                        "fit_loss": fit.loss}
        else:
            params, fit_info = fit_v2(song, config, fit_meter, schema=schema, progress=progress)
    mix = render_mix(song.tracks, song.sample_rate, params)
    meter.charge(final_render)
    log.info("%s: colonel-reiss %d steps (%s), loss %.3f -> %.3f", song.name, fit_info["steps"], fit_info["stopped"],
             fit_info["fit_loss_start"], fit_info["fit_loss"])
    info = {"seconds": time.perf_counter() - start, "mix_source": f"console {schema.version}", **fit_info,
            "budget": meter.record()}
    return Estimate(params, mix, info, track_details=list(params.track_extra))
