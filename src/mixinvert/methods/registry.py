"""The built-in methods by name, and which is best: the one registry above the methods.

Importing a method's module registers it (:func:`mixinvert.methods.base.register`); this
module imports them all when first asked (so that ``import mixinvert`` and the command
line's help stay light), looks them up, and ranks them by :data:`PREFERENCE`.
"""

from __future__ import annotations

from mixinvert.errors import MixinvertError
from mixinvert.methods.base import REGISTERED, MethodEntry

#: Methods from the most to the least accurate at their default settings, as measured on
#: the benchmark corpora (BENCHMARKS.md, "eami+refine against every method", and "eami+refine
#: against colonel-reiss at the same work" for in-model, mismatched and real songs).
PREFERENCE = ("eami+refine", "colonel-reiss", "barchiesi-reiss", "eami", "sum", "random")


class UnknownMethodError(MixinvertError, ValueError):
    """A method name that no method has, or options that no available method accepts."""


def _load_builtin() -> None:
    from mixinvert.methods import barchiesi_reiss, baseline, colonel_reiss, eami  # noqa: F401
    from mixinvert.methods.refine import method  # noqa: F401


def available_methods() -> dict[str, MethodEntry]:
    """Every method by name, in the order of :data:`PREFERENCE`."""
    _load_builtin()
    return {name: REGISTERED[name] for name in (*PREFERENCE, *sorted(set(REGISTERED) - set(PREFERENCE)))}


def get_method(name: str) -> MethodEntry:
    methods = available_methods()
    if name not in methods:
        raise UnknownMethodError(f"unknown method {name!r} (available: {', '.join(methods)})")
    return methods[name]


def best_method(options: tuple[str, ...] = ()) -> str:
    """The most accurate method that can run here (e.g. ``eami`` needs its model file) and
    accepts every option in ``options`` (``("model",)`` picks ``eami``)."""
    methods = available_methods()
    for name in PREFERENCE:
        entry = methods.get(name)
        if entry is not None and entry.available() and set(options) <= set(entry.options):
            return name
    raise UnknownMethodError(f"no available method accepts the option(s) {', '.join(options)}")
