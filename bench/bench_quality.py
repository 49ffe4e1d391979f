"""Baseline quality on generated corpora: the analogue of the paper's Table 1 (sum, random).

Makes a ``drums`` and a ``songs`` corpus (seeded) and runs ``evaluate`` on all their songs
(the corpora are small). Later methods join this table.
Run: ``python bench/bench_quality.py`` (prints a markdown section).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from mixinvert.data.corpus import CorpusConfig, make_corpus
from mixinvert.evaluation import evaluate

REPO = Path(__file__).resolve().parents[1]
KIT = REPO.parent / "shared" / "data" / "muldjordkit"
MIDI = REPO.parent / "shared" / "data" / "groove" / "groove_1_funk-groove1_138.mid"
PAPER = {  # EAMI Table 1: (MAE, MRSD) on ENST-Drums and MedleyDB
    "sum": {"drums": (0.158, 3.458), "songs": (0.226, 7.577)},
    "random": {"drums": (0.323, 5.124), "songs": (0.381, 11.127)},
}


def run(songs: int = 10, seconds: float = 10.0, methods: tuple[str, ...] = ("sum", "random")) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for preset in ("drums", "songs"):
            config = CorpusConfig(preset, songs, seconds, 0, str(KIT), str(MIDI) if MIDI.is_file() else None)
            corpus = make_corpus(Path(tmp) / preset, config)
            out[preset] = evaluate(corpus, list(methods), seed=0).to_json()
    out["songs_per_corpus"], out["seconds"] = songs, seconds
    return out


def markdown(res: dict) -> str:
    lines = [
        "## Baseline quality on generated corpora (Table 1 analogue)",
        "",
        f"{res['songs_per_corpus']} songs of {res['seconds']:g} s per preset, seed 0, all songs; "
        "`mixinvert evaluate` figures (MAE, MRSD after -23 LUFS normalization; parameter error = "
        "mean absolute error in normalized units). Paper figures (real ENST-Drums / MedleyDB) for scale.",
        "",
        "| method | drums MAE | drums MRSD | drums param err | songs MAE | songs MRSD | songs param err | paper drums MAE / MRSD | paper songs MAE / MRSD |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method in res["drums"]["methods"]:
        d, s = res["drums"]["mean"][method], res["songs"]["mean"][method]
        paper = PAPER.get(method, {})
        pd = "{:.3f} / {:.3f}".format(*paper["drums"]) if "drums" in paper else "-"
        ps = "{:.3f} / {:.3f}".format(*paper["songs"]) if "songs" in paper else "-"
        lines.append(
            f"| {method} | {d['mae']:.4f} | {d['mrsd']:.3f} | {d['normalized_mae']:.3f} | "
            f"{s['mae']:.4f} | {s['mrsd']:.3f} | {s['normalized_mae']:.3f} | {pd} | {ps} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    print(markdown(run(a.songs, a.seconds)))
