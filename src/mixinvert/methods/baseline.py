"""The paper's two trivial baselines (EAMI Table 1): plain sum and random settings.

``sum``: every track unprocessed, mono tracks to both channels at unity, stereo tracks
as they are, all added. In console v1 terms that is EQ flat, compressor at ratio 1,
pan centre, reverb fully dry, and a gain that cancels the pan law and the reverb's dry
scaling (x2, see :mod:`mixinvert.console.render`): -3.01 dB for mono tracks
(``sqrt(1/2) * 2 * g = 1``) and -6.02 dB for stereo ones (``2 * g = 1``). Rendering
those settings through the console gives the plain sum to float precision (tested).

``random``: settings drawn uniformly in normalized units (each parameter uniform over
its range on its own scale), from the given generator.
"""

from __future__ import annotations

import time

import numpy as np

from mixinvert.console.params_io import MixParams
from mixinvert.console.render import UNITY_GAIN_DB, Console
from mixinvert.console.schema import CONSOLE_V1
from mixinvert.data.song import Song
from mixinvert.methods.base import Estimate, register


def sum_params(song: Song) -> MixParams:
    """Console v1 settings equal to a plain sum of ``song``'s tracks."""
    schema = CONSOLE_V1
    rows = []
    for track in song.tracks:
        row = schema.neutral()
        row["gain_db"] = UNITY_GAIN_DB[track.shape[0]]
        rows.append(schema.from_dict(row))
    return MixParams(schema, song.track_names, np.stack(rows), song.sample_rate)


def plain_sum(song: Song) -> np.ndarray:
    """The tracks added up, mono to both channels, ``(2, samples)`` float32.

    ``song``: a :class:`Song`, or anything with ``tracks`` and ``num_samples`` (training songs).
    """
    mix = np.zeros((2, song.num_samples), dtype=np.float32)
    for track in song.tracks:
        mix += track  # (1, n) broadcasts to both channels
    return mix


@register("sum", "plain sum of the raw tracks (no processing)", needs_mix=False)
def estimate_sum(song: Song, *, rng: np.random.Generator) -> Estimate:
    start = time.perf_counter()
    params = sum_params(song)
    mix = Console(song.tracks, song.sample_rate).render(params.values)
    return Estimate(params, mix, {"seconds": time.perf_counter() - start, "mix_source": "console v1"})


@register("random", "settings drawn uniformly over each parameter's range", needs_mix=False)
def estimate_random(song: Song, *, rng: np.random.Generator) -> Estimate:
    start = time.perf_counter()
    schema = CONSOLE_V1
    p = rng.uniform(-1.0, 1.0, size=(song.num_tracks, schema.size))
    params = MixParams(schema, song.track_names, schema.denormalize(p), song.sample_rate)
    mix = Console(song.tracks, song.sample_rate).render(params.values)
    return Estimate(params, mix, {"seconds": time.perf_counter() - start, "mix_source": "console v1"})
