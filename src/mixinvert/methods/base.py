"""One protocol for every inversion method, and the registry that names them.

A method turns a :class:`~mixinvert.data.song.Song` (raw tracks and its reference mix)
into an :class:`Estimate`: console settings and the mix they render to::

    estimate(song, *, rng) -> Estimate(params, mix, info)

Methods register themselves by name (``sum``, ``random``, later ``eami``, ...);
:data:`PREFERENCE` orders them from the most to the least accurate so that ``demo`` can
pick the best one available.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from mixinvert.console.params_io import MixParams
from mixinvert.data.song import Song


@dataclass
class Estimate:
    """A method's answer for one song.

    ``mix`` is the re-rendered estimate ``(2, samples)``; ``info`` holds what the method
    wants to report (time taken, which renderer produced ``mix`` as ``"mix_source"``, ...).
    ``extra_mixes`` are other renderings worth keeping, by a short name (``"console"``:
    the console v1 rendering of ``params`` when ``mix`` came from elsewhere); ``invert``
    writes them as ``mix_<name>.wav`` and ``evaluate`` scores them as ``method:name``.
    """

    params: MixParams
    mix: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    extra_mixes: dict[str, np.ndarray] = field(default_factory=dict)
    #: Per track, extra keys for its params.json row (e.g. ``"uncertainty"``,
    #: ``"undetermined"``); empty, or one dict per track in track order.
    track_details: list[dict[str, Any]] = field(default_factory=list)


class Method(Protocol):
    def __call__(self, song: Song, *, rng: np.random.Generator, **options: Any) -> Estimate: ...


@dataclass(frozen=True)
class MethodEntry:
    """A registered method: its function, a one-line summary, the options it accepts
    (keyword arguments such as ``model``), and a check that it can run here (e.g. that
    its model file exists)."""

    name: str
    fn: Method
    summary: str
    needs_mix: bool = True
    options: tuple[str, ...] = ()
    available: Callable[[], bool] = lambda: True

    def check_options(self, options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            accepted = ", ".join(self.options) or "none"
            raise ValueError(f"method {self.name!r} takes no option {', '.join(unknown)} (it accepts: {accepted})")


_REGISTRY: dict[str, MethodEntry] = {}

#: Names a method may use in ``Estimate.extra_mixes``, and what each rendering is.
EXTRA_MIX_NAMES = {"console": "console v1 rendering of params.json"}

#: Methods from the most to the least accurate at their default settings, as measured on
#: the benchmark corpora (BENCHMARKS.md, "eami+refine against every method"): eami+refine
#: (60 s) is ahead of colonel-reiss (200 steps or 120 s) on both ``songs`` and ``drums``.
PREFERENCE = ("eami+refine", "colonel-reiss", "barchiesi-reiss", "eami", "sum", "random")


def register(
    name: str,
    summary: str,
    *,
    needs_mix: bool = True,
    options: tuple[str, ...] = (),
    available: Callable[[], bool] | None = None,
) -> Callable[[Method], Method]:
    """Decorator: make ``fn`` available as method ``name``."""

    def deco(fn: Method) -> Method:
        _REGISTRY[name] = MethodEntry(name, fn, summary, needs_mix, options, available or (lambda: True))
        return fn

    return deco


def available_methods() -> dict[str, MethodEntry]:
    _load_builtin()
    return dict(_REGISTRY)


def get_method(name: str) -> MethodEntry:
    methods = available_methods()
    if name not in methods:
        raise ValueError(f"unknown method {name!r} (available: {', '.join(methods)})")
    return methods[name]


def best_method(options: tuple[str, ...] = ()) -> str:
    """The most accurate method that can run here (e.g. ``eami`` needs its model file) and
    accepts every option in ``options`` (``("model",)`` picks ``eami``)."""
    methods = available_methods()
    for name in PREFERENCE:
        entry = methods.get(name)
        if entry is not None and entry.available() and set(options) <= set(entry.options):
            return name
    raise ValueError(f"no available method accepts the option(s) {', '.join(options)}")


def _load_builtin() -> None:
    # Importing the modules registers them; kept lazy so `import mixinvert` stays light.
    from mixinvert.methods import barchiesi_reiss, baseline, colonel_reiss, eami, refine  # noqa: F401
