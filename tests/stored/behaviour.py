"""Settings of every built-in method on one small song, for fixed seeds and work budgets:
stored before a restructuring, compared after it (``tests/test_stored_results.py``).

``python -m tests.stored.behaviour --store`` writes ``settings.json`` anew (only when a
change of behaviour is meant); without it, prints the largest difference to the stored
settings per run. The fits' settings follow the CPU's kernels (torch's, and numba's,
compiled for the machine): compare on the machine kind that stored them, with numba's
cache of compiled kernels made there (``find src -name '*.nb[ic]' -delete`` after moving
between machines). Only the public API is used (:func:`mixinvert.api.invert` and the
``params.json`` it writes), so that the code beneath may be rearranged freely.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

STORED = Path(__file__).with_name("settings.json")

#: (method, options): every built-in method; the budgeted ones at budgets that end their
#: fits and at their defaults.
RUNS: tuple[tuple[str, dict], ...] = (
    ("sum", {}),
    ("random", {}),
    ("barchiesi-reiss", {}),
    ("eami", {}),
    ("colonel-reiss", {"budget": 1.0}),
    ("colonel-reiss", {"steps": 40}),
    ("eami+refine", {"budget": 2.0}),
    ("eami+refine", {}),
)
SEED = 3


def run_key(method: str, options: dict) -> str:
    return method + "".join(f" {k}={v}" for k, v in sorted(options.items()))


def make_song(root: Path) -> Path:
    """Two noise tracks (mono and stereo, 1.5 s) mixed by console v1 with known settings."""
    from mixinvert.console.render import Console
    from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
    from tests.conftest import SR, noise_track, write_song

    rng = np.random.default_rng(5)
    tracks = [noise_track(rng, 1, 1.5), noise_track(rng, 2, 1.5)]
    truth = np.stack([CONSOLE_V1.from_dict({**NEUTRAL_V1, "gain_db": -7.0, "pan": 0.4, "eq_peak_gain_db": 4.0}),
                      CONSOLE_V1.from_dict({**NEUTRAL_V1, "gain_db": 1.0, "reverb_wet": 0.25})])
    mix = Console(tracks, SR).render(truth)
    return write_song(root, {"a.wav": tracks[0], "b.wav": tracks[1]}, mix)


def settings_of(song_dir: Path, out_dir: Path, method: str, options: dict) -> dict[str, dict[str, float]]:
    """Each track's settings as ``params.json`` writes them."""
    import torch

    from mixinvert.api import invert
    from mixinvert.methods.registry import get_method

    # the stored settings are console v1's: named, since a song without known settings
    # would otherwise run on the default console (v2) where the method has it
    if "console" in get_method(method).options:
        options = {"console": "v1", **options}
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        invert(song_dir / "tracks", song_dir / "mix.wav", out_dir, method=method, seed=SEED, options=options)
    finally:
        torch.set_num_threads(threads)
    doc = json.loads((out_dir / "params.json").read_text())
    return {t["name"]: {k: v for k, v in t.items() if isinstance(v, (int, float))} for t in doc["tracks"]}


def compute(work: Path, runs=RUNS) -> dict[str, dict[str, dict[str, float]]]:
    song_dir = make_song(work / "song")
    return {run_key(m, o): settings_of(song_dir, work / f"out{i}", m, o) for i, (m, o) in enumerate(runs)}


def largest_difference(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> float:
    assert a.keys() == b.keys(), (sorted(a), sorted(b))
    return max(abs(a[t][k] - b[t][k]) for t in a for k in a[t])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", action="store_true", help=f"write {STORED.name} anew")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = compute(Path(tmp))
    if args.store:
        STORED.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        print(f"stored {len(results)} runs in {STORED}")
        return
    stored = json.loads(STORED.read_text())
    for key, got in results.items():
        print(f"{key}: largest difference {largest_difference(got, stored[key]):.3g}")


if __name__ == "__main__":
    main()
