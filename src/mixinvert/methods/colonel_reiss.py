"""``colonel-reiss``: the differentiable twin of console v1 fitted per song by gradient descent.

After Colonel & Reiss (JASA 2021, "Reverse engineering of a recording mix with
differentiable digital signal processing"): every track's settings are free variables
of a differentiable console (:mod:`mixinvert.twin.model`), fitted with Adam to the
reference mix on a multi-resolution STFT loss (auraloss's, at the paper's three
resolutions; :func:`mixinvert.twin.fit.fit_twin`) from the plain sum, then rendered
through the real console v1.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np

from mixinvert.console.params_io import MixParams
from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1
from mixinvert.data.song import Song
from mixinvert.methods.base import Estimate, register
from mixinvert.methods.baseline import sum_params
from mixinvert.twin.fit import (
    P_LIMIT,
    START_THRESHOLD_P,
    TwinFitConfig,
    check_fittable,
    fit_twin,
)
from mixinvert.work import WorkMeter, whole_song_units

log = logging.getLogger(__name__)


def start_point(song: Song) -> np.ndarray:
    """Normalized start ``(n_tracks, 16)``: the plain sum, compressor and reverb barely on."""
    p = sum_params(song).normalized
    p[:, CONSOLE_V1.index("comp_threshold_db")] = START_THRESHOLD_P  # -20 dB
    p[:, CONSOLE_V1.index("comp_ratio")] = -P_LIMIT  # 1.05:1
    p[:, CONSOLE_V1.index("reverb_wet")] = -P_LIMIT  # 1.5 % wet
    return np.clip(p, -P_LIMIT, P_LIMIT)


@register(
    "colonel-reiss",
    "a differentiable twin of the console fitted per song by gradient descent (Colonel & Reiss 2021)",
    options=("steps", "budget", "budget_seconds"),
)
def estimate_colonel_reiss(
    song: Song, *, rng: np.random.Generator, steps: int | None = None, budget: float | None = None,
    budget_seconds: float | None = None,
) -> Estimate:
    """``steps``: most twin steps (default 200); ``budget``: work units (default none: the
    steps and the plateau bound the work); ``budget_seconds``: an optional wall-clock cap."""
    check_fittable(song, "colonel-reiss")
    start = time.perf_counter()
    config = TwinFitConfig()
    if steps is not None:
        config = replace(config, steps=int(steps))
    meter = WorkMeter(budget, budget_seconds)
    # the result's render over the whole song is kept back from the fit
    final_render = whole_song_units(song.num_samples / song.sample_rate, song.num_tracks)
    fit_meter = meter.share(meter.left() - final_render) if budget is not None else meter
    from mixinvert.progress import progress_bar

    # a progress bar on a terminal (none when output is piped or in tests): fits take a minute or two
    with progress_bar(config.steps, f"colonel-reiss {song.name}", "step") as bar:

        def progress(step: int, best: float) -> None:
            bar.update(step - bar.n)
            bar.set_postfix(loss=f"{best:.3f}")

        fit = fit_twin(song.tracks, song.mix, song.sample_rate, start_point(song), config, progress=progress,
                       meter=fit_meter)
    schema = CONSOLE_V1
    params = MixParams(schema, song.track_names, schema.denormalize(fit.p), song.sample_rate)
    mix = Console(song.tracks, song.sample_rate).render(params.values)
    meter.charge(final_render)
    log.info("%s: colonel-reiss %d steps (%s), loss %.3f -> %.3f", song.name, fit.steps, fit.stopped,
             fit.start_loss, fit.loss)
    info = {
        "seconds": time.perf_counter() - start,
        "mix_source": "console v1",
        "steps": fit.steps,
        "stopped": fit.stopped,
        "fit_loss_start": fit.start_loss,
        "fit_loss": fit.loss,
        "budget": meter.record(),
    }
    return Estimate(params, mix, info)
