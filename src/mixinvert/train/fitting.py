"""The training step (the network fitted to the sampled pairs) and the validation on whole songs."""

from __future__ import annotations

import contextlib
from typing import Any, Sequence

import numpy as np
import torch
from torch.distributed.algorithms.join import Join

from mixinvert.console.schema import CONSOLE_V1, ParamSchema
from mixinvert.executors import Executor, LocalExecutor
from mixinvert.methods.baseline import plain_sum
from mixinvert.metrics.audio import compare_mixes
from mixinvert.models.inverter import Inverter
from mixinvert.models.predict import predict_features
from mixinvert.progress import progress_bar, progress_iter
from mixinvert.train.config import TrainConfig
from mixinvert.train.distributed import current as current_dist
from mixinvert.train.sampling import PairedData
from mixinvert.train.songs import TrainSong
from mixinvert.train.tasks import (
    SongAudio,
    render_scores,
)


def training_step(
    model: Inverter,
    optimizer: torch.optim.Optimizer,
    data: PairedData,
    config: TrainConfig,
    t: int,
    *,
    progress: bool = False,
    ddp: torch.nn.Module | None = None,
) -> float:
    """``config.epochs`` epochs of MSE on the pairs (every track's settings and, on a console
    with shared settings, each pair's shared ones, each value counting once); returns the
    mean loss of the last epoch.

    ``ddp``: ``model`` wrapped in DistributedDataParallel (a distributed run): the pairs
    are this rank's, the gradients are averaged over the ranks, and the loss returned is
    the mean over all ranks' pairs.
    """
    model.train()
    net = ddp if ddp is not None else model
    gen = torch.Generator().manual_seed(config.seed * 1_000_003 + t)
    n = len(data)
    steps_per_epoch = -(-n // config.batch_size)
    bar = progress_bar(steps_per_epoch * config.epochs, f"iteration {t + 1}: training", "batch", enabled=progress)
    last = float("nan")
    for _ in range(config.epochs):
        order = torch.randperm(n, generator=gen).tolist()
        # ranks with fewer pairs than others stop early without leaving the rest waiting
        joined = Join([ddp]) if ddp is not None else contextlib.nullcontext()
        with joined:
            total, count = _epoch(net, optimizer, data, config, t, order, bar)
        if ddp is not None:
            total, count = current_dist().sum(total, count)
        last = total / max(count, 1)
    bar.close()
    return last


def _epoch(net: torch.nn.Module, optimizer: torch.optim.Optimizer, data: PairedData, config: TrainConfig, t: int,
           order: list[int], bar: Any) -> tuple[float, int]:
    """One epoch over ``order`` (indices of this rank's pairs): ``(loss x pairs, pairs)``;
    the batches go to the network's device."""
    device = next(net.parameters()).device
    total, count = 0.0, 0
    for a in range(0, len(order), config.batch_size):
        idx = order[a : a + config.batch_size]
        tf = torch.cat([data.track_feats[data.pair_song[i]] for i in idx])
        mf = torch.stack([data.pair_mix[i] for i in idx])
        si = torch.cat([torch.full((data.pair_p[i].shape[0],), k, dtype=torch.long) for k, i in enumerate(idx)])
        target = torch.cat([data.pair_p[i] for i in idx])
        tr = torch.cat([data.pair_transfer[i] for i in idx]) if data.pair_transfer else None
        shared = torch.stack([data.pair_shared[i] for i in idx]) if data.pair_shared else None
        if device.type != "cpu":
            tf, mf, si, target = (x.to(device, non_blocking=True) for x in (tf, mf, si, target))
            tr = tr.to(device, non_blocking=True) if tr is not None else None
            shared = shared.to(device, non_blocking=True) if shared is not None else None
        if shared is None:
            loss = torch.nn.functional.mse_loss(net(tf, mf, si, transfer=tr), target)
        else:
            out, out_shared = net(tf, mf, si, transfer=tr, with_shared=True)
            loss = torch.cat([(out - target).flatten(), (out_shared - shared).flatten()]).square().mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"iteration {t + 1}: the training loss is {loss.item()}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
        count += len(idx)
        bar.update(1)
        bar.set_postfix(loss=f"{total / count:.4f}")
    return total, count


def validate(
    model: Inverter,
    songs: Sequence[TrainSong],
    *,
    schema: ParamSchema = CONSOLE_V1,
    workers: int | None = None,
    progress: bool = False,
    executor: Executor | None = None,
) -> dict[str, float]:
    """Mean MAE/MRSD of rendered predictions against the reference mixes (whole songs); the
    parameter error over the tracks' settings of songs whose truth is known."""
    if not songs:
        return {"valid_mae": float("nan"), "valid_mrsd": float("nan"), "valid_param_mae": float("nan")}
    with_shared = schema.shared is not None
    outs = [predict_features(model, *s.features,
                             transfer=s.transfer(**model.transfer_options) if model.needs_transfer else None,
                             with_shared=with_shared)
            for s in songs]
    preds = [o[0] if with_shared else o for o in outs]
    shared = [o[1] if with_shared else None for o in outs]
    own = executor is None
    executor = executor or LocalExecutor(workers)
    try:
        jobs = ((executor.put(SongAudio(list(s.tracks), s.sample_rate, s.mix)), p, schema.version, ps)
                for s, p, ps in zip(songs, preds, shared))
        scores = list(progress_iter(executor.map(render_scores, jobs), len(songs), "validation", "song",
                                    enabled=progress))
    finally:
        if own:
            executor.close()
    errs = [np.abs(p - s.truth).mean() for p, s in zip(preds, songs) if s.truth is not None]
    return {
        "valid_mae": float(np.mean([m for m, _ in scores])),
        "valid_mrsd": float(np.mean([r for _, r in scores])),
        "valid_param_mae": float(np.mean(errs)) if errs else float("nan"),
    }


def sum_baseline_mrsd(songs: Sequence[TrainSong]) -> float:
    """Mean MRSD of the plain sum of each song's tracks against its reference mix."""
    return float(np.mean([compare_mixes(plain_sum(s), s.mix, s.sample_rate).mrsd for s in songs]))


# --------------------------------------------------------------------------- the run
