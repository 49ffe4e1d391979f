"""The ``eami+refine`` method: :func:`~mixinvert.methods.refine.pipeline.refine` on console v1,
:func:`~mixinvert.methods.refine.pipeline_v2.refine_v2` on console v2, as a registered method."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace

import numpy as np

from mixinvert.console.params_io import MixParams
from mixinvert.console.schema import get_schema
from mixinvert.data.song import Song
from mixinvert.errors import InputError
from mixinvert.methods.base import Estimate, register
from mixinvert.methods.refine.pipeline import RefineConfig, refine
from mixinvert.methods.refine.pipeline_v2 import refine_v2
from mixinvert.methods.refine.uncertainty import uncertainty_rows
from mixinvert.models.checkpoint import DEFAULT_MODEL_PATH, DEFAULT_MODEL_PATHS

log = logging.getLogger(__name__)

#: The default work budget per console: v2's leaves a 20 s song within a minute on a quiet
#: 2-core machine (its stages cost more than their prices by about a tenth: set-up, the
#: thread pool; BENCHMARKS.md, "Work budgets: prices").
DEFAULT_BUDGET = {"v1": RefineConfig().budget, "v2": 50.0}


@register(
    "eami+refine",
    "EAMI's estimate refined per song: the differentiable twin, then CMA-ES on the real console, with uncertainty",
    options=("model", "budget", "budget_seconds", "steps", "console", "network"),
    available=DEFAULT_MODEL_PATH.is_file,
)
def estimate_eami_refine(
    song: Song,
    *,
    rng: np.random.Generator,
    model: str | os.PathLike | None = None,
    budget: float | None = None,
    budget_seconds: float | None = None,
    steps: int | None = None,
    console: str = "v1",
    network: bool = True,
) -> Estimate:
    """``budget``: work units (default 60 on console v1, 50 on v2: :data:`DEFAULT_BUDGET`);
    ``budget_seconds``: an optional wall-clock cap;
    ``steps``: most twin steps (default 400); ``console``: ``"v1"`` or ``"v2"``. On v2 the
    candidate starts are the plain sum, Barchiesi & Reiss's settings and the answer of the
    v2 network (``model``, default the shipped one); ``network=False`` leaves the network
    out (v1's refinement always starts from its network)."""
    start = time.perf_counter()
    schema = get_schema(console)
    if not network:
        if schema.version == "v1":
            raise InputError("console v1's refinement starts from its network: network=no is for console v2")
        if model is not None:
            raise InputError("a model was named and network=no leaves it out: give one or the other")
    elif model is None and schema.version == "v2" and DEFAULT_MODEL_PATHS["v2"].is_file():
        model = DEFAULT_MODEL_PATHS["v2"]
    if model is not None:
        from mixinvert.models.checkpoint import load_model

        model_console = load_model(model)[1].version
        if model_console != schema.version:
            raise InputError(f"{model} is a network for console {model_console}, not {schema.version} "
                             f"(train one with `mixinvert train --console {schema.version}`)")
    config = RefineConfig(console=schema.version, budget=DEFAULT_BUDGET[schema.version])
    if budget is not None:
        config = replace(config, budget=float(budget))
    if budget_seconds is not None:
        config = replace(config, budget_seconds=float(budget_seconds))
    if steps is not None:
        config = replace(config, twin=replace(config.twin, steps=int(steps)))
    seed = int(rng.integers(0, 2**31 - 1))
    from mixinvert.progress import progress_bar

    # a progress bar on a terminal (none when piped or in tests), showing the current distance
    with progress_bar(None, f"eami+refine {song.name}", "stage", bar_format="{desc}: {postfix} [{elapsed}]") as bar:

        def progress(stage: str, distance: float) -> None:
            bar.set_postfix_str(f"{stage}, distance {distance:.3f}")

        if schema.version == "v1":
            result = refine(song, config, seed=seed, model=model, progress=progress)
        else:
            result = refine_v2(song, config, seed=seed, model=model, progress=progress)
    values = schema.denormalize(result.p)
    rows = uncertainty_rows(values, result.intervals, result.undetermined, schema=schema)
    info = {"seconds": time.perf_counter() - start, "mix_source": f"console {schema.version}", "seed": seed,
            "model": str(model) if model is not None else "shipped default" if schema.version == "v1" else "none",
            **result.info}
    if result.alignments is not None:  # drifting tracks are flagged, as colonel-reiss does
        rows = [{**row, "alignment": a.to_dict(song.sample_rate)} for row, a in zip(rows, result.alignments)]
        info["drifting_tracks"] = ", ".join(n for n, a in zip(song.track_names, result.alignments) if a.drifts)
    shared = None if result.shared_p is None else schema.shared.denormalize(result.shared_p)
    params = MixParams(schema, song.track_names, values, song.sample_rate, shared=shared)
    log.info("%s: eami+refine chose %s (%s)", song.name, result.chosen,
             ", ".join(f"{k} {v:.3f}" for k, v in result.candidates.items()))
    return Estimate(params, result.mix, info, track_details=rows)
