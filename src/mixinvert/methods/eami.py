"""``eami``: the EAMI inference network's one-pass estimate, rendered through its console.

Features of every track and of the reference mix go through the network
(:mod:`mixinvert.models.inverter`) once; its normalized settings are mapped to physical
units by the console schema. Then, unless ``match=False``, every track's level and reverb
wet are fitted to the reference mix in closed form (:func:`mixinvert.console.match.match_gain_wet`:
linear least squares on the console's own renders, which console v1 makes exact), and the
result is rendered. The model is the shipped network of the console asked for
(:data:`mixinvert.models.checkpoint.DEFAULT_MODEL_PATHS`; the console is chosen as for
every method, :func:`mixinvert.methods.run.default_console`) unless ``model=`` names a
model file or training checkpoint (``mixinvert train`` writes ``RUN_DIR/model.pt``).

The model's console decides the settings: a network trained on console v2 (``train
--console v2``) answers every track's v2 settings and the song's reverb bus and master
chain, rendered through console v2 (a mono mix gets
:func:`~mixinvert.console.render_v2.for_mono_mix`). There the match is v2's: each
track's polarity and time offset measured from the audio, drive off, then its fader and
reverb send by least squares (:func:`settle_v2`).
"""

from __future__ import annotations

import os
import time

import numpy as np

from mixinvert.console.match import match_gain_wet
from mixinvert.console.params_io import MixParams
from mixinvert.console.render import Console
from mixinvert.data.song import Song, SongError
from mixinvert.errors import InputError
from mixinvert.methods.base import Estimate, register
from mixinvert.models.checkpoint import DEFAULT_MODEL_PATH, DEFAULT_MODEL_PATHS, load_model
from mixinvert.models.predict import predict_song


@register(
    "eami",
    "the EAMI network's one-pass estimate (embodied self-supervised learning), then the closed-form match: "
    "levels and reverb wet (v1), measured offsets and polarity, faders and sends (v2)",
    options=("model", "match", "console"),
    available=DEFAULT_MODEL_PATH.is_file,
)
def estimate_eami(
    song: Song, *, rng: np.random.Generator, model: str | os.PathLike | None = None, match: bool = True,
    console: str | None = None,
) -> Estimate:
    """``model``: a model file (default: the shipped network of ``console``); ``console``:
    ``"v1"`` or ``"v2"`` (default: the model's; a model of another console is an error)."""
    if song.mix is None:
        raise SongError(f"{song.name}: eami needs the reference mix")
    start = time.perf_counter()
    if console is not None and console not in DEFAULT_MODEL_PATHS:
        raise InputError(f"unknown console {console!r}; choose v1 or v2")
    net, schema, meta = load_model(model, console or "v1")
    if console is not None and schema.version != console:
        raise InputError(f"{model} is a network for console {schema.version}, not {console}")
    if schema.shared is not None:
        return _estimate_with_shared(song, net, schema, model, start, match)
    p = predict_song(net, song.tracks, song.mix, song.sample_rate)
    values = schema.denormalize(p)
    info = {
        "mix_source": f"console {schema.version}",
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


#: What the v2 network's answer takes from the audio instead: log-mel features cannot
#: show a polarity or a sub-frame offset; and drive stays off, as in the fits: trained with
#: MSE on an engineer who drives a few guitars, the network answers a little drive on
#: every track, and distortion of real tracks, whose level it does not read, costs more
#: than it gives (BENCHMARKS.md, "Real mixes").
NOT_FROM_NETWORK_V2 = ("polarity", "offset_ms", "drive_db")


def settle_v2(values: np.ndarray, measured: np.ndarray, tracks, sample_rate: int, shared: np.ndarray,
              mix: np.ndarray, schema) -> tuple[np.ndarray, dict[str, float]]:
    """A v2 network's physical ``values`` made eami's answer: :data:`NOT_FROM_NETWORK_V2`
    taken from ``measured`` (the plain sum with the measured alignment), then faders and
    sends fitted to ``mix`` (:func:`~mixinvert.console.match.match_fader_send_v2`; its residual)."""
    from mixinvert.console.match import match_fader_send_v2

    values = np.array(values, dtype=np.float64, copy=True)
    cols = [schema.index(name) for name in NOT_FROM_NETWORK_V2]
    values[:, cols] = measured[:, cols]
    return match_fader_send_v2(tracks, sample_rate, values, shared, mix, schema=schema)


def _estimate_with_shared(song: Song, net, schema, model, start: float, match: bool) -> Estimate:
    """A network for a console with shared settings (v2): its answer, then, unless
    ``match`` is off, each track's polarity and time offset as measured from the audio
    (:mod:`mixinvert.dsp.alignment`; neutral where not trusted), drive off, and its fader
    and reverb send fitted to the mix by least squares (:func:`settle_v2`); rendered."""
    from mixinvert.console.mixing import render_mix, sum_values
    from mixinvert.console.render_v2 import for_mono_mix
    from mixinvert.dsp.alignment import estimate_alignment
    from mixinvert.methods.colonel_reiss import with_alignments

    p, ps = predict_song(net, song.tracks, song.mix, song.sample_rate, with_shared=True)
    values, shared = schema.denormalize(p), schema.shared.denormalize(ps)
    if song.mono_mix:
        values, shared = for_mono_mix(values, shared, schema)
    info = {"mix_source": f"console {schema.version}", "model": str(model) if model is not None else "shipped default",
            "model_config": net.config.name}
    if match:
        alignments = [estimate_alignment(t, song.mix, song.sample_rate) for t in song.tracks]
        measured = with_alignments(sum_values(schema, song.tracks), alignments, song.sample_rate, schema)
        values, residual = settle_v2(values, measured, song.tracks, song.sample_rate, shared, song.mix, schema)
        info["match"] = ("polarity and offsets measured, drive off; faders and reverb sends, least squares"
                         if residual else "skipped: a silent mix or song")
        info.update({f"match_residual_db_{k}": round(v, 3) for k, v in residual.items()})
    else:
        info["match"] = "off"
    params = MixParams(schema, song.track_names, values, song.sample_rate, shared=shared)
    mix = render_mix(song.tracks, song.sample_rate, params)
    info["seconds"] = time.perf_counter() - start
    return Estimate(params, mix, info)
