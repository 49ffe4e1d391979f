"""MedleyDB: raw multitracks as inputs, the song's MIX as the reference.

The layout read here is the one MedleyDB (v1 and v2) ships::

    <root>/Audio/<Song>/
        <Song>_METADATA.yaml
        <Song>_MIX.wav                     the reference stereo mix
        <Song>_RAW/<Song>_RAW_NN_MM.wav    raw track MM of stem NN (the inputs)
        <Song>_STEMS/<Song>_STEM_NN.wav    stems (not used)

The metadata file names the audio (``mix_filename``, ``raw_dir``, ``stem_dir``) and
lists the tracks::

    has_bleed: 'no'          # the strings 'yes'/'no' (YAML booleans are accepted too)
    instrumental: 'no'
    stems:
      S01:
        filename: <Song>_STEM_01.wav
        instrument: electric bass
        component: bass
        raw:
          R01: {filename: <Song>_RAW_01_01.wav, instrument: electric bass}

plus ``artist``, ``title``, ``genre``, ``version`` and other fields that are kept as
read. Absent ``mix_filename`` / ``raw_dir`` / ``stem_dir`` fall back to the names above.

Decisions (documented behaviour, tested):

- The raw tracks listed in the metadata are the inputs; files in the raw folder that the
  metadata does not list are ignored. Track names are the raw file names, in the order
  those names sort (``..._RAW_01_01.wav`` < ``..._RAW_01_02.wav`` < ``..._RAW_02_01.wav``).
- :func:`list_medleydb_songs` reads metadata only (no audio) but checks that the mix and
  every listed raw file exist, so a broken song is reported before any loading starts.
- Audio is loaded through :func:`mixinvert.data.song.load_tracks_and_mix`, so its rules
  (resampling, padding, a stereo mix, errors naming the file) apply unchanged.
- Problems are :class:`MedleyDBError` (a :class:`SongError`) naming the file or folder.
- A raw file the metadata names as ``.wav`` may be stored as ``.flac`` with the same stem
  (lossless copies, as some redistributions ship them); the file found is used.
- :func:`list_raw_songs` reads a folder of such song folders that ships no mixes (raw
  tracks only, e.g. sources for :mod:`mixinvert.data.corpus`'s ``real`` preset), and
  :func:`instrument_category` maps MedleyDB's instrument labels to the synthetic
  engineer's categories.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from mixinvert.data.song import Song, SongError, load_tracks_and_mix

#: The paper keeps MedleyDB songs with at most this many raw tracks.
DEFAULT_MAX_RAW_TRACKS = 16

_TRUE = {"yes", "y", "true"}
_FALSE = {"no", "n", "false"}


class MedleyDBError(SongError):
    """A MedleyDB song or folder that cannot be used; the message names the file."""


@dataclass(frozen=True)
class MedleyDBRawTrack:
    """One raw track: ``name`` is its file name, ``stem_id``/``raw_id`` e.g. S01/R02."""

    name: str
    path: Path
    instrument: str
    stem_id: str
    raw_id: str


@dataclass
class MedleyDBEntry:
    """A song's metadata and paths, as read from ``<Song>_METADATA.yaml`` (no audio).

    ``raw_tracks`` are sorted by file name; ``metadata`` is the whole parsed YAML.
    """

    name: str
    song_dir: Path
    metadata_path: Path
    mix_path: Path
    raw_dir: Path
    stem_dir: Path
    raw_tracks: tuple[MedleyDBRawTrack, ...]
    has_bleed: bool
    instrumental: bool
    artist: str = ""
    title: str = ""
    genre: str = ""
    version: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def num_raw_tracks(self) -> int:
        return len(self.raw_tracks)

    @property
    def track_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.raw_tracks)

    @property
    def instruments(self) -> dict[str, str]:
        """Raw file name -> instrument label, in track order."""
        return {t.name: t.instrument for t in self.raw_tracks}


def parse_yes_no(value: Any, *, field_name: str, where: str | os.PathLike) -> bool:
    """Parse MedleyDB's ``'yes'``/``'no'`` (any case; YAML booleans too) into a bool.

    Raises
    ------
    MedleyDBError
        For anything else (including a missing value), naming ``where`` and the field.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise MedleyDBError(f"{where}: {field_name} must be 'yes' or 'no', got {value!r}")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _audio_file(path: Path) -> Path:
    """``path``, or the FLAC file of the same stem when only that exists."""
    if not path.is_file() and path.suffix.lower() == ".wav" and path.with_suffix(".flac").is_file():
        return path.with_suffix(".flac")
    return path


def read_medleydb_entry(song_dir: str | os.PathLike, *, require_mix: bool = True) -> MedleyDBEntry:
    """Read ``<song_dir>/<Song>_METADATA.yaml`` and check the files it points to.

    Parameters
    ----------
    song_dir
        ``<root>/Audio/<Song>``; the folder's name is the song's name.

    Returns
    -------
    MedleyDBEntry
        Paths, raw tracks (sorted by file name) with their instruments, and flags.

    Raises
    ------
    MedleyDBError
        A missing folder, a missing or invalid metadata file, or metadata naming a mix or
        raw file that does not exist; the message names the file.
    """
    song_dir = Path(song_dir)
    name = song_dir.name
    meta_path = song_dir / f"{name}_METADATA.yaml"
    if not song_dir.is_dir():
        raise MedleyDBError(f"{song_dir}: not a MedleyDB song folder")
    if not meta_path.is_file():
        raise MedleyDBError(f"{meta_path}: metadata file not found")
    try:
        with open(meta_path, encoding="utf-8") as fh:
            meta = yaml.safe_load(fh)
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as err:
        raise MedleyDBError(f"{meta_path}: not valid YAML ({err})") from None
    if not isinstance(meta, dict):
        raise MedleyDBError(f"{meta_path}: expected a YAML mapping, got {type(meta).__name__}")
    stems = meta.get("stems")
    if not isinstance(stems, dict) or not stems:
        raise MedleyDBError(f"{meta_path}: no 'stems' mapping")

    mix_path = song_dir / str(meta.get("mix_filename") or f"{name}_MIX.wav")
    raw_dir = song_dir / str(meta.get("raw_dir") or f"{name}_RAW")
    stem_dir = song_dir / str(meta.get("stem_dir") or f"{name}_STEMS")
    raws: list[MedleyDBRawTrack] = []
    for stem_id, stem in stems.items():
        if not isinstance(stem, dict):
            raise MedleyDBError(f"{meta_path}: stem {stem_id} is not a mapping")
        raw = stem.get("raw") or {}
        if not isinstance(raw, dict):
            raise MedleyDBError(f"{meta_path}: stem {stem_id} 'raw' is not a mapping")
        for raw_id, info in raw.items():
            if not isinstance(info, dict) or not info.get("filename"):
                raise MedleyDBError(f"{meta_path}: raw {stem_id}/{raw_id} has no filename")
            fname = str(info["filename"])
            instrument = _text(info.get("instrument", stem.get("instrument")))
            path = _audio_file(raw_dir / fname)
            raws.append(MedleyDBRawTrack(path.name, path, instrument, str(stem_id), str(raw_id)))
    if not raws:
        raise MedleyDBError(f"{meta_path}: lists no raw tracks")
    raws.sort(key=lambda t: t.name)
    names = [t.name for t in raws]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise MedleyDBError(f"{meta_path}: raw file(s) listed twice: {', '.join(dup)}")

    if require_mix and not mix_path.is_file():
        raise MedleyDBError(f"{mix_path}: mix file named in {meta_path.name} not found")
    for t in raws:
        if not t.path.is_file():
            raise MedleyDBError(f"{t.path}: raw file named in {meta_path.name} not found")
    return MedleyDBEntry(
        name=name,
        song_dir=song_dir,
        metadata_path=meta_path,
        mix_path=mix_path,
        raw_dir=raw_dir,
        stem_dir=stem_dir,
        raw_tracks=tuple(raws),
        has_bleed=parse_yes_no(meta.get("has_bleed"), field_name="has_bleed", where=meta_path),
        instrumental=parse_yes_no(meta.get("instrumental"), field_name="instrumental", where=meta_path),
        artist=_text(meta.get("artist")),
        title=_text(meta.get("title")),
        genre=_text(meta.get("genre")),
        version=_text(meta.get("version")),
        metadata=meta,
    )


def list_medleydb_songs(
    root: str | os.PathLike,
    *,
    max_raw_tracks: int | None = DEFAULT_MAX_RAW_TRACKS,
    exclude_bleed: bool = False,
    instrumental_only: bool = False,
) -> list[MedleyDBEntry]:
    """The songs under ``<root>/Audio`` that pass the filters, sorted by name (no audio read).

    Parameters
    ----------
    root
        The MedleyDB folder holding ``Audio/``.
    max_raw_tracks
        Keep songs with at most this many raw tracks (the paper's 16); None keeps all.
    exclude_bleed
        Drop songs whose metadata says ``has_bleed: 'yes'``.
    instrumental_only
        Keep only songs whose metadata says ``instrumental: 'yes'``.

    Raises
    ------
    MedleyDBError
        ``<root>/Audio`` missing, or any song folder whose metadata or files are broken.
    """
    audio_dir = Path(root) / "Audio"
    if not audio_dir.is_dir():
        raise MedleyDBError(f"{audio_dir}: MedleyDB 'Audio' folder not found")
    song_dirs = sorted(
        (p for p in audio_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    entries = []
    for song_dir in song_dirs:
        entry = read_medleydb_entry(song_dir)
        if max_raw_tracks is not None and entry.num_raw_tracks > max_raw_tracks:
            continue
        if exclude_bleed and entry.has_bleed:
            continue
        if instrumental_only and not entry.instrumental:
            continue
        entries.append(entry)
    return entries


def load_medleydb_song(
    entry_or_song_dir: MedleyDBEntry | str | os.PathLike,
    *,
    max_tracks: int | None = None,
) -> Song:
    """Load a song's raw tracks (inputs) and its MIX (reference).

    Parameters
    ----------
    entry_or_song_dir
        An entry from :func:`list_medleydb_songs` or a ``<root>/Audio/<Song>`` folder.
    max_tracks
        Refuse songs with more raw tracks than this (None: no limit).

    Returns
    -------
    Song
        Named after the song folder; track names are the raw file names, sorted;
        ``path`` is the song folder.
    """
    entry = (
        entry_or_song_dir
        if isinstance(entry_or_song_dir, MedleyDBEntry)
        else read_medleydb_entry(entry_or_song_dir)
    )
    song = load_tracks_and_mix(
        [t.path for t in entry.raw_tracks],
        entry.mix_path,
        name=entry.name,
        track_names=entry.track_names,
        max_tracks=max_tracks,
    )
    song.path = entry.song_dir
    return song


def iter_medleydb(
    root: str | os.PathLike,
    *,
    max_raw_tracks: int | None = DEFAULT_MAX_RAW_TRACKS,
    exclude_bleed: bool = False,
    instrumental_only: bool = False,
) -> Iterator[Song]:
    """Load, one at a time, the songs :func:`list_medleydb_songs` keeps with these filters."""
    entries = list_medleydb_songs(
        root,
        max_raw_tracks=max_raw_tracks,
        exclude_bleed=exclude_bleed,
        instrumental_only=instrumental_only,
    )
    for entry in entries:
        yield load_medleydb_song(entry)


def list_raw_songs(root: str | os.PathLike) -> list[MedleyDBEntry]:
    """The MedleyDB songs in ``root`` (``root/<Song>/`` or ``root/Audio/<Song>/``) read for
    their raw tracks only (no mix needed), sorted by name.

    Raises
    ------
    MedleyDBError
        ``root`` missing or holding no song folder, or a song whose metadata or raw files
        are broken.
    """
    root = Path(root)
    base = root / "Audio" if (root / "Audio").is_dir() else root
    if not base.is_dir():
        raise MedleyDBError(f"{root}: not a folder of MedleyDB songs")
    dirs = sorted((p for p in base.iterdir() if p.is_dir() and (p / f"{p.name}_METADATA.yaml").is_file()),
                  key=lambda p: p.name)
    if not dirs:
        raise MedleyDBError(f"{root}: no MedleyDB song folders (<Song>/<Song>_METADATA.yaml)")
    return [read_medleydb_entry(d, require_mix=False) for d in dirs]


#: MedleyDB instrument labels -> the synthetic engineer's categories
#: (:data:`mixinvert.data.engineer.CATEGORIES`): the first rule whose words occur in the
#: label wins, so "bass drum" is a kick and "bassoon" a wind before "bass" is tried. A
#: whole kit on one track is mixed as the kit's centre anchor (the snare's prior).
_CATEGORY_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kick", ("kick drum", "bass drum")),
    ("snare", ("snare",)),
    ("hihat", ("hi-hat", "hihat", "high hat")),
    ("tom", ("tom",)),
    ("overhead", ("cymbal", "overhead")),
    ("room", ("room",)),
    ("snare", ("drum set", "drum machine", "drums", "drum kit")),
    ("vocals", ("singer", "vocal", "voice", "rapper", "choir", "speaker")),
    ("winds", ("flute", "clarinet", "saxophone", "oboe", "bassoon", "piccolo", "recorder", "harmonica")),
    ("brass", ("trumpet", "trombone", "horn", "tuba", "brass", "cornet", "euphonium")),
    ("bass", ("bass",)),
    ("guitar", ("guitar", "banjo", "mandolin", "ukulele", "lap steel", "dobro")),
    ("keys", ("piano", "organ", "keyboard", "harpsichord", "accordion", "clavinet", "harmonium")),
    ("synth", ("synth", "sampler")),
    ("strings", ("violin", "viola", "cello", "string", "harp", "fiddle")),
)


def instrument_category(label: str) -> str:
    """The engineer's category for a MedleyDB instrument label ("other" when none fits)."""
    text = label.lower()
    for category, words in _CATEGORY_RULES:
        if any(w in text for w in words):
            return category
    return "other"
