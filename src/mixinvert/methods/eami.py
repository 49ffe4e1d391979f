"""``eami``: the EAMI inference network's one-pass estimate, rendered through console v1.

Features of every track and of the reference mix go through the network
(:mod:`mixinvert.models.inverter`) once; its normalized settings are mapped to physical
units by the console schema. Then, unless ``match=False``, every track's level and reverb
wet are fitted to the reference mix in closed form (:func:`mixinvert.console.match.match_gain_wet`:
linear least squares on the console's own renders, which console v1 makes exact), and the
result is rendered. The model is the shipped default
(:data:`mixinvert.models.checkpoint.DEFAULT_MODEL_PATH`) unless ``model=`` names a model
file or training checkpoint (``mixinvert train`` writes ``RUN_DIR/model.pt``).
"""

from __future__ import annotations

import os
import time

import numpy as np

from mixinvert.console.match import match_gain_wet
from mixinvert.console.params_io import MixParams
from mixinvert.console.render import Console
from mixinvert.data.song import Song, SongError
from mixinvert.methods.base import Estimate, register
from mixinvert.models.checkpoint import DEFAULT_MODEL_PATH, load_model
from mixinvert.models.predict import predict_song


@register(
    "eami",
    "the EAMI network's one-pass estimate (embodied self-supervised learning), levels and reverb wet then "
    "fitted to the mix by least squares",
    options=("model", "match"),
    available=DEFAULT_MODEL_PATH.is_file,
)
def estimate_eami(
    song: Song, *, rng: np.random.Generator, model: str | os.PathLike | None = None, match: bool = True
) -> Estimate:
    if song.mix is None:
        raise SongError(f"{song.name}: eami needs the reference mix")
    start = time.perf_counter()
    net, schema, meta = load_model(model)
    p = predict_song(net, song.tracks, song.mix, song.sample_rate)
    values = schema.denormalize(p)
    info = {
        "mix_source": "console v1",
        "model": str(model) if model is not None else "shipped default",
        "model_config": net.config.name,
    }
    if match:
        matched = match_gain_wet(song.tracks, song.sample_rate, values, song.mix, schema=schema)
        values, mix = matched.values, matched.mix
        info["match"] = matched.skipped or "gain and reverb wet, least squares"
        info.update({f"match_residual_db_{k}": round(v, 3) for k, v in matched.residual_db.items()})
        if matched.rerendered:
            info["match_rerendered_tracks"] = ",".join(song.track_names[k] for k in matched.rerendered)
    else:
        mix = Console(song.tracks, song.sample_rate, schema=schema).render(values)
        info["match"] = "off"
    params = MixParams(schema, song.track_names, values, song.sample_rate)
    info["seconds"] = time.perf_counter() - start
    return Estimate(params, mix, info)
