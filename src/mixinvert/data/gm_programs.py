"""General MIDI instrument choices for the melodic corpus, by the role a part plays.

Each :class:`GMInstrument` is a General MIDI program (0-based, as in pretty_midi) with a
stem name (the track's file name without extension), its mixing-prior category, whether
its rendered stem stays stereo (pianos, organs, pads and section patches, whose FluidR3
samples or layers are spread in stereo) and a comfortable written range in MIDI notes,
used to move a part by whole octaves into the instrument's register.

Roles: ``bass`` (the lowest part), ``inner`` (middle parts), ``top`` (the highest part),
``double_up`` / ``double_down`` (an added octave doubling of a part), ``pad`` (a
sustained part built from the chords). :data:`ENSEMBLES` are period-plausible sets
(string, brass and wind quartets, a vocal choir) that replace the per-part choice now and
then, listed top to bottom.
"""

from __future__ import annotations

from typing import NamedTuple

#: The mixing-prior categories a melodic part can get (a subset of the engineer's).
MELODIC_CATEGORIES: tuple[str, ...] = (
    "bass", "guitar", "keys", "strings", "winds", "brass", "vocals", "synth", "other",
)


class GMInstrument(NamedTuple):
    """A General MIDI program as a track: ``low``..``high`` is the range in MIDI notes."""

    program: int
    stem: str
    category: str
    stereo: bool
    low: int
    high: int


def _i(program: int, stem: str, category: str, low: int, high: int, stereo: bool = False) -> GMInstrument:
    return GMInstrument(program, stem, category, stereo, low, high)


PIANO = _i(0, "piano", "keys", 21, 108, True)
ELECTRIC_PIANO = _i(4, "electric_piano", "keys", 28, 103, True)
HARPSICHORD = _i(6, "harpsichord", "keys", 29, 89, True)
CELESTA = _i(8, "celesta", "keys", 60, 108)
GLOCKENSPIEL = _i(9, "glockenspiel", "other", 72, 108)
VIBRAPHONE = _i(11, "vibraphone", "keys", 53, 89)
ORGAN = _i(16, "organ", "keys", 36, 96, True)
CHURCH_ORGAN = _i(19, "church_organ", "keys", 24, 96, True)
HARMONICA = _i(22, "harmonica", "other", 60, 96)
NYLON_GUITAR = _i(24, "nylon_guitar", "guitar", 40, 84)
ACOUSTIC_GUITAR = _i(25, "acoustic_guitar", "guitar", 40, 84)
JAZZ_GUITAR = _i(26, "jazz_guitar", "guitar", 40, 86)
ELECTRIC_GUITAR = _i(27, "electric_guitar", "guitar", 40, 86)
ACOUSTIC_BASS = _i(32, "acoustic_bass", "bass", 28, 60)
ELECTRIC_BASS = _i(33, "electric_bass", "bass", 28, 67)
PICKED_BASS = _i(34, "picked_bass", "bass", 28, 67)
FRETLESS_BASS = _i(35, "fretless_bass", "bass", 28, 67)
SYNTH_BASS = _i(38, "synth_bass", "bass", 24, 72)
VIOLIN = _i(40, "violin", "strings", 55, 100)
VIOLA = _i(41, "viola", "strings", 48, 88)
CELLO = _i(42, "cello", "strings", 36, 76)
CONTRABASS = _i(43, "contrabass", "strings", 28, 60)
STRINGS = _i(48, "strings", "strings", 28, 96, True)
SLOW_STRINGS = _i(49, "slow_strings", "strings", 28, 96, True)
SYNTH_STRINGS = _i(50, "synth_strings", "synth", 28, 96, True)
CHOIR = _i(52, "choir_aahs", "vocals", 45, 81, True)
VOICE_OOHS = _i(53, "voice_oohs", "vocals", 48, 81)
TRUMPET = _i(56, "trumpet", "brass", 54, 84)
TROMBONE = _i(57, "trombone", "brass", 40, 72)
TUBA = _i(58, "tuba", "brass", 28, 58)
FRENCH_HORN = _i(60, "french_horn", "brass", 41, 77)
SOPRANO_SAX = _i(64, "soprano_sax", "winds", 56, 88)
ALTO_SAX = _i(65, "alto_sax", "winds", 49, 81)
TENOR_SAX = _i(66, "tenor_sax", "winds", 44, 76)
OBOE = _i(68, "oboe", "winds", 58, 91)
BASSOON = _i(70, "bassoon", "winds", 34, 72)
CLARINET = _i(71, "clarinet", "winds", 50, 91)
PICCOLO = _i(72, "piccolo", "winds", 74, 108)
FLUTE = _i(73, "flute", "winds", 60, 96)
SQUARE_LEAD = _i(80, "square_lead", "synth", 36, 96)
SAW_LEAD = _i(81, "saw_lead", "synth", 36, 96)
NEW_AGE_PAD = _i(88, "new_age_pad", "synth", 36, 96, True)
WARM_PAD = _i(89, "warm_pad", "synth", 36, 96, True)
POLYSYNTH_PAD = _i(90, "polysynth_pad", "synth", 36, 96, True)
HALO_PAD = _i(94, "halo_pad", "synth", 36, 96, True)

#: Candidate instruments per role.
ROLES: dict[str, tuple[GMInstrument, ...]] = {
    "bass": (ELECTRIC_BASS, ACOUSTIC_BASS, PICKED_BASS, FRETLESS_BASS, SYNTH_BASS, CELLO,
             CONTRABASS, BASSOON, TUBA, TROMBONE),
    "inner": (NYLON_GUITAR, ACOUSTIC_GUITAR, JAZZ_GUITAR, ELECTRIC_GUITAR, PIANO,
              ELECTRIC_PIANO, HARPSICHORD, ORGAN, CHURCH_ORGAN, VIBRAPHONE, STRINGS, VIOLA,
              CLARINET, FRENCH_HORN, TENOR_SAX, ALTO_SAX, CHOIR, TROMBONE),
    "top": (FLUTE, VIOLIN, TRUMPET, SQUARE_LEAD, SAW_LEAD, CHOIR, VOICE_OOHS, SOPRANO_SAX,
            ALTO_SAX, OBOE, CLARINET, HARMONICA, VIBRAPHONE, ELECTRIC_PIANO),
    "double_up": (CELESTA, GLOCKENSPIEL, PICCOLO, FLUTE, SQUARE_LEAD, VIBRAPHONE, VIOLIN),
    "double_down": (SYNTH_BASS, CONTRABASS, TUBA, CELLO, ACOUSTIC_BASS, BASSOON),
    "pad": (NEW_AGE_PAD, WARM_PAD, POLYSYNTH_PAD, HALO_PAD, STRINGS, SLOW_STRINGS,
            SYNTH_STRINGS, ORGAN, CHURCH_ORGAN, CHOIR),
}

#: Whole-ensemble instrumentations, top part first, bass part last (inner parts cycle
#: through the middle entries).
ENSEMBLES: tuple[tuple[GMInstrument, ...], ...] = (
    (VIOLIN, VIOLIN, VIOLA, CELLO),
    (TRUMPET, TRUMPET, FRENCH_HORN, TROMBONE, TUBA),
    (FLUTE, OBOE, CLARINET, FRENCH_HORN, BASSOON),
    (CHOIR, VOICE_OOHS, CHOIR, CHOIR),
)

assert all(i.category in MELODIC_CATEGORIES for r in ROLES.values() for i in r)
