"""The training run's settings and its files: :class:`TrainConfig`, the run folder's layout, and where the untrained network starts."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from mixinvert.console.schema import CONSOLE_V1, ParamSchema, get_schema
from mixinvert.data.song import DEFAULT_MAX_TRACKS
from mixinvert.errors import InputError
from mixinvert.models.inverter import get_model_config

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


def start_settings(schema: ParamSchema) -> tuple[np.ndarray, np.ndarray | None]:
    """Where the untrained network starts on console ``schema``: the plain sum (a neutral
    strip at mono unity level) and, where the console has them, neutral shared settings;
    normalized."""
    from mixinvert.console.mixing import sum_values

    p = schema.normalize(sum_values(schema, [np.zeros((1, 1), dtype=np.float32)]))[0]
    shared = schema.shared
    return p, (shared.normalize(shared.from_dict(shared.neutral())) if shared is not None else None)


#: Normalized settings the untrained network answers on console v1 (see :meth:`Inverter.start_at`).
START_P = start_settings(CONSOLE_V1)[0]


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
    #: The console the network learns to set (``"v1"`` or ``"v2"``): the renders of the
    #: sampling step, the prior pairs and the network's outputs follow its schema.
    console: str = "v1"
    #: Self-supervised adaptation (``mixinvert adapt``): the folders hold songs with their
    #: tracks and mixes and no settings; every song trains, and validation scores the
    #: network's answers against the same songs' own mixes (no settings needed).
    adapt: bool = False

    def __post_init__(self) -> None:
        get_model_config(self.model)
        if self.console not in ("v1", "v2"):
            raise TrainError(f"unknown console {self.console!r}; choose v1 or v2")
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

    @property
    def schema(self) -> ParamSchema:
        """The console's parameter schema."""
        return get_schema(self.console)

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
