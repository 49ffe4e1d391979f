"""Shared fixtures: small synthetic songs written in the song-folder layout."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
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
def one_torch_thread():
    """One intra-op torch thread for the test: fast and stable on a shared 2-core CPU."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def kit_dir() -> Path:
    if not KIT_DIR.is_dir():
        pytest.skip(f"drum kit not found at {KIT_DIR} (the shared data folder beside the repo)")
    return KIT_DIR


def make_tiny_corpus(root: Path, n_songs: int = 6, seconds: float = 1.5, seed: int = 0, sr: int = SR) -> Path:
    """A small corpus of noise-and-tone songs mixed through console v1 with known settings.

    Same layout as ``mixinvert corpus`` (song folders, params.json, splits.json), made in
    well under a second; for tests of training, evaluation and methods.
    """
    import json

    from mixinvert.console.params_io import MixParams, write_params
    from mixinvert.console.render import Console
    from mixinvert.console.schema import CONSOLE_V1
    from mixinvert.data.dataset import SPLITS_FILE, split_names

    rng = np.random.default_rng(seed)
    names = []
    for i in range(n_songs):
        n_tracks = int(rng.integers(1, 4))
        n = int(seconds * sr)
        t = np.arange(n) / sr
        tracks = {}
        for k in range(n_tracks):
            f0 = float(rng.uniform(80, 2000))
            env = (np.sin(2 * np.pi * rng.uniform(1, 4) * t) > 0).astype(np.float32)
            x = 0.2 * np.sin(2 * np.pi * f0 * t) * env + noise_track(rng, 1, seconds, sr, level=0.02)[0]
            tracks[f"t{k}.wav"] = x[None, :].astype(np.float32)
        values = CONSOLE_V1.denormalize(rng.uniform(-0.6, 0.6, size=(n_tracks, CONSOLE_V1.size)))
        mix = Console(list(tracks.values()), sr).render(values)
        song_dir = write_song(root / f"song_{i:04d}", tracks, mix, sr)
        write_params(song_dir / "params.json", MixParams(CONSOLE_V1, tuple(tracks), values, sr))
        names.append(song_dir.name)
    (root / SPLITS_FILE).write_text(json.dumps(split_names(names, seed)))
    return root
