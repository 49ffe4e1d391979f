"""Corpus generation speed: songs and audio-seconds made per second, per preset and jobs.

Makes small corpora of each preset into a temporary folder, with 1 worker process and
with all cores, in one run. Needs the drum kit (``--kit``, default the shared
MuldjordKit beside the repository) and fluidsynth for the ``songs`` preset.
Run: ``python bench/bench_corpus.py`` (prints a markdown section).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from mixinvert.data.corpus import CorpusConfig, make_corpus

REPO = Path(__file__).resolve().parents[1]
DEFAULT_KIT = REPO.parent / "shared" / "data" / "muldjordkit"
DEFAULT_MIDI = REPO.parent / "shared" / "data" / "groove" / "groove_1_funk-groove1_138.mid"


def _clear_caches() -> None:
    from mixinvert.data import drums, melodic

    drums._load_kit_cached.cache_clear()
    melodic.load_work.cache_clear()


def run(kit: Path, midi: Path | None, songs: int = 4, seconds: float = 10.0) -> list[dict]:
    rows = []
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up (imports); then every timed run starts with empty caches, as a fresh
        # command would, so forked workers do not inherit what an earlier run parsed
        make_corpus(Path(tmp) / "warm", CorpusConfig("songs", 1, 2.0, 999, str(kit)), jobs=1)
        for preset in ("drums", "songs"):
            for jobs in sorted({1, cores}):
                config = CorpusConfig(preset, songs, seconds, 0, str(kit), str(midi) if midi else None)
                _clear_caches()
                t = time.perf_counter()
                make_corpus(Path(tmp) / f"{preset}-{jobs}", config, jobs=jobs)
                dt = time.perf_counter() - t
                rows.append({"preset": preset, "jobs": jobs, "songs": songs, "seconds": seconds, "wall_s": dt})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "## Corpus generation speed",
        "",
        f"{rows[0]['songs']} songs of {rows[0]['seconds']:g} s per run (music21 + fluidsynth for melodic parts, "
        "MuldjordKit for drums, console v1 mix, files written). Wall time per corpus, each run starting with empty caches (kit, parsed scores) as a fresh command does.",
        "",
        "| preset | worker processes | wall s | songs / min | audio s per wall s | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        one = next(x for x in rows if x["preset"] == r["preset"] and x["jobs"] == 1)
        lines.append(
            f"| {r['preset']} | {r['jobs']} | {r['wall_s']:.1f} | {60 * r['songs'] / r['wall_s']:.1f} | "
            f"{r['songs'] * r['seconds'] / r['wall_s']:.1f} | {one['wall_s'] / r['wall_s']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", type=Path, default=DEFAULT_KIT)
    ap.add_argument("--midi", type=Path, default=DEFAULT_MIDI)
    ap.add_argument("--songs", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    print(markdown(run(a.kit, a.midi if a.midi.is_file() else None, a.songs, a.seconds)))
