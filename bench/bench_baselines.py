"""The published baselines: Table 1 analogue with every method, the twin's accuracy, speed.

Subcommands (results go to ``bench/results/*.json``; ``bench/run_all.py`` turns them into
BENCHMARKS.md sections without recomputing them):

- ``table1 --corpora-dir DIR [--limit N]``: ``evaluate`` with sum, random, barchiesi-reiss,
  colonel-reiss and eami on the test split of the ``drums`` and ``songs`` benchmark
  corpora (``bench_eami.py corpora`` makes them), seed 0.
- ``twin``: the differentiable twin against the real console, per processor (also run by
  ``run_all.py``, it takes seconds); ``twin-v2``: the same for console v2, per effect (also
  run by ``run_all.py``).
- ``speed --corpora-dir DIR``: colonel-reiss on a 30 s, 8-track song (loss per step and
  seconds), and barchiesi-reiss on a 3-minute, 16-track song, both built from corpus
  tracks and mixed with known settings.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_eami  # noqa: E402

from mixinvert.console.render import Console, render_track  # noqa: E402
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1  # noqa: E402
from mixinvert.methods.refine import EFFECTS  # noqa: E402

METHODS = ("sum", "random", "barchiesi-reiss", "colonel-reiss", "eami")
#: Processor groups of console v1, for the twin's per-processor accuracy.
GROUPS = {**EFFECTS, "whole chain": tuple(CONSOLE_V1.names)}


_save, _load, _fmt = bench_eami._save, bench_eami._load, bench_eami._fmt


def table1(corpora_dir: Path, limit: int | None) -> dict:
    from mixinvert.evaluation import evaluate

    res: dict = {"methods": list(METHODS), "limit": limit, "machine": bench_eami._machine(),
                 "eami_model": bench_eami.model_digest(), "eami_method_version": bench_eami.EAMI_METHOD_VERSION}
    for name in bench_eami.CORPORA:
        start = time.perf_counter()
        r = evaluate(corpora_dir / name, list(METHODS), split="test", seed=0, limit=limit,
                     progress=lambda _n: print(".", end="", file=sys.stderr, flush=True))
        print(file=sys.stderr)
        res[name] = {"mean": {m: r.mean(m) for m in r.methods}, "songs": len({x.song for x in r.rows}),
                     "wall_s": time.perf_counter() - start, "rows": [vars(x) for x in r.rows]}
    return res


def _test_signal(rng: np.random.Generator, seconds: float, sample_rate: int, channels: int) -> np.ndarray:
    """Noise with a slow loudness envelope (so that compressors act), float32."""
    n = int(seconds * sample_rate)
    block = sample_rate // 20
    env = np.repeat(rng.uniform(0.02, 1.0, n // block + 1), block)[:n]
    return (rng.standard_normal((channels, n)) * env * 0.3).astype(np.float32)


def twin_accuracy(trials: int = 12, seconds: float = 3.0, sample_rate: int = 44100) -> dict:
    """Per processor group: the twin's and the console's outputs on the same random settings."""
    import torch

    from mixinvert.twin import model as twin

    rng = np.random.default_rng(0)
    out: dict = {"trials": trials, "seconds": seconds, "sample_rate": sample_rate, "groups": {}}
    neutral = CONSOLE_V1.normalize(np.array([NEUTRAL_V1[n] for n in CONSOLE_V1.names]))
    for group, names in GROUPS.items():
        errs_db, maxes, times = [], [], []
        for t in range(trials):
            p = neutral.copy()
            for name in names:
                p[CONSOLE_V1.index(name)] = rng.uniform(-1, 1)
            values = CONSOLE_V1.denormalize(p)
            x = _test_signal(rng, seconds, sample_rate, 1 + t % 2)
            real = render_track(x, sample_rate, values)
            start = time.perf_counter()
            with torch.no_grad():
                est = twin.render_track(torch.from_numpy(x), sample_rate, torch.tensor(values), tail_seconds=6.0).numpy()
            times.append(time.perf_counter() - start)
            err = np.sqrt(np.mean((est - real) ** 2)) / (np.sqrt(np.mean(real ** 2)) + 1e-12)
            errs_db.append(20 * np.log10(err + 1e-12))
            maxes.append(float(np.abs(est - real).max()))
        out["groups"][group] = {"median_rel_err_db": float(np.median(errs_db)), "worst_rel_err_db": float(np.max(errs_db)),
                                "max_abs_err": float(np.max(maxes)), "twin_s": float(np.median(times))}
    return out


#: Console v2's effect groups for the twin's accuracy: (track effects, shared effects).
GROUPS_V2 = {
    "fader and pan": (("fader", "pan"), ()),
    "polarity and time offset": (("polarity", "time"), ()),
    "drive": (("drive",), ()),
    "high-pass": (("hpf",), ()),
    "eq (4 bells and shelves)": (("eq",), ()),
    "compressor": (("compressor",), ()),
    "sends and reverb bus": (("sends",), ("reverb bus",)),
    "master eq": ((), ("master eq",)),
    "master compressor and gain": ((), ("master compressor", "master gain")),
    "whole chain but drive and limiter": (("polarity", "time", "hpf", "eq", "compressor", "fader", "pan", "sends"),
                                          ("reverb bus", "master eq", "master compressor", "master gain")),
}


def twin_accuracy_v2(trials: int = 6, seconds: float = 3.0, sample_rate: int = 44100) -> dict:
    """Per effect group of console v2: its twin (:mod:`mixinvert.twin.model_v2`) and the real
    console v2 on the same random settings (the others neutral), three tracks (mono, stereo,
    mono) of enveloped noise."""
    import torch

    from mixinvert.console.mixing import sum_values
    from mixinvert.console.render_v2 import ConsoleV2
    from mixinvert.console.schema import CONSOLE_V2
    from mixinvert.twin import model_v2

    S, SH = CONSOLE_V2, CONSOLE_V2.shared
    rng = np.random.default_rng(0)
    out: dict = {"trials": trials, "seconds": seconds, "sample_rate": sample_rate, "groups": {}}
    for group, (track_effects, shared_effects) in GROUPS_V2.items():
        errs_db, times = [], []
        for _ in range(trials):
            tracks = [_test_signal(rng, seconds, sample_rate, c) for c in (1, 2, 1)]
            p = S.normalize(sum_values(S, tracks))
            for name in (n for e in track_effects for n in S.effects[e]):
                p[:, S.index(name)] = rng.uniform(-0.9, 0.9, len(tracks))
            ps = SH.normalize(SH.from_dict(SH.neutral()))
            for name in (n for e in shared_effects for n in SH.effects[e]):
                ps[SH.index(name)] = rng.uniform(-0.9, 0.9)
            values, shared = S.denormalize(p), SH.denormalize(ps)
            real = ConsoleV2(tracks, sample_rate).render(values, shared)
            start = time.perf_counter()
            with torch.no_grad():
                est = model_v2.render([torch.from_numpy(t) for t in tracks], sample_rate,
                                      *model_v2.np_settings(values, shared), tail_seconds=6.0).numpy()
            times.append(time.perf_counter() - start)
            err = np.sqrt(np.mean((est - real) ** 2)) / (np.sqrt(np.mean(real ** 2)) + 1e-12)
            errs_db.append(20 * np.log10(err + 1e-12))
        out["groups"][group] = {"median_rel_err_db": float(np.median(errs_db)), "worst_rel_err_db": float(np.max(errs_db)),
                                "twin_s": float(np.median(times))}
    return out


def _built_song(corpora_dir: Path, n_tracks: int, seconds: float, seed: int):
    """A song of ``n_tracks`` corpus tracks, looped to ``seconds``, mixed with random settings."""
    from mixinvert.console.params_io import MixParams
    from mixinvert.data.dataset import list_song_dirs
    from mixinvert.data.song import Song, load_song

    rng = np.random.default_rng(seed)
    tracks, names = [], []
    for song_dir in list_song_dirs(corpora_dir / "songs", "test"):
        song = load_song(song_dir, require_mix=True)
        for name, t in zip(song.track_names, song.tracks):
            if len(tracks) < n_tracks and np.abs(t).max() > 1e-3:
                tracks.append(t)
                names.append(f"{song.name}_{name}")
        if len(tracks) == n_tracks:
            break
    sr = 44100
    n = int(seconds * sr)
    tracks = [np.tile(t, (1, -(-n // t.shape[1])))[:, :n] for t in tracks]
    p = rng.uniform(-0.7, 0.7, (n_tracks, CONSOLE_V1.size))
    values = CONSOLE_V1.denormalize(p)
    mix = Console(tracks, sr).render(values)
    params = MixParams(CONSOLE_V1, tuple(names), values, sr)
    return Song("built", tuple(names), tracks, sr, mix, params)


def speed(corpora_dir: Path) -> dict:
    from mixinvert.methods.barchiesi_reiss import estimate_barchiesi_reiss
    from mixinvert.methods.baseline import plain_sum
    from mixinvert.methods.colonel_reiss import start_point
    from mixinvert.metrics.audio import compare_mixes
    from mixinvert.twin.fit import TwinFitConfig, fit_twin

    res: dict = {"machine": bench_eami._machine()}
    song = _built_song(corpora_dir, 8, 30.0, 1)
    config = TwinFitConfig()
    history = []
    fit = fit_twin(song.tracks, song.mix, song.sample_rate, start_point(song), config,
                   progress=lambda step, loss: history.append((step, loss, time.perf_counter())))
    values = CONSOLE_V1.denormalize(fit.p)
    mix = Console(song.tracks, song.sample_rate).render(values)
    sum_mix = plain_sum(song)
    res["colonel_reiss_30s_8tracks"] = {
        "seconds": fit.seconds, "steps": fit.steps, "stopped": fit.stopped, "config": vars(config),
        "loss_start": fit.start_loss, "loss": fit.loss, "history": fit.history,
        "mrsd": compare_mixes(mix, song.mix, song.sample_rate).mrsd,
        "sum_mrsd": compare_mixes(sum_mix, song.mix, song.sample_rate).mrsd,
    }
    big = _built_song(corpora_dir, 16, 180.0, 2)
    start = time.perf_counter()
    est = estimate_barchiesi_reiss(big, rng=np.random.default_rng(0))
    res["barchiesi_reiss_180s_16tracks"] = {
        "seconds": time.perf_counter() - start,
        "mrsd": compare_mixes(est.mix, big.mix, big.sample_rate).mrsd,
        "console_mrsd": compare_mixes(est.extra_mixes["console"], big.mix, big.sample_rate).mrsd,
    }
    return res


def markdown() -> str:
    parts: list[str] = []
    t1 = _load("baselines_table1")
    if t1:
        parts += [
            "## Every method on the benchmark corpora (Table 1 analogue)",
            "",
            "`python bench/bench_baselines.py table1 --corpora-dir DIR` runs `evaluate` with all methods on the test "
            "splits (seed 0" + (f", first {t1['limit']} songs of each" if t1.get("limit") else "") + "). "
            "`barchiesi-reiss` is scored on its own mix (the direct FIR rendering); `barchiesi-reiss:console` is the "
            "console v1 rendering of its settings. MRSD / sum: the method's MRSD over the plain sum's. "
            f"Hardware: {t1['machine']}. Paper figures (ENST-Drums, MedleyDB) for scale.",
            "",
            *bench_eami.TABLE1_HEADER,
        ]
        parts += bench_eami.table1_rows(t1)
        parts.append("")
        parts += bench_eami.eami_model_note(t1)
    tw = _load("twin_accuracy")
    if tw:
        parts += [
            "## The differentiable twin against the real console, per processor",
            "",
            f"`mixinvert.twin.model` and console v1 (pedalboard) on the same settings: {tw['trials']} random settings "
            f"per processor group (the others neutral), {tw['seconds']:g} s of enveloped noise, mono and stereo "
            "tracks alternating. Error = RMS of (twin - console) over RMS of the console's output, in dB.",
            "",
            "| processors | median error (dB) | worst error (dB) | max abs error | twin s / track (forward) |",
            "|---|---|---|---|---|",
        ]
        for g, r in tw["groups"].items():
            parts.append(f"| {g} | {r['median_rel_err_db']:.1f} | {r['worst_rel_err_db']:.1f} | "
                         f"{r['max_abs_err']:.1e} | {r['twin_s']:.3f} |")
        parts.append("")
    tw2 = _load("twin_accuracy_v2")
    if tw2:
        parts += [
            "## The differentiable twin of console v2 against the real console v2, per effect",
            "",
            f"`mixinvert.twin.model_v2` and console v2 (pedalboard) on the same settings: {tw2['trials']} random "
            f"settings per group (the others neutral), three tracks (mono, stereo, mono) of {tw2['seconds']:g} s of "
            "enveloped noise. Error = RMS of (twin - console) over RMS of the console's output, in dB. The limiter "
            "is not in the twin (a fit keeps it off).",
            "",
            "| effects | median error (dB) | worst error (dB) | twin s / mix (forward) |",
            "|---|---|---|---|",
        ]
        for g, r in tw2["groups"].items():
            parts.append(f"| {g} | {r['median_rel_err_db']:.1f} | {r['worst_rel_err_db']:.1f} | {r['twin_s']:.3f} |")
        parts.append("")
    sp = _load("baselines_speed")
    if sp:
        cr = sp["colonel_reiss_30s_8tracks"]
        br = sp["barchiesi_reiss_180s_16tracks"]
        parts += [
            "## Baseline speed",
            "",
            f"Hardware: {sp['machine']}. Songs built from corpus tracks, looped, mixed with random settings.",
            "",
            f"- `colonel-reiss`, 30 s, 8 tracks, default settings: **{cr['seconds']:.0f} s**, {cr['steps']} steps "
            f"(stopped: {cr['stopped']}); fit loss {cr['loss_start']:.3f} -> {cr['loss']:.3f}; MRSD of the console "
            f"rendering {cr['mrsd']:.3f} (plain sum {cr['sum_mrsd']:.3f}). Budget stated in the issue: under 120 s.",
            f"- `barchiesi-reiss`, 3 minutes, 16 tracks: **{br['seconds']:.1f} s**; MRSD {br['mrsd']:.3f} (direct FIR "
            f"rendering), {br['console_mrsd']:.3f} (console rendering of its settings).",
            "",
            "| step | fit loss (mean over excerpts) |",
            "|---|---|",
        ]
        for step, loss in cr["history"]:
            parts.append(f"| {step} | {loss:.3f} |")
        parts.append("")
    return "\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("table1", "twin", "twin-v2", "speed", "markdown"))
    ap.add_argument("--corpora-dir", type=Path, default=Path(__file__).resolve().parent / ".cache" / "corpora")
    ap.add_argument("--limit", type=int, default=None, help="first N test songs of each corpus")
    args = ap.parse_args()
    if args.what == "table1":
        _save("baselines_table1", table1(args.corpora_dir, args.limit))
    elif args.what == "twin":
        _save("twin_accuracy", twin_accuracy())
    elif args.what == "twin-v2":
        _save("twin_accuracy_v2", twin_accuracy_v2())
    elif args.what == "speed":
        _save("baselines_speed", speed(args.corpora_dir))
    print(markdown())


if __name__ == "__main__":
    main()
