"""Networks from model files: starting a run from one (widened to more transfer channel groups where needed), and averaging several (stochastic weight averaging)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import torch

from mixinvert.models.checkpoint import (
    build_model,
    read_checkpoint,
)
from mixinvert.models.inverter import Inverter, ModelConfig, for_schema, get_model_config
from mixinvert.train.config import TrainConfig, TrainError


def _transfer_groups(config: ModelConfig) -> list[tuple[str, int]]:
    """The transfer branch's input channel groups of ``config``, in order, with their sizes."""
    from mixinvert.dsp.transfer import CHANNEL_GROUPS, channel_groups

    return [(g, len(CHANNEL_GROUPS[g]))
            for g in channel_groups(reverb=config.transfer_reverb, compressor=config.transfer_compressor)]


def _widens(old: ModelConfig, new: ModelConfig) -> bool:
    """Whether ``new`` is ``old`` with more transfer channel groups (and nothing else changed)."""
    if not (old.transfer_branch and new.transfer_branch):
        return False
    same = replace(old, transfer_reverb=new.transfer_reverb, transfer_compressor=new.transfer_compressor) == new
    return same and set(_transfer_groups(old)) < set(_transfer_groups(new))


def widen_transfer(model: Inverter, config: ModelConfig) -> Inverter:
    """``model`` (a transfer branch without some of the extra channel groups: reverb,
    compressor) as a network of ``config`` (the same one with them) that answers exactly
    as ``model`` does: every weight is carried over and the new channels' input weights
    start at zero, for training to take up (``train --init`` from a model trained before
    those channels existed)."""
    if not _widens(model.config, config):
        raise ValueError("widen_transfer only adds transfer channel groups to an otherwise equal network")
    wider = Inverter(config)
    state = model.state_dict()
    key = "transfer_mlp.0.weight"
    old = state[key].reshape(state[key].shape[0], -1, config.n_mels)  # inputs are channel-major
    new = torch.zeros_like(wider.state_dict()[key]).reshape(old.shape[0], -1, config.n_mels)
    starts, at = {}, 0
    for name, size in _transfer_groups(config):
        starts[name], at = at, at + size
    at = 0
    for name, size in _transfer_groups(model.config):
        new[:, starts[name] : starts[name] + size] = old[:, at : at + size]
        at += size
    wider.load_state_dict({**state, key: new.flatten(1)})
    return wider


def init_model(path: str | os.PathLike, config: TrainConfig) -> tuple[Inverter, dict]:
    """The network of model file ``path`` to start a run from, and what identifies it."""
    import hashlib

    path = Path(path)
    obj = read_checkpoint(path)
    model, schema = build_model(obj, where=str(path))
    if schema.version != config.console:
        raise TrainError(f"{path}: a model for console {schema.version}, this run trains console {config.console} "
                         f"(--console {schema.version} to continue it)")
    wanted = for_schema(get_model_config(config.model), config.schema)
    if _widens(model.config, wanted):
        model = widen_transfer(model, wanted)
    if model.config != wanted:
        raise TrainError(f"{path}: its network is not the {config.model!r} configuration; pass --config to match it")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return model, {"path": str(path), "sha256": digest}


def encoder_from(path: str | os.PathLike, config: TrainConfig) -> tuple[Inverter, dict]:
    """A network for ``config`` whose encoder (everything but the output heads) is model
    file ``path``'s, of any console, and whose heads answer where an untrained network
    starts (:func:`~mixinvert.train.config.start_settings`): ``train --init-encoder``.

    What a network learned about reading tracks and mixes does not depend on the console
    it set; its heads do. Starting a console v2 run from the v1 network's encoder keeps the
    first and learns the second.
    """
    import hashlib

    from mixinvert.train.config import start_settings

    path = Path(path)
    obj = read_checkpoint(path)
    model, _ = build_model(obj, where=str(path))
    wanted = for_schema(get_model_config(config.model), config.schema)
    body = replace(wanted, n_params=model.config.n_params, n_shared=model.config.n_shared)
    if _widens(model.config, body):
        model = widen_transfer(model, body)
    if model.config != body:
        raise TrainError(f"{path}: its encoder is not the {config.model!r} configuration's; pass --config to match it")
    out = Inverter(wanted)
    heads = ("fc.", "fc_shared.")
    missing, unexpected = out.load_state_dict(
        {k: v for k, v in model.state_dict().items() if not k.startswith(heads)}, strict=False)
    if unexpected or any(not k.startswith(heads) for k in missing):
        raise TrainError(f"{path}: its weights do not fit the {config.model!r} encoder")
    out.start_at(*start_settings(config.schema))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return out, {"path": str(path), "sha256": digest, "encoder_only": True}


def average_models(paths: Sequence[str | os.PathLike]) -> tuple[Inverter, dict]:
    """The mean of the weights of several model files (or training checkpoints) of one
    lineage, e.g. the last iterations of a run and the model it started from: a network
    and ``meta``: the last file's (how its run trained it: iteration, settings, corpora;
    not its validation scores) plus ``averaged``, the sources' paths and SHA-256, and
    ``console``, their console's version.

    Averaging the weights of networks fine-tuned from one start (Izmailov et al., 2018,
    "Averaging weights leads to wider optima and better generalization") evens out the
    ups and downs of single iterations; on the corpora here it gave a lower validation
    MRSD than any one of its sources (BENCHMARKS.md, the shipped model). Networks of
    one configuration average directly; a network without some of the transfer branch's
    channel groups is widened first (:func:`widen_transfer`). Any other difference, or
    another console, is refused.
    """
    import hashlib

    if len(paths) < 2:
        raise TrainError("averaging needs at least two model files")
    nets, sources, schema, obj = [], [], None, {}
    for path in paths:
        path = Path(path)
        obj = read_checkpoint(path)
        model, sch = build_model(obj, where=str(path))
        if schema is not None and sch.version != schema.version:
            raise TrainError(f"{path}: a model for console {sch.version}, the others are for {schema.version}")
        schema = sch
        nets.append(model)
        sources.append({"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    w = max(range(len(nets)), key=lambda i: nets[i].config.transfer_channels)
    widest = nets[w].config
    for i, (net, src) in enumerate(zip(nets, sources)):
        if net.config == widest:
            continue
        if not _widens(net.config, widest):
            raise TrainError(f"{src['path']}: its network differs from {sources[w]['path']}'s in more than the "
                             "transfer channels; only networks of one configuration can be averaged")
        nets[i] = widen_transfer(net, widest)
    states = [n.state_dict() for n in nets]
    mean = {k: (sum(s[k].double() for s in states) / len(states)).to(v.dtype) if v.is_floating_point() else v
            for k, v in states[0].items()}
    out = Inverter(widest)
    out.load_state_dict(mean)
    # how the last source was trained (its run's settings and corpora), less its own scores
    last = obj.get("meta") or {}  # the last file's
    meta = {k: v for k, v in last.items() if not k.startswith("valid_")}
    return out.eval(), {**meta, "averaged": sources, "console": schema.version}
