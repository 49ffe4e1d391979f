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
