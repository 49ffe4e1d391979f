"""The training songs in memory (:class:`TrainSong`) and the corpus splits they come from."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from mixinvert.console.schema import CONSOLE_V1, ParamSchema
from mixinvert.data.dataset import list_song_dirs
from mixinvert.data.song import DEFAULT_MAX_TRACKS, Song, SongError, load_song
from mixinvert.dsp.features import MIN_SAMPLE_RATE
from mixinvert.models.predict import song_features, song_transfer
from mixinvert.train.config import TrainError


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
    def from_song(cls, song: Song, corpus: str, schema: ParamSchema = CONSOLE_V1) -> "TrainSong":
        """``song`` held for training on console ``schema`` (its true settings kept where they
        are that console's)."""
        if song.mix is None:
            raise TrainError(f"{song.path or song.name}: a training song needs its reference mix")
        if song.sample_rate < MIN_SAMPLE_RATE:
            raise TrainError(f"{song.path or song.name}: sample rate {song.sample_rate} Hz is below {MIN_SAMPLE_RATE} Hz")
        truth = None
        if song.params is not None and song.params.schema.version == schema.version:
            truth = schema.normalize(song.params.values)
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


def refuse_yardstick(song_dir: Path) -> None:
    """Raise :class:`TrainError` if ``song_dir`` (its name or a track's) is a yardstick song."""
    from mixinvert.data.yardstick import yardstick_songs_in

    tracks = song_dir / "tracks"
    found = yardstick_songs_in([song_dir.name] + ([p.name for p in tracks.iterdir()] if tracks.is_dir() else []))
    if found:
        raise TrainError(f"{song_dir}: the yardstick song {', '.join(found)} scores real mixes and is never trained "
                         "on (`mixinvert adapt` specializes a model to songs without settings, and records them)")


def load_split(
    corpus_dirs: Sequence[str | os.PathLike], split: str, *, limit: int | None = None, max_tracks: int = DEFAULT_MAX_TRACKS,
    schema: ParamSchema = CONSOLE_V1,
) -> list[TrainSong]:
    """Songs of ``split`` from every corpus, in a fixed order (corpus, then song name), held
    for training on console ``schema``. A yardstick song (:mod:`mixinvert.data.yardstick`)
    is refused."""
    songs: list[TrainSong] = []
    for corpus in corpus_dirs:
        try:
            dirs = list_song_dirs(corpus, split)
        except SongError:
            if split == "train":
                raise
            dirs = []  # a small corpus may have no validation songs
        for d in dirs:
            refuse_yardstick(d)
            songs.append(TrainSong.from_song(load_song(d, max_tracks=max_tracks), Path(corpus).name, schema))
    if limit is not None and len(songs) > limit:
        # An even spread over the corpora rather than the first ``limit`` songs of the first one.
        pick = np.linspace(0, len(songs) - 1, limit).round().astype(int)
        songs = [songs[i] for i in pick]
    return songs


def load_adaptation_songs(
    dirs: Sequence[str | os.PathLike], *, max_tracks: int = DEFAULT_MAX_TRACKS, schema: ParamSchema = CONSOLE_V1,
) -> list[TrainSong]:
    """The songs of self-supervised adaptation: every song of each folder (a song folder, or
    a folder of song folders; no splits, no settings needed), in a fixed order. Yardstick
    songs are allowed here: the adapted model records what it was adapted on."""
    songs: list[TrainSong] = []
    for d in map(Path, dirs):
        for song_dir in ([d] if (d / "tracks").is_dir() else list_song_dirs(d)):
            song = load_song(song_dir, max_tracks=max_tracks)
            songs.append(TrainSong.from_song(song, d.name if song_dir != d else "songs", schema))
    return songs


def corpus_identity(corpus_dirs: Sequence[str | os.PathLike]) -> list[dict]:
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
