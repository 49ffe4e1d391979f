"""A dataset is a folder of song folders (see :mod:`mixinvert.data.song`).

A corpus made by ``mixinvert corpus`` also holds ``splits.json``
(``{"train": [...], "valid": [...], "test": [...]}``, song folder names); for other
folders every song is in every split's place when no split is asked for.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from mixinvert.data.song import DEFAULT_MAX_TRACKS, Song, SongError, load_song
from mixinvert.errors import InputError

SPLITS = ("train", "valid", "test")
SPLITS_FILE = "splits.json"


def split_names(names: Sequence[str], seed: int, ratios: tuple[int, int, int] = (8, 1, 1)) -> dict[str, list[str]]:
    """Deterministic train/valid/test split of ``names`` in the given ratios.

    Songs are shuffled with ``seed``; valid and test get ``round(n * r / sum)`` songs each
    but at least one when there are three songs or more; train gets the rest.
    """
    names = sorted(names)
    n = len(names)
    order = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5B117])).permutation(n)
    total = sum(ratios)
    sizes = [0, 0]
    if n >= 3:
        sizes = [max(1, round(n * r / total)) for r in ratios[1:]]
    n_valid, n_test = sizes
    shuffled = [names[i] for i in order]
    return {
        "train": sorted(shuffled[: n - n_valid - n_test]),
        "valid": sorted(shuffled[n - n_valid - n_test : n - n_test]),
        "test": sorted(shuffled[n - n_test :]),
    }


def list_song_dirs(dataset_dir: str | os.PathLike, split: str | None = None) -> list[Path]:
    """Song folders of a dataset, sorted by name, optionally of one split."""
    root = Path(dataset_dir)
    if not root.is_dir():
        raise SongError(f"{root}: not a dataset folder")
    if (root / "tracks").is_dir():
        raise SongError(f"{root}: this is a song folder; a dataset is a folder of song folders")
    songs = sorted(p for p in root.iterdir() if p.is_dir() and (p / "tracks").is_dir())
    if split is not None:
        if split not in SPLITS:
            raise InputError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
        splits_file = root / SPLITS_FILE
        if not splits_file.is_file():
            raise SongError(f"{root}: no {SPLITS_FILE}, so there is no {split!r} split")
        try:
            wanted = set(json.loads(splits_file.read_text())[split])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise SongError(f"{splits_file}: unreadable splits ({err})") from None
        songs = [p for p in songs if p.name in wanted]
    if not songs:
        raise SongError(f"{root}: no song folders (folders with tracks/){f' in split {split!r}' if split else ''}")
    return songs


def iter_songs(
    dataset_dir: str | os.PathLike,
    split: str | None = None,
    *,
    require_mix: bool = True,
    max_tracks: int | None = DEFAULT_MAX_TRACKS,
) -> Iterator[Song]:
    """Load the songs of a dataset one at a time (memory stays at one song)."""
    for song_dir in list_song_dirs(dataset_dir, split):
        yield load_song(song_dir, require_mix=require_mix, max_tracks=max_tracks)
