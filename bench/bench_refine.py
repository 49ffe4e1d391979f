"""``eami+refine`` benchmarks: Table 1 with every method, MRSD against budget, what each effect is worth.

Subcommands (results go to ``bench/results/refine_*.json``; ``bench/run_all.py`` renders them
into BENCHMARKS.md without recomputing):

- ``table1 --corpora-dir DIR [--limit N]``: ``evaluate`` with sum, eami, barchiesi-reiss and
  eami+refine on the first N test songs of the ``songs`` and ``drums`` benchmark corpora
  (``bench_eami.py corpora`` makes them), seed 0, default budget (60 s); colonel-reiss runs
  too unless ``--reuse-colonel-reiss`` takes its rows from ``baselines_table1.json`` (the
  same songs, methods and seed: the shared rows are checked to match first).
- ``budget --corpora-dir DIR``: a 30 s, 8-track song (corpus tracks mixed with known
  settings): eami+refine and colonel-reiss with work budgets of 10, 30 and 60 units,
  beside the code of the last commit with wall-clock budgets given as many seconds, in one
  run; MRSD, parameter errors, work used and wall time per budget, and a plot.
- ``prices --corpora-dir DIR``: times each kind of work a budget pays for against its
  price (:data:`mixinvert.work.PRICES`), and each method's work against its seconds.
- ``compare --corpora-dir DIR``: eami+refine against colonel-reiss at the same work budgets
  on in-model, mismatched (another engine) and real songs (``../shared/data/real-dev``).
- ``starts --corpora-dir DIR [--limit N] [--steps K]``: where eami+refine's twin should
  start: K twin steps (no time budget: deterministic) from the whole network estimate, from
  its gain, pan and reverb alone (``eami-partial``) and from the plain sum (colonel-reiss's
  start), on the first N test songs of the ``songs`` corpus; whole-song MRSD through the
  real console and median gain error after K steps.
- ``effects --corpora-dir DIR [--limit N] [--budget S]``: eami+refine fitting gain and pan
  only, then adding EQ, the compressor and reverb, on the first N test songs of each corpus.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_baselines  # noqa: E402
import bench_eami  # noqa: E402
import bench_real  # noqa: E402

from mixinvert.console.schema import CONSOLE_V1  # noqa: E402

METHODS = ("sum", "eami", "barchiesi-reiss", "colonel-reiss", "eami+refine")
BUDGETS = (10.0, 30.0, 60.0)
#: The effect ladder of the paper's closing remark.
LADDER = {
    "gain + pan": ("gain", "pan"),
    "+ EQ": ("gain", "pan", "eq"),
    "+ compressor": ("gain", "pan", "eq", "compressor"),
    "+ reverb (all)": ("gain", "pan", "eq", "compressor", "reverb"),
}

_save, _load, _fmt = bench_eami._save, bench_eami._load, bench_eami._fmt


def _dot(_n: int) -> None:
    print(".", end="", file=sys.stderr, flush=True)


def table1(corpora_dir: Path, limit: int | None, reuse_colonel_reiss: str | None, corpora: list[str]) -> dict:
    """Table 1 on ``corpora`` (others already in ``refine_table1.json`` are kept).
    ``reuse_colonel_reiss``: the results file (``baselines_table1`` or ``refine_table1``)
    whose colonel-reiss rows are taken instead of rerunning it."""
    from mixinvert.evaluation import evaluate

    methods = [m for m in METHODS if not (reuse_colonel_reiss and m == "colonel-reiss")]
    res: dict = _load("refine_table1") or {}
    stored = _load(reuse_colonel_reiss) if reuse_colonel_reiss else None
    if reuse_colonel_reiss and stored is not None:
        stored = {k: v for k, v in stored.items() if isinstance(v, dict) and v.get("limit") == limit}
    if reuse_colonel_reiss and not (stored and all(n in stored for n in corpora)):
        raise SystemExit(f"--reuse-colonel-reiss needs bench/results/{reuse_colonel_reiss}.json made with the same "
                         f"--limit for {', '.join(corpora)}")
    res.update({"methods": list(METHODS), "machine": bench_eami._machine(), "eami_model": bench_eami.model_digest(),
                "eami_method_version": bench_eami.EAMI_METHOD_VERSION})
    for name in corpora:
        start = time.perf_counter()
        r = evaluate(corpora_dir / name, methods, split="test", seed=0, limit=limit, progress=_dot)
        print(file=sys.stderr)
        mean = {m: r.mean(m) for m in r.methods}
        rows = [vars(x) for x in r.rows]
        if stored is not None:
            old = {(x["song"], x["method"]): x for x in stored[name]["rows"]}
            for x in rows:  # the plain sum's rows must agree (to float noise), or the corpora differ
                ref = old.get((x["song"], x["method"]))  # (eami's move with the model and the method's version)
                if x["method"] == "sum" and ref is not None and abs(ref["mrsd"] - x["mrsd"]) > 1e-4 * ref["mrsd"]:
                    raise SystemExit(f"{name}/{x['song']}: {x['method']} MRSD {x['mrsd']} differs from the stored "
                                     f"{ref['mrsd']}; rerun without --reuse-colonel-reiss")
            mean["colonel-reiss"] = stored[name]["mean"]["colonel-reiss"]
            rows += [x for x in stored[name]["rows"] if x["method"] == "colonel-reiss"]
            earlier = stored[name].get("colonel_reiss_from", "this run")
            # rows reused before name their source already; keep it rather than nest it
            source = f"{reuse_colonel_reiss}.json (same songs; its own run)" if earlier == "this run" else earlier
        res[name] = {"mean": mean, "songs": len({x.song for x in r.rows}), "wall_s": time.perf_counter() - start,
                     "rows": rows, "limit": limit,
                     "colonel_reiss_from": source if stored is not None else "this run"}
        _save("refine_table1", res)  # after each corpus: an interrupted run keeps what it finished
    return res


#: The last commit whose budgets were wall-clock seconds: ``budget`` runs it beside today's
#: code, on the same song in the same run (from a git worktree in ``bench/.cache``).
WALL_CLOCK_COMMIT = "35265ae"
_WALL_CLOCK_RUNNER = """
import json, sys, time
from pathlib import Path
import numpy as np
import bench_baselines, mixinvert
assert mixinvert.__file__.startswith(sys.argv[4]), mixinvert.__file__
from mixinvert.methods.registry import get_method
from mixinvert.metrics.audio import compare_mixes
song = bench_baselines._built_song(Path(sys.argv[1]), 8, 30.0, 1)
start = time.perf_counter()
est = get_method(sys.argv[2]).fn(song, rng=np.random.default_rng(0), budget_seconds=float(sys.argv[3]))
wall = time.perf_counter() - start
print(json.dumps({"wall_s": wall, "mrsd": compare_mixes(est.mix, song.mix, song.sample_rate).mrsd,
                  "values": est.params.values.tolist(),
                  "info": {k: v for k, v in est.info.items() if isinstance(v, (int, float, str))}}))
"""


def _wall_clock_worktree() -> Path:
    """A worktree of :data:`WALL_CLOCK_COMMIT` (made once)."""
    target = Path(__file__).resolve().parent / ".cache" / f"wall-clock-{WALL_CLOCK_COMMIT}"
    if not (target / "src" / "mixinvert").is_dir():
        subprocess.run(["git", "-C", str(bench_eami.REPO), "worktree", "add", "--detach", str(target),
                        WALL_CLOCK_COMMIT], check=True)
    return target


def _run_wall_clock(corpora_dir: Path, method: str, seconds: float) -> dict:
    """``method`` with a budget of ``seconds`` of wall time, as the code of :data:`WALL_CLOCK_COMMIT` ran it."""
    import json
    import os

    tree = _wall_clock_worktree()
    env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{tree / 'bench'}"}
    out = subprocess.run([sys.executable, "-c", _WALL_CLOCK_RUNNER, str(corpora_dir), method, str(seconds),
                          str(tree / "src")], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def budget(corpora_dir: Path) -> dict:
    """A 30 s, 8-track song: eami+refine and colonel-reiss with work budgets of
    :data:`BUDGETS` units, beside the same methods with budgets of as many seconds of wall
    time as the code of :data:`WALL_CLOCK_COMMIT` counted them, in one run."""
    from mixinvert.methods.baseline import plain_sum
    from mixinvert.methods.run import run_method
    from mixinvert.metrics.audio import compare_mixes

    song = bench_baselines._built_song(corpora_dir, 8, 30.0, 1)
    truth = song.params.values
    res: dict = {"machine": bench_eami._machine(), "song": "30 s, 8 tracks", "budgets": list(BUDGETS), "runs": [],
                 "wall_clock_commit": WALL_CLOCK_COMMIT}
    res["sum_mrsd"] = compare_mixes(plain_sum(song), song.mix, song.sample_rate).mrsd

    def errors(values: np.ndarray) -> dict:
        err = np.abs(np.asarray(values) - truth)
        return {"median_gain_db": float(np.median(err[:, CONSOLE_V1.index("gain_db")])),
                "median_pan": float(np.median(err[:, CONSOLE_V1.index("pan")]))}

    for units in BUDGETS:
        for method in ("eami+refine", "colonel-reiss"):
            scored = run_method(song, method, rng=np.random.default_rng(0), options={"budget": units})
            est = scored.estimate
            run = {"method": method, "kind": "work", "budget": units, "wall_s": scored.seconds,
                   "work_used": est.info["budget"]["work_used"], "mrsd": scored.scores.mrsd,
                   **errors(est.params.values),
                   "info": {k: v for k, v in est.info.items() if isinstance(v, (int, float, str))}}
            res["runs"].append(run)
            print(f"{method} {units:g} units: MRSD {run['mrsd']:.3f} in {scored.seconds:.1f} s", file=sys.stderr)
            old = _run_wall_clock(corpora_dir, method, units)
            res["runs"].append({"method": method, "kind": "wall clock", "budget": units, "wall_s": old["wall_s"],
                                "mrsd": old["mrsd"], **errors(old["values"]), "info": old["info"]})
            print(f"{method} {units:g} s (wall clock, {WALL_CLOCK_COMMIT}): MRSD {old['mrsd']:.3f} in "
                  f"{old['wall_s']:.1f} s", file=sys.stderr)
            _save("refine_budget", res)
    _plot_budget(res)
    return res


def prices(corpora_dir: Path) -> dict:
    """Time each kind of work that a budget pays for, per second of audio per track, on the
    budget table's 30 s, 8-track song (fastest of a few runs: the machine's quiet speed),
    against :data:`mixinvert.work.PRICES`; then a whole eami+refine and colonel-reiss
    run each, with their work used against the seconds they took."""
    from dataclasses import asdict, replace

    from mixinvert.console.match import match_gain_wet
    from mixinvert.console.render import Console
    from mixinvert.dsp.excerpts import choose_excerpts_covering
    from mixinvert.methods.colonel_reiss import start_point
    from mixinvert.methods.refine.objective import ExcerptObjective
    from mixinvert.methods.refine.pipeline import RefineConfig, WholeSongCheck
    from mixinvert.methods.refine.uncertainty import undetermined_settings
    from mixinvert.methods.registry import get_method
    from mixinvert.models.checkpoint import load_model
    from mixinvert.models.predict import predict_song
    from mixinvert.twin.fit import fit_twin
    from mixinvert.work import PRICES, PRICES_V2, span_seconds

    song = bench_baselines._built_song(corpora_dir, 8, 30.0, 1)
    sr, n, seconds = song.sample_rate, song.num_tracks, song.num_samples / song.sample_rate
    values = song.params.values

    def fastest(work, times: int = 3) -> float:
        best = np.inf
        for _ in range(times):
            t = time.perf_counter()
            work()
            best = min(best, time.perf_counter() - t)
        return best

    config = RefineConfig()
    measured: dict[str, float] = {}
    check = WholeSongCheck(song)
    measured["score"] = fastest(lambda: check.mrsd_of(song.mix)) / seconds
    excerpts = choose_excerpts_covering(song.mix, song.tracks, sr, count=config.search_excerpts,
                                        seconds=config.search_excerpt_seconds, preroll_seconds=config.preroll_seconds)
    objective = ExcerptObjective(song.tracks, song.mix, sr, excerpts, values)
    batch = [values[0]] * (2 * objective.workers)
    objective.track_losses(0, batch)  # warm-up: threads and windows
    per_eval = fastest(lambda: objective.track_losses(0, batch)) / len(batch)
    measured["evaluation"] = per_eval / sum(span_seconds(excerpts, sr))
    console = Console(song.tracks, sr)
    measured["render"] = fastest(lambda: console.render(values), 2) / (n * seconds)
    twin_excerpts = choose_excerpts_covering(song.mix, song.tracks, sr, count=config.twin_excerpts,
                                             seconds=config.twin_excerpt_seconds, preroll_seconds=config.preroll_seconds)
    twin_span = sum(s + config.twin.tail_seconds for s in span_seconds(twin_excerpts, sr))
    p0 = start_point(song)
    k = 2 * len(twin_excerpts)  # whole cycles over the excerpts

    def fit(steps: int, eval_every: int) -> None:
        fit_twin(song.tracks, song.mix, sr, p0, replace(config.twin, steps=steps, eval_every=eval_every,
                                                        patience=10**6), excerpts=twin_excerpts)

    t_setup = fastest(lambda: fit(0, 10**6), 2)
    t_steps = fastest(lambda: fit(k, 10**6), 2)
    t_evals = fastest(lambda: fit(k, 1), 2)
    measured["twin_step"] = (t_steps - t_setup) / k / (n * twin_span / len(twin_excerpts))
    measured["twin_eval"] = (t_evals - t_steps) / k / (n * twin_span)
    net, _, _ = load_model(None)
    measured["network"] = fastest(lambda: predict_song(net, song.tracks, song.mix, sr), 2) / (n * seconds)
    measured["match"] = fastest(lambda: match_gain_wet(song.tracks, sr, values, song.mix), 2) / (n * seconds)
    measured["rules"] = fastest(lambda: undetermined_settings(song.tracks, sr, values), 2) / (n * seconds)
    # console v2 is timed on the real songs (what it is for), the mean over them; on the
    # synthetic song where they are missing
    v2_songs = [bench_real.load_real_song(d) for d in bench_real.song_dirs([REAL_DEV])] if REAL_DEV.is_dir() else []
    v2_measured = [_measure_v2(s, config, fastest) for s in v2_songs or [song]]
    measured_v2 = {k: float(np.mean([m[k] for m in v2_measured])) for k in v2_measured[0]}
    res: dict = {"machine": bench_eami._machine(), "song": "30 s, 8 tracks", "measured": measured,
                 "prices": asdict(PRICES), "measured_v2": measured_v2, "prices_v2": asdict(PRICES_V2),
                 "v2_songs": [s.name for s in v2_songs] or ["30 s, 8 tracks"], "runs": []}
    for name, value in measured.items():
        print(f"{name}: measured {value:.5f} s per track-second, price {getattr(PRICES, name):.5f}", file=sys.stderr)
    for name, value in measured_v2.items():
        print(f"{name} (v2): measured {value:.5f} s per track-second, price {getattr(PRICES_V2, name):.5f}",
              file=sys.stderr)
    for method, console in (("eami+refine", "v1"), ("colonel-reiss", "v1"), ("eami+refine", "v2"),
                            ("colonel-reiss", "v2")):
        start = time.perf_counter()
        options = {"console": console} if console != "v1" else {}
        est = get_method(method).fn(song, rng=np.random.default_rng(0), **options)
        wall = time.perf_counter() - start
        label = method if console == "v1" else f"{method}, console v2"
        res["runs"].append({"method": label, "wall_s": wall, "work_used": est.info["budget"]["work_used"]})
        print(f"{label}: {est.info['budget']['work_used']:.1f} units in {wall:.1f} s", file=sys.stderr)
    return res


def _measure_v2(song, config, fastest) -> dict[str, float]:
    """The kinds of work whose price differs on console v2 (a render, a candidate, a twin
    step and evaluation) and the alignment v2 starts with, timed on ``song`` as
    :func:`prices` times them on v1, at colonel-reiss's v2 start (compressors and sends
    barely on)."""
    from dataclasses import replace

    from mixinvert.console.render_v2 import ConsoleV2
    from mixinvert.console.schema import CONSOLE_V2
    from mixinvert.dsp.alignment import estimate_alignment
    from mixinvert.dsp.excerpts import choose_excerpts_covering
    from mixinvert.methods.colonel_reiss import free_masks_v2, start_point_v2
    from mixinvert.methods.refine.objective import ExcerptObjective
    from mixinvert.twin.fit import fit_twin
    from mixinvert.work import span_seconds

    sr, n, seconds = song.sample_rate, song.num_tracks, song.num_samples / song.sample_rate
    excerpts, twin_excerpts = (
        choose_excerpts_covering(song.mix, song.tracks, sr, count=count, seconds=length,
                                 preroll_seconds=config.preroll_seconds)
        for count, length in ((config.search_excerpts, config.search_excerpt_seconds),
                              (config.twin_excerpts, config.twin_excerpt_seconds)))
    p0, ps0, _ = start_point_v2(song, CONSOLE_V2, align=False)
    values, shared = CONSOLE_V2.denormalize(p0), CONSOLE_V2.shared.denormalize(ps0)
    out: dict[str, float] = {}
    console = ConsoleV2(song.tracks, sr)
    out["render"] = fastest(lambda: console.render(values, shared), 2) / (n * seconds)
    out["alignment"] = fastest(lambda: [estimate_alignment(t, song.mix, sr) for t in song.tracks], 2) / (n * seconds)
    objective = ExcerptObjective(song.tracks, song.mix, sr, excerpts, values, schema=CONSOLE_V2, shared=shared)
    batch = [values[0]] * (2 * objective.workers)
    objective.track_losses(0, batch)  # warm-up
    out["evaluation"] = fastest(lambda: objective.track_losses(0, batch)) / len(batch) / sum(span_seconds(excerpts, sr))
    free, free_shared = free_masks_v2(song, CONSOLE_V2)
    twin_span = sum(s + config.twin.tail_seconds for s in span_seconds(twin_excerpts, sr))
    k = 2 * len(twin_excerpts)

    def fit(steps: int, eval_every: int) -> None:
        fit_twin(song.tracks, song.mix, sr, p0, replace(config.twin, steps=steps, eval_every=eval_every,
                                                        patience=10**6), excerpts=twin_excerpts, schema=CONSOLE_V2,
                 free=free[None, :], shared_start=ps0, free_shared=free_shared)

    t_setup = fastest(lambda: fit(0, 10**6), 2)
    t_steps = fastest(lambda: fit(k, 10**6), 2)
    t_evals = fastest(lambda: fit(k, 1), 2)
    out["twin_step"] = (t_steps - t_setup) / k / (n * twin_span / len(twin_excerpts))
    out["twin_eval"] = (t_evals - t_steps) / k / (n * twin_span)
    return out



#: Work budgets of the side-by-side comparison (units), besides each method's default.
COMPARE_BUDGETS = (20.0, 60.0)
#: The comparison's synthetic songs: a corpus of its own (not the shipped model's training
#: corpus), each song cut to its first tracks with sound.
COMPARE_CORPUS = ("songs", 3, 10.0, 7)
COMPARE_MAX_TRACKS = 6
REAL_DEV = bench_eami.REPO.parent / "shared" / "data" / "real-dev"


def other_engine_mix(tracks, values: np.ndarray, sample_rate: int) -> np.ndarray:
    """The settings ``values`` (console v1's) mixed by another engine than console v1:
    shelves of Q 1.0 (v1: 0.7071), a peak 1.5 times narrower, a linear balance pan law
    (v1: constant power), a narrower reverb without JUCE's doubled dry path, and a bus
    compressor on the mix (-18 dB, 2.5:1). A stand-in for a DAW whose processors differ
    from the ones the methods model."""
    import pedalboard as pb

    mix = np.zeros((2, tracks[0].shape[-1]), dtype=np.float32)
    for x, row in zip(tracks, values):
        v = dict(zip(CONSOLE_V1.names, (float(t) for t in row)))
        board = pb.Pedalboard([
            pb.Gain(v["gain_db"]),
            pb.LowShelfFilter(v["eq_low_shelf_cutoff_hz"], v["eq_low_shelf_gain_db"], q=1.0),
            pb.PeakFilter(v["eq_peak_cutoff_hz"], v["eq_peak_gain_db"], q=1.5 * v["eq_peak_q"]),
            pb.HighShelfFilter(v["eq_high_shelf_cutoff_hz"], v["eq_high_shelf_gain_db"], q=1.0),
            pb.Compressor(v["comp_threshold_db"], v["comp_ratio"], v["comp_attack_ms"], v["comp_release_ms"]),
        ])
        y = board(np.asarray(x, dtype=np.float32), sample_rate)
        y = np.vstack([y, y]) if y.shape[0] == 1 else y
        pan = v["pan"]
        y = y * np.array([[min(1.0, 1.0 - pan)], [min(1.0, 1.0 + pan)]], dtype=np.float32)
        if v["reverb_wet"] > 0:
            y = pb.Reverb(room_size=v["reverb_room_size"], damping=v["reverb_damping"], wet_level=v["reverb_wet"],
                          dry_level=0.5 * (1.0 - v["reverb_wet"]), width=0.7)(y, sample_rate) * 2.0
        mix += y
    bus = pb.Compressor(threshold_db=-18.0, ratio=2.5, attack_ms=10.0, release_ms=150.0)
    return bus(mix, sample_rate)


def _compare_songs(corpora_dir: Path) -> dict[str, list]:
    """The comparison's songs: in-model (console v1), mismatched (:func:`other_engine_mix`)
    and real (``../shared/data/real-dev``, the engineers' own mixes)."""
    from mixinvert.console.render import Console
    from mixinvert.data.dataset import list_song_dirs
    from mixinvert.data.song import Song, load_song, load_tracks_and_mix

    preset, n_songs, seconds, seed = COMPARE_CORPUS
    target = corpora_dir / "compare"
    subprocess.run([*bench_eami.MIXINVERT, "corpus", str(target), "--preset", preset, "--songs", str(n_songs),
                    "--seconds", str(seconds), "--seed", str(seed), "--kit", str(bench_eami.KIT)], check=True)
    sets: dict[str, list] = {"in-model": [], "mismatched": [], "real": []}
    for d in list_song_dirs(target):
        song = load_song(d, require_mix=True)
        keep = [i for i, t in enumerate(song.tracks) if np.abs(t).max() > 1e-3][:COMPARE_MAX_TRACKS]
        tracks = [song.tracks[i] for i in keep]
        names = tuple(song.track_names[i] for i in keep)
        values = song.params.values[keep]
        sr = song.sample_rate
        sets["in-model"].append(Song(song.name, names, tracks, sr, Console(tracks, sr).render(values)))
        sets["mismatched"].append(Song(song.name, names, tracks, sr, other_engine_mix(tracks, values, sr)))
    for d in sorted(p for p in REAL_DEV.iterdir() if p.is_dir()):
        sets["real"].append(load_tracks_and_mix(sorted((d / "tracks").glob("*.flac")), d / "mix.flac", name=d.name))
    return sets


def compare(corpora_dir: Path) -> dict:
    """eami+refine against colonel-reiss at the same work budgets, on in-model, mismatched and
    real songs: MRSD / plain sum, work used and seconds, per song and budget."""
    from mixinvert.methods.baseline import plain_sum
    from mixinvert.methods.run import run_method
    from mixinvert.metrics.audio import compare_mixes

    res: dict = {"machine": bench_eami._machine(), "budgets": list(COMPARE_BUDGETS), "corpus": list(COMPARE_CORPUS),
                 "max_tracks": COMPARE_MAX_TRACKS, "rows": []}
    for set_name, songs in _compare_songs(corpora_dir).items():
        for song in songs:
            sum_mrsd = compare_mixes(plain_sum(song), song.mix, song.sample_rate).mrsd
            for method in ("eami+refine", "colonel-reiss"):
                # eami+refine's default is a budget of 60 units; colonel-reiss's is none (its steps)
                for budget in (*COMPARE_BUDGETS, *((None,) if method == "colonel-reiss" else ())):
                    # console v1 named: this comparison is v1's (a song without settings would default to v2)
                    options = {"console": "v1", **({} if budget is None else {"budget": budget})}
                    scored = run_method(song, method, rng=np.random.default_rng(0), options=options)
                    est, wall, mrsd = scored.estimate, scored.seconds, scored.scores.mrsd
                    res["rows"].append({"set": set_name, "song": song.name, "tracks": song.num_tracks,
                                        "seconds_audio": song.num_samples / song.sample_rate, "method": method,
                                        "budget": budget, "work_used": est.info["budget"]["work_used"],
                                        "wall_s": wall, "mrsd": mrsd, "sum_mrsd": sum_mrsd})
                    print(f"{set_name} {song.name} {method} {budget}: MRSD/sum {mrsd / sum_mrsd:.3f}, "
                          f"{est.info['budget']['work_used']:.1f} units in {wall:.1f} s", file=sys.stderr)
                    _save("refine_compare", res)
    return res


def _plot_budget(res: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    for method, color in (("eami+refine", "C0"), ("colonel-reiss", "C1")):
        for kind, style in (("work", "-o"), ("wall clock", ":s")):
            runs = [r for r in res["runs"] if r["method"] == method and r.get("kind", "wall clock") == kind]
            if runs:
                ax.plot([r["wall_s"] for r in runs], [r["mrsd"] for r in runs], style, color=color,
                        label=f"{method}, {kind} budget")
    ax.axhline(res["sum_mrsd"], color="gray", linestyle=":", label="plain sum")
    ax.set_xlabel("wall time (s) for budgets " + ", ".join(f"{b:g}" for b in res["budgets"]) + " (units or s)")
    ax.set_ylabel("MRSD")
    ax.set_yscale("log")
    ax.set_title(f"MRSD against time, {res['song']}, 2 CPU cores")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(bench_eami.RESULTS / "refine_budget.png")
    plt.close(fig)


def starts(corpora_dir: Path, limit: int, steps: int, songs: list[str] | None = None) -> dict:
    """``songs``: these test songs (added to the stored rows) instead of the first ``limit``."""
    from dataclasses import replace

    from mixinvert.console.render import Console
    from mixinvert.data.dataset import list_song_dirs
    from mixinvert.data.song import load_song
    from mixinvert.dsp.excerpts import choose_excerpts_covering
    from mixinvert.methods.colonel_reiss import start_point
    from mixinvert.methods.refine.pipeline import (
        ALL_EFFECTS,
        RefineConfig,
        _alive,
        free_mask,
    )
    from mixinvert.metrics.audio import compare_mixes
    from mixinvert.models.checkpoint import load_model
    from mixinvert.models.predict import predict_song
    from mixinvert.twin.fit import fit_twin

    config = RefineConfig()
    twin_config = replace(config.twin, steps=steps, budget_seconds=None, patience=10**6)
    free = free_mask(ALL_EFFECTS)
    partial = free_mask(config.network_effects)
    net, _, _ = load_model(None)
    res: dict = {"machine": bench_eami._machine(), "limit": limit, "steps": steps, "rows": [], "picked": []}
    dirs = list_song_dirs(corpora_dir / "songs", "test")
    if songs:
        stored = _load("refine_starts")
        if stored and stored["steps"] == steps:
            res.update(limit=stored["limit"], rows=stored["rows"], picked=stored.get("picked", []))
        res["picked"] = sorted(set(res["picked"]) | set(songs))
        dirs = [d for d in dirs if d.name in songs]
    else:
        dirs = dirs[:limit]
    for d in dirs:
        song = load_song(d, require_mix=True)
        truth = song.params.values
        estimate = predict_song(net, song.tracks, song.mix, song.sample_rate)
        neutral = start_point(song)
        begin = {"eami": estimate, "eami-partial": np.where(partial, estimate, neutral), "sum": neutral}
        excerpts = choose_excerpts_covering(song.mix, song.tracks, song.sample_rate, count=config.twin_excerpts,
                                            seconds=config.twin_excerpt_seconds, preroll_seconds=config.preroll_seconds)
        for name, p in begin.items():
            t = time.perf_counter()
            fit = fit_twin(song.tracks, song.mix, song.sample_rate, _alive(p, free, song), twin_config,
                           excerpts=excerpts)
            values = CONSOLE_V1.denormalize(fit.p)
            mix = Console(song.tracks, song.sample_rate).render(values)
            res["rows"].append({
                "song": song.name, "tracks": song.num_tracks, "start": name, "seconds": time.perf_counter() - t,
                "mrsd": compare_mixes(mix, song.mix, song.sample_rate).mrsd,
                "median_gain_db": float(np.median(np.abs(values - truth)[:, CONSOLE_V1.index("gain_db")])),
                "twin_loss_start": fit.start_loss, "twin_loss": fit.loss})
            print(f"{song.name} from {name}: MRSD {res['rows'][-1]['mrsd']:.3f}", file=sys.stderr)
            _save("refine_starts", res)
    return res


def effects(corpora_dir: Path, limit: int, seconds: float) -> dict:
    from dataclasses import replace

    from mixinvert.console.render import Console
    from mixinvert.data.dataset import list_song_dirs
    from mixinvert.data.song import load_song
    from mixinvert.methods.refine import RefineConfig, refine
    from mixinvert.metrics.audio import compare_mixes

    res: dict = {"machine": bench_eami._machine(), "limit": limit, "budget_s": seconds, "ladder": {}}
    for name in bench_eami.CORPORA:
        songs = [load_song(d, require_mix=True) for d in list_song_dirs(corpora_dir / name, "test")[:limit]]
        res["ladder"][name] = {}
        for label, fx in LADDER.items():
            scores = []
            for song in songs:
                out = refine(song, replace(RefineConfig(budget_seconds=seconds), effects=fx), seed=0)
                mix = Console(song.tracks, song.sample_rate).render(CONSOLE_V1.denormalize(out.p))
                scores.append(compare_mixes(mix, song.mix, song.sample_rate).mrsd)
                _dot(1)
            res["ladder"][name][label] = {"mrsd": float(np.mean(scores)), "per_song": scores}
        print(file=sys.stderr)
    return res


def _prices_markdown() -> list[str]:
    pr = _load("refine_prices")
    if not pr:
        return []
    out = [
        "## Work budgets: prices",
        "",
        "`python bench/bench_refine.py prices --corpora-dir DIR`: each kind of work a budget pays for, timed on "
        f"{pr['song']} (fastest of a few runs), in seconds per second of audio per track, against its price in "
        "`mixinvert.work.PRICES` (units, about seconds of a quiet 2-core machine); then each method at "
        f"its default budget, with the work it used against the seconds it took. Hardware: {pr['machine']}.",
        "",
        "| work | measured (s) | price (units) | measured / price |",
        "|---|---|---|---|",
    ]
    for name, value in pr["measured"].items():
        price = pr["prices"].get(name)
        ratio = f"{value / price:.2f}" if price else "-"
        out.append(f"| {name} | {value:.5f} | {price if price is not None else '-'} | {ratio} |")
    if "measured_v2" in pr:
        out += ["", "Console v2 (`mixinvert.work.PRICES_V2`; the kinds of work whose price differs from v1's), timed "
                f"on {', '.join(pr['v2_songs'])} (the mean):", "",
                "| work, console v2 | measured (s) | price (units) | measured / price |", "|---|---|---|---|"]
        for name, value in pr["measured_v2"].items():
            price = pr["prices_v2"][name]
            out.append(f"| {name} | {value:.5f} | {price} | {value / price:.2f} |")
    out += ["", "| method (default budget) | work used (units) | wall (s) | seconds per unit |", "|---|---|---|---|"]
    for r in pr["runs"]:
        out.append(f"| {r['method']} | {r['work_used']:.1f} | {r['wall_s']:.1f} | {r['wall_s'] / r['work_used']:.2f} |")
    return out + [""]


def _compare_markdown() -> list[str]:
    cp = _load("refine_compare")
    if not cp:
        return []
    preset, n, seconds, seed = cp["corpus"]
    out = [
        "## eami+refine against colonel-reiss at the same work, on in-model, mismatched and real songs",
        "",
        "`python bench/bench_refine.py compare --corpora-dir DIR`: "
        f"in-model: {n} songs of a `{preset}` corpus of its own ({seconds:g} s, seed {seed}; not the shipped "
        f"model's training corpus), each cut to its first {cp['max_tracks']} tracks with sound and mixed by console "
        "v1; mismatched: the same tracks and settings mixed by another engine (`other_engine_mix`: other shelf and "
        "peak Q, a linear pan law, another reverb width and dry path, a bus compressor); real: the two songs of "
        "`../shared/data/real-dev` with their engineers' mixes. Both methods at each work budget and at their "
        "defaults (eami+refine: 60 units; colonel-reiss: its 200 steps, no unit cap), one run, seed 0. Mean "
        f"MRSD / plain sum over each set's songs, mean work used and mean wall seconds. Hardware: {cp['machine']}.",
        "",
        "| songs | budget | eami+refine MRSD / sum | colonel-reiss MRSD / sum | eami+refine units / s | "
        "colonel-reiss units / s |",
        "|---|---|---|---|---|---|",
    ]
    rows = cp["rows"]
    for set_name in dict.fromkeys(r["set"] for r in rows):
        for budget in (*cp["budgets"], None):
            cells = []
            for method in ("eami+refine", "colonel-reiss"):
                these = [r for r in rows if r["set"] == set_name and r["method"] == method and r["budget"] == budget]
                cells.append(these)
            if not any(cells):
                continue

            def ratio(rs):
                return f"{np.mean([r['mrsd'] / r['sum_mrsd'] for r in rs]):.3f}" if rs else "-"

            def cost(rs):
                return f"{np.mean([r['work_used'] for r in rs]):.1f} / {np.mean([r['wall_s'] for r in rs]):.1f}" \
                    if rs else "-"

            label = f"{budget:g} units" if budget is not None else "default"
            out.append(f"| {set_name} ({len({r['song'] for r in cells[0] or cells[1]})}) | {label} | "
                       f"{ratio(cells[0])} | {ratio(cells[1])} | {cost(cells[0])} | {cost(cells[1])} |")
    return out + [""]


def markdown() -> str:
    parts: list[str] = []
    t1 = _load("refine_table1")
    if t1:
        parts += [
            "## eami+refine against every method (Table 1 analogue)",
            "",
            "`python bench/bench_refine.py table1 --corpora-dir DIR --limit N [--corpora NAME]`: `evaluate` on the "
            "first N test songs of each corpus (seed 0), every method at its default settings as they were when "
            "it ran, before work budgets (eami+refine: 60 s of wall time; colonel-reiss: 200 steps or 120 s); not "
            "rerun with work budgets since. "
            + "; ".join(f"{n}: first {t1[n]['limit']} songs, colonel-reiss rows from {t1[n]['colonel_reiss_from']}"
                        for n in bench_eami.CORPORA if n in t1)
            + f". Hardware: {t1['machine']}. Paper figures (ENST-Drums, MedleyDB) for scale.",
            "",
            *bench_eami.TABLE1_HEADER,
        ]
        parts += bench_eami.table1_rows(t1)
        parts.append("")
        for name in bench_eami.CORPORA:
            if name not in t1:
                continue
            m = t1[name]["mean"]
            r = m["eami+refine"]
            others = {k: v["mrsd"] for k, v in m.items() if k != "eami+refine"}
            best_other = min(others, key=others.get)
            parts.append(
                f"- {name}: eami+refine MRSD / sum {r['mrsd'] / m['sum']['mrsd']:.3f} (target <= 0.15), "
                f"best other method {best_other} {others[best_other]:.3f} vs {r['mrsd']:.3f}; median gain error "
                f"{r['median_gain_db']:.2f} dB (target < 0.5), median pan error {r['median_pan']:.3f} (target < 0.03); "
                f"true values inside the reported intervals (settings not flagged undetermined): "
                f"{100 * r.get('interval_coverage', float('nan')):.0f} %.")
        parts.append("")
        parts += bench_eami.eami_model_note(t1)
    parts += _prices_markdown()
    bd = _load("refine_budget")
    if bd:
        parts += [
            "## eami+refine and colonel-reiss: MRSD against the budget, in work units and in seconds",
            "",
            f"`python bench/bench_refine.py budget --corpora-dir DIR`: {bd['song']} built from corpus tracks and "
            f"mixed with known settings (plain sum MRSD {bd['sum_mrsd']:.3f}). Each method with a work budget of "
            "`--budget` units (today's code; the answer does not depend on the machine's load), and beside it, in "
            f"the same run, the code of commit {bd['wall_clock_commit']} with a budget of as many seconds of wall "
            "time (`--budget-seconds`, as it was counted before work budgets). "
            f"Hardware: {bd['machine']}.",
            "",
            "![MRSD against wall time](bench/results/refine_budget.png)",
            "",
            "| budget | method | kind | work used (units) | wall (s) | MRSD | MRSD / sum | median gain err (dB) | "
            "median pan err | stages |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in bd["runs"]:
            i = r["info"]
            stages = (f"chose {i.get('chosen')}; twin {i.get('twin_steps', 0)} steps, "
                      f"search {i.get('search_evaluations', 0)} renders "
                      f"(distance {i.get('search_loss_start', float('nan')):.3f} to {i.get('search_loss', float('nan')):.3f})"
                      if r["method"] == "eami+refine"
                      else f"{i.get('steps')} steps ({i.get('stopped')})")
            used = f"{r['work_used']:.1f}" if "work_used" in r else "-"
            parts.append(f"| {r['budget']:g} | {r['method']} | {r['kind']} | {used} | {r['wall_s']:.1f} | "
                         f"{r['mrsd']:.3f} | {r['mrsd'] / bd['sum_mrsd']:.3f} | {r['median_gain_db']:.2f} | "
                         f"{r['median_pan']:.3f} | {stages} |")
        parts.append("")
    parts += _compare_markdown()
    st = _load("refine_starts")
    if st:
        names = list(dict.fromkeys(r["start"] for r in st["rows"]))
        songs = list(dict.fromkeys(r["song"] for r in st["rows"]))
        parts += [
            "## Where the twin starts",
            "",
            f"`python bench/bench_refine.py starts --corpora-dir DIR --limit {st['limit']} --steps {st['steps']}`: "
            f"{st['steps']} twin steps (no time budget) from the whole network estimate (`eami`), from its gain, pan "
            f"and reverb alone on a flat EQ and an idle compressor (`eami-partial`, `RefineConfig.network_effects`) "
            f"and from the plain sum (`sum`: colonel-reiss's start and, since these figures, eami+refine's), "
            f"on the first {st['limit']} test songs of the `songs` corpus"
            + (f", and {', '.join(st['picked'])} (`--songs`: where eami-partial was once seen to help)"
               if st.get("picked") else "")
            + "; whole-song MRSD through the real console, and the median gain error. "
            f"Hardware: {st['machine']}.",
            "",
            "| song | tracks | " + " | ".join(f"{n}: MRSD, gain err (dB)" for n in names) + " |",
            "|---|---|" + "---|" * len(names),
        ]
        by = {(r["song"], r["start"]): r for r in st["rows"]}
        for song in songs:
            cells = [f"{by[song, n]['mrsd']:.3f}, {by[song, n]['median_gain_db']:.2f}" if (song, n) in by else "-"
                     for n in names]
            tracks = next(r["tracks"] for r in st["rows"] if r["song"] == song)
            parts.append(f"| {song} | {tracks} | " + " | ".join(cells) + " |")
        means = [np.mean([r["mrsd"] for r in st["rows"] if r["start"] == n]) for n in names]
        gains = [np.median([r["median_gain_db"] for r in st["rows"] if r["start"] == n]) for n in names]
        parts.append("| mean MRSD, median of the gain errors | | "
                     + " | ".join(f"{m:.3f}, {g:.2f}" for m, g in zip(means, gains)) + " |")
        parts.append("")
    fx = _load("refine_effects")
    if fx:
        names = list(fx["ladder"])
        parts += [
            "## What each effect contributes to the fit",
            "",
            f"`python bench/bench_refine.py effects --corpora-dir DIR --limit {fx['limit']} --budget {fx['budget_s']:g}`: "
            f"eami+refine fitting only the listed effects (the others held neutral: EQ flat, ratio 1:1, reverb dry), "
            f"{fx['budget_s']:g} s per song, first {fx['limit']} test songs of each corpus; mean MRSD. "
            f"Hardware: {fx['machine']}.",
            "",
            "| effects fitted | " + " | ".join(f"{n} MRSD" for n in names) + " |",
            "|---|" + "---|" * len(names),
        ]
        for label in LADDER:
            parts.append(f"| {label} | " + " | ".join(f"{fx['ladder'][n][label]['mrsd']:.3f}" for n in names) + " |")
        parts.append("")
    return "\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("table1", "budget", "prices", "compare", "starts", "effects", "markdown"))
    ap.add_argument("--corpora-dir", type=Path, default=Path(__file__).resolve().parent / ".cache" / "corpora")
    ap.add_argument("--limit", type=int, default=None, help="first N test songs of each corpus")
    ap.add_argument("--budget", type=float, default=30.0, help="effects: seconds per song")
    ap.add_argument("--steps", type=int, default=100, help="starts: twin steps from each start")
    ap.add_argument("--songs", default=None, help="starts: comma-separated test songs to add")
    ap.add_argument("--corpora", default=",".join(bench_eami.CORPORA), help="table1: comma-separated corpora")
    ap.add_argument("--reuse-colonel-reiss", nargs="?", const="baselines_table1", default=None,
                    choices=("baselines_table1", "refine_table1"),
                    help="table1: take colonel-reiss's rows from that results file (default baselines_table1) "
                         "instead of rerunning it")
    args = ap.parse_args()
    if args.what == "table1":
        _save("refine_table1", table1(args.corpora_dir, args.limit, args.reuse_colonel_reiss, args.corpora.split(",")))
    elif args.what == "budget":
        _save("refine_budget", budget(args.corpora_dir))
    elif args.what == "prices":
        _save("refine_prices", prices(args.corpora_dir))
    elif args.what == "compare":
        _save("refine_compare", compare(args.corpora_dir))
    elif args.what == "starts":
        _save("refine_starts", starts(args.corpora_dir, args.limit or 4, args.steps,
                                      args.songs.split(",") if args.songs else None))
    elif args.what == "effects":
        _save("refine_effects", effects(args.corpora_dir, args.limit or 4, args.budget))
    print(markdown())


if __name__ == "__main__":
    main()
