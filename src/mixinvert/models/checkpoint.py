"""Checkpoints that rebuild their model, and the shipped default model.

Two kinds of file, both plain ``torch.save`` dictionaries loaded with
``weights_only=True`` (no pickled code is ever executed):

- a **model file** (``model.pt``, and the shipped ``eami_default.pt``): format tag, model
  config, console schema, weights, and how it was trained. ``invert --model`` takes it.
- a **training checkpoint** (``checkpoint.pt`` in a run folder): a model file plus the
  optimizer, the training config, RNG states, the iteration reached and the log, so
  ``train`` resumes exactly where it stopped.

Files are written to a temporary name and renamed, so an interrupted write never leaves a
half-written checkpoint in place of a good one.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import torch

from mixinvert.audio import atomic_output
from mixinvert.console.schema import ParamSchema, get_schema
from mixinvert.errors import InputError
from mixinvert.models.inverter import Inverter, ModelConfig

FORMAT = "mixinvert-eami"
FORMAT_VERSION = 1
#: The model that ``invert --method eami`` uses on console v1 when no ``--model`` is given.
DEFAULT_MODEL_PATH = Path(__file__).with_name("eami_default.pt")
#: The shipped model of each console.
DEFAULT_MODEL_PATHS = {"v1": DEFAULT_MODEL_PATH, "v2": Path(__file__).with_name("eami_v2.pt")}


class CheckpointError(InputError):
    """A file that is not a usable mixinvert model or checkpoint."""


def save_atomic(obj: dict, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename over it (see
    :func:`mixinvert.audio.atomic_output`)."""
    path = Path(path)
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)
    return path


def model_payload(model: Inverter, schema: ParamSchema, meta: dict[str, Any] | None = None) -> dict:
    """What a model file holds (weights as float32 tensors)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "model",
        "model_config": model.config.to_dict(),
        "schema": {"version": schema.version, "names": list(schema.names)},
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "meta": dict(meta or {}),
    }


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load and check a model file or training checkpoint; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a mixinvert EAMI model (no {FORMAT!r} format tag)")
    if obj.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {obj.get('format_version')} is not supported "
            f"(this mixinvert reads version {FORMAT_VERSION})"
        )
    for key in ("model_config", "schema", "state_dict"):
        if key not in obj:
            raise CheckpointError(f"{path}: checkpoint lacks {key!r}")
    return obj


def build_model(obj: dict, *, where: str = "checkpoint") -> tuple[Inverter, ParamSchema]:
    """Rebuild the network (and its console schema) from a loaded checkpoint dictionary."""
    try:
        config = ModelConfig.from_dict(obj["model_config"])
        schema = get_schema(obj["schema"]["version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: bad model config or schema ({exc})") from exc
    if list(obj["schema"].get("names", [])) != list(schema.names):
        raise CheckpointError(f"{where}: its parameter names do not match console {schema.version}")
    if config.n_params != schema.size or config.n_shared != schema.shared_size:
        raise CheckpointError(f"{where}: the model predicts {config.n_params} values per track and "
                              f"{config.n_shared} shared, console {schema.version} has {schema.size} and "
                              f"{schema.shared_size}")
    model = Inverter(config)
    try:
        model.load_state_dict(obj["state_dict"])
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{where}: weights do not fit the stored model config ({exc})") from exc
    model.eval()
    return model, schema


def load_model(path: str | os.PathLike | None = None, console: str = "v1") -> tuple[Inverter, ParamSchema, dict]:
    """The network, its schema and its ``meta`` from a model file or checkpoint.

    ``path=None`` loads the shipped model of ``console``. Results are cached per file (path,
    size, modification time and inode), so methods can call this for every song.
    """
    if path is None:
        path = DEFAULT_MODEL_PATHS[console]
        if not path.is_file():
            raise CheckpointError(
                f"no shipped model at {path}; train one with `mixinvert train` and pass it with --model"
            )
    path = Path(path).resolve()
    stat = path.stat() if path.is_file() else None
    key = (str(path), stat.st_size if stat else -1, stat.st_mtime_ns if stat else -1, stat.st_ino if stat else -1)
    return _load_cached(key)


@functools.lru_cache(maxsize=4)
def _load_cached(key: tuple[str, int, int, int]) -> tuple[Inverter, ParamSchema, dict]:
    obj = read_checkpoint(key[0])
    model, schema = build_model(obj, where=key[0])
    return model, schema, dict(obj.get("meta", {}))
