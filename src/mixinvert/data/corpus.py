"""``mixinvert corpus``: a realistic synthetic multitrack corpus with known settings.

Real datasets (MedleyDB, ENST-Drums) cannot be fetched here, so the project makes its
own, as close to them as it can, with the true console settings of every mix:

- ``drums`` (ENST-Drums-like): the eight ENST microphones (kick, snare, hi-hat, three
  toms, two overheads) of a real multi-microphone sample kit with real bleed
  (:mod:`mixinvert.data.drums`), played from a human MIDI performance or from generated,
  humanized grooves.
- ``songs`` (MedleyDB-like): 3 to 16 tracks; melodic and harmonic parts from music21's
  bundled scores rendered dry with fluidsynth (:mod:`mixinvert.data.melodic`), and in
  most songs (70 %) a drum kit of 3 to 8 microphones.
- ``real``: real recordings. Each song is an excerpt of one song of a folder of MedleyDB
  raw multitracks (``--sources``, e.g. ``../shared/data/medleydb-raw``): all of its
  tracks or a subset of two or more, one excerpt start for all, and what differs between
  sessions of the same music: each track's level moved by up to +-6 dB, a polarity flip
  (10 % of tracks), a time offset of up to +-3 ms (30 % of tracks), and a noise floor
  drawn per song. Categories come from the metadata's instrument labels
  (:func:`mixinvert.data.medleydb.instrument_category`). The held-out split is by
  source song: the source songs are split 8:1:1 with the corpus seed, and a validation
  or test song is cut only from validation or test source songs, so no source song's
  tracks are in two splits. The yardstick songs (:mod:`mixinvert.data.yardstick`) are
  refused as sources. Train on it beside the synthetic presets by passing several
  corpora to ``mixinvert train``.

Every song is mixed through console v1 (``console="v2"``: console v2, with sends, a reverb
bus and a master chain; :func:`mixinvert.data.engineer.sample_settings_v2`) by a synthetic
engineer whose settings come from
a prior fitted to human mixes (:mod:`mixinvert.data.engineer`). Layout::

    OUT_DIR/corpus.json   how it was made (preset, seed, seconds, songs, versions)
    OUT_DIR/splits.json   train/valid/test, 8:1:1, deterministic given the seed
    OUT_DIR/song_0000/    tracks/*.wav (24-bit), mix.wav (32-bit float), params.json, song.json

Song ``i`` depends only on ``(seed, i)``, so a corpus is reproducible song by song, and
songs can be made in parallel. Each song is written to a hidden folder and renamed when
complete: an interrupted run leaves no half-written song, and running the same command
again resumes, keeping the finished songs (a different command on the same folder is an
error, so nothing made earlier is overwritten).
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from mixinvert.audio import write_audio, write_text_atomic
from mixinvert.console.params_io import MixParams, write_params
from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1, ParamSchema
from mixinvert.data.dataset import SPLITS_FILE, split_names
from mixinvert.data.song import load_song
from mixinvert.errors import InputError

Preset = Literal["drums", "songs", "real"]
PRESETS = ("drums", "songs", "real")
CORPUS_FILE = "corpus.json"
#: Bump when the generator changes what a (seed, index) produces.
GENERATOR_VERSION = 1
SAMPLE_RATE = 44100
#: Probability that a ``songs`` song has drums (MedleyDB: most songs are band music).
SONGS_DRUM_P = 0.7
MAX_SONG_TRACKS = 16
#: The ``real`` preset's session differences: level offset (dB, +-), polarity flip
#: probability, time offset (ms, +-) and its probability, noise floor (dBFS RMS, range).
REAL_LEVEL_DB = 6.0
REAL_FLIP_P = 0.1
REAL_OFFSET_MS, REAL_OFFSET_P = 3.0, 0.3
REAL_NOISE_DBFS = (-90.0, -60.0)
#: Probability that a ``real`` song keeps all of its source's tracks.
REAL_ALL_TRACKS_P = 0.5
#: Loudness the synthetic engineer brings a mix to (LUFS integrated, +-2 LU per song):
#: a finished mix before mastering.
MIX_TARGET_LUFS = -18.0


class CorpusError(InputError):
    """A corpus request that cannot be carried out (bad options, clashing folder)."""


@dataclass(frozen=True)
class CorpusConfig:
    """What a corpus is made from; stored in ``corpus.json``."""

    preset: str
    songs: int
    seconds: float
    seed: int
    kit_dir: str | None = None
    midi_path: str | None = None
    soundfont: str | None = None
    sample_rate: int = SAMPLE_RATE
    console: str = "v1"
    generator_version: int = GENERATOR_VERSION
    #: The ``real`` preset's folder of MedleyDB raw multitracks.
    sources_dir: str | None = None

    def identity(self) -> dict:
        """The fields that decide the audio (paths to the kit and soundfont excluded; of
        the sources folder, its name)."""
        d = asdict(self)
        for key in ("kit_dir", "soundfont"):
            d.pop(key)
        d["midi_path"] = Path(self.midi_path).name if self.midi_path else None
        d["sources_dir"] = Path(self.sources_dir).name if self.sources_dir else None
        return d


def song_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for song ``index`` of a corpus with ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def make_song_tracks(config: CorpusConfig, index: int) -> tuple[list[tuple[str, str, np.ndarray]], dict]:
    """``(name, category, audio (channels, samples))`` for song ``index``, and its metadata."""
    rng = song_rng(config.seed, index)
    seconds = config.seconds
    tracks: list[tuple[str, str, np.ndarray]] = []
    meta: dict = {"index": index}
    if config.preset == "drums":
        tracks += _drums(config, rng, seconds, meta, mics=None)
    elif config.preset == "songs":
        from mixinvert.data.melodic import melodic_multitrack

        n_drum_mics = 0
        with_drums = config.kit_dir is not None and rng.random() < SONGS_DRUM_P
        if with_drums:
            n_drum_mics = int(rng.integers(3, 9))
        max_parts = int(rng.integers(2, min(8, MAX_SONG_TRACKS - n_drum_mics) + 1))
        if not with_drums:
            max_parts = int(rng.integers(3, 9))
        parts = melodic_multitrack(
            rng, seconds, max_parts=max_parts, sample_rate=config.sample_rate, soundfont=config.soundfont
        )
        meta["melodic"] = [name for name, _, _ in parts]
        tracks += parts
        if with_drums:
            tracks += _drums(config, rng, seconds, meta, mics=n_drum_mics)
    elif config.preset == "real":
        tracks += _real(config, index, rng, meta)
    else:
        raise CorpusError(f"unknown preset {config.preset!r} (choose from {', '.join(PRESETS)})")
    return _unique_names(tracks), meta


def _drums(config: CorpusConfig, rng: np.random.Generator, seconds: float, meta: dict, mics: int | None):
    from mixinvert.data.drums import ENST_MICS, drum_multitrack

    if config.kit_dir is None:
        raise CorpusError("the drums preset needs a drum kit folder (--kit), e.g. a MuldjordKit copy")
    chosen = list(ENST_MICS)
    if mics is not None and mics < len(chosen):
        # Keep the essentials of a small drum setup first: kick, snare, overheads.
        core = [m for m in chosen if m.name in ("kick", "snare", "overhead_L", "overhead_R")]
        rest = [m for m in chosen if m not in core]
        extra = [rest[i] for i in sorted(rng.choice(len(rest), size=max(0, mics - len(core)), replace=False))]
        chosen = [m for m in chosen if m in core[:mics] or m in extra]
    use_midi = config.midi_path is not None and rng.random() < 0.5
    source = "midi" if use_midi else "generated"
    meta["drums"] = {"source": source, "mics": [m.name for m in chosen]}
    out = drum_multitrack(
        config.kit_dir, rng, seconds, source=source, midi_path=config.midi_path,
        mics=tuple(chosen), sample_rate=config.sample_rate,
    )
    return [(name, category, np.asarray(audio, np.float32).reshape(-1, np.asarray(audio).shape[-1]))
            for name, category, audio in out]


def real_sources(config: CorpusConfig) -> tuple[list, dict[str, list[str]]]:
    """The ``real`` preset's source songs (MedleyDB entries, sorted) and their split by song."""
    from mixinvert.data.medleydb import MedleyDBError, list_raw_songs
    from mixinvert.data.yardstick import yardstick_songs_in

    if config.sources_dir is None:
        raise CorpusError("the real preset needs a folder of MedleyDB raw multitracks (--sources)")
    try:
        entries = list_raw_songs(config.sources_dir)
    except MedleyDBError as err:
        raise CorpusError(str(err)) from None
    banned = yardstick_songs_in([e.name for e in entries] + [t.name for e in entries for t in e.raw_tracks])
    if banned:
        raise CorpusError(f"{config.sources_dir}: holds the yardstick song(s) {', '.join(banned)}, which score "
                          "real mixes and are never trained on; use other source songs")
    if len(entries) < 3:
        raise CorpusError(f"{config.sources_dir}: the real preset needs at least 3 source songs, so that its "
                          f"validation and test songs come from songs it does not train on (found {len(entries)})")
    return entries, split_names([e.name for e in entries], config.seed)


def _real(config: CorpusConfig, index: int, rng: np.random.Generator, meta: dict) -> list[tuple[str, str, np.ndarray]]:
    """Song ``index`` of the ``real`` preset: an excerpt of a source song of its split,
    with session differences (see the module doc)."""
    from mixinvert.audio import read_audio
    from mixinvert.data.medleydb import instrument_category
    from mixinvert.data.song import resample

    entries, source_splits = real_sources(config)
    names = [f"song_{i:04d}" for i in range(config.songs)]
    split = next(k for k, v in split_names(names, config.seed).items() if f"song_{index:04d}" in v)
    pool = [e for e in entries if e.name in source_splits[split]]
    entry = pool[int(rng.integers(len(pool)))]
    raws = list(entry.raw_tracks)
    if len(raws) > 2 and rng.random() >= REAL_ALL_TRACKS_P:
        keep = int(rng.integers(2, len(raws)))
        raws = [raws[i] for i in sorted(rng.choice(len(raws), size=keep, replace=False))]
    sr = config.sample_rate
    audio = []
    for raw in raws:
        x, file_sr = read_audio(raw.path)
        x = x.mean(axis=0, keepdims=True) if x.shape[0] > 2 else x
        audio.append(resample(x, file_sr, sr) if file_sr != sr else x)
    n = int(round(config.seconds * sr))
    longest = max(a.shape[-1] for a in audio)
    start = int(rng.integers(0, max(1, longest - n + 1)))
    noise_dbfs = float(rng.uniform(*REAL_NOISE_DBFS))
    out, info = [], []
    for raw, x in zip(raws, audio):
        y = np.zeros((x.shape[0], n), np.float32)
        piece = x[:, start : start + n]
        y[:, : piece.shape[-1]] = piece
        level_db = float(rng.uniform(-REAL_LEVEL_DB, REAL_LEVEL_DB))
        flip = bool(rng.random() < REAL_FLIP_P)
        shift = int(round(rng.uniform(-REAL_OFFSET_MS, REAL_OFFSET_MS) * 1e-3 * sr)) if rng.random() < REAL_OFFSET_P else 0
        y = np.roll(y, shift, axis=-1)
        if shift > 0:
            y[:, :shift] = 0.0
        elif shift < 0:
            y[:, shift:] = 0.0
        y = y * (10 ** (level_db / 20) * (-1.0 if flip else 1.0))
        y = y + rng.standard_normal(y.shape).astype(np.float32) * 10 ** (noise_dbfs / 20)
        peak = float(np.abs(y).max())
        if peak > 0.99:  # a louder session would not have clipped: the offset stops short of full scale
            y *= 0.99 / peak
            level_db += 20 * np.log10(0.99 / peak)
        name = raw.name.rsplit(".", 1)[0]
        out.append((name, instrument_category(raw.instrument), y.astype(np.float32)))
        info.append({"name": name, "instrument": raw.instrument, "level_db": round(level_db, 2), "polarity_flip": flip,
                     "offset_samples": shift})
    meta["real"] = {"source": entry.name, "split": split, "start_s": round(start / sr, 3),
                    "noise_floor_dbfs": round(noise_dbfs, 1), "tracks": info}
    return out


def _unique_names(tracks: list[tuple[str, str, np.ndarray]]) -> list[tuple[str, str, np.ndarray]]:
    seen: dict[str, int] = {}
    out = []
    for name, category, audio in tracks:
        base = name[:-4] if name.endswith(".wav") else name
        seen[base] = seen.get(base, 0) + 1
        unique = base if seen[base] == 1 else f"{base}_{seen[base]}"
        out.append((f"{unique}.wav", category, audio))
    return out


def make_song(config: CorpusConfig, index: int, out_dir: str | os.PathLike) -> Path:
    """Make song ``index`` into ``out_dir/song_NNNN`` (atomically); returns its folder."""
    from mixinvert.data.engineer import sample_settings

    out_dir = Path(out_dir)
    final = out_dir / f"song_{index:04d}"
    if (final / "params.json").is_file():
        return final
    tmp = out_dir / f".song_{index:04d}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tracks, meta = make_song_tracks(config, index)
    rng = song_rng(config.seed, index)
    rng = np.random.default_rng(rng.integers(2**63))  # independent of how much audio making drew
    names = [n for n, _, _ in tracks]
    categories = [c for _, c, _ in tracks]
    for name, _, audio in tracks:
        write_audio(tmp / "tracks" / name, audio, config.sample_rate, subtype="PCM_24")
    # Mix what a user will load: the 24-bit tracks as read back from disk.
    song = load_song(tmp, max_tracks=None)
    song_categories = [categories[names.index(n)] for n in song.track_names]
    if config.console == "v2":
        params, mix = _mix_v2(song, song_categories, rng, config.sample_rate)
    else:
        values = sample_settings(rng, song_categories, names=song.track_names)
        console = Console(song.tracks, song.sample_rate, workers=1)
        values, mix = _level_mix(console.render, values, rng, CONSOLE_V1, "gain_db", song.sample_rate)
        params = MixParams(CONSOLE_V1, song.track_names, values, config.sample_rate)
    write_audio(tmp / "mix.wav", mix, config.sample_rate)
    write_params(tmp / "params.json", params)
    meta.update(
        tracks=[{"name": n, "category": categories[names.index(n)]} for n in song.track_names],
        seconds=config.seconds, sample_rate=config.sample_rate,
    )
    write_text_atomic(tmp / "song.json", json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, final)
    return final


def _mix_v2(song, categories: list[str], rng: np.random.Generator, sample_rate: int) -> tuple[MixParams, np.ndarray]:
    """Console v2 settings of the synthetic engineer (:func:`mixinvert.data.engineer.sample_settings_v2`),
    the faders levelled with the master chain neutral, then the master chain drawn against
    the mix it receives (:func:`mixinvert.data.engineer.master_settings`), and the mix."""
    from mixinvert.console.render_v2 import ConsoleV2
    from mixinvert.console.schema import CONSOLE_V2
    from mixinvert.data.engineer import master_settings, sample_settings_v2

    values, shared = sample_settings_v2(rng, categories, names=song.track_names,
                                        channels=[t.shape[0] for t in song.tracks])
    console = ConsoleV2(song.tracks, song.sample_rate, workers=1)
    values, pre_master = _level_mix(lambda v: console.render(v, shared), values, rng, CONSOLE_V2, "fader_db",
                                    song.sample_rate)
    shared = master_settings(rng, shared, pre_master)
    mix = console.render(values, shared)
    return MixParams(CONSOLE_V2, song.track_names, values, sample_rate, shared=shared), mix


def _level_mix(render: Callable[[np.ndarray], np.ndarray], values: np.ndarray, rng: np.random.Generator,
               schema: ParamSchema, level: str, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Move every fader by one offset so the mix lands near a mastering-like loudness.

    The engineer prior gives gains relative to the song's other tracks; the absolute
    level is set here, as an engineer would with all faders together: the mix's
    integrated loudness is brought towards :data:`MIX_TARGET_LUFS` (+-2 LU, drawn), as
    far as every gain stays within its range. Relative levels are unchanged.
    """
    from mixinvert.dsp.loudness import integrated_loudness

    gain = schema.index(level)
    lo, hi = schema.specs[gain].lo, schema.specs[gain].hi
    target = MIX_TARGET_LUFS + rng.uniform(-2.0, 2.0)
    mix = render(values)
    for _ in range(2):  # the compressors make level non-linear: one correction, then a check
        lufs = integrated_loudness(mix, sample_rate)
        if not np.isfinite(lufs) or abs(lufs - target) < 0.5:
            break
        shift = np.clip(target - lufs, lo - values[:, gain].min(), hi - values[:, gain].max())
        if abs(shift) < 1e-3:
            break
        values = values.copy()
        values[:, gain] = np.clip(values[:, gain] + shift, lo, hi)
        mix = render(values)
    return values, mix


def make_corpus(
    out_dir: str | os.PathLike,
    config: CorpusConfig,
    *,
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Make (or resume) a corpus; returns ``out_dir``. See the module doc for the layout."""
    out_dir = Path(out_dir)
    _check_request(out_dir, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"config": asdict(config), "identity": config.identity()}
    if config.preset == "real":
        doc["source_splits"] = real_sources(config)[1]
    if not (out_dir / CORPUS_FILE).is_file():
        write_text_atomic(out_dir / CORPUS_FILE, json.dumps(doc, indent=2) + "\n")
    jobs = max(1, min(jobs or os.cpu_count() or 1, config.songs))
    todo = [i for i in range(config.songs) if not (out_dir / f"song_{i:04d}" / "params.json").is_file()]
    if progress is not None and len(todo) < config.songs:
        progress(config.songs - len(todo))
    if jobs == 1:
        for i in todo:
            make_song(config, i, out_dir)
            if progress is not None:
                progress(1)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for _ in pool.map(make_song, [config] * len(todo), todo, [out_dir] * len(todo)):
                if progress is not None:
                    progress(1)
    names = [f"song_{i:04d}" for i in range(config.songs)]
    splits = split_names(names, config.seed)
    write_text_atomic(out_dir / SPLITS_FILE, json.dumps(splits, indent=2) + "\n", overwrite=True)
    return out_dir


def _check_request(out_dir: Path, config: CorpusConfig) -> None:
    if config.preset not in PRESETS:
        raise CorpusError(f"unknown preset {config.preset!r} (choose from {', '.join(PRESETS)})")
    if config.console not in ("v1", "v2"):
        raise CorpusError(f"unknown console {config.console!r} (choose from v1, v2)")
    if config.songs < 1:
        raise CorpusError("--songs must be at least 1")
    if not 0.5 <= config.seconds <= 600:
        raise CorpusError("--seconds must be between 0.5 and 600")
    if config.preset == "real":
        real_sources(config)
    elif config.sources_dir is not None:
        raise CorpusError("--sources is for the real preset only")
    if config.preset == "drums" and config.kit_dir is None:
        raise CorpusError("the drums preset needs a drum kit folder (--kit), e.g. a MuldjordKit copy")
    if config.kit_dir is not None and not Path(config.kit_dir).is_dir():
        raise CorpusError(f"{config.kit_dir}: drum kit folder not found")
    if config.midi_path is not None and not Path(config.midi_path).is_file():
        raise CorpusError(f"{config.midi_path}: MIDI file not found")
    if out_dir.exists() and not out_dir.is_dir():
        raise CorpusError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        existing = out_dir / CORPUS_FILE
        if not existing.is_file():
            raise CorpusError(f"{out_dir}: not empty and not a corpus; choose a new folder")
        try:
            # a corpus made before a field existed was made at its default (no sources)
            identity = {"sources_dir": None, **json.loads(existing.read_text())["identity"]}
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise CorpusError(f"{existing}: unreadable ({err}); choose a new folder") from None
        if identity != config.identity():
            raise CorpusError(
                f"{out_dir} holds a corpus made with other settings ({existing}); "
                "choose a new folder or repeat the original command to resume it"
            )
