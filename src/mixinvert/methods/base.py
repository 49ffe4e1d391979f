"""One protocol for every inversion method, and the registry that names them.

A method turns a :class:`~mixinvert.data.song.Song` (raw tracks and its reference mix)
into an :class:`Estimate`: console settings and the mix they render to::

    estimate(song, *, rng) -> Estimate(params, mix, info)

Methods register themselves by name with :func:`register` (``sum``, ``random``, ``eami``,
...); :mod:`mixinvert.methods.registry`, above every method, loads them, looks them up
and ranks them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from mixinvert.console.params_io import MixParams
from mixinvert.data.song import Song
from mixinvert.errors import InputError


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
        if unknown == ["console"]:
            able = ", ".join(sorted(n for n, e in REGISTERED.items() if "console" in e.options))
            raise InputError(f"method {self.name!r} works on console v1 only; console {options['console']!r} "
                             f"works with: {able}")
        if unknown:
            accepted = ", ".join(self.options) or "none"
            raise InputError(f"method {self.name!r} takes no option {', '.join(unknown)} (it accepts: {accepted})")


#: Every registered method by name; read through :mod:`mixinvert.methods.registry`.
REGISTERED: dict[str, MethodEntry] = {}

#: Names a method may use in ``Estimate.extra_mixes``, and what each rendering is.
EXTRA_MIX_NAMES = {"console": "the console rendering of params.json"}


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
        REGISTERED[name] = MethodEntry(name, fn, summary, needs_mix, options, available or (lambda: True))
        return fn

    return deco
