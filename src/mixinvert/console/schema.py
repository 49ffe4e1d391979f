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

from dataclasses import dataclass, replace
from typing import Literal, Mapping, Sequence

import numpy as np

from mixinvert.errors import InputError, MixinvertError

Scale = Literal["linear", "log"]
#: How a setting reads to a mixing engineer (:meth:`ParamSpec.format`).
Display = Literal["db", "hz", "ms", "ratio", "number", "pan", "percent", "polarity", "signed_ms"]

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
    #: The value at which the processor is bypassed (a send or drive at the bottom of its
    #: range, a limiter at the top), or None when every value processes.
    off_at: float | None = None
    #: The only values a discrete setting takes (polarity: -1, 1), or None for a continuous
    #: one; :meth:`ParamSchema.denormalize` snaps to the nearest.
    choices: tuple[float, ...] | None = None
    #: Where a setting of the whole console belongs in params.json (``"buses.reverb"``,
    #: ``"master"``); empty for a per-track setting.
    section: str = ""
    #: The value that leaves the signal as unprocessed as this setting allows (EQ flat,
    #: ratio 1, fully dry): what a plain sum sets.
    neutral: float | None = None

    def __post_init__(self) -> None:
        if not self.lo < self.hi:
            raise ValueError(f"{self.name}: lo must be below hi")
        if self.off_at is not None and self.off_at not in (self.lo, self.hi):
            raise ValueError(f"{self.name}: off_at must be an end of the range")
        if self.choices is not None and (min(self.choices) != self.lo or max(self.choices) != self.hi):
            raise ValueError(f"{self.name}: choices must span the range")
        if self.scale == "log" and self.lo <= 0:
            raise ValueError(f"{self.name}: a log-scaled parameter needs lo > 0")
        if self.scale not in ("linear", "log"):
            raise ValueError(f"{self.name}: unknown scale {self.scale!r}")
        if self.display not in _FORMATS:
            raise ValueError(f"{self.name}: unknown display {self.display!r}")

    def is_off(self, value: float) -> bool:
        """Whether ``value`` bypasses the processor (:attr:`off_at`, to rounding)."""
        return self.off_at is not None and abs(float(value) - self.off_at) <= 1e-9 * (self.hi - self.lo)

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
    "polarity": lambda v: "inverted" if v < 0 else "normal",
    "signed_ms": lambda v: f"{v:+.2f} ms",
}


@dataclass(frozen=True)
class ParamSchema:
    """An ordered, versioned set of per-track parameters.

    ``version`` is the console chain it belongs to (``"v1"``); ``params.json`` files carry
    it as ``"console"`` so that files for another chain are refused, not misread.
    ``shared`` holds the settings of the whole console (its FX buses and master bus; one
    value each, not one per track), as a schema of its own; v1 has none.
    """

    version: str
    specs: tuple[ParamSpec, ...]
    shared: "ParamSchema | None" = None

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

    @property
    def shared_size(self) -> int:
        """How many settings the whole console has besides the tracks' (0 for v1)."""
        return self.shared.size if self.shared is not None else 0

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
        return self._snap(np.where(is_log, log, lin))

    def _snap(self, values: np.ndarray) -> np.ndarray:
        """Discrete settings (:attr:`ParamSpec.choices`) at their nearest choice."""
        for i, spec in enumerate(self.specs):
            if spec.choices is not None:
                choices = np.asarray(spec.choices)
                nearest = np.abs(values[..., i, None] - choices).argmin(axis=-1)
                values[..., i] = choices[nearest]
        return values

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
        for i, spec in enumerate(self.specs):
            if spec.choices is not None:
                off = ~np.isin(values[..., i], spec.choices)
                if off.any():
                    at = np.zeros(values.shape, dtype=bool)
                    at[..., i] = off
                    self._raise_first(at, values, f"must be one of {', '.join(f'{c:g}' for c in spec.choices)}; range")
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
        return {s.name: float(s.neutral) for s in self.specs if s.neutral is not None}

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

CONSOLE_V1 = ParamSchema(CONSOLE_V1.version, tuple(replace(s, neutral=NEUTRAL_V1[s.name]) for s in CONSOLE_V1.specs))

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


# -- console v2 ---------------------------------------------------------------------------------

#: Console v2's parametric bells between its shelves (BENCHMARKS.md, "Real mixes": the count
#: measured against the per-bin linear bound on the real songs).
V2_BELLS = 4


def bell_ranges_hz(bells: int, lo_hz: float = 40.0, hi_hz: float = 16000.0) -> list[tuple[float, float]]:
    """Overlapping frequency ranges of ``bells`` bells from low to high: the span cut into
    ``bells + 1`` equal steps on a log scale, each bell over two neighbouring steps (a
    console's LMF, MF, HMF...), so that the bells keep their order and cover the span."""
    edges = np.geomspace(lo_hz, hi_hz, bells + 2)
    return [(round(float(edges[i]), 1), round(float(edges[i + 2]), 1)) for i in range(bells)]


def v2_track_specs(bells: int = V2_BELLS) -> tuple[ParamSpec, ...]:
    """Console v2's per-track settings, in the order the signal meets them."""
    P = ParamSpec
    specs = [
        P("polarity", "", -1.0, 1.0, "linear", "polarity", "polarity", "polarity", choices=(1.0, -1.0), neutral=1.0),
        P("offset_ms", "ms", -20.0, 20.0, "linear", "time", "time offset", "signed_ms", neutral=0.0),
        P("drive_db", "dB", 0.0, 30.0, "linear", "drive", "drive", "db", off_at=0.0, neutral=0.0),
        P("hpf_cutoff_hz", "Hz", 10.0, 1000.0, "log", "hpf", "high-pass freq", "hz", off_at=10.0, neutral=10.0),
        P("eq_low_shelf_cutoff_hz", "Hz", 30.0, 500.0, "log", "eq", "low shelf freq", "hz", neutral=100.0),
        P("eq_low_shelf_gain_db", "dB", -15.0, 15.0, "linear", "eq", "low shelf gain", "db", neutral=0.0),
    ]
    for i, (lo, hi) in enumerate(bell_ranges_hz(bells), start=1):
        specs += [
            P(f"eq_bell{i}_cutoff_hz", "Hz", lo, hi, "log", "eq", f"bell {i} freq", "hz",
              neutral=round(float(np.sqrt(lo * hi)), 1)),
            P(f"eq_bell{i}_gain_db", "dB", -15.0, 15.0, "linear", "eq", f"bell {i} gain", "db", neutral=0.0),
            P(f"eq_bell{i}_q", "", 0.3, 8.0, "log", "eq", f"bell {i} Q", "number", neutral=0.7071),
        ]
    specs += [
        P("eq_high_shelf_cutoff_hz", "Hz", 1500.0, 16000.0, "log", "eq", "high shelf freq", "hz", neutral=5000.0),
        P("eq_high_shelf_gain_db", "dB", -15.0, 15.0, "linear", "eq", "high shelf gain", "db", neutral=0.0),
        P("comp_threshold_db", "dB", -50.0, 0.0, "linear", "compressor", "threshold", "db", neutral=0.0),
        P("comp_ratio", ":1", 1.0, 20.0, "log", "compressor", "ratio", "ratio", neutral=1.0),
        P("comp_attack_ms", "ms", 0.1, 100.0, "log", "compressor", "attack", "ms", neutral=10.0),
        P("comp_release_ms", "ms", 10.0, 1000.0, "log", "compressor", "release", "ms", neutral=100.0),
        P("fader_db", "dB", -40.0, 20.0, "linear", "fader", "fader", "db", neutral=0.0),
        P("pan", "", -1.0, 1.0, "linear", "pan", "pan", "pan", neutral=0.0),
        P("width", "", 0.0, 2.0, "linear", "pan", "width", "percent", neutral=1.0),
        P("reverb_send_db", "dB", -60.0, 0.0, "linear", "sends", "reverb send", "db", off_at=-60.0, neutral=-60.0),
    ]
    return tuple(specs)


def _v2_shared_specs() -> tuple[ParamSpec, ...]:
    P = ParamSpec
    bus, master = "buses.reverb", "master"
    return (
        P("reverb_room_size", "", 0.0, 1.0, "linear", "reverb bus", "room size", "percent", section=bus, neutral=0.5),
        P("reverb_damping", "", 0.0, 1.0, "linear", "reverb bus", "damping", "percent", section=bus, neutral=0.5),
        P("reverb_width", "", 0.0, 1.0, "linear", "reverb bus", "width", "percent", section=bus, neutral=1.0),
        P("reverb_hpf_hz", "Hz", 20.0, 1000.0, "log", "reverb bus", "low cut", "hz", off_at=20.0, section=bus,
          neutral=20.0),
        P("reverb_lpf_hz", "Hz", 1000.0, 20000.0, "log", "reverb bus", "high cut", "hz", off_at=20000.0, section=bus,
          neutral=20000.0),
        P("reverb_return_db", "dB", -40.0, 12.0, "linear", "reverb bus", "return", "db", section=bus, neutral=0.0),
        P("master_eq_low_shelf_cutoff_hz", "Hz", 30.0, 500.0, "log", "master eq", "low shelf freq", "hz",
          section=master, neutral=100.0),
        P("master_eq_low_shelf_gain_db", "dB", -12.0, 12.0, "linear", "master eq", "low shelf gain", "db",
          section=master, neutral=0.0),
        P("master_eq_bell_cutoff_hz", "Hz", 100.0, 10000.0, "log", "master eq", "bell freq", "hz", section=master,
          neutral=1000.0),
        P("master_eq_bell_gain_db", "dB", -12.0, 12.0, "linear", "master eq", "bell gain", "db", section=master,
          neutral=0.0),
        P("master_eq_bell_q", "", 0.3, 5.0, "log", "master eq", "bell Q", "number", section=master, neutral=0.7071),
        P("master_eq_high_shelf_cutoff_hz", "Hz", 1500.0, 16000.0, "log", "master eq", "high shelf freq", "hz",
          section=master, neutral=5000.0),
        P("master_eq_high_shelf_gain_db", "dB", -12.0, 12.0, "linear", "master eq", "high shelf gain", "db",
          section=master, neutral=0.0),
        P("master_comp_threshold_db", "dB", -40.0, 0.0, "linear", "master compressor", "threshold", "db",
          section=master, neutral=0.0),
        P("master_comp_ratio", ":1", 1.0, 10.0, "log", "master compressor", "ratio", "ratio", section=master,
          neutral=1.0),
        P("master_comp_attack_ms", "ms", 0.1, 100.0, "log", "master compressor", "attack", "ms", section=master,
          neutral=10.0),
        P("master_comp_release_ms", "ms", 10.0, 1000.0, "log", "master compressor", "release", "ms", section=master,
          neutral=100.0),
        P("master_limiter_ceiling_db", "dB", -24.0, 0.0, "linear", "master limiter", "ceiling", "db", off_at=0.0,
          section=master, neutral=0.0),
        P("master_limiter_release_ms", "ms", 1.0, 1000.0, "log", "master limiter", "release", "ms", section=master,
          neutral=100.0),
        P("master_gain_db", "dB", -24.0, 24.0, "linear", "master gain", "master gain", "db", section=master,
          neutral=0.0),
    )


#: Console v2: per track polarity, time offset, drive, high-pass, a low shelf, V2_BELLS bells
#: and a high shelf, the compressor, the fader, pan and width, and a send to the reverb bus;
#: shared, the reverb bus's return and the master chain (EQ, compressor, limiter, gain).
#: Order is part of the format.
CONSOLE_V2 = ParamSchema(version="v2", specs=v2_track_specs(), shared=ParamSchema("v2", _v2_shared_specs()))
SCHEMAS["v2"] = CONSOLE_V2
