"""mixinvert: audio mixing inversion.

Given the raw tracks of a song and its stereo mixdown, recover how the mix was made
(per track: gain, EQ, compression, pan, reverb) as console settings a person can read,
change and re-render.

The Python API mirrors the command line, one function per command::

    import mixinvert

    result = mixinvert.invert("song/tracks", "song/mix.wav", method="eami+refine")
    print(result.scores, result.params.track_names)
    result.save("inverted/", report=True, dawproject=True)

``invert``, ``render``, ``report``, ``export`` and ``demo`` come from :mod:`mixinvert.api`;
``evaluate`` from :mod:`mixinvert.evaluation`, ``make_corpus`` from
:mod:`mixinvert.data.corpus` and ``train`` from :mod:`mixinvert.train.essl`. They are
imported on first use, so ``import mixinvert`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "invert": "mixinvert.api",
    "render": "mixinvert.api",
    "report": "mixinvert.api",
    "export": "mixinvert.api",
    "demo": "mixinvert.api",
    "Result": "mixinvert.api:InvertResult",
    "evaluate": "mixinvert.evaluation",
    "make_corpus": "mixinvert.data.corpus",
    "CorpusConfig": "mixinvert.data.corpus",
    "train": "mixinvert.train.essl",
    "TrainConfig": "mixinvert.train.config",
    "read_params": "mixinvert.console.params_io",
    "MixParams": "mixinvert.console.params_io",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'mixinvert' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
