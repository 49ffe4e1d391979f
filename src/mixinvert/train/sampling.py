"""The sampling step (EAMI paper 3.2): the network's settings perturbed by a decaying sigma, rendered through the real console, kept as training pairs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from mixinvert.console.schema import CONSOLE_V1, ParamSchema
from mixinvert.executors import Executor, LocalExecutor
from mixinvert.models.inverter import Inverter
from mixinvert.progress import progress_bar
from mixinvert.train.config import TrainConfig
from mixinvert.train.distributed import Dist
from mixinvert.train.songs import TrainSong
from mixinvert.train.tasks import (
    SongAudio,
    excerpt_features,
    network_payload,
    predict_excerpt,
    render_pair_features,
)


@dataclass
class PairedData:
    """One sampling step's pairs: per song the track features, per pair the mix and p."""

    track_feats: list[torch.Tensor]  # per song (n_tracks, 2, F, 80)
    pair_song: list[int]
    pair_mix: list[torch.Tensor]  # (2, F, 80)
    pair_p: list[torch.Tensor]  # (n_tracks, 16)
    #: per pair the tracks' transfer spectra into the rendered mix (n_tracks, 3, 80);
    #: empty unless the network has a transfer branch
    pair_transfer: list[torch.Tensor] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pair_song)


def prior_settings(rng: np.random.Generator, n_tracks: int, schema: ParamSchema = CONSOLE_V1) -> np.ndarray:
    """Normalized settings ``(n_tracks, n_params)`` of one song from the engineer prior.

    Each track gets a category drawn uniformly from :data:`~mixinvert.data.engineer.CATEGORIES`
    (its instrument is not known), then settings from that category's figures.
    """
    from mixinvert.data.engineer import CATEGORIES, sample_settings

    cats = [CATEGORIES[i] for i in rng.integers(0, len(CATEGORIES), size=n_tracks)]
    return schema.normalize(sample_settings(rng, cats, schema=schema))


def _excerpt(song: TrainSong, length: int, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    if song.num_samples <= length:
        return song.tracks, song.mix
    start = int(rng.integers(0, song.num_samples - length + 1))
    return [t[:, start : start + length] for t in song.tracks], song.mix[:, start : start + length]


def _tensor(a: np.ndarray) -> torch.Tensor:
    """A task's array as a tensor: shared when writable, copied when read-only (Ray's are)."""
    return torch.from_numpy(a if a.flags.writeable else a.copy())


def sampling_step(
    model: Inverter,
    songs: Sequence[TrainSong],
    config: TrainConfig,
    t: int,
    *,
    schema: ParamSchema = CONSOLE_V1,
    workers: int | None = None,
    progress: bool = False,
    executor: Executor | None = None,
    shard: Dist | None = None,
) -> PairedData:
    """Predict, perturb and render: the paired data of iteration ``t`` (see module doc).

    The work runs on ``executor`` (default: local threads, ``workers`` of them): each
    song's excerpt is put there once, and each task sends back features, never audio.
    With ``shard`` (a rank of a distributed run) every draw is made as usual but only the
    rank's songs are worked on: the ranks' pairs together are this step's pairs.
    """
    rng = np.random.default_rng([config.seed, t, 0])
    if config.songs_per_iteration is not None and config.songs_per_iteration < len(songs):
        chosen = np.sort(rng.choice(len(songs), config.songs_per_iteration, replace=False))
    else:
        chosen = np.arange(len(songs))
    sigma = config.sigma(t)
    # every random draw first, here and in a fixed order (the excerpt, then its K draws,
    # song by song): the tasks below only compute, so any executor gives the same pairs
    excerpts: list[SongAudio] = []
    draws: list[list[np.ndarray]] = []
    prior_draws: list[list[np.ndarray]] = []
    for i in chosen:
        song = songs[i]
        length = int(round(config.excerpt_seconds * song.sample_rate))
        tracks, mix = _excerpt(song, length, rng)
        excerpts.append(SongAudio(list(tracks), song.sample_rate, mix))
        shape = (len(tracks), schema.size)
        if config.sampling == "random":
            draws.append([rng.uniform(-1.0, 1.0, size=shape) for _ in range(config.samples_per_song)])
        else:
            draws.append([rng.normal(0.0, sigma, size=shape) if sigma > 0 else np.zeros(shape)
                          for _ in range(config.samples_per_song)])
        prior_draws.append([prior_settings(rng, len(tracks), schema) for _ in range(config.prior_samples)])

    mine = [j for j in range(len(excerpts)) if shard is None or shard.owns(j)]
    draws = [draws[j] for j in mine]
    prior_draws = [prior_draws[j] for j in mine]
    own = executor is None
    executor = executor or LocalExecutor(workers)
    bar = progress_bar(len(mine) * (1 + config.samples_per_song + config.prior_samples),
                       f"iteration {t + 1}: sampling", "task",
                       enabled=progress)
    try:
        handles = [executor.put(excerpts[j]) for j in mine]  # each song's audio goes out once
        track_feats: list[torch.Tensor] = []
        samples: list[tuple[int, np.ndarray]] = []
        if config.sampling == "random":  # the network plays no part
            first = executor.map(excerpt_features, ((h,) for h in handles))
        else:  # features and the forward pass where the tasks run; the weights go out once
            net = executor.put(network_payload(model, f"{uuid.uuid4().hex}-{t}"))
            first = executor.map(predict_excerpt, ((h, net) for h in handles))
        for j, (tf, out) in enumerate(first):
            track_feats.append(_tensor(tf))
            if config.sampling == "random":
                samples += [(j, p) for p in draws[j]]
            else:
                samples += [(j, np.clip(out + noise, -1.0, 1.0)) for noise in draws[j]]
            samples += [(j, p) for p in prior_draws[j]]
            bar.update(1)
        data = PairedData(track_feats, [], [], [])
        with_transfer, opts = model.needs_transfer, model.transfer_options
        jobs = ((handles[j], p, schema.version, with_transfer, opts["reverb"], opts["compressor"]) for j, p in samples)
        for (j, p), (feats, transfer) in zip(samples, executor.map(render_pair_features, jobs)):
            data.pair_song.append(j)
            data.pair_mix.append(_tensor(feats))
            data.pair_p.append(torch.as_tensor(p, dtype=torch.float32))
            if transfer is not None:
                data.pair_transfer.append(_tensor(transfer))
            bar.update(1)
    finally:
        bar.close()
        if own:
            executor.close()
    return data


# --------------------------------------------------------------------------- training
