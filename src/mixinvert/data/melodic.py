"""Dry melodic/harmonic multitracks from music21's bundled corpus, rendered with fluidsynth.

An :class:`Arrangement` is an excerpt of a multi-part work from music21's corpus (no
download: the scores ship with music21) with a transposition (-5..+6 semitones), a tempo
(70-140 beats per minute) and a General MIDI instrument per part; :func:`render_parts`
renders every part on its own, dry, through the ``fluidsynth`` command line with the
FluidR3 GM soundfont. Everything random is drawn from the caller's numpy Generator in
:func:`choose_arrangement`; rendering is deterministic, so one seed gives identical audio.

Works (:data:`WORKS`; a family is drawn first, so the 24 chorales do not dominate):
24 four-part Bach chorales; string quartets by Haydn (op. 1 no. 1, op. 74 no. 1/iii),
Mozart (K. 80, K. 155, K. 156, K. 458/ii) and Beethoven (op. 18 no. 1/iii); five-part
Monteverdi madrigals (book 3); four- to six-part Palestrina mass movements; three-part
works: Corelli op. 3 no. 1 (Grave), Lusitano and Luca's Gloria. Each parses in under 1 s.
The renaissance works are notated with the half note as beat, so their tempo is per half.

Programs (see :mod:`mixinvert.data.gm_programs`): parts are ranked by median pitch; the
lowest plays a bass instrument (electric, acoustic, picked, fretless or synth bass, cello,
contrabass, bassoon, tuba, trombone), the highest a lead (flute, violin, trumpet, square
or saw lead, choir, soprano/alto sax, oboe, clarinet, harmonica, ...), the others guitars,
pianos, organs, strings, clarinet, horn, saxes or choir; now and then a whole period
ensemble (string quartet, brass or wind quintet, choir) instead. Every part moves by whole
octaves into its instrument's range. When ``max_parts`` exceeds the score's parts, octave
doublings on other instruments (celesta, glockenspiel, piccolo, synth bass, tuba, ...)
and one sustained pad built from the excerpt's chords fill the count. Humanized: onsets
and releases jitter by about 4 ms (sd, at most 12 ms), velocities vary per part and note.

fluidsynth: ``fluidsynth -ni -q -R 0 -C 0 -g 0.5 -r <sr> -O float -T wav -o
synth.dynamic-sample-loading=1 -F out.wav <sf2> part.mid`` (fast render, no MIDI or
shell, reverb and chorus off, reverb/chorus sends also zeroed by CC 91/93 in the file,
32-bit float so nothing clips). A non-zero exit or an error on stderr raises: fluidsynth
only logs a soundfont it cannot load and then renders with its default one. Output is cut
or zero-padded to the exact length, made mono (channel mean) unless the instrument is
stereo, and peak-normalized to a level drawn per part in -12..-3 dBFS.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from mixinvert.data.gm_programs import ENSEMBLES, ROLES, GMInstrument
from mixinvert.errors import InputError, MixinvertError

DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
INSTALL_HINT = "install them with: apt-get install fluidsynth fluid-soundfont-gm"

_CHORALES = ("10.7", "11.6", "111.6", "119.9", "120.6", "121.6", "123.6", "126.6", "135.6",
             "140.7", "144.6", "146.8", "158.4", "159.5", "162.6-lpz", "169.7", "17.7",
             "174.5", "176.6", "180.7", "184.5", "108.6", "112.5", "116.6")
_QUARTETS = tuple(f"haydn/opus1no1/movement{i}.mxl" for i in range(1, 6)) + (
    "haydn/opus74no1/movement3.mxl", "mozart/k155/movement2.mxl", "mozart/k155/movement3.mxl",
    *(f"mozart/k156/movement{i}.mxl" for i in range(1, 5)),
    *(f"mozart/k80/movement{i}.mxl" for i in range(1, 5)),
    "mozart/k458/movement2.mxl", "beethoven/opus18no1/movement3.mxl")


class Work(NamedTuple):
    """A corpus work: music21 ``path``, ``family``, quarter notes per beat, parts with notes."""

    path: str
    family: str
    beat_ql: float
    n_parts: int


_PALESTRINA = {"Agnus_I_09": 5, "Agnus_I_69": 5, "Benedictus_66_b": 4, "Credo_03_d": 6,
               "Kyrie_02": 4, "Kyrie_46": 4, "Sanctus_10": 4, "Sanctus_47_c": 6,
               "Sanctus_73_a": 5, "Gloria_70_b": 4, "Kyrie_95_b": 5}
#: Every work that can be drawn (each parses in under 1 s).
WORKS: tuple[Work, ...] = (
    *(Work(f"bach/bwv{c}.mxl", "chorale", 1.0, 4) for c in _CHORALES),
    *(Work(w, "quartet", 1.0, 4) for w in _QUARTETS),
    *(Work(f"monteverdi/madrigal.3.{i}.mxl", "madrigal", 2.0, 5) for i in (1, 2, 3, 4, 10, 11, 13, 14)),
    *(Work(f"palestrina/{w}.krn", "mass", 2.0, n) for w, n in _PALESTRINA.items()),
    Work("corelli/opus3no1/1grave.xml", "trio", 1.0, 3),
    Work("lusitano/allor_che_ignuda.mxl", "trio", 2.0, 3),
    Work("luca/gloria.xml", "trio", 2.0, 3),
)
LEAD_IN_S = 0.02  #: silence before the first onset, so negative jitter stays in the file
MIN_COVERAGE = 0.2  #: preferred least fraction of the excerpt each part sounds
ENSEMBLE_P, PAD_P = 0.2, 0.5  #: chance of a whole ensemble; of a pad among the extras


class SynthUnavailable(MixinvertError, RuntimeError):
    """fluidsynth or the soundfont is missing; the message names what to install."""


class SynthError(MixinvertError, RuntimeError):
    """fluidsynth failed or rendered silence; the message holds its stderr."""


class NoteEvent(NamedTuple):
    """A note in seconds from the excerpt start; ``pitch`` and ``velocity`` in MIDI units."""

    start: float
    end: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class PartSpec:
    """One track: ``name`` (stem, no extension), mixing-prior ``category``, 0-based GM
    ``program``, whether the stem stays ``stereo``, where it comes from (``source``), the
    ``peak_dbfs`` it is normalized to, and its humanized, transposed ``notes``."""

    name: str
    category: str
    program: int
    stereo: bool
    source: str
    peak_dbfs: float
    notes: tuple[NoteEvent, ...]


@dataclass(frozen=True)
class Arrangement:
    """An excerpt of ``work`` (music21 corpus path) from measure ``start_measure``
    (``start_quarter`` quarter notes in), ``transpose`` semitones, ``bpm`` beats of
    ``beat_ql`` quarter notes per minute, ``duration_s`` seconds, ``parts`` top first."""

    work: str
    family: str
    transpose: int
    bpm: float
    beat_ql: float
    start_measure: int
    start_quarter: float
    duration_s: float
    parts: tuple[PartSpec, ...]


class _Score(NamedTuple):
    parts: tuple[np.ndarray, ...]  # per part (notes, 3): onset, length (quarters), pitch
    measures: tuple[tuple[int, float], ...]  # (number, offset in quarters)
    end: float


def find_soundfont(path: str | os.PathLike | None = None) -> Path:
    """The soundfont to render with: ``path``, else ``$MIXINVERT_SOUNDFONT``, else FluidR3.

    Raises :class:`SynthUnavailable` naming the packages to install if the file or the
    ``fluidsynth`` executable is missing.
    """
    sf2 = Path(path or os.environ.get("MIXINVERT_SOUNDFONT") or DEFAULT_SOUNDFONT)
    if shutil.which("fluidsynth") is None:
        raise SynthUnavailable(f"the fluidsynth executable is not on PATH; {INSTALL_HINT}")
    if not sf2.is_file():
        raise SynthUnavailable(f"soundfont {sf2} not found; {INSTALL_HINT} "
                               "(or set MIXINVERT_SOUNDFONT to a General MIDI .sf2 file)")
    return sf2


@functools.lru_cache(maxsize=8)
def load_work(work: str) -> _Score:
    """Parse a corpus work into per-part note arrays (ties merged, grace notes dropped)."""
    from music21 import corpus, stream

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = corpus.parse(work)
        parts = []
        for part in score.parts:
            rows = [(float(n.offset), float(n.quarterLength), p.midi)
                    for n in part.stripTies(inPlace=False).flatten().notes
                    if n.quarterLength > 0 for p in n.pitches]
            if rows:
                parts.append(np.array(sorted(rows), dtype=float))
        measures = tuple((int(m.number), float(m.offset))
                         for m in score.parts[0].getElementsByClass(stream.Measure))
    return _Score(tuple(parts), measures, float(score.highestTime))


def _in_window(notes: np.ndarray, a: float, b: float) -> np.ndarray:
    return notes[(notes[:, 0] >= a - 1e-6) & (notes[:, 0] < b - 1e-6)]


def _coverage(notes: np.ndarray, a: float, b: float) -> float:
    """Fraction of [a, b) covered by the notes' sounding spans (overlaps counted once)."""
    if len(notes) == 0:
        return 0.0
    grid = np.linspace(a, b, 200, endpoint=False)
    on = (notes[:, :1] <= grid) & (grid < notes[:, :1] + notes[:, 1:2])
    return float(on.any(axis=0).mean())


def _pad_chords(parts: tuple[np.ndarray, ...], a: float, b: float, seg: float) -> np.ndarray:
    """Sustained chords, one per ``seg`` quarters: each segment's (up to 4) most sounding
    pitch classes voiced in G3..F#4; repeated chords merge. Returns (notes, 3) rows."""
    allnotes = np.concatenate(parts)
    rows, prev = [], None
    for s in np.arange(a, b - 1e-6, seg):
        e = min(s + seg, b)
        weight = np.zeros(12)
        overlap = np.minimum(allnotes[:, 0] + allnotes[:, 1], e) - np.maximum(allnotes[:, 0], s)
        np.add.at(weight, allnotes[:, 2].astype(int) % 12, np.clip(overlap, 0, None))
        pcs = tuple(sorted(int(p) for p in np.argsort(weight)[::-1][:4]
                           if weight[p] >= 0.15 * weight.sum() > 0))
        if pcs and pcs == prev:
            for r in rows[-len(pcs):]:
                r[1] += e - s
        elif pcs:
            rows += [[s, e - s, 55 + (pc - 55) % 12] for pc in pcs]
        prev = pcs
    return np.array(rows, dtype=float).reshape(-1, 3)


def _octave_fit(pitches: np.ndarray, inst: GMInstrument) -> int:
    """Octave shift (semitones) putting most pitches in the instrument's range, smallest wins."""
    shifts = sorted(range(-24, 25, 12), key=abs)
    return min(shifts, key=lambda k: np.sum((pitches + k < inst.low) | (pitches + k > inst.high)))


def _pick(rng: np.random.Generator, role: str, used: set[int]) -> GMInstrument:
    fresh = [i for i in ROLES[role] if i.program not in used] or list(ROLES[role])
    return fresh[int(rng.integers(len(fresh)))]


def _humanize(rng: np.random.Generator, notes: np.ndarray, start_q: float, sec_per_q: float,
              duration_s: float, gate: float) -> tuple[NoteEvent, ...]:
    """Quarter-note rows -> NoteEvents in seconds with timing jitter and velocity variation."""
    base = rng.integers(64, 100)
    t0 = LEAD_IN_S + (notes[:, 0] - start_q) * sec_per_q
    t1 = t0 + notes[:, 1] * sec_per_q * gate
    t0 = np.maximum(t0 + np.clip(rng.normal(0, 0.004, len(notes)), -0.012, 0.012), 0.0)
    t1 = np.minimum(t1 + np.clip(rng.normal(0, 0.004, len(notes)), -0.012, 0.012), duration_s)
    on_beat = np.isclose(np.mod(notes[:, 0], 1.0), 0.0)
    vel = np.clip(np.round(base + 6 * on_beat + rng.normal(0, 6, len(notes))), 20, 127)
    events = sorted(zip(t0, np.maximum(t1, t0 + 0.03), notes[:, 2].astype(int), vel.astype(int)))
    last: dict[int, int] = {}  # a repeated pitch must stop before it sounds again
    for k, (s, _, p, _) in enumerate(events):
        if p in last:
            j = last[p]
            events[j] = (events[j][0], max(min(events[j][1], s - 0.005), events[j][0] + 0.01), p, events[j][3])
        last[p] = k
    return tuple(NoteEvent(round(float(s), 6), round(float(e), 6), int(p), int(v))
                 for s, e, p, v in events if s < duration_s)


def _excerpt_start(rng: np.random.Generator, score: _Score, order: list[int], span: float,
                   ) -> tuple[int, float, list[int]]:
    """A measure (number, offset) from which the excerpt fits in the work and every part in
    ``order`` sounds for at least MIN_COVERAGE of it; failing that, the start where most
    parts have notes, and those parts."""
    starts = [m for m in score.measures if m[1] + span <= score.end] or list(score.measures[:1])
    best: tuple[int, float, list[int]] = (*starts[0], [])
    for idx in rng.permutation(len(starts)):
        num, a = starts[idx]
        cover = [_coverage(_in_window(score.parts[o], a, a + span), a, a + span) for o in order]
        if min(cover) >= MIN_COVERAGE:
            return num, a, order
        if sum(c > 0 for c in cover) > len(best[2]):
            best = (num, a, [o for o, c in zip(order, cover) if c > 0])
    return best


def choose_arrangement(rng: np.random.Generator, *, max_parts: int, duration_s: float,
                       work: str | None = None, transpose: int | None = None) -> Arrangement:
    """Draw an excerpt, transposition, tempo, instruments and levels for ``max_parts`` parts.

    Parameters
    ----------
    rng : numpy Generator, the only source of randomness.
    max_parts : int >= 1. The arrangement has exactly this many parts when the work allows
        it (its score parts, one octave doubling of each, one pad); works that cannot reach
        the count are drawn only when none can (max_parts > 13).
    duration_s : excerpt length in seconds.
    work, transpose : force a corpus path from :data:`WORKS` or a shift in semitones; the
        random draws happen anyway, so the other choices for a seed stay the same.

    Returns
    -------
    Arrangement, parts ordered top part first, then the added doublings and pad.
    """
    if max_parts < 1 or duration_s <= 0:
        raise InputError(f"need max_parts >= 1 and duration_s > 0, got {max_parts}, {duration_s}")
    by_path = {w.path: w for w in WORKS}
    if work is not None and work not in by_path:
        raise InputError(f"{work!r} is not in WORKS")
    shift = int(rng.integers(-5, 7))
    shift = shift if transpose is None else int(transpose)
    bpm = float(np.round(rng.uniform(70, 140), 1))
    pool = [w for w in WORKS if 2 * w.n_parts + 1 >= max_parts] or list(WORKS)
    families = sorted({w.family for w in pool})
    fam = families[int(rng.integers(len(families)))]
    members = [w for w in pool if w.family == fam]
    chosen = by_path[work] if work is not None else members[int(rng.integers(len(members)))]
    score = load_work(chosen.path)
    sec_per_q = 60.0 / (bpm * chosen.beat_ql)
    span = duration_s / sec_per_q  # excerpt length in quarter notes
    order = [int(o) for o in np.argsort([-np.median(p[:, 2]) for p in score.parts], kind="stable")]
    if len(order) > max_parts:  # keep the top and bass parts and a random set of the middle
        if max_parts == 1:
            order = [order[int(rng.integers(len(order)))]]
        else:
            middle = sorted(rng.choice(len(order) - 2, max_parts - 2, replace=False))
            order = [order[0], *(order[1 + i] for i in middle), order[-1]]
    num, a, order = _excerpt_start(rng, score, order, span)
    if not order:
        raise RuntimeError(f"{chosen.path}: no excerpt of {duration_s} s has notes")
    b = a + span
    ensemble = ENSEMBLES[int(rng.integers(len(ENSEMBLES)))] if rng.random() < ENSEMBLE_P else None
    used: set[int] = set()
    raw: list[tuple[GMInstrument, np.ndarray, str, float]] = []  # instrument, notes, source, gate
    roles = []
    for rank, o in enumerate(order):
        role = "top" if rank == 0 else "bass" if rank == len(order) - 1 else "inner"
        if ensemble is None:
            inst = _pick(rng, role, used)
        else:
            inner = ensemble[1:-1]
            inst = ensemble[0] if role == "top" else ensemble[-1] if role == "bass" else inner[(rank - 1) % len(inner)]
        used.add(inst.program)
        notes = _in_window(score.parts[o], a, b)
        notes = notes + [0, 0, _octave_fit(notes[:, 2], inst)]
        raw.append((inst, notes, f"part {o} ({role})", float(rng.uniform(0.85, 0.98))))
        roles.append(role)
    extras = ["pad"] * int(rng.random() < PAD_P) + [int(k) for k in rng.permutation(len(raw))] + ["pad"]
    for ex in extras[: max(max_parts - len(raw), 0)]:
        if ex == "pad":
            inst = _pick(rng, "pad", used)
            raw.append((inst, _pad_chords(score.parts, a, b, 2 * chosen.beat_ql), "pad", 1.0))
        else:
            _, notes, src, _ = raw[ex]
            up = roles[ex] == "top" or (roles[ex] == "inner" and rng.random() < 0.5)
            inst = _pick(rng, "double_up" if up else "double_down", used)
            notes = notes + [0, 0, 12 if up else -12]
            notes = notes + [0, 0, _octave_fit(notes[:, 2], inst)]
            raw.append((inst, notes, f"{src} doubled {'up' if up else 'down'}", float(rng.uniform(0.85, 0.98))))
        used.add(inst.program)
    stems = [inst.stem for inst, *_ in raw]
    counts: dict[str, int] = {}
    parts = []
    for (inst, notes, src, gate), stem in zip(raw, stems):
        counts[stem] = counts.get(stem, 0) + 1
        name = f"{stem}_{counts[stem]}" if stems.count(stem) > 1 else stem
        events = _humanize(rng, notes + [0, 0, shift], a, sec_per_q, duration_s, gate)
        peak = float(np.round(rng.uniform(-12, -3), 2))
        if events:
            parts.append(PartSpec(name, inst.category, inst.program, inst.stereo, src, peak, events))
    return Arrangement(chosen.path, chosen.family, shift, bpm, chosen.beat_ql, num, a,
                       float(duration_s), tuple(parts))


def _render_one(part: PartSpec, duration_s: float, sample_rate: int, sf2: Path, tmp: Path) -> np.ndarray:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
    inst = pretty_midi.Instrument(program=part.program, name=part.name)
    inst.control_changes += [pretty_midi.ControlChange(91, 0, 0.0), pretty_midi.ControlChange(93, 0, 0.0),
                             pretty_midi.ControlChange(91, 0, duration_s + 0.1)]  # last marks the end
    inst.notes += [pretty_midi.Note(n.velocity, n.pitch, n.start, n.end) for n in part.notes]
    pm.instruments.append(inst)
    mid, wav = tmp / f"{part.name}.mid", tmp / f"{part.name}.wav"
    pm.write(str(mid))
    cmd = ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(sample_rate),
           "-O", "float", "-T", "wav", "-o", "synth.dynamic-sample-loading=1", "-F", str(wav), str(sf2), str(mid)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60 + 2 * duration_s)
    except subprocess.TimeoutExpired as err:
        raise SynthError(f"fluidsynth timed out rendering {part.name}: {err.stderr!r}") from None
    # a soundfont fluidsynth cannot load is only logged (exit 0) and the default one used
    if res.returncode != 0 or not wav.is_file() or "error" in res.stderr.lower():
        raise SynthError(f"fluidsynth failed on {part.name} with {sf2} (exit {res.returncode}): "
                         f"{res.stderr.strip()}")
    audio = sf.read(str(wav), dtype="float32", always_2d=True)[0].T
    n = int(round(duration_s * sample_rate))
    audio = np.pad(audio[:, :n], ((0, 0), (0, max(n - audio.shape[1], 0))))
    if not part.stereo:
        audio = audio.mean(axis=0, keepdims=True)
    peak = float(np.max(np.abs(audio)))
    if peak < 1e-6:
        raise SynthError(f"fluidsynth rendered silence for {part.name} (program {part.program}): "
                         f"{res.stderr.strip()}")
    return (audio * (10 ** (part.peak_dbfs / 20) / peak)).astype(np.float32)


def render_parts(arrangement: Arrangement, *, sample_rate: int = 44100,
                 soundfont: str | os.PathLike | None = None) -> list[tuple[str, str, np.ndarray]]:
    """Render every part dry and on its own.

    Returns
    -------
    list of (track_name, category, audio): audio float32 ``(channels, samples)``, one
    channel or two (stereo instruments), ``round(duration_s * sample_rate)`` samples,
    peak at the part's ``peak_dbfs``.
    """
    sf2 = find_soundfont(soundfont)
    with tempfile.TemporaryDirectory(prefix="mixinvert-melodic-") as tmp:
        return [(p.name, p.category, _render_one(p, arrangement.duration_s, sample_rate, sf2, Path(tmp)))
                for p in arrangement.parts]


def melodic_multitrack(rng: np.random.Generator, duration_s: float, *, max_parts: int = 4,
                       sample_rate: int = 44100, soundfont: str | os.PathLike | None = None,
                       ) -> list[tuple[str, str, np.ndarray]]:
    """:func:`choose_arrangement` then :func:`render_parts`; see their parameters."""
    sf2 = find_soundfont(soundfont)  # fail before parsing a score
    arr = choose_arrangement(rng, max_parts=max_parts, duration_s=duration_s)
    return render_parts(arr, sample_rate=sample_rate, soundfont=sf2)

