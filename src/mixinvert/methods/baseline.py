"""The paper's two trivial baselines (EAMI Table 1): plain sum and random settings.

``sum``: every track unprocessed, mono tracks to both channels at unity, stereo tracks
as they are, all added. In console v1 terms that is EQ flat, compressor at ratio 1,
pan centre, reverb fully dry, and a gain that cancels the pan law and the reverb's dry
scaling (x2, see :mod:`mixinvert.console.render`): -3.01 dB for mono tracks
(``sqrt(1/2) * 2 * g = 1``) and -6.02 dB for stereo ones (``2 * g = 1``). Rendering
those settings through the console gives the plain sum to float precision (tested).

``random``: settings drawn uniformly in normalized units (each parameter uniform over
its range on its own scale), from the given generator.

Both take ``console`` (``"v1"``, ``"v2"``); on v2 the sum has the faders at unity
(+3.01 dB for a mono track at centre, 0 dB for a stereo one) and the buses and master
chain neutral, and random draws the shared settings too.
"""

from __future__ import annotations

import time

import numpy as np

from mixinvert.console.mixing import render_mix, sum_values
from mixinvert.console.params_io import MixParams
from mixinvert.console.render_v2 import for_mono_mix
from mixinvert.console.schema import get_schema
from mixinvert.data.song import Song
from mixinvert.methods.base import Estimate, register


def sum_params(song: Song, console: str = "v1") -> MixParams:
    """Settings of console ``console`` equal to a plain sum of ``song``'s tracks."""
    schema = get_schema(console)
    shared = schema.shared.from_dict(schema.shared.neutral()) if schema.shared is not None else None
    return MixParams(schema, song.track_names, sum_values(schema, song.tracks), song.sample_rate, shared=shared)


def plain_sum(song: Song) -> np.ndarray:
    """The tracks added up, mono to both channels, ``(2, samples)`` float32.

    ``song``: a :class:`Song`, or anything with ``tracks`` and ``num_samples`` (training songs).
    """
    mix = np.zeros((2, song.num_samples), dtype=np.float32)
    for track in song.tracks:
        mix += track  # (1, n) broadcasts to both channels
    return mix


@register("sum", "plain sum of the raw tracks (no processing)", needs_mix=False, options=("console",))
def estimate_sum(song: Song, *, rng: np.random.Generator, console: str = "v1") -> Estimate:
    start = time.perf_counter()
    params = sum_params(song, console)
    mix = render_mix(song.tracks, song.sample_rate, params)
    return Estimate(params, mix, {"seconds": time.perf_counter() - start, "mix_source": f"console {console}"})


@register("random", "settings drawn uniformly over each parameter's range", needs_mix=False, options=("console",))
def estimate_random(song: Song, *, rng: np.random.Generator, console: str = "v1") -> Estimate:
    start = time.perf_counter()
    schema = get_schema(console)
    p = rng.uniform(-1.0, 1.0, size=(song.num_tracks, schema.size))
    values, shared = schema.denormalize(p), None
    if schema.shared is not None:
        shared = schema.shared.denormalize(rng.uniform(-1.0, 1.0, size=schema.shared.size))
    if song.mono_mix:
        values, shared = for_mono_mix(values, shared, schema)
    params = MixParams(schema, song.track_names, values, song.sample_rate, shared=shared)
    mix = render_mix(song.tracks, song.sample_rate, params)
    return Estimate(params, mix, {"seconds": time.perf_counter() - start, "mix_source": f"console {console}"})
