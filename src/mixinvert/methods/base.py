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
    wants to report (time taken, which renderer produced ``mix``, ...).
    """

    params: MixParams
    mix: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


class Method(Protocol):
    def __call__(self, song: Song, *, rng: np.random.Generator) -> Estimate: ...


@dataclass(frozen=True)
class MethodEntry:
    name: str
    fn: Method
    summary: str
    needs_mix: bool = True


_REGISTRY: dict[str, MethodEntry] = {}

#: Methods from the most to the least accurate (the paper's Table 1 order, best first).
PREFERENCE = ("eami+refine", "eami", "colonel-reiss", "barchiesi-reiss", "sum", "random")


def register(name: str, summary: str, *, needs_mix: bool = True) -> Callable[[Method], Method]:
    """Decorator: make ``fn`` available as method ``name``."""

    def deco(fn: Method) -> Method:
        _REGISTRY[name] = MethodEntry(name, fn, summary, needs_mix)
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


def best_method() -> str:
    methods = available_methods()
    return next(n for n in PREFERENCE if n in methods)


def _load_builtin() -> None:
    # Importing the modules registers them; kept lazy so `import mixinvert` stays light.
    from mixinvert.methods import baseline  # noqa: F401
