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
  part of the run's settings. ``init_encoder``: from a model file's encoder, of any
  console, with fresh output heads.
- ``TrainConfig.adapt`` (``mixinvert adapt``): self-supervised adaptation. The folders
  hold the user's songs (tracks and mixes, no settings); every song trains, validation
  scores the network's answers against the same songs' own mixes, and the model records
  the songs it was adapted on. Training runs refuse the yardstick songs
  (:mod:`mixinvert.data.yardstick`); adaptation allows them, recorded.

And two tools: ``train(..., keep_models=True)`` keeps every iteration's network as
``models/iteration_NNN.pt``, and :func:`average_models` averages the weights of such
files (stochastic weight averaging, Izmailov et al. 2018): single iterations' validation
MRSD goes up and down, their average is steadier and lower (BENCHMARKS.md, "The shipped
EAMI model").

A run folder holds ``run.json`` (the settings), ``checkpoint.pt`` (after every iteration:
model, optimizer, RNG states, iteration, log), ``model.pt`` (the model with the best
validation MRSD so far, what ``invert --model`` takes), ``log.csv`` and ``training.png``.
Running ``train`` again on the same folder with the same settings resumes after the last
finished iteration, with the same result as an uninterrupted run; ``--iterations`` may be
raised to train further. Other settings on an existing run folder are refused.

Randomness is explicit: iteration ``t`` draws excerpts and noise from
``default_rng([seed, t])`` and seeds torch with ``(seed, t)`` too, so a resumed run needs
nothing but the iteration number (the RNG states are stored as well, and restored).

This module is the run loop (:func:`train`: settings, resuming, checkpoints, the
iterations). Its jobs live beside it: :mod:`.config` (the settings and the run folder's
files), :mod:`.songs` (the training songs), :mod:`.sampling` (the sampling step),
:mod:`.fitting` (the training step and validation), :mod:`.surgery` (networks from model
files, averaging), :mod:`.history` (the log and its plot), :mod:`.tasks` (the bulk work an
executor runs) and :mod:`.distributed` (DDP).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from mixinvert.audio import write_text_atomic
from mixinvert.executors import Executor, LocalExecutor
from mixinvert.models.checkpoint import (
    CheckpointError,
    build_model,
    model_payload,
    read_checkpoint,
    save_atomic,
)
from mixinvert.models.inverter import Inverter, for_schema, get_model_config
from mixinvert.train.config import (
    CHECKPOINT_FILE,
    MODEL_FILE,
    MODELS_DIR,
    PLOT_FILE,
    RUN_FILE,
    TrainConfig,
    TrainError,
    start_settings,
)
from mixinvert.train.distributed import Dist, resolve_device
from mixinvert.train.distributed import current as current_dist
from mixinvert.train.fitting import sum_baseline_mrsd, training_step, validate
from mixinvert.train.history import plot_history, write_log
from mixinvert.train.sampling import sampling_step
from mixinvert.train.songs import TrainSong, corpus_identity, load_adaptation_songs, load_split
from mixinvert.train.surgery import encoder_from, init_model


@dataclass
class TrainResult:
    run_dir: Path
    model_path: Path
    history: list[dict] = field(default_factory=list)
    resumed_from: int = 0


def _seed_torch(config: TrainConfig, t: int) -> None:
    torch.manual_seed(config.seed * 1_000_003 + t + 17)


def _run_settings(config: TrainConfig, corpus_dirs: Sequence[str | os.PathLike], init: dict | None = None) -> dict:
    settings = {
        "format": "mixinvert-train-run",
        "config": config.to_dict(),
        "model_config": for_schema(get_model_config(config.model), config.schema).to_dict(),
        "corpora": corpus_identity(corpus_dirs),
        "schema": config.console,
    }
    if init is not None:
        settings["init"] = init
    return settings


def _comparable(settings: dict) -> dict:
    """Settings that must match to resume (``iterations`` may grow; settings added since a
    run was started compare at their defaults; of ``init`` only the file's digest)."""
    s = json.loads(json.dumps(settings))
    s["config"] = {**TrainConfig().to_dict(), **s.get("config", {})}
    s["model_config"] = {"n_shared": 0, **s.get("model_config", {})}  # runs from before shared outputs
    s["config"].pop("iterations", None)
    if "init" in s:
        s["init"] = {"sha256": s["init"].get("sha256")}
    return s


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
    init_encoder: str | os.PathLike | None = None,
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
    init_encoder : start from this model file's encoder (any console) with fresh output
        heads (:func:`~mixinvert.train.surgery.encoder_from`); not with ``init``
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
    if config.adapt and init is None:
        raise TrainError("adaptation starts from a trained model: name it (--model)")
    if init is not None and init_encoder is not None:
        raise TrainError("start from a model (--init) or from a model's encoder (--init-encoder), not both")
    start_model, init_info = init_model(init, config) if init is not None else (None, None)
    if init_encoder is not None:
        start_model, init_info = encoder_from(init_encoder, config)
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
        if start_model is not None:
            model = start_model
            log(f"starting from {init_info['path']}{' (its encoder)' if init_info.get('encoder_only') else ''} "
                f"(sha256 {init_info['sha256'][:12]})")
        else:
            model = Inverter(for_schema(get_model_config(config.model), config.schema))  # weights from the seed
            model.start_at(*start_settings(config.schema))
        model.to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(run_dir / RUN_FILE, json.dumps(settings, indent=2) + "\n", overwrite=True)
    if d is not None and main:
        torch.distributed.barrier()  # the others may read the run folder now
    if done:
        return TrainResult(run_dir, run_dir / MODEL_FILE, history, start_t)

    if config.adapt:
        train_songs = load_adaptation_songs(corpus_dirs, max_tracks=config.max_tracks, schema=config.schema)
        valid_songs = train_songs[: config.valid_songs]  # their own mixes: no settings needed
        settings["adapted_on"] = [s.name for s in train_songs]
    else:
        train_songs = load_split(corpus_dirs, "train", max_tracks=config.max_tracks, schema=config.schema)
        valid_songs = load_split(corpus_dirs, "valid", limit=config.valid_songs, max_tracks=config.max_tracks,
                                 schema=config.schema)
    if not train_songs:
        raise TrainError(f"no training songs in {', '.join(map(str, corpus_dirs))} (is there a splits.json?)")
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
        scores = validate(model, valid_songs, schema=config.schema, progress=progress, executor=executor)
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
        if "adapted_on" in settings:
            meta["adapted_on"] = settings["adapted_on"]
        if not valid_songs or scores["valid_mrsd"] < best:
            best = scores["valid_mrsd"] if valid_songs else best
            save_atomic(model_payload(model, config.schema, meta), run_dir / MODEL_FILE)
        if keep_models:
            (run_dir / MODELS_DIR).mkdir(exist_ok=True)
            save_atomic(model_payload(model, config.schema, meta), run_dir / MODELS_DIR / f"iteration_{t + 1:03d}.pt")
        ckpt_obj = model_payload(model, config.schema, meta)
        ckpt_obj.update(
            kind="training",
            optimizer=optimizer.state_dict(),
            train_config=config.to_dict(),
            iteration=t + 1,
            history=history,
            rng={"torch": torch.get_rng_state(), "numpy_seed": [config.seed, t + 1]},
        )
        save_atomic(ckpt_obj, run_dir / CHECKPOINT_FILE)
        write_log(run_dir, history)
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
