"""The yardstick songs: real mixes that score the project and never train it.

``../shared/data/real-dev`` holds two MedleyDB songs with their engineers' mixes; every
claim about real mixes (``bench/bench_real.py``) is measured on them, so no network may
learn from them by accident. They are recognised by name, case-insensitive, wherever a
song folder or a track file carries it (MedleyDB names raw files after their song, and
the ``real`` corpus preset keeps those names): a copied or renamed folder still shows
its tracks' names. ``mixinvert train`` refuses them, the ``real`` corpus preset refuses
them as sources, and ``mixinvert adapt`` (self-supervised adaptation, which needs no
settings) records them in its model so that a yardstick score never uses a model
adapted to the song it scores.
"""

from __future__ import annotations

from typing import Iterable

#: MedleyDB names of the yardstick songs.
YARDSTICK_SONGS: tuple[str, ...] = ("MusicDelta_Reggae", "MusicDelta_Zeppelin")


def yardstick_songs_in(names: Iterable[str]) -> list[str]:
    """The yardstick songs that any of ``names`` (song folders, track files) carries, sorted."""
    found = set()
    for name in names:
        text = str(name).lower()
        found.update(s for s in YARDSTICK_SONGS if s.lower() in text)
    return sorted(found)
