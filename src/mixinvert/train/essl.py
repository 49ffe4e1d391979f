"""Embodied self-supervised learning (EAMI paper 3.2, Fig. 2): sample, render, train, repeat.

For iterations ``t = 0 .. T-1``:

1. **Sampling step.** For every training song (an excerpt of its raw tracks and of its
   reference mix), the network predicts normalized settings ``p_hat``; ``K`` samples
   ``p = clip(p_hat + N(0, sigma_t^2), -1, 1)`` with ``sigma_t = sigma_init * gamma^t``
   are rendered through the real console (a thread pool over all cores: pedalboard
   releases the GIL), and each (tracks, rendered mix, p) is kept as a training pair.
   The reference mix is only ever an input: the network never sees true settings.
2. **Training step.** The same network is fitted to the pairs for ``E`` epochs, MSE
   between predicted and sampled settings (Adam, lr 5e-4, betas (0.5, 0.999), batch 4).
3. **Validation.** The network's settings for the validation songs are rendered (whole
   songs) and compared with their reference mixes (MAE, MRSD after loudness
   normalization); where the corpus knows the true settings, their error too.

Sampling modes (the paper's Table 2): ``exp`` (the default, decreasing sigma), ``fixed``
(sigma = sigma_init throughout), ``none`` (render the prediction itself, no noise) and
``random`` (settings uniform over [-1, 1], not from the network).

Beyond the paper, two options:

- ``prior_samples``: per song and iteration, that many more pairs whose settings are
  drawn from the engineer prior (:func:`mixinvert.data.engineer.sample_settings`, settings
  of human mixes from MixologyDB), each track given a category at random (the training
  songs' instruments are not known). Pairs drawn only around the network's own
  predictions teach it nothing about a setting it reads poorly: the noise around a wrong
  guess is all it ever sees, and its guesses drift (BENCHMARKS.md, per-setting table: the
  network trained without them set EQ, compressor and reverb worse than leaving them
  neutral; fine-tuned with them, and the reverb channels, its compressor and reverb moved
  closer to the truth, its EQ shelves did not). Prior pairs keep realistic settings of
  every effect in each training step.
- ``init``: the run starts from the weights of a model file (fine-tuning, e.g. the
  shipped model on one's own corpus) instead of the untrained network. Its SHA-256 is
  part of the run's settings.

And two tools: ``train(..., keep_models=True)`` keeps every iteration's network as
``models/iteration_NNN.pt``, and :func:`average_models` averages the weights of such
files (stochastic weight averaging, Izmailov et al. 2018): single iterations' validation
MRSD goes up and down by several percent, their average is steadier and lower
(BENCHMARKS.md, the shipped model).

A run folder holds ``run.json`` (the settings), ``checkpoint.pt`` (after every iteration:
model, optimizer, RNG states, iteration, log), ``model.pt`` (the model with the best
validation MRSD so far, what ``invert --model`` takes), ``log.csv`` and ``training.png``.
Running ``train`` again on the same folder with the same settings resumes after the last
finished iteration, with the same result as an uninterrupted run; ``--iterations`` may be
raised to train further. Other settings on an existing run folder are refused.

Randomness is explicit: iteration ``t`` draws excerpts and noise from
``default_rng([seed, t])`` and seeds torch with ``(seed, t)`` too, so a resumed run needs
nothing but the iteration number (the RNG states are stored as well, and restored).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import math
import os
import time
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.distributed.algorithms.join import Join

from mixinvert.audio import write_text_atomic
from mixinvert.console.schema import CONSOLE_V1, ParamSchema
from mixinvert.data.dataset import list_song_dirs
from mixinvert.data.song import DEFAULT_MAX_TRACKS, Song, SongError, load_song
from mixinvert.dsp.features import MIN_SAMPLE_RATE
from mixinvert.errors import InputError
from mixinvert.executors import Executor, LocalExecutor
from mixinvert.methods.baseline import plain_sum
from mixinvert.metrics.audio import compare_mixes
from mixinvert.console.render import UNITY_GAIN_DB
from mixinvert.train.tasks import (
    SongAudio,
    excerpt_features,
    network_payload,
    predict_excerpt,
    render_pair_features,
    render_scores,
)
from mixinvert.models.checkpoint import (
    CheckpointError,
    build_model,
    model_payload,
    read_checkpoint,
    save_atomic,
)
from mixinvert.models.inverter import Inverter, ModelConfig, get_model_config
from mixinvert.models.predict import predict_features, song_features, song_transfer
from mixinvert.progress import progress_bar, progress_iter
from mixinvert.train.distributed import Dist, resolve_device
from mixinvert.train.distributed import current as current_dist

SAMPLING_MODES = ("exp", "fixed", "none", "random")
RUN_FILE = "run.json"
CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
#: With ``keep_models``: every iteration's network, as ``MODELS_DIR/iteration_NNN.pt``.
MODELS_DIR = "models"
LOG_FILE = "log.csv"
PLOT_FILE = "training.png"
LOG_FIELDS = (
    "iteration",
    "sigma",
    "pairs",
    "train_loss",
    "valid_mae",
    "valid_mrsd",
    "valid_param_mae",
    "sampling_s",
    "training_s",
    "valid_s",
)


def _start_p() -> np.ndarray:
    """Where the untrained network starts: the plain sum (neutral console, mono unity gain)."""
    row = CONSOLE_V1.neutral()
    row["gain_db"] = UNITY_GAIN_DB[1]
    return CONSOLE_V1.normalize(CONSOLE_V1.from_dict(row)[None])[0]


#: Normalized settings the untrained network answers (see :meth:`Inverter.start_at`).
START_P = _start_p()


class TrainError(InputError):
    """Training cannot start or resume as asked (bad options, clashing run folder)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a run computes (stored in ``run.json``).

    The defaults fit a 2-core CPU; the paper's schedule is ``epochs=10`` and 50
    (ENST-Drums) or 100 (MedleyDB) iterations, on two GPUs.
    """

    model: str = "small"
    iterations: int = 30
    samples_per_song: int = 2
    sampling: str = "exp"
    sigma_init: float = 0.5
    gamma: float = 0.92
    epochs: int = 8
    batch_size: int = 4
    lr: float = 5e-4
    beta1: float = 0.5
    beta2: float = 0.999
    excerpt_seconds: float = 3.0
    songs_per_iteration: int | None = None
    valid_songs: int | None = 16
    max_tracks: int = DEFAULT_MAX_TRACKS
    seed: int = 0
    prior_samples: int = 0

    def __post_init__(self) -> None:
        get_model_config(self.model)
        if self.sampling not in SAMPLING_MODES:
            raise TrainError(f"unknown sampling mode {self.sampling!r}; choose from {', '.join(SAMPLING_MODES)}")
        checks = [
            (self.iterations >= 1, "iterations must be at least 1"),
            (self.samples_per_song >= 1, "samples per song must be at least 1"),
            (self.prior_samples >= 0, "prior samples per song must be >= 0"),
            (self.sigma_init >= 0 and math.isfinite(self.sigma_init), "sigma_init must be >= 0"),
            (0 < self.gamma <= 1, "gamma must be in (0, 1]"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch size must be at least 1"),
            (self.lr > 0, "learning rate must be positive"),
            (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "Adam betas must be in [0, 1)"),
            (self.excerpt_seconds > 0.1, "excerpt must be longer than 0.1 s"),
            (self.songs_per_iteration is None or self.songs_per_iteration >= 1, "songs per iteration must be >= 1"),
            (self.valid_songs is None or self.valid_songs >= 0, "valid songs must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise TrainError(message)

    def sigma(self, t: int) -> float:
        """The noise level of iteration ``t`` (NaN for ``random``: no network involved)."""
        if self.sampling == "exp":
            return self.sigma_init * self.gamma**t
        if self.sampling == "fixed":
            return self.sigma_init
        if self.sampling == "none":
            return 0.0
        return float("nan")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise TrainError(f"unknown training settings: {sorted(unknown)}")
        return cls(**d)


@dataclass
class TrainSong:
    """A training song held in memory (float32 tracks, reference mix)."""

    name: str
    tracks: list[np.ndarray]
    mix: np.ndarray
    sample_rate: int
    truth: np.ndarray | None = None  # normalized true settings, where known
    #: whole-song transfer spectra per ``(reverb, compressor)`` flags, filled by :meth:`transfer`
    _transfer: dict[tuple[bool, bool], torch.Tensor] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_song(cls, song: Song, corpus: str) -> "TrainSong":
        if song.mix is None:
            raise TrainError(f"{song.path or song.name}: a training song needs its reference mix")
        if song.sample_rate < MIN_SAMPLE_RATE:
            raise TrainError(f"{song.path or song.name}: sample rate {song.sample_rate} Hz is below {MIN_SAMPLE_RATE} Hz")
        truth = None
        if song.params is not None and song.params.schema.version == CONSOLE_V1.version:
            truth = CONSOLE_V1.normalize(song.params.values)
        return cls(
            f"{corpus}/{song.name}",
            [np.ascontiguousarray(t, dtype=np.float32) for t in song.tracks],
            np.ascontiguousarray(song.mix, dtype=np.float32),
            song.sample_rate,
            truth,
        )

    @property
    def num_samples(self) -> int:
        return int(self.tracks[0].shape[-1])

    @functools.cached_property
    def features(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole-song features of tracks and mix (computed once: validation reuses them)."""
        return song_features(self.tracks, self.mix, self.sample_rate)

    def transfer(self, reverb: bool = False, compressor: bool = False) -> torch.Tensor:
        """Whole-song transfer spectra of the tracks into the reference mix (computed once
        for each set of channels)."""
        key = (reverb, compressor)
        if key not in self._transfer:
            self._transfer[key] = song_transfer(self.tracks, self.mix, self.sample_rate, reverb=reverb,
                                                compressor=compressor)
        return self._transfer[key]


@dataclass
class TrainResult:
    run_dir: Path
    model_path: Path
    history: list[dict] = field(default_factory=list)
    resumed_from: int = 0


def load_split(
    corpus_dirs: Sequence[str | os.PathLike], split: str, *, limit: int | None = None, max_tracks: int = DEFAULT_MAX_TRACKS
) -> list[TrainSong]:
    """Songs of ``split`` from every corpus, in a fixed order (corpus, then song name)."""
    songs: list[TrainSong] = []
    for corpus in corpus_dirs:
        try:
            dirs = list_song_dirs(corpus, split)
        except SongError:
            if split == "train":
                raise
            dirs = []  # a small corpus may have no validation songs
        for d in dirs:
            songs.append(TrainSong.from_song(load_song(d, max_tracks=max_tracks), Path(corpus).name))
    if limit is not None and len(songs) > limit:
        # An even spread over the corpora rather than the first ``limit`` songs of the first one.
        pick = np.linspace(0, len(songs) - 1, limit).round().astype(int)
        songs = [songs[i] for i in pick]
    return songs


def _corpus_identity(corpus_dirs: Sequence[str | os.PathLike]) -> list[dict]:
    out = []
    for c in corpus_dirs:
        c = Path(c)
        info: dict = {"name": c.name}
        meta = c / "corpus.json"
        if meta.is_file():
            try:
                info["corpus"] = json.loads(meta.read_text())
            except (OSError, json.JSONDecodeError):
                pass
        out.append(info)
    return out


# --------------------------------------------------------------------------- sampling


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
    """``config.epochs`` epochs of MSE on the pairs; returns the mean loss of the last epoch.

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
        if device.type != "cpu":
            tf, mf, si, target = (x.to(device, non_blocking=True) for x in (tf, mf, si, target))
            tr = tr.to(device, non_blocking=True) if tr is not None else None
        loss = torch.nn.functional.mse_loss(net(tf, mf, si, transfer=tr), target)
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
    """Mean MAE/MRSD of rendered predictions against the reference mixes (whole songs)."""
    if not songs:
        return {"valid_mae": float("nan"), "valid_mrsd": float("nan"), "valid_param_mae": float("nan")}
    preds = [predict_features(model, *s.features,
                              transfer=s.transfer(**model.transfer_options) if model.needs_transfer else None)
             for s in songs]
    own = executor is None
    executor = executor or LocalExecutor(workers)
    try:
        jobs = ((executor.put(SongAudio(list(s.tracks), s.sample_rate, s.mix)), p, schema.version)
                for s, p in zip(songs, preds))
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


def _seed_torch(config: TrainConfig, t: int) -> None:
    torch.manual_seed(config.seed * 1_000_003 + t + 17)


def _run_settings(config: TrainConfig, corpus_dirs: Sequence[str | os.PathLike], init: dict | None = None) -> dict:
    settings = {
        "format": "mixinvert-train-run",
        "config": config.to_dict(),
        "model_config": get_model_config(config.model).to_dict(),
        "corpora": _corpus_identity(corpus_dirs),
        "schema": CONSOLE_V1.version,
    }
    if init is not None:
        settings["init"] = init
    return settings


def _comparable(settings: dict) -> dict:
    """Settings that must match to resume (``iterations`` may grow; settings added since a
    run was started compare at their defaults; of ``init`` only the file's digest)."""
    s = json.loads(json.dumps(settings))
    s["config"] = {**TrainConfig().to_dict(), **s.get("config", {})}
    s["config"].pop("iterations", None)
    if "init" in s:
        s["init"] = {"sha256": s["init"].get("sha256")}
    return s


def _transfer_groups(config: ModelConfig) -> list[tuple[str, int]]:
    """The transfer branch's input channel groups of ``config``, in order, with their sizes."""
    from mixinvert.dsp.transfer import CHANNELS, COMP_CHANNELS, REVERB_CHANNELS

    groups = [("base", CHANNELS)]
    if config.transfer_reverb:
        groups.append(("reverb", REVERB_CHANNELS))
    if config.transfer_compressor:
        groups.append(("compressor", COMP_CHANNELS))
    return groups


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


def _init_model(path: str | os.PathLike, config: TrainConfig) -> tuple[Inverter, dict]:
    """The network of model file ``path`` to start a run from, and what identifies it."""
    import hashlib

    path = Path(path)
    obj = read_checkpoint(path)
    model, schema = build_model(obj, where=str(path))
    if schema.version != CONSOLE_V1.version:
        raise TrainError(f"{path}: a model for console {schema.version}, training runs console {CONSOLE_V1.version}")
    wanted = get_model_config(config.model)
    if _widens(model.config, wanted):
        model = widen_transfer(model, wanted)
    if model.config != wanted:
        raise TrainError(f"{path}: its network is not the {config.model!r} configuration; pass --config to match it")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return model, {"path": str(path), "sha256": digest}


def average_models(paths: Sequence[str | os.PathLike]) -> tuple[Inverter, dict]:
    """The mean of the weights of several model files (or training checkpoints) of one
    lineage, e.g. the last iterations of a run and the model it started from: a network
    and ``meta``: the last file's (how its run trained it: iteration, settings, corpora;
    not its validation scores) plus ``averaged``, the sources' paths and SHA-256.

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
    return out.eval(), {**meta, "averaged": sources}


def _write_log(run_dir: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LOG_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in LOG_FIELDS})
    write_text_atomic(run_dir / LOG_FILE, buf.getvalue(), overwrite=True)


def plot_history(history: list[dict], path: str | os.PathLike) -> Path:
    """Training loss and validation MRSD per iteration, as a PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    its = [h["iteration"] for h in history]
    fig, ax1 = plt.subplots(figsize=(7, 4), dpi=100)
    ax1.plot(its, [h["train_loss"] for h in history], "o-", color="tab:blue", label="training loss (MSE)")
    sig2 = [h["sigma"] ** 2 for h in history]
    if all(np.isfinite(sig2)) and any(v > 0 for v in sig2):
        # the loss of answering the unperturbed prediction: below it, the network reads the noise
        ax1.plot(its, sig2, "--", color="tab:blue", alpha=0.5, label="sigma^2 (no-information loss)")
        ax1.legend(loc="lower left", fontsize=8)
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("training loss (MSE, normalized units)", color="tab:blue")
    ax1.set_yscale("log")
    ax2 = ax1.twinx()
    ax2.plot(its, [h["valid_mrsd"] for h in history], "s-", color="tab:red", label="validation MRSD")
    ax2.set_ylabel("validation MRSD", color="tab:red")
    ax1.set_title("EAMI embodied self-supervised training")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _load_resume(run_dir: Path, settings: dict) -> dict | None:
    run_file = run_dir / RUN_FILE
    if not run_dir.exists():
        return None
    if not run_file.is_file():
        if any(run_dir.iterdir()):
            raise TrainError(f"{run_dir} exists and is not a mixinvert run folder; choose a new --out")
        return None
    try:
        stored = json.loads(run_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TrainError(f"{run_file}: unreadable ({exc})") from exc
    if _comparable(stored).get("init") != _comparable(settings).get("init"):
        raise TrainError(
            f"{run_dir} holds a run that started from "
            + (f"model file sha256 {stored['init']['sha256'][:12]}" if "init" in stored else "an untrained network")
            + "; resume it with the same --init or choose a new --out"
        )
    if _comparable(stored) != _comparable(settings):
        diff = sorted(
            k for k in set(stored.get("config", {})) | set(settings["config"])
            if k != "iterations" and stored.get("config", {}).get(k) != settings["config"].get(k)
        )
        what = f"settings {', '.join(diff)}" if diff else "corpora or model"
        raise TrainError(
            f"{run_dir} holds a run with other {what}; resume it with its own settings or choose a new --out"
        )
    ckpt_path = run_dir / CHECKPOINT_FILE
    if not ckpt_path.exists():
        return None  # stopped before the first iteration finished
    ckpt = read_checkpoint(ckpt_path)
    if ckpt.get("kind") != "training":
        raise CheckpointError(f"{ckpt_path}: a model file, not a training checkpoint")
    return ckpt


def train(
    corpus_dirs: Sequence[str | os.PathLike] | str | os.PathLike,
    run_dir: str | os.PathLike,
    config: TrainConfig = TrainConfig(),
    *,
    workers: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    executor: Executor | None = None,
    device: str | torch.device = "cpu",
    init: str | os.PathLike | None = None,
    keep_models: bool = False,
) -> TrainResult:
    """Train (or resume training) an EAMI network on the corpora's train splits.

    Parameters
    ----------
    corpus_dirs : one or more corpus folders (``mixinvert corpus``) or folders of songs
        with ``splits.json``; their ``train`` split trains, ``valid`` validates
    run_dir : the run folder (created; an existing one with the same settings resumes)
    config : :class:`TrainConfig`
    workers : render threads (default: all cores)
    progress : show progress bars
    log : called with one line per finished iteration (default: print)
    executor : where the renders of the sampling step and validation run (default: local
        threads, ``workers`` of them; e.g. a :class:`~mixinvert.executors.RayExecutor`);
        the same seed gives the same run on any executor
    device : where the training step runs (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"``:
        :func:`~mixinvert.train.distributed.resolve_device`); in a torchrun launch, the
        device the process group was joined with. Checkpoints hold CPU tensors, so a run
        may resume on another device.
    init : a model file to start from instead of the untrained network (fine-tuning); it
        must hold the network of ``config.model``. A resumed run must name the same file
        contents (its SHA-256 is in ``run.json``).
    keep_models : also keep every iteration's network as ``RUN_DIR/models/iteration_NNN.pt``
        (model files, e.g. to average the last ones with :func:`average_models`)
    """
    if isinstance(corpus_dirs, (str, os.PathLike)):
        corpus_dirs = [corpus_dirs]
    corpus_dirs = [Path(c) for c in corpus_dirs]
    for c in corpus_dirs:
        if not c.is_dir():
            raise TrainError(f"{c}: no such corpus folder")
    log = log or print
    run_dir = Path(run_dir)
    init_model, init_info = _init_model(init, config) if init is not None else (None, None)
    settings = _run_settings(config, corpus_dirs, init_info)
    d = current_dist()  # a rank of a torchrun launch, or None
    device = torch.device(d.device) if d is not None else resolve_device(str(device))
    main = d is None or d.is_main
    if not main:
        log, progress = (lambda _line: None), False
        torch.distributed.barrier()  # rank 0 checks and prepares the run folder first
    ckpt = _load_resume(run_dir, settings)
    done = False

    history: list[dict] = []
    start_t = 0
    best = float("inf")
    if ckpt is not None:
        model, _ = build_model(ckpt, where=str(run_dir / CHECKPOINT_FILE))
        model.to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
            start_t = int(ckpt["iteration"])
            history = list(ckpt["history"])
            torch.set_rng_state(ckpt["rng"]["torch"])
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"{run_dir / CHECKPOINT_FILE}: damaged training state ({exc})") from exc
        best = min((h["valid_mrsd"] for h in history if not math.isnan(h["valid_mrsd"])), default=float("inf"))
        if start_t >= config.iterations:
            log(f"{run_dir}: already trained for {start_t} iterations (ask for more with --iterations)")
            done = True
        else:
            log(f"resuming {run_dir} after iteration {start_t} of {config.iterations}")
            if main:  # run.json says how far the run is meant to go (--iterations may have grown)
                write_text_atomic(run_dir / RUN_FILE, json.dumps(settings, indent=2) + "\n", overwrite=True)
    else:
        _seed_torch(config, -1)
        if init_model is not None:
            model = init_model
            log(f"starting from {init_info['path']} (sha256 {init_info['sha256'][:12]})")
        else:
            model = Inverter(get_model_config(config.model))  # initial weights from the seed
            model.start_at(START_P)
        model.to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(run_dir / RUN_FILE, json.dumps(settings, indent=2) + "\n", overwrite=True)
    if d is not None and main:
        torch.distributed.barrier()  # the others may read the run folder now
    if done:
        return TrainResult(run_dir, run_dir / MODEL_FILE, history, start_t)

    train_songs = load_split(corpus_dirs, "train", max_tracks=config.max_tracks)
    if not train_songs:
        raise TrainError(f"no training songs in {', '.join(map(str, corpus_dirs))} (is there a splits.json?)")
    valid_songs = load_split(corpus_dirs, "valid", limit=config.valid_songs, max_tracks=config.max_tracks)
    if config.valid_songs == 0:
        valid_songs = []
    if valid_songs and start_t == 0:
        log(f"{len(train_songs)} training songs, {len(valid_songs)} validation songs "
            f"(plain sum on them: MRSD {sum_baseline_mrsd(valid_songs):.3f}, for scale)")

    # the ranks' weights stay identical: DDP averages the gradients of their shards
    ddp = None
    if d is not None:
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    own = executor is None
    executor = executor or LocalExecutor(workers)
    try:
        return _iterate(model, optimizer, config, settings, run_dir, train_songs, valid_songs, start_t, history,
                        best, executor, progress, log, d, ddp, keep_models)
    finally:
        if own:
            executor.close()


def _iterate(model: Inverter, optimizer: torch.optim.Optimizer, config: TrainConfig, settings: dict, run_dir: Path,
             train_songs: list[TrainSong], valid_songs: list[TrainSong], start_t: int, history: list[dict],
             best: float, executor: Executor, progress: bool, log: Callable[[str], None], d: Dist | None = None,
             ddp: torch.nn.Module | None = None, keep_models: bool = False) -> TrainResult:
    for t in range(start_t, config.iterations):
        _seed_torch(config, t)
        t0 = time.perf_counter()
        data = sampling_step(model, train_songs, config, t, progress=progress, executor=executor, shard=d)
        t1 = time.perf_counter()
        loss = training_step(model, optimizer, data, config, t, progress=progress, ddp=ddp)
        t2 = time.perf_counter()
        n_pairs = len(data) if d is None else int(d.sum(len(data))[0])
        if d is not None and not d.is_main:
            continue  # validation, checkpoints and the log are rank 0's
        scores = validate(model, valid_songs, progress=progress, executor=executor)
        t3 = time.perf_counter()
        row = {
            "iteration": t + 1,
            "sigma": config.sigma(t),
            "pairs": n_pairs,
            "train_loss": loss,
            **scores,
            "sampling_s": t1 - t0,
            "training_s": t2 - t1,
            "valid_s": t3 - t2,
        }
        history.append(row)
        meta = {
            "iteration": t + 1,
            "train_config": config.to_dict(),
            "corpora": [c["name"] for c in settings["corpora"]],
            "valid_mae": scores["valid_mae"],
            "valid_mrsd": scores["valid_mrsd"],
            "valid_param_mae": scores["valid_param_mae"],
            "train_songs": len(train_songs),
        }
        if not valid_songs or scores["valid_mrsd"] < best:
            best = scores["valid_mrsd"] if valid_songs else best
            save_atomic(model_payload(model, CONSOLE_V1, meta), run_dir / MODEL_FILE)
        if keep_models:
            (run_dir / MODELS_DIR).mkdir(exist_ok=True)
            save_atomic(model_payload(model, CONSOLE_V1, meta), run_dir / MODELS_DIR / f"iteration_{t + 1:03d}.pt")
        ckpt_obj = model_payload(model, CONSOLE_V1, meta)
        ckpt_obj.update(
            kind="training",
            optimizer=optimizer.state_dict(),
            train_config=config.to_dict(),
            iteration=t + 1,
            history=history,
            rng={"torch": torch.get_rng_state(), "numpy_seed": [config.seed, t + 1]},
        )
        save_atomic(ckpt_obj, run_dir / CHECKPOINT_FILE)
        _write_log(run_dir, history)
        try:
            plot_history(history, run_dir / PLOT_FILE)
        except Exception as exc:  # a plot must never stop a training run
            log(f"(could not draw {PLOT_FILE}: {exc})")
        log(
            f"iteration {t + 1}/{config.iterations}: sigma {row['sigma']:.3f}, {n_pairs} pairs, "
            f"loss {loss:.4f}, valid MAE {scores['valid_mae']:.4f} MRSD {scores['valid_mrsd']:.3f} "
            f"param err {scores['valid_param_mae']:.3f} ({t3 - t0:.0f} s)"
        )
    if d is not None:
        # no rank leaves (and takes the process group down) while rank 0 still validates and saves
        torch.distributed.barrier()
    return TrainResult(run_dir, run_dir / MODEL_FILE, history, start_t)
