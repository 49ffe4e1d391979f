"""Run one method on one song and score what it rendered: the one path that ``invert``,
``evaluate`` and the benchmarks take."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mixinvert.data.song import Song
from mixinvert.errors import InputError, MixinvertError
from mixinvert.methods.base import EXTRA_MIX_NAMES, Estimate, MethodEntry
from mixinvert.methods.registry import get_method
from mixinvert.metrics.audio import MixScores, compare_mixes


class MethodOutputError(MixinvertError, RuntimeError):
    """A method returned something outside the protocol (e.g. an unknown extra mix)."""


@dataclass
class ScoredEstimate:
    """A method's estimate for a song and the paper's scores of its mixes against the reference."""

    method: str
    estimate: Estimate
    #: The scores of ``estimate.mix``.
    scores: MixScores
    #: Wall seconds the method took.
    seconds: float
    #: The scores of each of ``estimate.extra_mixes``, by its name.
    extra_scores: dict[str, MixScores] = field(default_factory=dict)


#: The console a method that can express a mix on either runs on when none is named: v2,
#: ahead of v1 on every real song measured (BENCHMARKS.md, "Real mixes").
DEFAULT_CONSOLE = "v2"


def default_console(entry: MethodEntry, song: Song, options: dict[str, Any] | None = None) -> str | None:
    """The console ``entry`` runs ``song`` on when the caller names none: None for a method
    with one console only; with a ``model`` option, the model's console (a
    network predicts one console's settings); for a song whose true settings are known (a
    corpus song), their console, so that the estimate's settings can be scored against them;
    else :data:`DEFAULT_CONSOLE`."""
    if "console" not in entry.options:
        return None
    if (options or {}).get("model") is not None:
        from mixinvert.models.checkpoint import load_model

        return load_model(options["model"])[1].version
    if song.params is not None:
        return song.params.schema.version
    return DEFAULT_CONSOLE


def _console_of(entry: MethodEntry, options: dict[str, Any]) -> str:
    """The console a run will use: the option, else for a method without one its
    model's, else v1."""
    if "console" in options:
        return str(options["console"])
    if "model" in entry.options:
        from mixinvert.models.checkpoint import load_model

        return load_model(options.get("model"))[1].version
    return "v1"


def run_method(song: Song, name: str, *, rng: np.random.Generator, options: dict[str, Any] | None = None
               ) -> ScoredEstimate:
    """Method ``name`` on ``song`` (which needs its reference mix) with ``options``, scored by
    :func:`~mixinvert.metrics.audio.compare_mixes`. Options the method does not take are an
    error, raised before any work. Without a ``console`` option, a method that takes one
    runs on :func:`default_console`."""
    entry = get_method(name)
    options = dict(options or {})
    entry.check_options(options)
    if "console" not in options and (console := default_console(entry, song, options)) is not None:
        options["console"] = console
    if song.mix is None:
        raise InputError(f"{song.name}: scoring {name!r} needs the song's reference mix")
    if song.mono_mix and _console_of(entry, options) != "v2":
        how = "--console v2" if "console" in entry.options else "a model for console v2"
        raise InputError(f"{song.name}: a mono mix needs console v2 ({how}), which leaves pan and width out")
    start = time.perf_counter()
    est = entry.fn(song, rng=rng, **options)
    seconds = time.perf_counter() - start
    unknown = sorted(set(est.extra_mixes) - set(EXTRA_MIX_NAMES))
    if unknown:
        raise MethodOutputError(f"method {name!r} returned an unknown extra mix {', '.join(unknown)}")
    extra = {key: compare_mixes(mix, song.mix, song.sample_rate) for key, mix in est.extra_mixes.items()}
    return ScoredEstimate(name, est, compare_mixes(est.mix, song.mix, song.sample_rate), seconds, extra)
