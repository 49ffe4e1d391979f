"""Any console version behind one call: render a :class:`MixParams`, solo a track, or the
settings of a plain sum.

The version is the params' schema (``params.schema.version``); v1 renders with
:class:`~mixinvert.console.render.Console`, v2 with :class:`~mixinvert.console.render_v2.ConsoleV2`.
A version this module does not know is refused with the versions it does.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mixinvert.console.params_io import MixParams
from mixinvert.console.render import UNITY_GAIN_DB, Console
from mixinvert.console.render_v2 import UNITY_FADER_DB, ConsoleV2
from mixinvert.console.schema import ParamSchema
from mixinvert.errors import InputError

#: The console versions that can render, and the setting that brings a track to unity.
RENDERABLE = {"v1": ("gain_db", UNITY_GAIN_DB), "v2": ("fader_db", UNITY_FADER_DB)}


def _check(schema: ParamSchema) -> None:
    if schema.version not in RENDERABLE:
        raise InputError(f"console {schema.version!r} cannot be rendered here (known: {', '.join(RENDERABLE)})")


def make_console(tracks: Sequence[np.ndarray], sample_rate: int, schema: ParamSchema, *,
                 workers: int | None = None) -> Console | ConsoleV2:
    _check(schema)
    cls = Console if schema.version == "v1" else ConsoleV2
    return cls(tracks, sample_rate, schema=schema, workers=workers)


def render_mix(tracks: Sequence[np.ndarray], sample_rate: int, params: MixParams, *,
               workers: int | None = None) -> np.ndarray:
    """The stereo mix ``(2, samples)`` of ``params`` (rows in the order of ``tracks``)."""
    console = make_console(tracks, sample_rate, params.schema, workers=workers)
    if isinstance(console, ConsoleV2):
        return console.render(params.values, params.shared)
    return console.render(params.values)


def solos(tracks: Sequence[np.ndarray], sample_rate: int, params: MixParams) -> np.ndarray:
    """Each track alone through ``params`` ``(n_tracks, 2, samples)``: v1, its contribution
    (the mix is their sum); v2, its solo through its sends, the buses and the master chain."""
    console = make_console(tracks, sample_rate, params.schema)
    if isinstance(console, ConsoleV2):
        return console.solos(params.values, params.shared)
    return console.contributions(params.values)


def sum_values(schema: ParamSchema, tracks: Sequence[np.ndarray]) -> np.ndarray:
    """Physical settings ``(n_tracks, schema.size)`` that render a plain sum of ``tracks``:
    neutral, with the level setting at unity for each track's channels."""
    _check(schema)
    name, unity = RENDERABLE[schema.version]
    rows = []
    for track in tracks:
        row = schema.neutral()
        row[name] = unity[track.shape[0]]
        rows.append(schema.from_dict(row))
    return np.stack(rows)
