"""A synthetic mixing engineer: console v1 settings drawn from MixologyDB's human mixes.

The prior (``engineer_prior.json`` beside this module) is derived by
``scripts/derive_engineer_prior.py`` from MixologyDB (MIT licence): 2,411 tracks of 90
human mixes of 13 songs, of which the 2,345 ``AUDIO`` tracks are used (``AUX`` returns and
``SIGNAL`` generators are not). :func:`prior_figures` returns the stored summary.

Mapping of MixologyDB's instrument type/subtype onto the categories (rows per category):

=============  ==========================================================  ====
category       MixologyDB                                                  rows
=============  ==========================================================  ====
kick           DRUMS/KICK                                                   160
snare          DRUMS/SNARE                                                  142
hihat          DRUMS/HI-HAT, RIDE, CRASH (cymbal spot mics)                  88
tom            DRUMS/TOM                                                    189
overhead       DRUMS/OVERHEAD(S) whose name does not say room               124
room           DRUMS/OVERHEAD(S) named room/Rm/ambience/MonoDr/crush         68
bass           BASS/*                                                       117
guitar         GUITARS/ELECTRIC, ACOUSTIC                                   554
keys           KEYS/* except synths                                         156
synth          KEYS/* named "synth"  (6 rows: figures of ``keys``)            6
vocals         VOCALS/LEAD (BACKGROUND, 450 rows, only in the pools)        194
other          DRUMS/TAMBOURINE, MISC (shakers, bells, snaps); MISC/*        97
strings,       none in MixologyDB: figures of the ``melodic`` pool            0
winds, brass   (guitar + keys + synth rows)
=============  ==========================================================  ====

Key figures (relative gain = fader gain minus the mix's median fader gain):

=========  ========  ========  ======  ======  =====  ========
category   gain dB   P(centre)  P(EQ    P(comp) ratio  P(reverb)
                               peak)           (med)
=========  ========  ========  ======  ======  =====  ========
kick       +1.8      0.97      0.81    0.66    3.9    0.29
snare      +1.2      0.92      0.80    0.61    3.9    0.47
hihat      -5.9      0.41      0.49    0.43    2.3    0.28
tom        -0.6      0.19      0.61    0.55    3.6    0.42
overhead   +0.2      0.56      0.56    0.52    3.9    0.35
room       -4.8      0.54      0.35    0.54    4.5    0.26
bass       +1.5      0.96      0.74    0.76    3.0    0.09
guitar     -1.7      0.29      0.56    0.37    3.0    0.37
keys       +0.9      0.22      0.56    0.32    3.2    0.66
vocals     +2.9      0.65      0.73    0.73    3.0    0.86
other      -4.4      0.40      0.30    0.43    3.0    0.42
=========  ========  ========  ======  ======  =====  ========

Over all 2,345 rows: 52 % compressed, 49 % sent to a reverb, 69 % equalized; backing
vocals are centred 18 % of the time. Post-fader loudness (track LUFS + fader gain) minus
the mix's median, in LU: vocals +5.1, bass +2.1, guitar +1.7, keys -1.3, snare -2.1,
overhead -2.6, kick -3.6, other -7.7, room -7.8, hihat -8.1, tom -9.0 (a figure only; the
sampler draws fader gains). Damping is not in MixologyDB (assumed 0.5 +- 0.15).

How a track is drawn (every step from the track's category entry):

- ``gain_db`` ~ Normal(mean, std) of the relative gain;
- each EQ band is used with its probability; a used shelf is either a real shelf (gain
  boost or cut with their own magnitudes) or an HP/LP filter read as a -12 dB shelf at
  the filter's frequency; frequencies and the peak's q are log-normal. An unused band gets
  0 dB at a frequency drawn from the same distribution;
- the compressor is used with its probability (threshold normal, ratio/attack/release
  log-normal); unused: ratio 1, threshold 0 dB, attack/release still drawn;
- a reverb send is used with its probability; its level ``s`` (dB, normal) becomes the wet
  fraction ``r / (1 + r)`` with ``r = 10**(s/20)``; unused: wet 0;
- pan: see :func:`sample_settings`.

Every value is clipped to the schema's range before it is returned.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from functools import lru_cache
from importlib import resources
from typing import Any, Sequence

import numpy as np

from mixinvert.console.schema import CONSOLE_V1, ParamSchema
from mixinvert.errors import InputError

CATEGORIES: tuple[str, ...] = (
    "kick", "snare", "hihat", "tom", "overhead", "room", "bass", "guitar", "keys",
    "strings", "winds", "brass", "vocals", "synth", "other",
)
#: Categories whose tracks are panned as mirror-image pairs when a song has two or more.
PAIRED: tuple[str, ...] = ("overhead", "room")
#: Categories whose first track in a song is always centred (the mix's anchors).
ANCHORED: tuple[str, ...] = ("kick", "snare", "bass", "vocals")

_PRIOR_FILE = "engineer_prior.json"
_N_U, _N_Z = 14, 15   # uniform and normal draws per track (fixed, whatever is used)


@lru_cache(maxsize=1)
def _prior() -> dict[str, Any]:
    text = resources.files("mixinvert.data").joinpath(_PRIOR_FILE).read_text(encoding="utf-8")
    prior = json.loads(text)
    if prior.get("console") != "v1" or set(prior.get("categories", {})) != set(CATEGORIES):
        raise ValueError(f"{_PRIOR_FILE} is not a console v1 prior for {CATEGORIES}")
    return prior


def prior_figures() -> dict[str, Any]:
    """The stored summary of the prior: ``source`` and, per category, counts and key means.

    Returns a fresh copy (a dict of plain JSON values).
    """
    return copy.deepcopy(_prior()["figures"])


def side_hint(name: str) -> int:
    """-1 (left), +1 (right) or 0 from a track name's tokens.

    A token ``L``/``left`` or ``R``/``right`` (case-insensitive, tokens split at anything
    that is not a letter or digit) gives the side: ``overhead_L``, ``Room1 R``, ``OH-left``.
    """
    tokens = set(re.split(r"[^a-z0-9]+", name.lower()))
    left, right = bool(tokens & {"l", "left"}), bool(tokens & {"r", "right"})
    return -1 if left and not right else 1 if right and not left else 0


def _normal(stat: dict[str, Any], z: float) -> float:
    return float(stat["mean"] + stat["std"] * z)


def _magnitude(gain: dict[str, Any], boost: dict, cut: dict, u: float, z: float) -> float:
    """A signed EQ gain (dB): boost with probability ``p_boost``, magnitude >= 0.5 dB."""
    if u < gain["p_boost"]:
        return max(0.5, _normal(boost, z))
    return -max(0.5, _normal(cut, z))


def _shelf(e: dict[str, Any], u: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """(cutoff_hz, gain_db) of a shelf; ``u``: used, filter, boost; ``z``: freq, gain."""
    shelf = e["shelf"]
    if u[0] < e["p_used"] and u[1] < e["p_filter"]:
        return float(np.exp(_normal(e["filter"]["log_hz"], z[0]))), float(e["filter"]["gain_db"])
    hz = float(np.exp(_normal(shelf["log_hz"], z[0])))
    if u[0] >= e["p_used"]:
        return hz, 0.0
    return hz, _magnitude(shelf["gain"], shelf["boost_db"], shelf["cut_db"], u[2], z[1])


def _abs_pan(p: dict[str, Any], u_bin: float, u_in: float) -> float:
    """|pan| of an off-centre track from the histogram over ``abs_edges``."""
    edges, hist = np.asarray(p["abs_edges"]), np.asarray(p["abs_hist"], dtype=np.float64)
    if hist.sum() <= 0:
        hist = np.ones(len(edges) - 1)
    b = min(int(np.searchsorted(np.cumsum(hist) / hist.sum(), u_bin, side="right")), len(hist) - 1)
    return float(edges[b] + u_in * (edges[b + 1] - edges[b]))


def _pans(cats: Sequence[str], hints: Sequence[int], u: np.ndarray) -> np.ndarray:
    """Pan of every track; ``u`` is ``(n, 4)``: centre, side, bin, within-bin."""
    prior = _prior()["categories"]
    pans = np.zeros(len(cats))
    second_of: dict[int, int] = {}   # first of a pair -> second
    for c in PAIRED:
        idx = [i for i, k in enumerate(cats) if k == c]
        second_of.update(zip(idx[0::2], idx[1::2]))
    first_of = {v: k for k, v in second_of.items()}
    last_side: dict[str, int] = {}
    seen: Counter[str] = Counter()
    for i, c in enumerate(cats):
        p = prior[c]["pan"]
        seen[c] += 1
        if c in ANCHORED and seen[c] == 1:
            continue
        if i in first_of:   # mirror image of its pair's first track
            j = first_of[i]
            pans[i] = hints[i] * abs(pans[j]) if hints[i] else -pans[j]
            continue
        if i not in second_of and u[i, 0] < p["p_centre"]:
            continue
        side = hints[i] or (-hints[second_of[i]] if i in second_of else 0)
        if not side:
            side = -last_side[c] if c in last_side else (-1 if u[i, 1] < p["p_left"] else 1)
        last_side[c] = side
        pans[i] = side * _abs_pan(p, u[i, 2], u[i, 3])
    return pans


def sample_settings(
    rng: np.random.Generator,
    categories: Sequence[str],
    *,
    names: Sequence[str] | None = None,
    schema: ParamSchema = CONSOLE_V1,
) -> np.ndarray:
    """Draw one song's console settings, track by track, from the engineer prior.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness; the same generator state gives the same result.
    categories : sequence of str
        One of :data:`CATEGORIES` per track, in track order.
    names : sequence of str, optional
        Track names, used only for the pan side (:func:`side_hint`: ``overhead_L`` goes
        left).
    schema : ParamSchema
        Must be console v1 (the prior is in its terms); its order is the output's.

    Returns
    -------
    numpy.ndarray
        ``(n_tracks, 16)`` float64 physical values (dB, Hz, ms, ratio, pan -1..1, 0..1),
        each inside the schema's range.

    Notes
    -----
    Pan: the first ``kick``, ``snare``, ``bass`` and ``vocals`` track is centred. Tracks of
    ``overhead`` (and of ``room``) are paired in order when a song has two or more: both
    off-centre at the same ``|pan|``, on opposite sides (an odd one out is drawn alone).
    Any other track is centred with its category's probability, else gets ``|pan|`` from
    the category's histogram; its side comes from its name's hint, else is opposite the
    previous off-centre track of its category, else is drawn with ``p_left``.
    """
    if isinstance(categories, str):
        raise TypeError("categories must be a sequence of category names, not one string")
    cats = [str(c) for c in categories]
    unknown = sorted({c for c in cats if c not in CATEGORIES})
    if unknown:
        raise InputError(f"unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                         f"{', '.join(map(repr, unknown))}; known: {', '.join(CATEGORIES)}")
    if names is not None and len(names) != len(cats):
        raise InputError(f"{len(names)} names for {len(cats)} categories")
    if schema.names != CONSOLE_V1.names:
        raise ValueError(f"the engineer prior is in console v1 terms, not {schema.version}")
    n = len(cats)
    u, z = rng.random((n, _N_U)), rng.standard_normal((n, _N_Z))
    hints = [side_hint(s) for s in names] if names is not None else [0] * n
    pans = _pans(cats, hints, u[:, 10:14])
    prior = _prior()["categories"]
    out = np.empty((n, schema.size))
    for i, c in enumerate(cats):
        e, ui, zi = prior[c], u[i], z[i]
        ls_hz, ls_db = _shelf(e["low_shelf"], ui[0:3], zi[1:3])
        hs_hz, hs_db = _shelf(e["high_shelf"], ui[5:8], zi[6:8])
        pk = e["peak"]
        pk_db = _magnitude(pk["gain"], pk["boost_db"], pk["cut_db"], ui[4], zi[4]) \
            if ui[3] < pk["p_used"] else 0.0
        cp, rv = e["comp"], e["reverb"]
        comp = ui[8] < cp["p_used"]
        send_db = _normal(rv["send_db"], zi[12])
        r = 10.0 ** (send_db / 20.0)
        row = {
            "gain_db": _normal(e["gain_rel_db"], zi[0]),
            "eq_low_shelf_cutoff_hz": ls_hz, "eq_low_shelf_gain_db": ls_db,
            "eq_peak_cutoff_hz": np.exp(_normal(pk["log_hz"], zi[3])), "eq_peak_gain_db": pk_db,
            "eq_peak_q": np.exp(_normal(pk["log_q"], zi[5])),
            "eq_high_shelf_cutoff_hz": hs_hz, "eq_high_shelf_gain_db": hs_db,
            "comp_threshold_db": _normal(cp["threshold_db"], zi[8]) if comp else 0.0,
            "comp_ratio": np.exp(_normal(cp["log_ratio"], zi[9])) if comp else 1.0,
            "comp_attack_ms": np.exp(_normal(cp["log_attack_ms"], zi[10])),
            "comp_release_ms": np.exp(_normal(cp["log_release_ms"], zi[11])),
            "pan": pans[i],
            "reverb_room_size": _normal(rv["room_size"], zi[13]),
            "reverb_damping": _normal(rv["damping"], zi[14]),
            "reverb_wet": r / (1.0 + r) if ui[9] < rv["p_used"] else 0.0,
        }
        out[i] = [row[name] for name in schema.names]
    return schema.validate(np.clip(out, schema.lo, schema.hi))


# -- console v2 ------------------------------------------------------------------------------------

#: High-pass per category: (probability, median cutoff Hz). Typical starting points of mixing
#: practice (e.g. Senior, "Mixing Secrets for the Small Studio", 2011, ch. 11; Owsinski, "The
#: Mixing Engineer's Handbook", 2017): almost every track but the low end is high-passed a
#: little below where it has content; MixologyDB's low "filter" shelves agree in kind (v1's
#: prior reads them as -12 dB shelves). The cutoff is log-normal around the median (x/÷ 1.5).
HPF_PRIOR: dict[str, tuple[float, float]] = {
    "kick": (0.3, 30.0), "snare": (0.85, 90.0), "hihat": (0.95, 300.0), "tom": (0.7, 60.0),
    "overhead": (0.9, 180.0), "room": (0.8, 80.0), "bass": (0.3, 35.0), "guitar": (0.9, 100.0),
    "keys": (0.8, 80.0), "strings": (0.8, 90.0), "winds": (0.85, 120.0), "brass": (0.85, 100.0),
    "vocals": (0.95, 100.0), "synth": (0.7, 60.0), "other": (0.85, 150.0),
}
#: Chance that each of v2's bells besides the first (v1's peak) is used.
EXTRA_BELL_P = 0.4
#: Drive: (probability, low dB, high dB) for distorted sources; other categories never.
DRIVE_PRIOR: dict[str, tuple[float, float, float]] = {"guitar": (0.15, 6.0, 18.0), "bass": (0.05, 3.0, 9.0),
                                                        "synth": (0.1, 3.0, 12.0)}
#: Chance of an inverted polarity (a snare bottom, a second mic) and of a nudged track
#: (time offset normal, 0.5 ms spread), per track.
POLARITY_P, NUDGE_P, NUDGE_MS = 0.05, 0.1, 0.5
#: The master chain, relative to the mix it receives: the glue compressor's threshold over
#: the pre-master mix's RMS level (dB), ratio, attack and release ranges (an SSL-style bus
#: compressor); the limiter's ceiling under the pre-master peak (dB), its chance of use.
MASTER_COMP = {"p": 0.7, "threshold_over_rms_db": (0.0, 8.0), "ratio": (1.5, 4.0), "attack_ms": (3.0, 30.0),
               "release_ms": (100.0, 600.0)}
MASTER_LIMITER = {"p": 0.6, "under_peak_db": (0.5, 6.0), "release_ms": (20.0, 300.0)}


def sample_settings_v2(
    rng: np.random.Generator,
    categories: Sequence[str],
    *,
    names: Sequence[str] | None = None,
    channels: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One song's console v2 settings ``(values (n_tracks, CONSOLE_V2.size), shared)``.

    The per-track draws of :func:`sample_settings` (the same generator calls first, so the
    v1 part is the v1 engineer's) carried over to v2: gain to the fader (+3.01 dB for the
    pan law of a mono track, which v2 has without v1's doubled dry path), the shelves and
    the peak to the shelves and the first bell, the compressor, the pan, the reverb send
    (as a send level to the reverb bus). Then v2's own: a high-pass per :data:`HPF_PRIOR`,
    the other bells with :data:`EXTRA_BELL_P` (gains from the peak's prior, frequencies
    anywhere in their ranges), drive per :data:`DRIVE_PRIOR`, polarity and small time
    offsets, the width of stereo tracks (``channels``), and the reverb bus (the send-
    weighted room size and damping of the v1 draws, a low and a high cut half the time).
    The master chain is returned neutral: its thresholds depend on the mix's level, which
    :func:`master_settings` sets once the mix is rendered.
    """
    from mixinvert.console.render import UNITY_GAIN_DB
    from mixinvert.console.render_v2 import UNITY_FADER_DB, bells_of
    from mixinvert.console.schema import CONSOLE_V2, bell_ranges_hz

    schema, shared_schema = CONSOLE_V2, CONSOLE_V2.shared
    v1 = sample_settings(rng, categories, names=names)
    cats = [str(c) for c in categories]
    n = len(cats)
    channels = list(channels) if channels is not None else [1] * n
    if len(channels) != n:
        raise InputError(f"{len(channels)} channel counts for {n} categories")
    bells = bell_ranges_hz(bells_of(schema))
    extra = len(bells) - 1
    # fixed draws per track, whatever is used: hpf, polarity, nudge, drive (2), then per
    # extra bell its frequency, use and sign; normals: per extra bell Q and magnitude, hpf,
    # nudge, width
    u, z = rng.random((n, 5 + 3 * extra)), rng.standard_normal((n, 3 + 2 * extra))
    prior = _prior()["categories"]
    out = np.empty((n, schema.size))
    for i, c in enumerate(cats):
        row1 = dict(zip(CONSOLE_V1.names, v1[i]))
        row = schema.neutral()
        row.update({k: row1[k] for k in ("eq_low_shelf_cutoff_hz", "eq_low_shelf_gain_db", "eq_high_shelf_cutoff_hz",
                                         "eq_high_shelf_gain_db", "comp_threshold_db", "comp_ratio", "comp_attack_ms",
                                         "comp_release_ms", "pan")})
        # the same level: v1's unity gain is the pan law plus its reverb's doubled dry path
        row["fader_db"] = row1["gain_db"] + UNITY_FADER_DB[channels[i]] - UNITY_GAIN_DB[channels[i]]
        lo1, hi1 = bells[0]
        row["eq_bell1_cutoff_hz"] = float(np.clip(row1["eq_peak_cutoff_hz"], lo1, hi1))
        row["eq_bell1_gain_db"], row["eq_bell1_q"] = row1["eq_peak_gain_db"], row1["eq_peak_q"]
        pk = prior[c]["peak"]
        for k, (lo, hi) in enumerate(bells[1:]):
            b, uk = k + 2, u[i, 5 + 3 * k: 8 + 3 * k]
            row[f"eq_bell{b}_cutoff_hz"] = float(lo * (hi / lo) ** uk[0])
            row[f"eq_bell{b}_q"] = float(np.exp(_normal(pk["log_q"], z[i, 3 + 2 * k])))
            row[f"eq_bell{b}_gain_db"] = (_magnitude(pk["gain"], pk["boost_db"], pk["cut_db"], uk[2],
                                                     z[i, 4 + 2 * k]) if uk[1] < EXTRA_BELL_P else 0.0)
        wet = row1["reverb_wet"]
        if wet > 0:  # the v1 wet fraction r / (1 + r) back to the send level r (dB)
            row["reverb_send_db"] = 20.0 * np.log10(wet / (1.0 - wet))
        p_hpf, hpf_hz = HPF_PRIOR[c]
        if u[i, 0] < p_hpf:
            row["hpf_cutoff_hz"] = float(hpf_hz * 1.5 ** z[i, 0])
        if u[i, 1] < POLARITY_P:
            row["polarity"] = -1.0
        if u[i, 2] < NUDGE_P:
            row["offset_ms"] = float(NUDGE_MS * z[i, 1])
        if c in DRIVE_PRIOR and u[i, 3] < DRIVE_PRIOR[c][0]:
            row["drive_db"] = float(DRIVE_PRIOR[c][1] + u[i, 4] * (DRIVE_PRIOR[c][2] - DRIVE_PRIOR[c][1]))
        if channels[i] == 2:
            row["width"] = float(np.clip(1.0 + 0.2 * z[i, 2], 0.5, 1.5))
        out[i] = [float(np.clip(row[s.name], s.lo, s.hi)) for s in schema.specs]
    # the reverb bus: one room for the song, where the v1 draws sent the most
    wets = v1[:, CONSOLE_V1.index("reverb_wet")]
    weight = wets / wets.sum() if wets.sum() > 0 else np.full(n, 1.0 / n)
    su, sz = rng.random(4), rng.standard_normal(2)
    shared = shared_schema.neutral()
    shared["reverb_room_size"] = float(weight @ v1[:, CONSOLE_V1.index("reverb_room_size")])
    shared["reverb_damping"] = float(weight @ v1[:, CONSOLE_V1.index("reverb_damping")])
    shared["reverb_width"] = float(0.7 + 0.3 * su[0])
    if su[1] < 0.5:
        shared["reverb_hpf_hz"] = float(200.0 * 1.5 ** sz[0])
    if su[2] < 0.5:
        shared["reverb_lpf_hz"] = float(8000.0 * 1.5 ** sz[1])
    shared_row = np.array([float(np.clip(shared[s.name], s.lo, s.hi)) for s in shared_schema.specs])
    return schema.validate(out), shared_schema.validate(shared_row)


def master_settings(rng: np.random.Generator, shared: np.ndarray, pre_master: np.ndarray) -> np.ndarray:
    """``shared`` with the master chain drawn relative to the mix it receives
    (``pre_master``, ``(2, samples)``): a glue compressor (:data:`MASTER_COMP`), a limiter
    (:data:`MASTER_LIMITER`) and gentle master EQ (shelves and a bell within +-2 dB)."""
    from mixinvert.console.schema import CONSOLE_V2

    schema = CONSOLE_V2.shared
    v = dict(zip(schema.names, (float(x) for x in shared)))
    u = rng.random(12)
    peak_db = 20.0 * np.log10(float(np.max(np.abs(pre_master))) + 1e-12)
    rms_db = 20.0 * np.log10(float(np.sqrt(np.mean(np.square(pre_master, dtype=np.float64)))) + 1e-12)

    def between(lo_hi: tuple[float, float], x: float, log: bool = False) -> float:
        lo, hi = lo_hi
        return float(lo * (hi / lo) ** x) if log else float(lo + x * (hi - lo))

    for k, name in enumerate(("master_eq_low_shelf_gain_db", "master_eq_bell_gain_db", "master_eq_high_shelf_gain_db")):
        v[name] = 4.0 * u[k] - 2.0
    v["master_eq_bell_cutoff_hz"] = between((200.0, 5000.0), u[3], log=True)
    if u[4] < MASTER_COMP["p"]:
        v["master_comp_threshold_db"] = rms_db + between(MASTER_COMP["threshold_over_rms_db"], u[5])
        v["master_comp_ratio"] = between(MASTER_COMP["ratio"], u[6], log=True)
        v["master_comp_attack_ms"] = between(MASTER_COMP["attack_ms"], u[7], log=True)
        v["master_comp_release_ms"] = between(MASTER_COMP["release_ms"], u[8], log=True)
    if u[9] < MASTER_LIMITER["p"]:
        v["master_limiter_ceiling_db"] = peak_db - between(MASTER_LIMITER["under_peak_db"], u[10])
        v["master_limiter_release_ms"] = between(MASTER_LIMITER["release_ms"], u[11], log=True)
    return schema.validate(np.array([float(np.clip(v[s.name], s.lo, s.hi)) for s in schema.specs]))
