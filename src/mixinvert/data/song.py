"""The Song: raw tracks, an optional reference mix, and settings where they are known.

A song on disk is a folder::

    song/
      tracks/      one audio file per track (wav, flac, aiff, ogg; mono or stereo)
      mix.wav      the stereo mixdown (optional for rendering, needed for inversion; or
                   mix.flac, .aif, .aiff, .ogg: the first of these found, wav first)
      params.json  the true console settings, where known

Track order is the sorted file names; a track's name is its file name.

How uneven input is handled (documented behaviour, tested):

- Sample rates that differ are resampled with soxr (VHQ) to the mix's rate (or, with no
  mix, to the first track's) and a note says so.
- With a mix, the mix decides the song's length: a track longer than the mix is cut to
  it (what the mix does not contain cannot be scored), a shorter one is zero-padded at
  the end (a DAW export that stops early is silence after its end); a note gives the
  difference in seconds. The mix itself is never padded: silence added to a reference
  would be scored as if the engineer had made it.
- Without a mix, tracks of different lengths are zero-padded at the end to the longest
  track, with a note.
- Silent tracks are allowed; :attr:`Song.silent_tracks` lists them and a note says so.
- Files in ``tracks/`` without an audio suffix (notes, session files) are ignored and
  a note names them; hidden files (``.DS_Store``) are ignored silently.
- A mono mix (an old recording) is held as the same signal on both channels and
  :attr:`Song.mono_mix` says so; only console v2 fits it, with pan and width left out.
- A mix of more than two channels, a track with more than two channels, NaN/Inf samples, an
  unreadable file, an empty ``tracks/`` folder, or more tracks than ``max_tracks`` are
  errors (:class:`SongError`) that name the file or folder.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from mixinvert.audio import AUDIO_SUFFIXES, AudioError, Tracks, read_audio
from mixinvert.console.params_io import MixParams, ParamsFileError, read_params
from mixinvert.errors import InputError

log = logging.getLogger(__name__)

#: Default most tracks per song (the paper keeps MedleyDB songs with at most 16 tracks).
DEFAULT_MAX_TRACKS = 16

#: A track whose peak stays below this (about -120 dBFS) is reported as silent.
SILENCE_PEAK = 1e-6


class SongError(InputError):
    """A song that cannot be used, with the offending file or folder named."""


@dataclass
class Song(Tracks):
    """Raw tracks ``(channels, samples)`` each, all at ``sample_rate`` and of one length.

    ``mix`` is the reference stereo mix ``(2, samples)`` or None; ``params`` the true
    settings where known. ``notes`` records what loading did to the input (resampling,
    padding, silent tracks) in words a user can read.
    """

    name: str
    track_names: tuple[str, ...]
    tracks: list[np.ndarray]
    sample_rate: int
    mix: np.ndarray | None = None
    params: MixParams | None = None
    path: Path | None = None
    notes: list[str] = field(default_factory=list)
    #: The reference was a mono mix, held as the same signal on both sides (console v2 fits
    #: it with pan and width left out, :data:`mixinvert.console.render_v2.MONO_FIXED`).
    mono_mix: bool = False

    def __post_init__(self) -> None:
        if len(self.tracks) != len(self.track_names):
            raise SongError(f"{self.name}: {len(self.tracks)} tracks, {len(self.track_names)} names")
        if not self.tracks:
            raise SongError(f"{self.name}: a song needs at least one track")
        lengths = {t.shape[-1] for t in self.tracks}
        if len(lengths) != 1:
            raise SongError(f"{self.name}: tracks differ in length; load them with load_song")
        for name, t in zip(self.track_names, self.tracks):
            if t.ndim != 2 or t.shape[0] not in (1, 2):
                raise SongError(f"{self.name}/{name}: a track must be (1 or 2, samples), got {t.shape}")
        if self.mix is not None:
            if self.mix.ndim != 2 or self.mix.shape[0] != 2:
                raise SongError(f"{self.name}: the mix must be stereo (2, samples), got {self.mix.shape}")
            if self.mix.shape[-1] != self.num_samples:
                raise SongError(f"{self.name}: mix and tracks differ in length")
        if self.params is not None and tuple(self.params.track_names) != self.track_names:
            self.params = self.params.reordered(self.track_names, where=f"{self.name} params")

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate

    @property
    def silent_tracks(self) -> tuple[str, ...]:
        return tuple(
            n for n, t in zip(self.track_names, self.tracks) if float(np.max(np.abs(t))) < SILENCE_PEAK
        )


def list_track_files(tracks_dir: str | os.PathLike) -> list[Path]:
    """Audio files in ``tracks_dir``, sorted by name; an error if there are none."""
    tracks_dir = Path(tracks_dir)
    if not tracks_dir.is_dir():
        raise SongError(f"{tracks_dir}: not a folder of tracks")
    files = sorted(
        (p for p in tracks_dir.iterdir() if p.is_file() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    audio = [p for p in files if p.suffix.lower() in AUDIO_SUFFIXES]
    if not audio:
        others = f" (found {len(files)} other file(s))" if files else ""
        raise SongError(
            f"{tracks_dir}: no audio tracks ({', '.join(AUDIO_SUFFIXES)}){others}"
        )
    return audio


def load_tracks_and_mix(
    track_files: Sequence[str | os.PathLike],
    mix_file: str | os.PathLike | None = None,
    *,
    name: str | None = None,
    track_names: Sequence[str] | None = None,
    params_file: str | os.PathLike | None = None,
    max_tracks: int | None = DEFAULT_MAX_TRACKS,
) -> Song:
    """Load tracks (and a mix) from explicit files, applying the module's rules."""
    track_files = [Path(p) for p in track_files]
    if not track_files:
        raise SongError(f"{name or 'song'}: no tracks given")
    if max_tracks is not None and len(track_files) > max_tracks:
        raise SongError(
            f"{name or track_files[0].parent}: {len(track_files)} tracks, more than the "
            f"{max_tracks} supported (raise the limit with max_tracks / --max-tracks)"
        )
    names = tuple(track_names) if track_names is not None else tuple(p.name for p in track_files)
    if len(set(names)) != len(names):
        raise SongError(f"{name or 'song'}: track names must be unique")
    notes: list[str] = []

    def _read(path: Path) -> tuple[np.ndarray, int]:
        try:
            return read_audio(path)
        except AudioError as err:
            raise SongError(str(err)) from None

    mix = None
    mono_mix = False
    if mix_file is not None:
        mix, mix_sr = _read(Path(mix_file))
        if mix.shape[0] == 1:
            mix, mono_mix = np.ascontiguousarray(np.vstack([mix, mix])), True
            notes.append(f"{Path(mix_file).name}: a mono mix, compared as the same signal on both sides; only "
                         "console v2 fits it, with pan and width left out")
        elif mix.shape[0] != 2:
            raise SongError(
                f"{mix_file}: the mix must be mono or stereo, got {mix.shape[0]} channel(s)"
            )
    tracks, rates = [], []
    for path in track_files:
        x, sr = _read(path)
        if x.shape[0] > 2:
            raise SongError(f"{path}: a track must be mono or stereo, got {x.shape[0]} channels")
        tracks.append(x)
        rates.append(sr)
    sample_rate = mix_sr if mix is not None else rates[0]
    for i, (path, sr) in enumerate(zip(track_files, rates)):
        if sr != sample_rate:
            tracks[i] = resample(tracks[i], sr, sample_rate)
            notes.append(f"{path.name}: resampled from {sr} Hz to {sample_rate} Hz (soxr)")
    longest = max(t.shape[-1] for t in tracks)
    length = mix.shape[-1] if mix is not None else longest
    against = "the mix" if mix is not None else "the longest track"
    for i, (path, t) in enumerate(zip(track_files, tracks)):
        diff = t.shape[-1] - length
        if diff < 0:
            tracks[i] = np.pad(t, ((0, 0), (0, -diff)))
            notes.append(f"{path.name}: {-diff / sample_rate:.3f} s shorter than {against}; padded with silence")
        elif diff > 0:
            tracks[i] = np.ascontiguousarray(t[:, :length])
            notes.append(f"{path.name}: {diff / sample_rate:.3f} s longer than the mix; cut to its length")
    params = None
    if params_file is not None:
        try:
            params = read_params(params_file).reordered(names, where=str(params_file))
        except ParamsFileError as err:
            raise SongError(str(err)) from None
    song = Song(
        name=name or track_files[0].parent.name,
        track_names=names,
        tracks=tracks,
        sample_rate=int(sample_rate),
        mix=mix,
        params=params,
        notes=notes,
        mono_mix=mono_mix,
    )
    for silent in song.silent_tracks:
        song.notes.append(f"{silent}: silent track (kept; its settings cannot be recovered)")
    for note in song.notes:
        log.info("%s: %s", song.name, note)
    return song


def load_song(
    song_dir: str | os.PathLike,
    *,
    require_mix: bool = False,
    max_tracks: int | None = DEFAULT_MAX_TRACKS,
) -> Song:
    """Load a song folder (``tracks/``, optional ``mix.wav`` (or ``mix.flac``, ...) and ``params.json``)."""
    song_dir = Path(song_dir)
    if not song_dir.is_dir():
        raise SongError(f"{song_dir}: not a song folder")
    mix_file = next((f for f in (song_dir / f"mix{x}" for x in AUDIO_SUFFIXES) if f.is_file()), song_dir / "mix.wav")
    if require_mix and not mix_file.is_file():
        raise SongError(f"{song_dir}: no mix.wav (nor mix.flac, .aif, .aiff, .ogg)")
    params_file = song_dir / "params.json"
    song = load_tracks_and_mix(
        list_track_files(song_dir / "tracks"),
        mix_file if mix_file.is_file() else None,
        name=song_dir.name,
        params_file=params_file if params_file.is_file() else None,
        max_tracks=max_tracks,
    )
    song.path = song_dir
    for other in sorted((song_dir / "tracks").iterdir()):
        if other.is_file() and not other.name.startswith(".") and other.suffix.lower() not in AUDIO_SUFFIXES:
            song.notes.append(f"{other.name}: not an audio file ({', '.join(AUDIO_SUFFIXES)}); ignored")
    return song


def resample(x: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """``(channels, samples)`` audio from ``from_hz`` to ``to_hz`` (soxr, very high quality), float32."""
    import soxr

    y = soxr.resample(x.T, from_hz, to_hz, quality="VHQ")
    return np.ascontiguousarray(np.atleast_2d(y.T if y.ndim == 2 else y[None]), dtype=np.float32)
