"""What one fitting step on the differentiable twin costs, against an earlier revision.

``python bench/bench_twin_step.py run [--against REV]`` times :func:`fit_twin` (the step of
``colonel-reiss`` and of eami+refine's twin stage: forward, backward and Adam on one 2 s
excerpt with its pre-roll) on generated songs of 4, 8 and 16 mono tracks (10 s of noise
mixed by console v1 with random settings: the cost depends on the tracks and their
length, not on what they hold), with this checkout's ``src`` and with ``REV``'s (a git
worktree made for the run, default: the commit before the fused responses). The two run
in turns, in fresh processes, ``rounds`` times each; the fastest round of each counts. A
step's cost decides how many steps a time budget buys (eami+refine's twin gets about 40 s
of its 60 s default).

Results: ``bench/results/twin_step.json``; ``bench/run_all.py`` renders the section.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_eami  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: The last commit before the fused EQ/reverb responses and the cached spectra.
BEFORE = "904aef2"
#: What came after a revision compared against (for the BENCHMARKS.md text).
CHANGES_AFTER = {
    "904aef2": "before the fused EQ and reverb responses, the cached track spectra and reference magnitudes",
    "2ea6faa": "before the fused compressor kernel and pan, dry level and reverb send as per-track scalars",
    "8a6d530": "before every track rendered at once per stage (fused kernels over the tracks on threads) and "
               "the loss's gradient in one pass",
}
TRACKS = (4, 8, 16)
STEPS = 10
SECONDS = 10.0

_TIMER = r"""
import json, sys, time
import numpy as np, torch
from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1
from mixinvert.twin.fit import TwinFitConfig, fit_twin
tracks_n, steps, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
sr = 44100
rng = np.random.default_rng(tracks_n)
tracks = [(0.1 * rng.standard_normal((1, int(seconds * sr)))).astype(np.float32) for _ in range(tracks_n)]
p = rng.uniform(-0.8, 0.8, size=(tracks_n, CONSOLE_V1.size))
mix = Console(tracks, sr).render(CONSOLE_V1.denormalize(p))
start = np.zeros_like(p)
def run(n):
    config = TwinFitConfig(steps=n, budget_seconds=None, eval_every=10_000, patience=10_000)
    t = time.perf_counter()
    fit_twin(tracks, mix, sr, start, config)
    return time.perf_counter() - t
run(1)  # warm-up: numba compiles, caches fill
# two runs of different lengths: their difference is `steps` steps, without the start's evaluation
t_short, t_long = run(2), run(2 + steps)
print(json.dumps({"seconds_per_step": (t_long - t_short) / steps}))
"""


def _time(src: Path, tracks: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", _TIMER, str(tracks), str(STEPS), str(SECONDS)], env=env,
                         capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds_per_step"]


def run(against: str = BEFORE, rounds: int = 2) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(old), against], check=True)
        try:
            rows = []
            for n in TRACKS:
                best = {"this checkout": float("inf"), against: float("inf")}
                for _ in range(rounds):  # in turns, so that both see the same machine
                    for label, src in (("this checkout", REPO / "src"), (against, old / "src")):
                        best[label] = min(best[label], _time(src, n))
                        print(f"{n} tracks, {label}: {best[label]:.3f} s/step", file=sys.stderr)
                rows.append({"tracks": n, "now_s": best["this checkout"], "before_s": best[against]})
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)], check=False)
    return {"against": against, "rows": rows, "steps": STEPS, "seconds": SECONDS, "rounds": rounds,
            "machine": bench_eami._machine(), "date": time.strftime("%Y-%m-%d")}


def markdown() -> str:
    res = bench_eami._load("twin_step")
    if res is None:
        return ""
    lines = [
        "## Differentiable twin: cost of a fitting step",
        "",
        f"`bench/bench_twin_step.py run`: one step of `fit_twin` (forward, backward and Adam on a 2 s excerpt "
        f"with 0.5 s pre-roll), {res['seconds']:.0f} s songs of mono noise tracks, fastest of {res['rounds']} "
        f"rounds run in turns with this checkout and with commit {res['against']}"
        + (f" ({CHANGES_AFTER[res['against']]})" if res["against"] in CHANGES_AFTER else "")
        + f". {res['machine']}.",
        "",
        "| tracks | s / step now | s / step before | speed-up | steps in 40 s now |",
        "|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        lines.append(f"| {r['tracks']} | {r['now_s']:.3f} | {r['before_s']:.3f} | {r['before_s'] / r['now_s']:.2f}x "
                     f"| {40.0 / r['now_s']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    def configure(ap):
        ap.add_argument("--against", default=BEFORE, help=f"the git revision to compare with (default {BEFORE})")
        ap.add_argument("--rounds", type=int, default=2)
        return lambda args: {"against": args.against, "rounds": args.rounds}

    bench_eami.run_or_render(__doc__, "twin_step", run, markdown, configure)


if __name__ == "__main__":
    main()
