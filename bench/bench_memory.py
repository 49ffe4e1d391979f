"""Peak memory of ``invert`` on long songs: 24 tracks of 1, 3 and 10 minutes.

``python bench/bench_memory.py run [--minutes 1,3,10] [--methods sum,eami,eami+refine]``
writes each song once (24 mono tracks, 16-bit WAV, tones and noise mixed through console
v1 with known settings), then runs ``mixinvert invert`` on it, one process per method
and song, and reads the process's peak resident memory from the operating system
(``os.wait4``). The tracks alone take 10.6 MB per track-minute as float32; what matters
is what a method needs besides them. Results go to ``bench/results/memory.json``;
``bench/run_all.py`` renders them into BENCHMARKS.md without recomputing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_eami  # noqa: E402

TRACKS = 24
SAMPLE_RATE = 44100
MINUTES = (1.0, 3.0, 10.0)
METHODS = ("sum", "eami", "eami+refine")


def make_song(root: Path, minutes: float, seed: int = 0) -> Path:
    """24 mono tracks of gated tones and noise, and their mix through console v1."""
    import soundfile as sf

    from mixinvert.console.render import Console
    from mixinvert.console.schema import CONSOLE_V1

    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * SAMPLE_RATE)
    song = root / f"song_{minutes:g}min"
    (song / "tracks").mkdir(parents=True, exist_ok=True)
    t = np.arange(n) / SAMPLE_RATE
    tracks = []
    for k in range(TRACKS):
        gate = (np.sin(2 * np.pi * (0.5 + 0.1 * k) * t) > 0).astype(np.float32)
        x = 0.2 * np.sin(2 * np.pi * 60 * 2 ** (k / 4) * t) * gate + 0.02 * rng.standard_normal(n)
        tracks.append(x.astype(np.float32)[None])
        sf.write(song / "tracks" / f"track_{k:02d}.wav", tracks[-1].T, SAMPLE_RATE, subtype="PCM_16")
    values = CONSOLE_V1.denormalize(rng.uniform(-0.5, 0.5, size=(TRACKS, CONSOLE_V1.size)))
    sf.write(song / "mix.wav", Console(tracks, SAMPLE_RATE).render(values).T, SAMPLE_RATE, subtype="FLOAT")
    return song


def peak_rss_mb(cmd: list[str]) -> tuple[float, float, int]:
    """Run ``cmd``; its peak resident memory (MB), wall seconds and exit status."""
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a full pipe would stall the child
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            print(err.read().decode(errors="replace")[-2000:], file=sys.stderr)
    return usage.ru_maxrss / 1024, wall, code


def run(minutes: tuple[float, ...] = MINUTES, methods: tuple[str, ...] = METHODS) -> dict:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch:
        root = Path(scratch)
        for m in minutes:
            print(f"{m:g} min song ...", file=sys.stderr)
            song = make_song(root, m)
            for method in methods:
                out = root / f"out_{m:g}_{method}"
                cmd = [*bench_eami.MIXINVERT, "-q", "invert", str(song / "tracks"), str(song / "mix.wav"),
                       "--method", method, "--no-report", "--max-tracks", str(TRACKS), "--out", str(out)]
                rss, wall, code = peak_rss_mb(cmd)
                print(f"  {method}: peak {rss:.0f} MB, {wall:.0f} s, exit {code}", file=sys.stderr)
                rows.append({"minutes": m, "method": method, "peak_mb": rss, "wall_s": wall, "exit": code,
                             "tracks_mb": TRACKS * m * 60 * SAMPLE_RATE * 4 / 1e6})
    return {"machine": bench_eami._machine(), "tracks": TRACKS, "rows": rows}


def markdown() -> str:
    res = bench_eami._load("memory")
    if not res:
        return ""
    methods = list(dict.fromkeys(r["method"] for r in res["rows"]))
    minutes = sorted({r["minutes"] for r in res["rows"]})
    by = {(r["minutes"], r["method"]): r for r in res["rows"]}
    lines = [
        "## Peak memory on long songs",
        "",
        f"`python bench/bench_memory.py run`: `mixinvert invert` on songs of {res['tracks']} mono tracks "
        "(44.1 kHz), one process per method and song, peak resident memory from the operating system. "
        "\"Tracks\" is the audio itself as float32, which every method holds; the rest is what the method "
        "needs besides. Hardware: " + res["machine"] + ".",
        "",
        "| song | tracks (MB) | " + " | ".join(f"{m}: peak MB (besides the tracks), s" for m in methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for m in minutes:
        cells = []
        for method in methods:
            r = by.get((m, method))
            if r is None:
                cells.append("-")
            elif r["exit"] != 0:
                cells.append(f"failed (exit {r['exit']}, peak {r['peak_mb']:.0f} MB)")
            else:
                cells.append(f"{r['peak_mb']:.0f} ({r['peak_mb'] - r['tracks_mb']:.0f}), {r['wall_s']:.0f} s")
        tracks_mb = by[(m, methods[0])]["tracks_mb"]
        lines.append(f"| {m:g} min | {tracks_mb:.0f} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    def configure(ap: argparse.ArgumentParser):
        ap.add_argument("--minutes", default=",".join(f"{m:g}" for m in MINUTES))
        ap.add_argument("--methods", default=",".join(METHODS))
        return lambda args: {"minutes": tuple(float(m) for m in args.minutes.split(",")),
                             "methods": tuple(args.methods.split(","))}

    bench_eami.run_or_render(__doc__, "memory", run, markdown, configure)


if __name__ == "__main__":
    main()
