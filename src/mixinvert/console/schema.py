"""The console's parameter schema, as data, and the one place that converts units.

A schema is an ordered table of :class:`ParamSpec` rows: name, unit, range, scale, the
effect it belongs to, its label and how it reads. Everything that needs to know what a
setting is (the renderers, the refinement's effect groups, the report) reads it here.
The network works in normalized units ``p`` in [-1, 1]; the console works in physical
units. With ``u = (p + 1) / 2``:

- linear: ``value = lo + u * (hi - lo)``
- log:    ``value = lo * (hi / lo) ** u``

:func:`ParamSchema.denormalize` and :func:`ParamSchema.normalize` are that pair, used
everywhere; nothing outside this module indexes a parameter vector by a bare number.
Out-of-range physical values raise :class:`ParamRangeError` naming the parameter; they
are never clamped silently (a sampler clips in normalized space before converting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

import numpy as np

from mixinvert.errors import InputError, MixinvertError

Scale = Literal["linear", "log"]
#: How a setting reads to a mixing engineer (:meth:`ParamSpec.format`).
Display = Literal["db", "hz", "ms", "ratio", "number", "pan", "percent"]

#: Relative slack allowed when validating physical values, so that values that went
#: through float32 or a JSON round trip at the very edge of a range are accepted.
_RANGE_RTOL = 1e-6


class ParamRangeError(MixinvertError, ValueError):
    """A physical parameter value outside its range (or not finite)."""


@dataclass(frozen=True)
class ParamSpec:
    """One console parameter: its name (with unit suffix), unit, range and scale, the effect
    (processor) it belongs to, its label on a channel strip and how its value reads."""

    #: The key in params.json, with its unit as a suffix (``gain_db``).
    name: str
    unit: str
    #: The range in physical units, both ends included.
    lo: float
    hi: float
    #: How normalized ``p`` maps to the range (module doc).
    scale: Scale = "linear"
    #: The processor it belongs to (``"eq"``): what a fit restricted to some effects frees.
    effect: str = ""
    #: Its name on a channel strip (``"low shelf freq"``).
    label: str = ""
    display: Display = "number"

    def __post_init__(self) -> None:
        if not self.lo < self.hi:
            raise ValueError(f"{self.name}: lo must be below hi")
        if self.scale == "log" and self.lo <= 0:
            raise ValueError(f"{self.name}: a log-scaled parameter needs lo > 0")
        if self.scale not in ("linear", "log"):
            raise ValueError(f"{self.name}: unknown scale {self.scale!r}")
        if self.display not in _FORMATS:
            raise ValueError(f"{self.name}: unknown display {self.display!r}")

    def format(self, value: float) -> str:
        """The value in the units a mixing engineer reads (``+3.0 dB``, ``1.25 kHz``, ``L30``)."""
        return _FORMATS[self.display](float(value))


def _pan(value: float) -> str:
    pct = round(100 * value)
    return "C" if pct == 0 else f"{'L' if pct < 0 else 'R'}{abs(pct)}"


_FORMATS = {
    "db": lambda v: f"{v:+.1f} dB",
    "hz": lambda v: f"{v:.0f} Hz" if v < 1000 else f"{v / 1000:.3g} kHz",
    "ms": lambda v: f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms",
    "ratio": lambda v: f"{v:.1f}:1",
    "number": lambda v: f"{v:.2f}",
    "pan": _pan,
    "percent": lambda v: f"{100 * v:.0f} %",
}


@dataclass(frozen=True)
class ParamSchema:
    """An ordered, versioned set of per-track parameters.

    ``version`` is the console chain it belongs to (``"v1"``); ``params.json`` files carry
    it as ``"console"`` so that files for another chain are refused, not misread.
    """

    version: str
    specs: tuple[ParamSpec, ...]

    # -- lookup -----------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    @property
    def size(self) -> int:
        return len(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    @property
    def effects(self) -> dict[str, tuple[str, ...]]:
        """Each effect (processor) and its settings, in the chain's order."""
        out: dict[str, tuple[str, ...]] = {}
        for spec in self.specs:
            out[spec.effect] = out.get(spec.effect, ()) + (spec.name,)
        return out

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"console {self.version} has no parameter {name!r}") from None

    def spec(self, name: str) -> ParamSpec:
        return self.specs[self.index(name)]

    @property
    def lo(self) -> np.ndarray:
        return np.array([s.lo for s in self.specs], dtype=np.float64)

    @property
    def hi(self) -> np.ndarray:
        return np.array([s.hi for s in self.specs], dtype=np.float64)

    @property
    def is_log(self) -> np.ndarray:
        return np.array([s.scale == "log" for s in self.specs])

    # -- conversion ---------------------------------------------------------------------
    def denormalize(self, p: np.ndarray) -> np.ndarray:
        """Normalized ``p`` in [-1, 1] to physical values.

        Shape: ``(..., n_params)`` in, same shape out (float64). Values of ``p`` outside
        [-1, 1] raise :class:`ParamRangeError`; clip first if that is what you mean.
        """
        p = self._check_shape(p)
        bad = ~np.isfinite(p) | (np.abs(p) > 1.0 + _RANGE_RTOL)
        if bad.any():
            self._raise_first(bad, p, "normalized value outside [-1, 1]")
        u = (np.clip(p, -1.0, 1.0) + 1.0) / 2.0
        lo, hi, is_log = self.lo, self.hi, self.is_log
        lin = lo + u * (hi - lo)
        with np.errstate(divide="ignore", invalid="ignore"):
            log = lo * (hi / lo) ** u
        return np.where(is_log, log, lin)

    def normalize(self, values: np.ndarray) -> np.ndarray:
        """Physical values to normalized ``p`` in [-1, 1].

        Shape: ``(..., n_params)`` in, same shape out (float64). Out-of-range values raise
        :class:`ParamRangeError` naming the parameter.
        """
        values = self.validate(values)
        lo, hi, is_log = self.lo, self.hi, self.is_log
        with np.errstate(divide="ignore", invalid="ignore"):
            u_log = np.log(values / lo) / np.log(hi / lo)
        u = np.where(is_log, u_log, (values - lo) / (hi - lo))
        return np.clip(2.0 * u - 1.0, -1.0, 1.0)

    def validate(self, values: np.ndarray) -> np.ndarray:
        """Return ``values`` as float64 if every entry is finite and within its range."""
        values = self._check_shape(values)
        lo, hi = self.lo, self.hi
        slack = _RANGE_RTOL * (hi - lo)
        bad = ~np.isfinite(values) | (values < lo - slack) | (values > hi + slack)
        if bad.any():
            self._raise_first(bad, values, "outside its range")
        return np.clip(values, lo, hi)

    # -- dict form (params.json rows) ------------------------------------------------------
    def to_dict(self, values: np.ndarray) -> dict[str, float]:
        """One track's physical values as ``{name: value}`` (validated)."""
        values = self.validate(np.asarray(values, dtype=np.float64).reshape(self.size))
        return {name: float(v) for name, v in zip(self.names, values)}

    def from_dict(self, row: Mapping[str, object], *, where: str = "") -> np.ndarray:
        """``{name: value}`` (extra keys ignored) to a validated physical vector."""
        prefix = f"{where}: " if where else ""
        missing = [n for n in self.names if n not in row]
        if missing:
            raise ParamRangeError(f"{prefix}missing parameter(s) {', '.join(missing)}")
        out = np.empty(self.size, dtype=np.float64)
        for i, name in enumerate(self.names):
            value = row[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParamRangeError(f"{prefix}{name} must be a number, got {value!r}")
            out[i] = float(value)
        try:
            return self.validate(out)
        except ParamRangeError as err:
            raise ParamRangeError(f"{prefix}{err}") from None

    def neutral(self) -> dict[str, float]:
        """Physical values that leave a track as unprocessed as the chain allows."""
        return dict(NEUTRAL_V1) if self.version == "v1" else {}

    def describe(self) -> list[dict[str, object]]:
        """The schema as plain data (stored in checkpoints and docs)."""
        return [
            {"name": s.name, "unit": s.unit, "lo": s.lo, "hi": s.hi, "scale": s.scale}
            for s in self.specs
        ]

    # -- helpers -------------------------------------------------------------------------
    def _check_shape(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 0 or x.shape[-1] != self.size:
            raise ValueError(
                f"console {self.version} expects {self.size} parameters on the last axis, "
                f"got shape {x.shape}"
            )
        return x

    def _raise_first(self, bad: np.ndarray, x: np.ndarray, what: str) -> None:
        idx = np.argwhere(bad)[0]
        spec = self.specs[int(idx[-1])]
        track = f" (track {int(idx[0])})" if x.ndim > 1 else ""
        raise ParamRangeError(
            f"{spec.name}{track} = {x[tuple(idx)]!r}: {what} "
            f"[{spec.lo:g}, {spec.hi:g}] {spec.unit}".rstrip()
        )


#: Console v1: the 16 per-track parameters of the paper's chain (gain -> EQ -> compressor
#: -> pan -> reverb). Order is part of the format.
CONSOLE_V1 = ParamSchema(
    version="v1",
    specs=(  # name, unit, low, high, scale, effect, label, display
        ParamSpec("gain_db", "dB", -24.0, 12.0, "linear", "gain", "gain", "db"),
        ParamSpec("eq_low_shelf_cutoff_hz", "Hz", 30.0, 500.0, "log", "eq", "low shelf freq", "hz"),
        ParamSpec("eq_low_shelf_gain_db", "dB", -12.0, 12.0, "linear", "eq", "low shelf gain", "db"),
        ParamSpec("eq_peak_cutoff_hz", "Hz", 100.0, 10000.0, "log", "eq", "peak freq", "hz"),
        ParamSpec("eq_peak_gain_db", "dB", -12.0, 12.0, "linear", "eq", "peak gain", "db"),
        ParamSpec("eq_peak_q", "", 0.3, 5.0, "log", "eq", "peak Q", "number"),
        ParamSpec("eq_high_shelf_cutoff_hz", "Hz", 1500.0, 16000.0, "log", "eq", "high shelf freq", "hz"),
        ParamSpec("eq_high_shelf_gain_db", "dB", -12.0, 12.0, "linear", "eq", "high shelf gain", "db"),
        ParamSpec("comp_threshold_db", "dB", -40.0, 0.0, "linear", "compressor", "threshold", "db"),
        ParamSpec("comp_ratio", ":1", 1.0, 20.0, "log", "compressor", "ratio", "ratio"),
        ParamSpec("comp_attack_ms", "ms", 0.5, 100.0, "log", "compressor", "attack", "ms"),
        ParamSpec("comp_release_ms", "ms", 10.0, 1000.0, "log", "compressor", "release", "ms"),
        ParamSpec("pan", "", -1.0, 1.0, "linear", "pan", "pan", "pan"),
        ParamSpec("reverb_room_size", "", 0.0, 1.0, "linear", "reverb", "room size", "percent"),
        ParamSpec("reverb_damping", "", 0.0, 1.0, "linear", "reverb", "damping", "percent"),
        ParamSpec("reverb_wet", "", 0.0, 1.0, "linear", "reverb", "wet", "percent"),
    ),
)

#: Settings of v1 that pass audio through unchanged apart from the pan law (EQ flat,
#: compressor at ratio 1, reverb fully dry).
NEUTRAL_V1: dict[str, float] = {
    "gain_db": 0.0,
    "eq_low_shelf_cutoff_hz": 100.0,
    "eq_low_shelf_gain_db": 0.0,
    "eq_peak_cutoff_hz": 1000.0,
    "eq_peak_gain_db": 0.0,
    "eq_peak_q": 0.7071,
    "eq_high_shelf_cutoff_hz": 5000.0,
    "eq_high_shelf_gain_db": 0.0,
    "comp_threshold_db": 0.0,
    "comp_ratio": 1.0,
    "comp_attack_ms": 10.0,
    "comp_release_ms": 100.0,
    "pan": 0.0,
    "reverb_room_size": 0.5,
    "reverb_damping": 0.5,
    "reverb_wet": 0.0,
}

SCHEMAS: dict[str, ParamSchema] = {"v1": CONSOLE_V1}


def get_schema(version: str) -> ParamSchema:
    """The schema of console ``version`` (e.g. ``"v1"``), or a clear error."""
    try:
        return SCHEMAS[version]
    except KeyError:
        known = ", ".join(sorted(SCHEMAS))
        raise InputError(f"unknown console version {version!r} (known: {known})") from None


def stack_rows(schema: ParamSchema, rows: Sequence[Mapping[str, object]]) -> np.ndarray:
    """Rows of ``{name: value}`` to a validated ``(n_tracks, n_params)`` array."""
    return np.stack([schema.from_dict(r, where=f"track {i}") for i, r in enumerate(rows)])
