"""The sampling step (EAMI paper 3.2): the network's settings perturbed by a decaying sigma, rendered through the real console, kept as training pairs.

On a console with shared settings (v2: the reverb bus and the master chain), the network
answers those too, one set per song; they are perturbed and rendered with the tracks'
and are part of each pair."""

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
    pair_p: list[torch.Tensor]  # (n_tracks, n_params)
    #: per pair the tracks' transfer spectra into the rendered mix (n_tracks, 3, 80);
    #: empty unless the network has a transfer branch
    pair_transfer: list[torch.Tensor] = field(default_factory=list)
    #: per pair the shared settings (n_shared,); empty on a console without them
    pair_shared: list[torch.Tensor] = field(default_factory=list)

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


def prior_settings_v2(rng: np.random.Generator, channels: Sequence[int], schema: ParamSchema
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Normalized console v2 settings of one song from the engineer prior
    (:func:`~mixinvert.data.engineer.sample_settings_v2`, categories drawn as in
    :func:`prior_settings`): the tracks' and the shared ones. The master chain stays neutral:
    the engineer draws it against the mix it receives, which a prior pair has not yet."""
    from mixinvert.data.engineer import CATEGORIES, sample_settings_v2

    cats = [CATEGORIES[i] for i in rng.integers(0, len(CATEGORIES), size=len(channels))]
    values, shared = sample_settings_v2(rng, cats, channels=list(channels))
    return schema.normalize(values), schema.shared.normalize(shared)


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
    schema: ParamSchema | None = None,
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
    ``schema``: the console (default: ``config``'s).
    """
    schema = schema if schema is not None else config.schema
    shared_size = schema.shared_size
    rng = np.random.default_rng([config.seed, t, 0])
    if config.songs_per_iteration is not None and config.songs_per_iteration < len(songs):
        chosen = np.sort(rng.choice(len(songs), config.songs_per_iteration, replace=False))
    else:
        chosen = np.arange(len(songs))
    sigma = config.sigma(t)
    # every random draw first, here and in a fixed order (the excerpt, then its K draws,
    # song by song): the tasks below only compute, so any executor gives the same pairs
    excerpts: list[SongAudio] = []
    # a draw is the tracks' settings (or noise on them) and, on a console with shared
    # settings, the shared ones (None without)
    draws: list[list[tuple[np.ndarray, np.ndarray | None]]] = []
    prior_draws: list[list[tuple[np.ndarray, np.ndarray | None]]] = []

    def noise(shape: tuple[int, ...]) -> np.ndarray:
        if config.sampling == "random":
            return rng.uniform(-1.0, 1.0, size=shape)
        return rng.normal(0.0, sigma, size=shape) if sigma > 0 else np.zeros(shape)

    for i in chosen:
        song = songs[i]
        length = int(round(config.excerpt_seconds * song.sample_rate))
        tracks, mix = _excerpt(song, length, rng)
        excerpts.append(SongAudio(list(tracks), song.sample_rate, mix))
        shape = (len(tracks), schema.size)
        draws.append([(noise(shape), noise((shared_size,)) if shared_size else None)
                      for _ in range(config.samples_per_song)])
        if shared_size:
            prior_draws.append([prior_settings_v2(rng, [t.shape[0] for t in tracks], schema)
                                for _ in range(config.prior_samples)])
        else:
            prior_draws.append([(prior_settings(rng, len(tracks), schema), None) for _ in range(config.prior_samples)])

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
        samples: list[tuple[int, np.ndarray, np.ndarray | None]] = []
        if config.sampling == "random":  # the network plays no part
            first = ((tf, None, None) for tf, _ in executor.map(excerpt_features, ((h,) for h in handles)))
        else:  # features and the forward pass where the tasks run; the weights go out once
            net = executor.put(network_payload(model, f"{uuid.uuid4().hex}-{t}", schema))
            first = executor.map(predict_excerpt, ((h, net) for h in handles))
        for j, (tf, out, out_shared) in enumerate(first):
            track_feats.append(_tensor(tf))
            if config.sampling == "random":
                samples += [(j, p, ps) for p, ps in draws[j]]
            else:
                samples += [(j, np.clip(out + d, -1.0, 1.0),
                             None if ds is None else np.clip(out_shared + ds, -1.0, 1.0)) for d, ds in draws[j]]
            samples += [(j, p, ps) for p, ps in prior_draws[j]]
            bar.update(1)
        data = PairedData(track_feats, [], [], [])
        with_transfer, opts = model.needs_transfer, model.transfer_options
        jobs = ((handles[j], p, schema.version, with_transfer, opts["reverb"], opts["compressor"], ps)
                for j, p, ps in samples)
        for (j, p, ps), (feats, transfer) in zip(samples, executor.map(render_pair_features, jobs)):
            data.pair_song.append(j)
            data.pair_mix.append(_tensor(feats))
            data.pair_p.append(torch.as_tensor(p, dtype=torch.float32))
            if ps is not None:
                data.pair_shared.append(torch.as_tensor(ps, dtype=torch.float32))
            if transfer is not None:
                data.pair_transfer.append(_tensor(transfer))
            bar.update(1)
    finally:
        bar.close()
        if own:
            executor.close()
    return data


# --------------------------------------------------------------------------- training
