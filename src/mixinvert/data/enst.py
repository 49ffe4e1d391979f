"""ENST-Drums: the close and overhead microphones as inputs, ``wet_mix`` as the reference.

The layout read here is the one ENST-Drums ships::

    <root>/drummer_N/audio/
        kick/<name>.wav  snare/<name>.wav  hi-hat/<name>.wav
        tom_1/<name>.wav  tom_2/<name>.wav  [tom_3/<name>.wav where that kit has it]
        overhead_L/<name>.wav  overhead_R/<name>.wav
        wet_mix/<name>.wav     the reference mixdown (stereo)
        dry_mix/<name>.wav     an unprocessed mixdown (not used)
        accompaniment/...      music for the minus-one items (not a drum mic; not used)

ENST-Drums audio is 44.1 kHz; the microphones are mono and the two mixes stereo. Other
folders beside ``audio/`` (annotations, video) are not read.

Decisions (documented behaviour, tested):

- An item is a recording name with a file in ``wet_mix/``. Its tracks are the microphone
  folders of :data:`ENST_MICS` that hold ``<name>.wav``; a microphone missing for an item
  is simply left out (the kits differ, e.g. only some have ``tom_3``). An item with no
  microphone file at all is an error naming it.
- Track names are the microphone folder name plus ``.wav`` (``kick.wav``,
  ``overhead_L.wav``, ...): unique within an item and stable, like the file names of a
  ``tracks/`` folder. Tracks are in the order those names sort.
- A Song is named ``drummer_N_<name>`` (names repeat across drummers); its ``path`` is
  the ``wet_mix`` file.
- Audio is loaded through :func:`mixinvert.data.song.load_tracks_and_mix`; a mono
  ``wet_mix`` is therefore an error naming the file (a stereo reference is needed).
- Problems are :class:`EnstError` (a :class:`SongError`) naming the file or folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from mixinvert.data.song import Song, SongError, load_tracks_and_mix

#: Microphone folders read as tracks (``tom_3`` exists only for some drummers).
ENST_MICS = ("hi-hat", "kick", "overhead_L", "overhead_R", "snare", "tom_1", "tom_2", "tom_3")

#: The reference mix folder, and the unprocessed one that is not used.
WET_MIX = "wet_mix"
DRY_MIX = "dry_mix"

_DRUMMER_RE = re.compile(r"^drummer_(\d+)$")


class EnstError(SongError):
    """An ENST-Drums folder or item that cannot be used; the message names it."""


@dataclass
class EnstItem:
    """One recording: ``mic_files`` maps microphone folder -> file, in track order."""

    name: str
    drummer: int
    drummer_dir: Path
    mix_path: Path
    mic_files: dict[str, Path]

    @property
    def song_name(self) -> str:
        return f"drummer_{self.drummer}_{self.name}"

    @property
    def track_names(self) -> tuple[str, ...]:
        return tuple(f"{mic}.wav" for mic in self.mic_files)


def _drummer_dirs(root: Path) -> dict[int, Path]:
    if not root.is_dir():
        raise EnstError(f"{root}: ENST-Drums folder not found")
    found = {}
    for p in root.iterdir():
        m = _DRUMMER_RE.match(p.name)
        if m and p.is_dir():
            found[int(m.group(1))] = p
    if not found:
        raise EnstError(f"{root}: no drummer_N folders (not an ENST-Drums root)")
    return dict(sorted(found.items()))


def list_enst_items(
    root: str | os.PathLike,
    *,
    drummers: Iterable[int] | None = None,
) -> list[EnstItem]:
    """The items (recordings with a ``wet_mix`` file), by drummer then name; no audio read.

    Parameters
    ----------
    root
        The ENST-Drums folder holding ``drummer_1``, ``drummer_2``, ...
    drummers
        Drummer numbers to keep (e.g. ``[1, 2]``); None keeps all.

    Raises
    ------
    EnstError
        No ``drummer_N`` folder under ``root``, a requested drummer missing, a drummer
        without ``audio/wet_mix``, or an item with no microphone file; the message names
        the folder or item.
    """
    root = Path(root)
    dirs = _drummer_dirs(root)
    if drummers is not None:
        wanted = sorted({int(d) for d in drummers})
        missing = [d for d in wanted if d not in dirs]
        if missing:
            raise EnstError(f"{root}: no folder for drummer(s) {', '.join(map(str, missing))}")
        dirs = {d: dirs[d] for d in wanted}
    items = []
    for drummer, ddir in dirs.items():
        audio = ddir / "audio"
        wet = audio / WET_MIX
        if not wet.is_dir():
            raise EnstError(f"{wet}: wet_mix folder not found")
        mixes = sorted(
            (p for p in wet.iterdir() if p.is_file() and p.suffix.lower() == ".wav" and not p.name.startswith(".")),
            key=lambda p: p.name,
        )
        for mix in mixes:
            mic_files = {
                mic: audio / mic / mix.name for mic in ENST_MICS if (audio / mic / mix.name).is_file()
            }
            if not mic_files:
                raise EnstError(
                    f"{mix}: item {mix.stem!r} has no microphone file "
                    f"(looked in {', '.join(ENST_MICS)} under {audio})"
                )
            mic_files = dict(sorted(mic_files.items(), key=lambda kv: f"{kv[0]}.wav"))
            items.append(EnstItem(mix.stem, drummer, ddir, mix, mic_files))
    return items


def load_enst_item(item: EnstItem, *, max_tracks: int | None = None) -> Song:
    """Load an item's microphones (inputs) and its ``wet_mix`` (reference).

    Parameters
    ----------
    item
        From :func:`list_enst_items`.
    max_tracks
        Refuse items with more microphones than this (None: no limit).

    Returns
    -------
    Song
        Named ``drummer_N_<name>``; track names ``<mic>.wav`` in sorted order.

    Raises
    ------
    SongError
        From :func:`load_tracks_and_mix` (e.g. a mono ``wet_mix``), or an item with no
        microphone file; the message names the file.
    """
    if not item.mic_files:
        raise EnstError(f"{item.mix_path}: item {item.name!r} has no microphone file")
    order = sorted(item.mic_files, key=lambda mic: f"{mic}.wav")
    song = load_tracks_and_mix(
        [item.mic_files[mic] for mic in order],
        item.mix_path,
        name=item.song_name,
        track_names=[f"{mic}.wav" for mic in order],
        max_tracks=max_tracks,
    )
    song.path = item.mix_path
    return song


def iter_enst(
    root: str | os.PathLike,
    *,
    drummers: Iterable[int] | None = None,
    max_tracks: int | None = None,
) -> Iterator[Song]:
    """Load, one at a time, the items :func:`list_enst_items` finds."""
    for item in list_enst_items(root, drummers=drummers):
        yield load_enst_item(item, max_tracks=max_tracks)
