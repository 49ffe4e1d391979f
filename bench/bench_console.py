"""Console v1 throughput, side by side in one run (ratios, since machines are noisy).

Measures track-seconds rendered per second (per core: one thread) for

- ``bare pedalboard``: a plain loop doing the same chain with pedalboard directly (the
  floor that mixinvert's console adds overhead to);
- ``mixinvert Console.render``: the package's renderer (validation, dict lookup,
  constant-power pan, the dry-reverb shortcut is NOT exercised: every track has wet > 0);
- ``DawDreamer``: DawDreamer's built-in processors doing a similar graph (playback ->
  low shelf -> notch (DawDreamer has no peaking filter; a third biquad stands in) -> high
  shelf -> compressor -> panner -> reverb -> add), parameters set per render;
- ``Console.render_many`` with 1 and 2 worker threads (batch speed-up across cores).

Each method runs the same parameter sets; rounds are interleaved and the fastest round is
reported (as ``timeit`` does: noise on a shared machine only ever adds time). Run: ``python bench/bench_console.py`` (prints a markdown section).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import pedalboard as pb

from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1 as S

SR = 44100


def make_tracks(n_tracks: int, seconds: float, seed: int) -> list[np.ndarray]:
    """Mono tracks of decaying noise bursts (drum-like dynamics, so the compressor works)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    tracks = []
    for _ in range(n_tracks):
        x = rng.standard_normal(n) * 0.2
        period = int(SR * rng.uniform(0.2, 0.6))
        env = np.exp(-np.arange(n) % period / (0.08 * SR))
        tracks.append((x * env).astype(np.float32)[None])
    return tracks


def make_params(batch: int, n_tracks: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.uniform(-1, 1, size=(batch, n_tracks, S.size))
    p[..., S.index("reverb_wet")] = rng.uniform(-0.9, 0.0, size=(batch, n_tracks))  # wet 5-50 %
    return S.denormalize(p)


def bare_pedalboard(tracks: list[np.ndarray], values: np.ndarray) -> np.ndarray:
    mix = np.zeros((2, tracks[0].shape[1]), np.float32)
    for x, v in zip(tracks, values):
        d = dict(zip(S.names, map(float, v)))
        board = pb.Pedalboard([
            pb.Gain(gain_db=d["gain_db"]),
            pb.LowShelfFilter(cutoff_frequency_hz=d["eq_low_shelf_cutoff_hz"], gain_db=d["eq_low_shelf_gain_db"], q=0.7071),
            pb.PeakFilter(cutoff_frequency_hz=d["eq_peak_cutoff_hz"], gain_db=d["eq_peak_gain_db"], q=d["eq_peak_q"]),
            pb.HighShelfFilter(cutoff_frequency_hz=d["eq_high_shelf_cutoff_hz"], gain_db=d["eq_high_shelf_gain_db"], q=0.7071),
            pb.Compressor(threshold_db=d["comp_threshold_db"], ratio=d["comp_ratio"],
                          attack_ms=d["comp_attack_ms"], release_ms=d["comp_release_ms"]),
        ])
        y = board(x, SR)
        theta = (d["pan"] + 1) * math.pi / 4
        stereo = np.concatenate([math.cos(theta) * y, math.sin(theta) * y])
        mix += pb.Reverb(room_size=d["reverb_room_size"], damping=d["reverb_damping"],
                         wet_level=d["reverb_wet"], dry_level=1 - d["reverb_wet"], width=1.0)(stereo, SR)
    return mix


class DawDreamerChain:
    """A similar chain on DawDreamer's built-in processors, graph built once."""

    def __init__(self, tracks: list[np.ndarray], seconds: float) -> None:
        import dawdreamer as daw

        self.seconds = seconds
        self.engine = daw.RenderEngine(SR, 512)
        self.tracks = tracks
        self.strips = []
        graph = []
        for i, x in enumerate(tracks):
            e = self.engine
            play = e.make_playback_processor(f"play{i}", np.repeat(x, 2, axis=0))
            lo = e.make_filter_processor(f"lo{i}", "low_shelf", 100.0, 0.7071, 1.0)
            pk = e.make_filter_processor(f"pk{i}", "notch", 1000.0, 0.7071, 1.0)
            hi = e.make_filter_processor(f"hi{i}", "high_shelf", 5000.0, 0.7071, 1.0)
            comp = e.make_compressor_processor(f"comp{i}", 0.0, 1.0, 10.0, 100.0)
            pan = e.make_panner_processor(f"pan{i}", "balanced", 0.0)
            rev = e.make_reverb_processor(f"rev{i}")
            chain = [play, lo, pk, hi, comp, pan, rev]
            for a, b in zip(chain, chain[1:]):
                graph.append((b, [a.get_name()]))
            graph.insert(len(graph) - 6, (play, []))
            self.strips.append((play, lo, pk, hi, comp, pan, rev))
        add = self.engine.make_add_processor("sum", [1.0] * len(tracks))
        graph.append((add, [s[-1].get_name() for s in self.strips]))
        self.engine.load_graph(graph)

    def render(self, values: np.ndarray) -> np.ndarray:
        for (play, lo, pk, hi, comp, pan, rev), x, v in zip(self.strips, self.tracks, values):
            d = dict(zip(S.names, map(float, v)))
            play.set_data(np.repeat(x, 2, axis=0) * np.float32(10 ** (d["gain_db"] / 20)))
            lo.frequency, lo.gain = d["eq_low_shelf_cutoff_hz"], 10 ** (d["eq_low_shelf_gain_db"] / 20)
            pk.frequency, pk.q = d["eq_peak_cutoff_hz"], d["eq_peak_q"]
            hi.frequency, hi.gain = d["eq_high_shelf_cutoff_hz"], 10 ** (d["eq_high_shelf_gain_db"] / 20)
            comp.threshold, comp.ratio = d["comp_threshold_db"], d["comp_ratio"]
            comp.attack, comp.release = d["comp_attack_ms"], d["comp_release_ms"]
            pan.pan = d["pan"] * 100.0
            rev.room_size, rev.damping = d["reverb_room_size"], d["reverb_damping"]
            rev.wet_level, rev.dry_level, rev.width = d["reverb_wet"], 1 - d["reverb_wet"], 1.0
        self.engine.render(self.seconds)
        return self.engine.get_audio()


def run(n_tracks: int = 8, seconds: float = 5.0, batch: int = 16, rounds: int = 7, seed: int = 0) -> dict:
    tracks = make_tracks(n_tracks, seconds, seed)
    params = make_params(batch, n_tracks, seed + 1)
    console = Console(tracks, SR)
    work = batch * n_tracks * seconds  # track-seconds per round
    methods = {
        "bare pedalboard loop (1 thread)": lambda: [bare_pedalboard(tracks, v) for v in params],
        "mixinvert Console.render (1 thread)": lambda: [console.render(v, workers=1) for v in params],
        "mixinvert Console.render, 2 threads over tracks": lambda: [console.render(v, workers=2) for v in params],
        "mixinvert Console.render_many, 1 worker": lambda: console.render_many(params, workers=1),
        "mixinvert Console.render_many, 2 workers": lambda: console.render_many(params, workers=2),
    }
    try:
        dd = DawDreamerChain(tracks, seconds)
        methods["DawDreamer built-in processors (1 thread)"] = lambda: [dd.render(v) for v in params]
    except ImportError:
        print("dawdreamer not installed (scripts/setup.sh bench); skipping it", file=sys.stderr)
    times: dict[str, list[float]] = {k: [] for k in methods}
    for name, fn in methods.items():  # warm-up
        fn()
    for _ in range(rounds):
        for name, fn in methods.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    rate = {k: work / min(v) for k, v in times.items()}
    # Correctness alongside speed: the console equals the bare loop.
    err = max(float(np.abs(console.render(v, workers=1) - bare_pedalboard(tracks, v)).max()) for v in params[:2])
    return {"rate": rate, "n_tracks": n_tracks, "seconds": seconds, "batch": batch, "rounds": rounds,
            "max_abs_diff_vs_bare": err, "cores": os.cpu_count()}


def markdown(res: dict) -> str:
    base = res["rate"]["bare pedalboard loop (1 thread)"]
    one = res["rate"]["mixinvert Console.render_many, 1 worker"]
    lines = [
        "## Console v1 throughput",
        "",
        f"{res['n_tracks']} mono tracks x {res['seconds']:g} s, {res['batch']} parameter sets per round "
        f"(uniform settings, reverb wet 5-50 %), fastest of {res['rounds']} interleaved rounds, "
        f"{res['cores']} cores. Track-seconds rendered per second; ratio to the bare pedalboard loop.",
        "",
        "| renderer | track-s / s | ratio to bare pedalboard |",
        "|---|---|---|",
    ]
    for name, r in res["rate"].items():
        lines.append(f"| {name} | {r:.0f} | {r / base:.2f} |")
    two = res["rate"]["mixinvert Console.render_many, 2 workers"]
    lines += [
        "",
        f"- Console overhead over bare pedalboard: {100 * (1 - res['rate']['mixinvert Console.render (1 thread)'] / base):+.1f} % "
        "(negative means faster; goal: within 10 %).",
        f"- Batch speed-up with 2 worker threads: {two / one:.2f}x (parallel efficiency {two / one / 2:.0%}).",
        f"- Largest difference between the console's and the bare loop's mix: {res['max_abs_diff_vs_bare']:.1e}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    print(markdown(run(a.tracks, a.seconds, a.batch, a.rounds)))
