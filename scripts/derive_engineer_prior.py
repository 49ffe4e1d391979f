#!/usr/bin/env python
"""Derive the synthetic mixing engineer's prior from MixologyDB, in console v1 terms.

Usage::

    python scripts/derive_engineer_prior.py [MIXOLOGYDB_JSON] [--out PATH]

``MIXOLOGYDB_JSON`` defaults to ``../shared/data/mixologydb/final-track-data.json``
relative to the repository root; ``--out`` defaults to
``src/mixinvert/data/engineer_prior.json``. The output is deterministic (sorted keys,
rounded floats, no timestamps), so a test can re-derive it and compare.

What a MixologyDB row becomes (one row = one ``AUDIO`` track of one mix; ``AUX`` returns
and ``SIGNAL`` generators are left out):

- category: :func:`categorize` (instrument type/subtype, plus the track name for drum
  rooms and synths);
- gain: fader gain minus the median fader gain of the mix's audio tracks (dB); a track more
  than 30 dB below that median is counted as muted and left out of the gain figures. The
  figures also give the post-fader loudness (track LUFS + gain) relative to the mix's
  median, in LU;
- pan: MixologyDB pans run -100..100 (a stereo track has two, L and R; we take their mean);
  divided by 100; ``|pan| <= 0.05`` counts as centre;
- EQ: shelves ``LS``/``HS`` map to the console's shelves; where a track has no shelf, an
  ``HP`` (``LP``) filter becomes a low (high) shelf cut of ``FILTER_CUT_DB`` at the
  filter's frequency; the bell band (``NOTCH`` in MixologyDB's export) with the largest
  ``|gain|`` becomes the peak. A band counts as used when ``|gain| >= 0.5 dB``;
- compression: the first compressor with a ratio above 1:1 (or none given); ``BF-76``
  (1176-style) knobs 1..7 map to 0.8..0.02 ms attack and 1100..50 ms release;
- reverb: each reverb entry (filters and delays filed under reverb are skipped) gives a
  wet/dry amplitude ratio ``r``: a send at ``g`` dB gives ``10**(g/20)``, an insert at mix
  ``m`` gives ``m/(1-m)`` (``m >= 0.99`` is read as a send at its ``gain``). The track's
  sends add in power, and the stored ``send_db`` is ``20*log10(r)``; the console's wet
  fraction is ``r/(1+r)``. Room size comes from the decay time through the freeverb model
  (:func:`room_size_from_rt60`), else the plugin's own 0..1 size, else the median of its
  reverb type.

Values are clipped to the console's range before statistics are taken; log-scaled
quantities are summarized by the mean and std of their natural log.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SRC = REPO.parent / "shared" / "data" / "mixologydb" / "final-track-data.json"
DEFAULT_OUT = REPO / "src" / "mixinvert" / "data" / "engineer_prior.json"

CATEGORIES = ("kick", "snare", "hihat", "tom", "overhead", "room", "bass", "guitar", "keys",
              "strings", "winds", "brass", "vocals", "synth", "other")
MIN_ROWS = 30      # a category with fewer rows takes all its figures from its fallback pool
MIN_VALUES = 10    # a single statistic with fewer values is taken from the fallback pool
FALLBACK = {"synth": "keys", "strings": "melodic", "winds": "melodic", "brass": "melodic"}
MELODIC = ("guitar", "keys", "synth")   # the "melodic" pool
FILTER_CUT_DB = -12.0
CENTRE = 0.05
PAN_EDGES = (0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1.0)
MUTED_DB = -30.0
RANGES = {"gain": (-24.0, 12.0), "ls_hz": (30.0, 500.0), "peak_hz": (100.0, 10000.0),
          "hs_hz": (1500.0, 16000.0), "eq_db": (-12.0, 12.0), "q": (0.3, 5.0),
          "thr": (-40.0, 0.0), "ratio": (1.0, 20.0), "att": (0.5, 100.0),
          "rel": (10.0, 1000.0), "send_db": (-40.0, 10.0)}
DAMPING = {"mean": 0.5, "std": 0.15, "note": "not in MixologyDB; assumed"}
_ROOM_RE = re.compile(r"room|ambien|drrm|monodr|(^|[^a-z])rm|^crap", re.I)
_NOT_REVERB_RE = re.compile(r"filter|delay|tap", re.I)
_RATIO_RE = re.compile(r"\s*([\d.]+)\s*:\s*1\s*$")


def categorize(track: dict[str, Any]) -> str | None:
    """The prior's category of a MixologyDB track, or None for returns and generators."""
    if track.get("track-type") != "AUDIO":
        return None
    kind = track.get("track-instrument-type") or "MISC"
    sub = track.get("track-instrument-subtype") or ""
    name = track.get("track-name", "")
    if kind == "DRUMS":
        if sub in ("OVERHEAD", "OVERHEADS"):
            return "room" if _ROOM_RE.search(name) else "overhead"
        return {"KICK": "kick", "SNARE": "snare", "TOM": "tom", "HI-HAT": "hihat",
                "RIDE": "hihat", "CRASH": "hihat"}.get(sub, "other")
    if kind == "KEYS":
        return "synth" if "synth" in name.lower() else "keys"
    if kind == "VOCALS":
        return "vocals_backing" if sub == "BACKGROUND" else "vocals"
    return {"BASS": "bass", "GUITARS": "guitar"}.get(kind, "other")


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _band(bands: list[dict], types: Iterable[str], exclude: bool = False) -> dict | None:
    """The used band (|gain| >= 0.5 dB, sane freq) of ``types`` with the largest |gain|."""
    types = set(types)
    best = None
    for b in bands:
        if (b.get("type") in types) == exclude:
            continue
        v = b.get("value", {})
        f, g = _num(v.get("freq")), _num(v.get("gain"))
        if f is None or g is None or not 10 <= f <= 24000 or not 0.5 <= abs(g) <= 30:
            continue
        if best is None or abs(g) > abs(best["gain"]):
            best = {"freq": f, "gain": g, "q": _num(v.get("q"))}
    return best


def _filter_freq(bands: list[dict], kind: str) -> float | None:
    freqs = [_num(b.get("value", {}).get("freq")) for b in bands if b.get("type") == kind]
    freqs = [f for f in freqs if f is not None and 10 <= f <= 24000]
    return (max(freqs) if kind == "HP" else min(freqs)) if freqs else None


def _comp(entries: list[dict]) -> dict | None:
    for e in entries:
        m = _RATIO_RE.match(str(e.get("ratio", "")))
        ratio = float(m.group(1)) if m else None
        if ratio is not None and ratio <= 1.0:
            continue
        att, rel = _num(e.get("attack")), _num(e.get("release"))
        if e.get("name") == "BF-76":   # 1176 knobs: 1 slowest .. 7 fastest
            att = None if att is None else 0.8 * (0.02 / 0.8) ** ((att - 1) / 6)
            rel = None if rel is None else 1100.0 * (50.0 / 1100.0) ** ((rel - 1) / 6)
        thr = _num(e.get("thresh", e.get("thres")))
        return {"thr": thr if thr is not None and -80 <= thr <= 0 else None, "ratio": ratio,
                "att": att if att and att > 0 else None, "rel": rel if rel and rel > 0 else None}
    return None


def room_size_from_rt60(rt60_ms: float) -> float:
    """Freeverb room size whose comb filters (mean delay 30.8 ms) decay 60 dB in ``rt60_ms``.

    Freeverb's comb feedback is ``0.7 + 0.28 * room_size``; a comb of delay ``d`` with
    feedback ``g`` decays 60 dB in ``-3 d / log10(g)``. Damping is ignored.
    """
    g = 10.0 ** (-3.0 * 30.76 / max(rt60_ms, 1.0))
    return float(np.clip((g - 0.7) / 0.28, 0.0, 1.0))


def _reverb(entries: list[dict]) -> dict | None:
    entries = [e for e in entries if not _NOT_REVERB_RE.search(str(e.get("name", "")))]
    if not entries:
        return None
    power, sizes = [], []
    for e in entries:
        g, mix = _num(e.get("gain")), _num(e.get("mix"))
        if "send" in e or mix is None or mix >= 0.99:
            if g is not None:
                power.append(10.0 ** (min(max(g, -60.0), 12.0) / 10.0))
        else:
            power.append((mix / (1.0 - mix)) ** 2)
        length, room = _num(e.get("length")), _num(e.get("room-size", e.get("room- size")))
        size = _num(e.get("size"))
        if length and length > 0:
            sizes.append(room_size_from_rt60(length))
        elif room is not None and 0 <= room <= 1:
            sizes.append(room)
        elif size is not None and 0 <= size <= 1 and e.get("name") != "Space Designer":
            sizes.append(size)
    return {"send_db": 10.0 * math.log10(sum(power)) if power else None,
            "size": float(np.mean(sizes)) if sizes else None,
            "type": str(entries[0].get("type", "")).upper()}


def extract_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One plain record per audio track, in console terms (None where MixologyDB has none)."""
    rows = []
    for mix in data["mixes"]:
        tracks = [t for t in mix["tracks"] if categorize(t) is not None]
        gains = [_num(t["parameters"].get("gain")) for t in tracks]
        med = float(np.median([g for g in gains if g is not None]))
        lufs = [_num(t.get("track-audio-features", {}).get("track-audio-lufs")) for t in tracks]
        post = [g + x for g, x in zip(gains, lufs) if g is not None and x is not None]
        med_post = float(np.median(post)) if post else 0.0
        for t, g, x in zip(tracks, gains, lufs):
            p = t["parameters"]
            pans = [_num(x) for x in p.get("pan", [])]
            pans = [x for x in pans if x is not None]
            eq = p.get("eq", [])
            rel = None if g is None else g - med
            rows.append({
                "cat": categorize(t), "sub": t.get("track-instrument-subtype"),
                "gain": rel if rel is not None and rel >= MUTED_DB else None,
                "muted": rel is not None and rel < MUTED_DB,
                "balance": g + x - med_post if rel is not None and rel >= MUTED_DB and
                x is not None else None,
                "pan": float(np.mean(pans)) / 100.0 if pans else None,
                "ls": _band(eq, ("LS", "LOWSHELF")), "hp": _filter_freq(eq, "HP"),
                "hs": _band(eq, ("HS", "HIGHSHELF")), "lp": _filter_freq(eq, "LP"),
                "peak": _band(eq, ("LS", "HS", "HP", "LP", "LOWSHELF", "HIGHSHELF"), True),
                "comp": _comp(p.get("compression", p.get("comp", []))),
                "rev": _reverb(p.get("reverb", [])),
            })
    sizes = defaultdict(list)
    for r in rows:
        if r["rev"] and r["rev"]["size"] is not None:
            sizes[r["rev"]["type"]].append(r["rev"]["size"])
    all_sizes = [s for v in sizes.values() for s in v]
    for r in rows:   # reverbs without a size figure take their type's median size
        if r["rev"] and r["rev"]["size"] is None:
            r["rev"]["size"] = float(np.median(sizes.get(r["rev"]["type"]) or all_sizes))
    return rows


def _r(x: float) -> float:
    return float(f"{x:.5g}")


def _gauss(values: Iterable[float | None], lo_hi: tuple[float, float], log: bool = False) -> dict:
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    v = np.clip(v, *lo_hi)
    if log:
        v = np.log(v)
    if len(v) == 0:
        return {"n": 0}
    return {"n": int(len(v)), "mean": _r(v.mean()), "std": _r(v.std()), "median": _r(np.median(v))}


def _signed_db(bands: list[dict]) -> dict:
    g = np.clip([b["gain"] for b in bands], *RANGES["eq_db"])
    return {"gain": {"n": int(len(g)), "p_boost": _r(np.mean(g > 0)) if len(g) else 0.5},
            "boost_db": _gauss(g[g > 0], (0.5, 12.0)), "cut_db": _gauss(-g[g < 0], (0.5, 12.0))}


def _shelf(rows: list[dict], key: str, filt: str, hz: str) -> dict:
    shelves = [r[key] for r in rows if r[key]]
    filters = [r[filt] for r in rows if not r[key] and r[filt] is not None]
    used = len(shelves) + len(filters)
    return {"p_used": _r(used / len(rows)), "p_filter": _r(len(filters) / used) if used else 0.0,
            "shelf": {"log_hz": _gauss([b["freq"] for b in shelves], RANGES[hz], log=True),
                      **_signed_db(shelves)},
            "filter": {"log_hz": _gauss(filters, RANGES[hz], log=True),
                       "gain_db": FILTER_CUT_DB}}


def _pan(rows: list[dict]) -> dict:
    p = np.array([r["pan"] for r in rows if r["pan"] is not None])
    off = p[np.abs(p) > CENTRE]
    hist = np.histogram(np.abs(off), bins=PAN_EDGES)[0] if len(off) else np.zeros(7)
    return {"n": int(len(p)), "p_centre": _r(np.mean(np.abs(p) <= CENTRE)),
            "p_left": _r(np.mean(off < 0)) if len(off) else 0.5,
            "abs_edges": list(PAN_EDGES),
            "abs_hist": [_r(h / max(len(off), 1)) for h in hist],
            "abs_mean": _r(np.abs(off).mean()) if len(off) else 0.5, "n_off": int(len(off))}


def summarize(rows: list[dict]) -> dict[str, Any]:
    """The prior's statistics for one set of rows (a category or a pool)."""
    comps = [r["comp"] for r in rows if r["comp"]]
    revs = [r["rev"] for r in rows if r["rev"]]
    peaks = [r["peak"] for r in rows if r["peak"]]
    return {
        "n": len(rows), "n_muted": sum(r["muted"] for r in rows),
        "gain_rel_db": _gauss([r["gain"] for r in rows], RANGES["gain"]),
        "pan": _pan(rows),
        "low_shelf": _shelf(rows, "ls", "hp", "ls_hz"),
        "high_shelf": _shelf(rows, "hs", "lp", "hs_hz"),
        "peak": {"p_used": _r(len(peaks) / len(rows)),
                 "log_hz": _gauss([b["freq"] for b in peaks], RANGES["peak_hz"], log=True),
                 "log_q": _gauss([b["q"] for b in peaks if b["q"] and b["q"] > 0],
                                 RANGES["q"], log=True), **_signed_db(peaks)},
        "comp": {"p_used": _r(len(comps) / len(rows)), "n": len(comps),
                 "threshold_db": _gauss([c["thr"] for c in comps], RANGES["thr"]),
                 "log_ratio": _gauss([c["ratio"] for c in comps], RANGES["ratio"], log=True),
                 "log_attack_ms": _gauss([c["att"] for c in comps], RANGES["att"], log=True),
                 "log_release_ms": _gauss([c["rel"] for c in comps], RANGES["rel"], log=True)},
        "reverb": {"p_used": _r(len(revs) / len(rows)), "n": len(revs),
                   "send_db": _gauss([v["send_db"] for v in revs], RANGES["send_db"]),
                   "room_size": _gauss([v["size"] for v in revs], (0.0, 1.0)),
                   "damping": DAMPING},
    }


def _is_stat(d: dict) -> bool:
    return "n" in d and ("mean" in d or "p_boost" in d or set(d) == {"n"})


def _fill(entry: Any, pool: Any) -> Any:
    """Replace every statistic of ``entry`` with fewer than MIN_VALUES values by ``pool``'s."""
    if not isinstance(entry, dict):
        return entry
    if _is_stat(entry) and entry["n"] < MIN_VALUES:
        return {**pool, "from_pool": True}
    return {k: _fill(v, pool[k]) if isinstance(v, dict) else v for k, v in entry.items()}


def _balance(rows: list[dict], cat: str | None) -> float | None:
    """Mean post-fader loudness (track LUFS + fader gain) minus the mix's median (LU)."""
    v = [r["balance"] for r in rows if r["cat"] == cat and r["balance"] is not None]
    return _r(float(np.mean(v))) if v else None


def _figures(cats: dict[str, dict], rows: list[dict]) -> dict[str, Any]:
    fig: dict[str, Any] = {}
    for c, e in cats.items():
        fig[c] = {"n_rows": e["n"], "stats_from": e["stats_from"],
                  "gain_rel_db_mean": e["gain_rel_db"]["mean"],
                  "loudness_rel_lu_mean": _balance(rows, c if e["stats_from"] == c else None),
                  "p_pan_centre": e["pan"]["p_centre"],
                  "p_low_shelf": e["low_shelf"]["p_used"], "p_peak": e["peak"]["p_used"],
                  "p_high_shelf": e["high_shelf"]["p_used"], "p_comp": e["comp"]["p_used"],
                  "comp_ratio_median": round(math.exp(e["comp"]["log_ratio"]["median"]), 2),
                  "comp_threshold_db_mean": e["comp"]["threshold_db"]["mean"],
                  "p_reverb": e["reverb"]["p_used"],
                  "reverb_send_db_mean": e["reverb"]["send_db"]["mean"]}
    back = [abs(r["pan"]) <= CENTRE for r in rows
            if r["cat"] == "vocals_backing" and r["pan"] is not None]
    fig["vocals_backing"] = {"n_rows": len(back), "p_pan_centre": _r(np.mean(back))}
    fig["all"] = {"n_rows": len(rows),
                  "p_comp": _r(np.mean([r["comp"] is not None for r in rows])),
                  "p_reverb": _r(np.mean([r["rev"] is not None for r in rows])),
                  "p_eq_any": _r(np.mean([any(r[k] for k in ("ls", "hs", "peak")) or
                                          r["hp"] is not None or r["lp"] is not None
                                          for r in rows]))}
    return fig


def derive(data: dict[str, Any], source_sha256: str = "") -> dict[str, Any]:
    """The prior (plain JSON-able dict) from MixologyDB's parsed JSON."""
    rows = extract_rows(data)
    by_cat = defaultdict(list)
    for r in rows:
        by_cat[r["cat"]].append(r)
    pools = {"all": summarize(rows)}
    for name, members in (("melodic", MELODIC), ("vocals_backing", ("vocals_backing",))):
        pools[name] = _fill(summarize([r for c in members for r in by_cat[c]]), pools["all"])
    cats = {}
    for c in CATEGORIES:
        own = by_cat.get(c, [])
        if len(own) >= MIN_ROWS:
            cats[c] = {**_fill(summarize(own), pools["all"]), "stats_from": c}
        else:
            src = FALLBACK.get(c, "all")
            base = pools[src] if src in pools else _fill(summarize(by_cat[src]), pools["all"])
            cats[c] = {**base, "n": len(own), "stats_from": src}
    source = {"dataset": "MixologyDB final-track-data.json", "licence": "MIT",
              "sha256": source_sha256, "n_mixes": len(data["mixes"]),
              "n_songs": len({m["song-name"] for m in data["mixes"]}),
              "n_tracks": sum(len(m["tracks"]) for m in data["mixes"]),
              "n_rows_used": len(rows), "min_rows": MIN_ROWS, "min_values": MIN_VALUES,
              "fallback": FALLBACK, "melodic_pool": list(MELODIC)}
    return {"format": "mixinvert-engineer-prior/1", "console": "v1", "source": source,
            "categories": cats, "pools": {k: {**v, "stats_from": k} for k, v in pools.items()},
            "figures": {"source": source, **_figures(cats, rows)}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", nargs="?", type=Path, default=DEFAULT_SRC)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    raw = args.source.read_bytes()
    prior = derive(json.loads(raw), hashlib.sha256(raw).hexdigest())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(prior, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out} ({prior['source']['n_rows_used']} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
