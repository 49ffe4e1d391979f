"""Shared fixtures: small synthetic songs written in the song-folder layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tempfile

from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis keeps no example database and its caches in a temporary folder: the tests
# write nothing into the repository.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="mixinvert-hypothesis-"))
settings.register_profile("mixinvert", database=None)
settings.load_profile("mixinvert")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
KIT_DIR = SHARED / "data" / "muldjordkit"
SR = 44100


def noise_track(rng: np.random.Generator, channels: int, seconds: float, sr: int = SR, level: float = 0.1) -> np.ndarray:
    """Band-limited-ish noise bursts, ``(channels, samples)`` float32."""
    n = int(round(seconds * sr))
    x = rng.standard_normal((channels, n)) * level
    env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 3.0) * np.arange(n) / sr) ** 2
    return (x * env).astype(np.float32)


def write_song(
    root: Path,
    tracks: dict[str, np.ndarray],
    mix: np.ndarray | None = None,
    sr: int = SR,
    subtype: str = "FLOAT",
) -> Path:
    (root / "tracks").mkdir(parents=True, exist_ok=True)
    for name, x in tracks.items():
        sf.write(root / "tracks" / name, x.T, sr, subtype=subtype if name.endswith(".wav") else None)
    if mix is not None:
        sf.write(root / "mix.wav", mix.T, sr, subtype="FLOAT")
    return root


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def kit_dir() -> Path:
    if not KIT_DIR.is_dir():
        pytest.skip(f"drum kit not found at {KIT_DIR} (the shared data folder beside the repo)")
    return KIT_DIR
