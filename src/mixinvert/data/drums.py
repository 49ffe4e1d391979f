"""ENST-Drums-like multi-microphone drum tracks with real bleed, from a multi-mic sample kit.

A kit in the DrumGizmo/MuldjordKit layout holds, for every instrument and velocity layer,
one mono file per microphone: ``Samples/<Instrument>/v<layer>-<Instrument>-<Mic>.flac``.
Every hit was recorded on all microphones at once, so adding each microphone's sample of a
hit to that microphone's track gives real bleed, real time-of-flight offsets and real room
sound. A performance (a list of :class:`Hit`) comes from a MIDI file or from a humanized
pattern generator; :func:`render_drums` turns it into one track per microphone.

Microphone set, ENST-Drums track name <- kit microphone [mixing-prior category]:
kick <- KdrumR [kick], snare <- Snare_top [snare], hi-hat <- Hihat [hihat],
tom_1 <- Tom1, tom_2 <- Tom2, tom_3 <- Tom4 (floor) [tom], overhead_L/R <- OHL/OHR
[overhead]; ENST_MICS_WITH_ROOM adds room_L/R <- AmbL/AmbR [room].

The MuldjordKit is a double-kick kit: the played kick (instrument ``KdrumR``) is picked
up by the ``KdrumR`` microphone (about 40 dB louder, 2 ms earlier than on ``KdrumL``,
which sits in the other bass drum). ``tom_3`` is the floor tom, as in ENST-Drums; the
third rack tom (``Tom3``) still plays and bleeds into every microphone.

Credit: drum samples from the DrumGizmo MuldjordKit by Lars Muldjord, CC BY 4.0.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, Sequence

import numpy as np
import soxr

from mixinvert.audio import AudioError, read_audio
from mixinvert.errors import InputError

log = logging.getLogger(__name__)

#: Instrument name -> kit folder (and file-name infix).
INSTRUMENTS: dict[str, str] = {
    "kick": "KdrumR", "snare": "Snare", "hihat_closed": "HihatClosed",
    "hihat_open": "HihatOpen", "tom1": "Tom1", "tom2": "Tom2", "tom3": "Tom3",
    "tom4": "Tom4", "ride": "RideR", "crash": "CrashR",
}

#: General MIDI drum note -> instrument (pedal hat counts as closed hat, side stick as snare).
GM_DRUMS: dict[int, str] = {
    35: "kick", 36: "kick", 37: "snare", 38: "snare", 40: "snare", 42: "hihat_closed",
    44: "hihat_closed", 46: "hihat_open", 48: "tom1", 50: "tom1", 47: "tom2", 45: "tom3",
    41: "tom4", 43: "tom4", 51: "ride", 59: "ride", 53: "ride", 49: "crash", 57: "crash",
    55: "crash", 52: "crash",
}

#: Layers shorter than this (seconds) are broken files and are left out (the subset's
#: HihatOpen v1 is 6 samples long).
MIN_LAYER_S = 0.01
#: Chance that a hit takes a neighbouring velocity layer instead of its own.
NEIGHBOUR_LAYER_P = 0.25
#: Fine gain range within one velocity layer, in dB (softest to loudest velocity of it).
LAYER_SPAN_DB = 4.0
#: Fade applied when a closed hat chokes a ringing open hat, in seconds.
CHOKE_FADE_S = 0.03


class KitError(InputError):
    """A drum kit folder that cannot be used, with the offending folder or file named."""


@dataclass(frozen=True)
class Mic:
    """A track: its ``name``, the kit's microphone it reads, and its mixing ``category``."""

    name: str
    kit_mic: str
    category: str


ENST_MICS: tuple[Mic, ...] = (
    Mic("kick", "KdrumR", "kick"), Mic("snare", "Snare_top", "snare"),
    Mic("hi-hat", "Hihat", "hihat"), Mic("tom_1", "Tom1", "tom"), Mic("tom_2", "Tom2", "tom"),
    Mic("tom_3", "Tom4", "tom"), Mic("overhead_L", "OHL", "overhead"),
    Mic("overhead_R", "OHR", "overhead"),
)
ENST_MICS_WITH_ROOM: tuple[Mic, ...] = ENST_MICS + (
    Mic("room_L", "AmbL", "room"), Mic("room_R", "AmbR", "room"),
)


class Hit(NamedTuple):
    """One drum hit: onset ``time_s`` (s), ``instrument`` (INSTRUMENTS key), velocity 1..127."""

    time_s: float
    instrument: str
    velocity: int


@dataclass(frozen=True)
class DrumKit:
    """Loaded samples: ``layers[instrument]`` is a tuple, softest first, of read-only
    float32 arrays ``(len(mics), samples)`` at ``sample_rate`` (rows in ``mics`` order)."""

    root: Path
    sample_rate: int
    mics: tuple[Mic, ...]
    layers: dict[str, tuple[np.ndarray, ...]]
    notes: tuple[str, ...] = ()

    @property
    def mic_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.mics)


def load_kit(kit_dir: str | os.PathLike, *, mics: Sequence[Mic] = ENST_MICS,
             sample_rate: int = 44100) -> DrumKit:
    """Load the files of ``mics`` for every instrument of a kit folder (cached per process).

    Parameters
    ----------
    kit_dir : folder holding ``Samples/`` (or the ``Samples`` folder itself).
    mics : tracks to load; default the eight ENST-Drums-like microphones.
    sample_rate : output rate in Hz; files at another rate are resampled with soxr.

    Raises
    ------
    KitError
        Naming the folder or file when the layout is wrong, a file is missing or unreadable.
    """
    root = Path(kit_dir).expanduser().resolve()
    return _load_kit_cached(root, tuple(mics), int(sample_rate))


@functools.lru_cache(maxsize=2)
def _load_kit_cached(root: Path, mics: tuple[Mic, ...], sample_rate: int) -> DrumKit:
    samples = root / "Samples" if (root / "Samples").is_dir() else root
    if not mics:
        raise KitError(f"{root}: no microphones asked for")
    layers: dict[str, tuple[np.ndarray, ...]] = {}
    notes: list[str] = []
    for inst, folder in INSTRUMENTS.items():
        d = samples / folder
        if not d.is_dir():
            raise KitError(f"{d}: instrument folder missing (expected Samples/<Instrument>/)")
        pattern = re.compile(rf"v(\d+)-{re.escape(folder)}-{re.escape(mics[0].kit_mic)}\.flac$")
        numbers = sorted(int(m.group(1)) for f in os.listdir(d) if (m := pattern.match(f)))
        if not numbers:
            raise KitError(f"{d}: no files v<layer>-{folder}-{mics[0].kit_mic}.flac")
        kept = []
        for v in numbers:
            rows = [_read_mono(d / f"v{v}-{folder}-{m.kit_mic}.flac", sample_rate) for m in mics]
            n = max(len(r) for r in rows)
            if n < MIN_LAYER_S * sample_rate:
                notes.append(f"{d}: layer v{v} is only {n} samples long; left out")
                continue
            block = np.zeros((len(mics), n), np.float32)
            for i, r in enumerate(rows):
                block[i, : len(r)] = r
            block.setflags(write=False)
            kept.append(block)
        if not kept:
            raise KitError(f"{d}: no usable velocity layer")
        layers[inst] = tuple(kept)
    for note in notes:
        log.info(note)
    return DrumKit(root, sample_rate, mics, layers, tuple(notes))


def _read_mono(path: Path, sample_rate: int) -> np.ndarray:
    """One kit file as float32 mono ``(samples,)`` at ``sample_rate``."""
    if not path.is_file():
        raise KitError(f"{path}: kit file missing")
    try:
        x, sr = read_audio(path)
    except AudioError as err:
        raise KitError(str(err)) from None
    x = x.mean(axis=0)
    if sr != sample_rate:
        x = soxr.resample(x, sr, sample_rate, quality="HQ")
    return np.asarray(x, np.float32)


def _window(hits: Sequence[Hit], start_s: float, duration_s: float | None,
            pre_s: float = 0.0) -> list[Hit]:
    """Hits with ``start_s - pre_s <= t < start_s + duration_s``, shifted by ``-start_s``."""
    end = np.inf if duration_s is None else start_s + duration_s
    return [Hit(h.time_s - start_s, h.instrument, h.velocity) for h in hits
            if start_s - pre_s <= h.time_s < end]


def performance_from_midi(path: str | os.PathLike, *, tempo_scale: float = 1.0,
                          start_s: float = 0.0, duration_s: float | None = None) -> list[Hit]:
    """Drum hits of a General MIDI file, sorted by time.

    Note times (seconds) are divided by ``tempo_scale`` (1.1 plays 10 % faster); then the
    hits in ``[start_s, start_s + duration_s)`` of the scaled timeline are kept, shifted
    to start at 0. Only drum-channel parts are read (all parts if none is flagged as
    drums); notes without a mapping in GM_DRUMS are dropped.
    """
    import pretty_midi

    if tempo_scale <= 0:
        raise InputError(f"tempo_scale must be positive, got {tempo_scale}")
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as err:  # pretty_midi/mido raise assorted errors on bad files
        raise InputError(f"{path}: not a readable MIDI file ({err})") from None
    parts = [i for i in pm.instruments if i.is_drum] or pm.instruments
    hits = sorted(
        Hit(float(n.start) / tempo_scale, GM_DRUMS[n.pitch], int(np.clip(n.velocity, 1, 127)))
        for part in parts for n in part.notes if n.pitch in GM_DRUMS
    )
    return _window(hits, start_s, duration_s)


# Patterns: per bar step, X accent, x normal, o optional (sometimes), g ghost, . rest.
_STYLES: dict[str, tuple[int, tuple[float, float], dict[str, str]]] = {
    "rock": (16, (88, 140), {"kick": "x.....o.x.o.....", "snare": "....X.......X...",
                             "hat": "X.x.X.x.X.x.X.x."}),
    "funk": (16, (84, 112), {"kick": "x..o..x...x..o..", "snare": "....X..g.g..X..g",
                             "hat": "XxxxXxxxXxxxXxxx"}),
    "halftime": (16, (120, 160), {"kick": "x.....o...x..o..", "snare": "..g.....X.....g.",
                                  "hat": "X.x.X.x.X.x.X.x."}),
    "shuffle": (12, (92, 132), {"kick": "x.....x..o..", "snare": "...X.g...X.g",
                                "hat": "X.xX.xX.xX.x"}),
}
_VEL = {"X": (108.0, 8.0, 1.0), "x": (82.0, 10.0, 1.0), "o": (74.0, 10.0, 0.4),
        "g": (32.0, 8.0, 0.6)}  # symbol -> (mean, sd, probability)
_FILL_DRUMS = ("snare", "tom1", "tom2", "tom3", "tom4")


def generate_pattern(rng: np.random.Generator, duration_s: float, *, bpm: float | None = None,
                     style: str | None = None) -> list[Hit]:
    """A humanized 4/4 groove of ``duration_s`` seconds, sorted by time; same rng, same hits.

    ``style`` is one of ``rock`` (8th hats), ``funk`` (16th hats, ghost notes),
    ``halftime`` or ``shuffle`` (random when None); ``bpm`` is drawn from the style's range
    when None. Phrases of 4 or 8 bars open with a crash and kick and often end with a
    tom fill; the time is kept on the closed hat (with open-hat lifts) or on the ride
    (with the pedal hat on 2 and 4). Velocities get accents and a per-song level;
    onsets get a few ms of timing jitter and, for 16th styles, a little swing.
    """
    style = style or str(rng.choice(list(_STYLES)))
    if style not in _STYLES:
        raise InputError(f"unknown style {style!r}; choose from {sorted(_STYLES)}")
    steps, (lo, hi), pat = _STYLES[style]
    bpm = float(bpm if bpm is not None else rng.uniform(lo, hi))
    bar_s, step_s = 240.0 / bpm, 240.0 / bpm / steps
    swing = rng.uniform(0.0, 0.15) if steps == 16 and style != "rock" else 0.0
    ride = rng.random() < 0.3
    phrase = int(rng.choice([4, 8]))
    level = rng.normal(0.0, 8.0)
    out: list[tuple[float, str, float]] = []
    for bar in range(int(np.ceil(duration_s / bar_s)) + 1):
        t0 = bar * bar_s
        fill_from = steps
        if bar % phrase == phrase - 1 and rng.random() < 0.6:
            fill_from = steps - int(rng.choice([1, 2])) * steps // 4
        crash = bar % phrase == 0 and (bar > 0 or rng.random() < 0.5)
        hat_steps = [s for s, c in enumerate(pat["hat"]) if c != "."]
        lift = not ride and rng.random() < 0.25
        for name, row in pat.items():
            for s, c in enumerate(row[:fill_from]):
                c = "X" if crash and s == 0 and name == "kick" else c
                if c == "." or rng.random() >= _VEL[c][2]:
                    continue
                inst = name if name != "hat" else "ride" if ride else "hihat_closed"
                if name == "hat" and crash and s == 0:
                    inst = "crash"
                elif name == "hat" and lift and s == hat_steps[-1]:
                    inst = "hihat_open"
                vel = rng.normal(*_VEL[c][:2]) - (6.0 if name == "hat" else 0.0)
                out.append((t0 + s * step_s, inst, vel))
        if ride:
            out += [(t0 + b * bar_s / 4, "hihat_closed", rng.normal(60, 8)) for b in (1, 3)]
        for s in range(fill_from, steps):
            if rng.random() < 0.85:
                frac = (s - fill_from) / max(1, steps - fill_from)
                k = int(np.clip(frac * len(_FILL_DRUMS) + rng.integers(-1, 2), 0, 4))
                out.append((t0 + s * step_s, _FILL_DRUMS[k], 85 + 30 * frac + rng.normal(0, 6)))
    times = np.array([t for t, _, _ in out])
    times += swing * step_s * ((np.round(times / step_s) % 2) == 1)
    times += np.clip(rng.normal(0.0, 0.004, len(times)), -0.012, 0.012)
    vels = np.clip(np.round([v + level for _, _, v in out]), 1, 127).astype(int)
    hits = sorted(Hit(float(max(t, 0.0)), inst, int(v))
                  for t, (_, inst, _), v in zip(times, out, vels))
    return [h for h in hits if h.time_s < duration_s]


def render_drums(kit: DrumKit, hits: Sequence[Hit], duration_s: float, *,
                 rng: np.random.Generator, mics: Sequence[str] | None = None
                 ) -> dict[str, np.ndarray]:
    """Render hits into one float32 mono track ``(round(duration_s * sr),)`` per microphone.

    Each hit's velocity picks a layer (sometimes a neighbouring one) and a fine gain
    within it (``LAYER_SPAN_DB``); every microphone's sample of the hit is added to that
    microphone's track, so bleed is the recorded one. A closed hat chokes a ringing open
    hat. Hits before 0 s contribute their tails; anything past the end is cut.
    Returns ``{track name: audio}`` in the kit's microphone order (or ``mics`` order).
    """
    names = list(kit.mic_names if mics is None else mics)
    unknown = [m for m in names if m not in kit.mic_names]
    if unknown:
        raise InputError(f"microphones {unknown} not loaded; the kit has {list(kit.mic_names)}")
    rows = [kit.mic_names.index(m) for m in names]
    sr, n = kit.sample_rate, int(round(duration_s * kit.sample_rate))
    out = np.zeros((len(rows), n), np.float32)
    hits = sorted(hits)
    bad = {h.instrument for h in hits} - set(INSTRUMENTS)
    if bad:
        raise InputError(f"unknown instruments {sorted(bad)}; expected {list(INSTRUMENTS)}")
    closed = np.array([round(h.time_s * sr) for h in hits if h.instrument == "hihat_closed"])
    draws, steps = rng.random(len(hits)), rng.choice([-1, 1], len(hits))
    sub: dict[tuple[str, int], np.ndarray] = {}
    fade = int(CHOKE_FADE_S * sr)
    for h, r, step in zip(hits, draws, steps):
        layers = kit.layers[h.instrument]
        pos = (float(np.clip(h.velocity, 1, 127)) - 1.0) / 127.0 * len(layers)
        li = int(pos)
        gain = 10.0 ** ((pos - li - 0.5) * LAYER_SPAN_DB / 20.0)
        if r < NEIGHBOUR_LAYER_P:
            li = int(np.clip(li + step, 0, len(layers) - 1))
        if (h.instrument, li) not in sub:
            sub[(h.instrument, li)] = layers[li] if mics is None else layers[li][rows]
        smp = sub[(h.instrument, li)]
        start = round(h.time_s * sr)
        skip = max(0, -start)
        end = min(n, start + smp.shape[1])
        if end <= max(start, 0):
            continue
        seg = gain * smp[:, skip: skip + end - max(start, 0)]
        if h.instrument == "hihat_open" and closed.size:
            k = np.searchsorted(closed, start, side="right")
            if k < closed.size and closed[k] - start < smp.shape[1]:
                cut = closed[k] - start - skip  # choke point inside seg
                env = np.clip(1.0 - (np.arange(seg.shape[1]) - cut) / fade, 0.0, 1.0)
                seg = seg * env.astype(np.float32)
        out[:, max(start, 0): end] += seg
    return {m: out[i] for i, m in enumerate(names)}


def drum_multitrack(kit_dir: str | os.PathLike, rng: np.random.Generator, duration_s: float, *,
                    source: Literal["generated", "midi"] = "generated",
                    midi_path: str | os.PathLike | None = None,
                    mics: Sequence[Mic] | None = None, sample_rate: int = 44100,
                    ) -> list[tuple[str, str, np.ndarray]]:
    """``(track name, category, audio)`` for one drum multitrack of ``duration_s`` seconds.

    ``source="generated"`` plays :func:`generate_pattern`; ``source="midi"`` plays
    ``midi_path`` at a random tempo (x0.85..1.15) from a random start when the
    performance is longer than ``duration_s`` (earlier hits still ring into the start;
    a shorter performance is followed by silence). Audio is float32 ``(samples,)``.
    """
    kit = load_kit(kit_dir, mics=ENST_MICS if mics is None else mics, sample_rate=sample_rate)
    if source == "generated":
        hits = generate_pattern(rng, duration_s)
    elif source == "midi":
        if midi_path is None:
            raise InputError("source='midi' needs midi_path")
        full = performance_from_midi(midi_path, tempo_scale=rng.uniform(0.85, 1.15))
        last = full[-1].time_s if full else 0.0
        start = rng.uniform(0.0, last - duration_s) if last > duration_s else 0.0
        hits = _window(full, start, duration_s, pre_s=2.0)
    else:
        raise InputError(f"source must be 'generated' or 'midi', got {source!r}")
    tracks = render_drums(kit, hits, duration_s, rng=rng)
    return [(m.name, m.category, tracks[m.name]) for m in kit.mics]
