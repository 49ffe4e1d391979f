"""``params.json``: the one exchange format for console settings.

``{"sample_rate": 44100, "console": "v1", "tracks": [{"name": "<track file>", "gain_db": ...,
<all 16>}, ...]}``. Extra top-level keys (e.g. ``"method"``) and extra per-track keys (e.g.
``"uncertainty"``) are kept in :attr:`MixParams.extra` and :attr:`MixParams.track_extra`
and play no part in rendering.

A console with settings of its own besides the tracks' (v2: the reverb bus and the master
chain) writes them in the sections its schema names, e.g. ``"buses": {"reverb":
{"reverb_room_size": ...}}, "master": {"master_gain_db": ...}``; a file for such a console
must hold every one of them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mixinvert.audio import write_text_atomic
from mixinvert.console.schema import ParamRangeError, ParamSchema, get_schema
from mixinvert.errors import InputError


class ParamsFileError(InputError):
    """A params.json that cannot be used, with the file named in the message."""


@dataclass(frozen=True)
class MixParams:
    """Physical console settings for a set of named tracks.

    ``values`` has shape ``(n_tracks, schema.size)``, physical units, in track order.
    """

    schema: ParamSchema
    track_names: tuple[str, ...]
    values: np.ndarray
    sample_rate: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Per track, extra keys written beside its values (e.g. ``"uncertainty"``); empty or one per track.
    track_extra: tuple[dict[str, Any], ...] = ()
    #: The console's own settings (``schema.shared``: buses, master), physical; None for a
    #: console without them, and for one with them, their neutral values.
    shared: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.schema.shared is None:
            if self.shared is not None and np.size(self.shared):
                raise ValueError(f"console {self.schema.version} has no shared settings")
            object.__setattr__(self, "shared", None)
        else:
            shared = self.shared if self.shared is not None else self.schema.shared.from_dict(self.schema.shared.neutral())
            object.__setattr__(self, "shared", self.schema.shared.validate(np.asarray(shared, dtype=np.float64)))
        values = self.schema.validate(np.atleast_2d(self.values))
        if values.shape[0] != len(self.track_names):
            raise ValueError(
                f"{values.shape[0]} parameter rows for {len(self.track_names)} track names"
            )
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "track_names", tuple(self.track_names))
        object.__setattr__(self, "track_extra", tuple(self.track_extra))
        if self.track_extra and len(self.track_extra) != len(self.track_names):
            raise ValueError(f"{len(self.track_extra)} track_extra entries for {len(self.track_names)} tracks")

    @property
    def normalized(self) -> np.ndarray:
        return self.schema.normalize(self.values)

    def to_json(self) -> dict[str, Any]:
        tracks = []
        for i, (name, row) in enumerate(zip(self.track_names, self.values)):
            values = self.schema.to_dict(row)
            more = {k: v for k, v in self.track_extra[i].items() if k != "name" and k not in values} if self.track_extra else {}
            tracks.append({"name": name, **values, **more})
        doc: dict[str, Any] = {}
        if self.sample_rate is not None:
            doc["sample_rate"] = int(self.sample_rate)
        doc["console"] = self.schema.version
        doc["tracks"] = tracks
        if self.schema.shared is not None:
            for spec, value in zip(self.schema.shared.specs, self.shared):
                node = doc
                for key in spec.section.split("."):
                    node = node.setdefault(key, {})
                node[spec.name] = float(value)
        doc.update({k: v for k, v in self.extra.items() if k not in doc})
        return doc

    def reordered(self, names: Sequence[str], *, where: str = "") -> "MixParams":
        """The same settings in the order of ``names`` (every name must be present)."""
        missing = [n for n in names if n not in self.track_names]
        unused = [n for n in self.track_names if n not in names]
        if missing or unused:
            parts = []
            if missing:
                parts.append(f"no settings for track(s) {', '.join(missing)}")
            if unused:
                parts.append(f"settings for unknown track(s) {', '.join(unused)}")
            raise ParamsFileError(f"{where}: {'; '.join(parts)}" if where else "; ".join(parts))
        order = [self.track_names.index(n) for n in names]
        track_extra = tuple(self.track_extra[i] for i in order) if self.track_extra else ()
        return MixParams(self.schema, tuple(names), self.values[order], self.sample_rate, self.extra, track_extra,
                         self.shared)


def read_params(path: str | os.PathLike) -> MixParams:
    """Read and validate a params.json; errors name the file, track and parameter."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsFileError(f"{path}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ParamsFileError(f"{path}: not valid JSON ({err})") from None
    return params_from_json(doc, where=str(path))


def params_from_json(doc: Any, *, where: str = "params") -> MixParams:
    if not isinstance(doc, dict):
        raise ParamsFileError(f"{where}: expected a JSON object at the top level")
    version = doc.get("console")
    if version is None:
        raise ParamsFileError(f'{where}: missing "console" (e.g. "v1")')
    try:
        schema = get_schema(str(version))
    except ValueError as err:
        raise ParamsFileError(f"{where}: {err}") from None
    tracks = doc.get("tracks")
    if not isinstance(tracks, list) or not tracks:
        raise ParamsFileError(f'{where}: "tracks" must be a non-empty list')
    names, rows, track_extra = [], [], []
    for i, row in enumerate(tracks):
        if not isinstance(row, dict) or not isinstance(row.get("name"), str):
            raise ParamsFileError(f'{where}: track {i} needs a "name" string')
        try:
            rows.append(schema.from_dict(row, where=f"track {row['name']!r}"))
        except ParamRangeError as err:
            raise ParamsFileError(f"{where}: {err}") from None
        names.append(row["name"])
        track_extra.append({k: v for k, v in row.items() if k != "name" and k not in schema.names})
    if len(set(names)) != len(names):
        raise ParamsFileError(f"{where}: track names must be unique")
    sample_rate = doc.get("sample_rate")
    if sample_rate is not None and (not isinstance(sample_rate, int) or sample_rate <= 0):
        raise ParamsFileError(f'{where}: "sample_rate" must be a positive integer')
    shared = None
    sections: set[str] = set()
    if schema.shared is not None:
        shared = np.empty(schema.shared.size)
        for i, spec in enumerate(schema.shared.specs):
            node: Any = doc
            for key in spec.section.split("."):
                node = node.get(key) if isinstance(node, dict) else None
            sections.add(spec.section.split(".")[0])
            if not isinstance(node, dict) or spec.name not in node:
                raise ParamsFileError(f'{where}: console {schema.version} needs "{spec.name}" in "{spec.section}"')
            value = node[spec.name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParamsFileError(f"{where}: {spec.section}.{spec.name} must be a number, got {value!r}")
            shared[i] = float(value)
        try:
            shared = schema.shared.validate(shared)
        except ParamRangeError as err:
            raise ParamsFileError(f"{where}: {err}") from None
    extra = {k: v for k, v in doc.items() if k not in ("sample_rate", "console", "tracks", *sections)}
    keep = tuple(track_extra) if any(track_extra) else ()
    return MixParams(schema, tuple(names), np.stack(rows), sample_rate, extra, keep, shared)


def write_params(path: str | os.PathLike, params: MixParams, *, overwrite: bool = False) -> Path:
    """Write ``params`` as params.json (atomic; refuses to overwrite unless asked)."""
    return write_text_atomic(path, json.dumps(params.to_json(), indent=2) + "\n", overwrite=overwrite)
