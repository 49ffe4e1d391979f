"""EAMI benchmarks: Table 1 and Table 2 analogues, the shipped model's training, inversion speed.

Training takes tens of minutes on a 2-core CPU, so each experiment writes its figures to
``bench/results/*.json`` and :func:`markdown` renders BENCHMARKS.md sections from those
files; ``run_all.py`` re-renders them without retraining. To recompute::

    python bench/bench_eami.py corpora  --corpora-dir DIR   # the two benchmark corpora (seeded)
    python bench/bench_eami.py table1   --corpora-dir DIR [--model PATH] [--previous-model OLD.pt]
    python bench/bench_eami.py table2   --corpora-dir DIR --runs-dir RUNS
    python bench/bench_eami.py training --run RUN_DIR [--run RUN_DIR ...] --corpora-dir DIR [--console v2]
        # record how the shipped model was trained (runs in order; if the shipped file is an
        # `average-models` result, its sources and it are scored on the last run's validation songs)
    python bench/bench_eami.py speed                        # invert on a 30 s, 16-track song
    python bench/bench_eami.py match    --corpora-dir DIR   # the gain and wet match's ridge, on validation songs
    python bench/bench_eami.py oracle   --corpora-dir DIR   # what each effect is worth (true settings)
    python bench/bench_eami.py readable --corpora-dir DIR   # what the network's inputs reveal of the settings

The corpora are made by ``mixinvert corpus`` with the settings in :data:`CORPORA` (seeded,
so the same command makes the same songs on any machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
KIT = REPO.parent / "shared" / "data" / "muldjordkit"
MIDI = REPO.parent / "shared" / "data" / "groove" / "groove_1_funk-groove1_138.mid"
MIXINVERT = [sys.executable, "-m", "mixinvert"]

#: The benchmark corpora: (preset, songs, seconds, seed). Splits 8:1:1.
CORPORA = {"songs": ("songs", 320, 10.0, 1), "drums": ("drums", 200, 10.0, 2)}
#: EAMI Table 1 (MAE, MRSD) on ENST-Drums and MedleyDB (sum/random from bench_quality), and Table 2 (MedleyDB).
PAPER_T1 = {  # EAMI Table 1: (MAE, MRSD) on ENST-Drums ("drums") and MedleyDB ("songs")
    **bench_quality.PAPER,
    "eami": {"drums": (0.033, 2.274), "songs": (0.082, 3.423)},
    "colonel-reiss": {"drums": (0.041, 2.435), "songs": (0.091, 4.281)},
    "barchiesi-reiss": {"drums": (0.063, 2.838), "songs": (0.122, 5.723)},
}
PAPER_T2 = {
    "none": (0.207, 5.643),
    "random": (0.178, 5.073),
    "fixed-0.05": (0.125, 4.235),
    "fixed-0.1": (0.127, 4.438),
    "fixed-0.5": (0.133, 4.574),
    "exp": (0.082, 3.423),
}
#: Table 2: the same budget for every mode (iterations, songs per iteration, samples, epochs).
T2_BUDGET = {"iterations": 6, "songs_per_iteration": 24, "samples": 2, "epochs": 6, "excerpt_seconds": 3.0,
             "valid_songs": 8, "sigma_init": 0.5, "gamma": 0.7, "lr": 1e-3}
T2_MODES = {  # name: (--sampling, --sigma-init)
    "none": ("none", None),
    "random": ("random", None),
    "fixed-0.05": ("fixed", 0.05),
    "fixed-0.1": ("fixed", 0.1),
    "fixed-0.5": ("fixed", 0.5),
    "exp": ("exp", None),
    # beyond the paper: half of each song's renders from the engineer prior (same number of renders)
    "exp+prior": ("exp", None),
}
#: Budget entries a Table 2 mode changes (renders per song stay 2: one around the
#: network's answer, one from the prior).
T2_OVERRIDES = {"exp+prior": {"samples": 1, "prior_samples": 1}}


def _machine() -> str:
    import torch

    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} (CPU, {torch.get_num_threads()} threads)"


def _save(name: str, obj: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(obj, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return path


def run_or_render(doc: str, name: str, run, markdown, configure=None) -> None:
    """The command line of a benchmark that stores its results: ``run`` computes them into
    ``bench/results/NAME.json`` then prints the section; ``markdown`` only prints it.
    ``configure(parser)`` may add options and return ``args -> run's keyword arguments``."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("run", "markdown"))
    kwargs_of = configure(ap) if configure is not None else (lambda args: {})
    args = ap.parse_args()
    if args.what == "run":
        _save(name, run(**kwargs_of(args)))
    print(markdown())


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def make_corpora(corpora_dir: Path) -> dict[str, Path]:
    out = {}
    for name, (preset, songs, seconds, seed) in CORPORA.items():
        target = corpora_dir / name
        cmd = [*MIXINVERT, "corpus", str(target), "--preset", preset, "--songs", str(songs),
               "--seconds", str(seconds), "--seed", str(seed), "--kit", str(KIT)]
        if MIDI.is_file():
            cmd += ["--midi", str(MIDI)]
        subprocess.run(cmd, check=True)  # resumes/keeps a finished corpus
        out[name] = target
    return out


#: Table 1's row for ``eami --no-match``: the network's settings as they come out of it.
NO_MATCH = "eami --no-match (network only)"


def table1(corpora_dir: Path, model: Path | None, methods: tuple[str, ...] = ("sum", "random", "eami"),
           previous: Path | None = None) -> dict:
    """``evaluate`` on the test split of each benchmark corpus; with ``previous`` (an
    earlier model file), its eami row too, in the same run."""
    from mixinvert.evaluation import evaluate

    res = {"methods": list(methods), "model": str(model) if model else "shipped default", "machine": _machine(),
           "eami_model": model_digest(model), "eami_method_version": EAMI_METHOD_VERSION}
    prev_name = None
    if previous is not None:
        prev_name = f"eami, previous model ({model_digest(previous)})"
        res["methods"].append(prev_name)
    if "eami" in methods:  # the network's own estimate, without the least-squares gain and wet match
        res["methods"].append(NO_MATCH)
    for name in CORPORA:
        start = time.perf_counter()
        r = evaluate(corpora_dir / name, list(methods), split="test", seed=0,
                     options={"model": model} if model else None)
        res[name] = {"mean": {m: r.mean(m) for m in methods}, "songs": len({x.song for x in r.rows}),
                     "wall_s": time.perf_counter() - start}
        if "eami" in methods:
            rn = evaluate(corpora_dir / name, ["eami"], split="test", seed=0,
                          options={"match": False, **({"model": model} if model else {})})
            res[name]["mean"][NO_MATCH] = rn.mean("eami")
        if previous is not None:
            rp = evaluate(corpora_dir / name, ["eami"], split="test", seed=0, options={"model": previous})
            res[name]["mean"][prev_name] = rp.mean("eami")
    return res


def table2(corpora_dir: Path, runs_dir: Path, modes: tuple[str, ...] = tuple(T2_MODES)) -> dict:
    """Train one model per sampling mode on ``songs`` (same budget), evaluate each on its test split."""
    from mixinvert.evaluation import evaluate

    corpus = corpora_dir / "songs"
    from mixinvert.models.inverter import get_model_config

    res = {"budget": T2_BUDGET, "machine": _machine(), "modes": {}, "model_config": get_model_config("small").to_dict()}
    for mode in modes:
        sampling, sigma = T2_MODES[mode]
        b = {"prior_samples": 0, **T2_BUDGET, **T2_OVERRIDES.get(mode, {})}
        cmd = [*MIXINVERT, "train", str(corpus), "--out", str(runs_dir / f"t2-{mode}"), "--config", "small",
               "--quiet", "--sampling", sampling, "--iterations", str(b["iterations"]),
               "--songs-per-iteration", str(b["songs_per_iteration"]), "--samples", str(b["samples"]),
               "--epochs", str(b["epochs"]), "--excerpt-seconds", str(b["excerpt_seconds"]),
               "--valid-songs", str(b["valid_songs"]), "--gamma", str(b["gamma"]), "--lr", str(b["lr"]),
               "--sigma-init", str(sigma if sigma is not None else b["sigma_init"]),
               "--prior-samples", str(b["prior_samples"])]
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        train_s = time.perf_counter() - start
        model = runs_dir / f"t2-{mode}" / "model.pt"
        # the network as trained (the paper's table), and with the gain and wet match on top
        r = evaluate(corpus, ["eami"], split="test", seed=0, options={"model": model, "match": False})
        rm = evaluate(corpus, ["eami"], split="test", seed=0, options={"model": model})
        res["modes"][mode] = {**r.mean("eami"), "train_s": train_s, "mrsd_match": rm.mean("eami")["mrsd"],
                              "median_gain_db_match": rm.mean("eami").get("median_gain_db")}
        print(f"{mode}: MRSD {res['modes'][mode]['mrsd']:.3f}", file=sys.stderr)
    return res


#: Cumulative groups of true settings for the oracle table (the rest stays at the neutral console).
ORACLE_GROUPS = {
    "gain": ("gain_db",),
    "pan": ("pan",),
    "EQ": ("eq_low_shelf_cutoff_hz", "eq_low_shelf_gain_db", "eq_peak_cutoff_hz", "eq_peak_gain_db",
           "eq_peak_q", "eq_high_shelf_cutoff_hz", "eq_high_shelf_gain_db"),
    "compressor": ("comp_threshold_db", "comp_ratio", "comp_attack_ms", "comp_release_ms"),
    "reverb": ("reverb_room_size", "reverb_damping", "reverb_wet"),
}
ORACLE_SETS = (
    (), ("gain",), ("gain", "pan"), ("gain", "pan", "reverb"), ("gain", "pan", "EQ"),
    ("gain", "pan", "EQ", "reverb"), ("gain", "pan", "EQ", "compressor"),
    ("gain", "pan", "EQ", "compressor", "reverb"),
)


def oracle(corpora_dir: Path) -> dict:
    """MRSD when some settings are the true ones and the rest neutral: what each effect is worth."""
    from mixinvert.console.render import Console
    from mixinvert.console.schema import CONSOLE_V1
    from mixinvert.data.dataset import iter_songs
    from mixinvert.metrics.audio import compare_mixes
    from mixinvert.train.config import START_P

    res = {"machine": _machine()}
    for name in CORPORA:
        songs = list(iter_songs(corpora_dir / name, "test"))
        rows = {}
        for groups in ORACLE_SETS:
            cols = [CONSOLE_V1.index(p) for g in groups for p in ORACLE_GROUPS[g]]
            scores = []
            for song in songs:
                p = np.tile(START_P, (song.num_tracks, 1))
                p[:, cols] = song.params.normalized[:, cols]
                mix = Console(song.tracks, song.sample_rate).render(CONSOLE_V1.denormalize(p))
                scores.append(compare_mixes(mix, song.mix, song.sample_rate).mrsd)
            rows[" + ".join(groups) or "none (neutral console)"] = float(np.mean(scores))
        res[name] = {"songs": len(songs), "mrsd": rows}
    return res


#: Ridges of :func:`match_sweep` (the default, :data:`mixinvert.console.match.RIDGE`, is among them).
MATCH_RIDGES = (0.0, 0.003, 0.01, 0.03, 0.1)


def match_sweep(corpora_dir: Path, songs: int = 16) -> dict:
    """The least-squares gain and wet match on the shipped network's estimates, on the first
    ``songs`` validation songs of each corpus (where its ridge was chosen): no match, levels
    alone, and levels with wet levels for each ridge in :data:`MATCH_RIDGES`, side by side."""
    import torch

    from mixinvert.console.match import RIDGE, match_gain_wet
    from mixinvert.console.render import Console
    from mixinvert.console.schema import CONSOLE_V1
    from mixinvert.data.dataset import list_song_dirs
    from mixinvert.data.song import load_song
    from mixinvert.metrics.audio import compare_mixes
    from mixinvert.models.checkpoint import load_model
    from mixinvert.models.predict import predict_song

    torch.set_num_threads(2)
    net = load_model(None)[0]
    gi, wi = CONSOLE_V1.index("gain_db"), CONSOLE_V1.index("reverb_wet")
    variants = {"no match (network only)": None, f"levels only, ridge {RIDGE:g}": (RIDGE, False)}
    variants.update({f"levels + wet, ridge {r:g}": (r, True) for r in MATCH_RIDGES})
    res = {"machine": _machine(), "model": model_digest(), "default_ridge": RIDGE, "variants": list(variants),
           "split": "valid"}
    for name in CORPORA:
        acc = {v: {"mrsd": [], "gain": [], "wet": [], "seconds": []} for v in variants}
        dirs = list_song_dirs(corpora_dir / name, "valid")[:songs]
        for d in dirs:
            song = load_song(d, require_mix=True)
            values = CONSOLE_V1.denormalize(predict_song(net, song.tracks, song.mix, song.sample_rate))
            truth = song.params.values
            for v, how in variants.items():
                t0 = time.perf_counter()
                if how is None:
                    out, mix = values, Console(song.tracks, song.sample_rate).render(values)
                else:
                    m = match_gain_wet(song.tracks, song.sample_rate, values, song.mix, ridge=how[0], fit_wet=how[1])
                    out, mix = m.values, m.mix
                acc[v]["seconds"].append(time.perf_counter() - t0)
                acc[v]["mrsd"].append(compare_mixes(mix, song.mix, song.sample_rate).mrsd)
                acc[v]["gain"].extend(np.abs(out[:, gi] - truth[:, gi]).tolist())
                acc[v]["wet"].extend(np.abs(out[:, wi] - truth[:, wi]).tolist())
        res[name] = {"songs": len(dirs), "rows": {v: {
            "mrsd": float(np.mean(a["mrsd"])), "median_gain_db": float(np.median(a["gain"])),
            "mean_gain_db": float(np.mean(a["gain"])), "mean_wet": float(np.mean(a["wet"])),
            "seconds": float(np.mean(a["seconds"]))} for v, a in acc.items()}}
    return res


#: Input feature sets of :func:`readable`: the statistics branch's (from log-mel) and the transfer branch's.
READABLE_INPUTS = {
    "contrast statistics (log-mel)": "stats",
    "transfer spectra": "transfer",
    "transfer spectra + reverb channels": "transfer_reverb",
    "statistics + transfer spectra + reverb channels": "stats_reverb",
    "transfer spectra + reverb + compressor channels": "transfer_comp",
    "statistics + transfer spectra + reverb + compressor channels": "all",
}
READABLE_PARAMS = ("gain_db", "eq_low_shelf_gain_db", "eq_high_shelf_gain_db", "comp_threshold_db", "comp_ratio",
                   "pan", "reverb_wet")


def _readable_song(song_dir: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import torch

    from mixinvert.console.schema import CONSOLE_V1
    from mixinvert.data.song import load_song
    from mixinvert.models.inverter import contrast_statistics
    from mixinvert.models.predict import song_features, song_transfer

    torch.set_num_threads(1)
    song = load_song(song_dir)
    tf, mf = song_features(song.tracks, song.mix, song.sample_rate)
    stats = contrast_statistics(tf, mf.expand(len(tf), -1, -1, -1)).numpy()
    transfer = song_transfer(song.tracks, song.mix, song.sample_rate, reverb=True, compressor=True).flatten(1).numpy()
    return stats, transfer, CONSOLE_V1.normalize(song.params.values)


def readable(corpora_dir: Path, epochs: int = 40, seed: int = 0, workers: int = 2) -> dict:
    """How much of the true settings each input of the network reveals, on its own.

    Supervised, on the corpora's true settings (which embodied self-supervised learning
    never sees): the same MLP (2 x 256 units, tanh output, Adam, ``epochs`` epochs, one
    seed) is fitted on the train splits' tracks from each feature set and scored on the
    test splits: per setting, the share of variance explained (R^2); median gain and pan
    errors. An upper bound of what a network can learn from that input on these corpora,
    and a measure of which input carries what.
    """
    from concurrent.futures import ProcessPoolExecutor

    import torch

    from mixinvert.console.schema import CONSOLE_V1
    from mixinvert.data.dataset import list_song_dirs

    jobs = [(c, split, str(d)) for c in CORPORA for split in ("train", "test")
            for d in list_song_dirs(corpora_dir / c, split)]
    with ProcessPoolExecutor(max(1, min(workers, os.cpu_count() or 1))) as pool:
        feats = list(pool.map(_readable_song, [d for _, _, d in jobs], chunksize=4))
    corpus = np.concatenate([[c] * len(f[2]) for (c, _, _), f in zip(jobs, feats)])
    train = np.concatenate([[sp == "train"] * len(f[2]) for (_, sp, _), f in zip(jobs, feats)])
    y = np.concatenate([f[2] for f in feats]).astype(np.float32)
    from mixinvert.dsp.transfer import CHANNELS, N_MELS, REVERB_CHANNELS

    inputs = {"stats": np.concatenate([f[0] for f in feats]), "transfer_comp": np.concatenate([f[1] for f in feats])}
    # channel-major: the 3 base channels, then the reverb ones, then the compressor ones
    inputs["transfer"] = inputs["transfer_comp"][:, : CHANNELS * N_MELS]
    inputs["transfer_reverb"] = inputs["transfer_comp"][:, : (CHANNELS + REVERB_CHANNELS) * N_MELS]
    inputs["stats_reverb"] = np.concatenate([inputs["stats"], inputs["transfer_reverb"]], axis=1)
    inputs["all"] = np.concatenate([inputs["stats"], inputs["transfer_comp"]], axis=1)
    gain, pan = CONSOLE_V1.index("gain_db"), CONSOLE_V1.index("pan")
    gain_span = CONSOLE_V1.specs[gain].hi - CONSOLE_V1.specs[gain].lo
    var = ((y[~train] - y[train].mean(0)) ** 2).mean(0)

    def scores(pred: np.ndarray) -> dict:
        err = np.abs(pred - y[~train])
        r2 = 1.0 - (err**2).mean(0) / var
        out = {"r2": {n: float(r2[CONSOLE_V1.index(n)]) for n in READABLE_PARAMS}}
        for c in CORPORA:
            m = corpus[~train] == c
            out[c] = {"gain_db": float(np.median(err[m, gain]) * gain_span / 2), "pan": float(np.median(err[m, pan]))}
        return out

    rows = {"prior mean (no input)": scores(np.broadcast_to(y[train].mean(0), y[~train].shape))}
    for name, key in READABLE_INPUTS.items():
        x = np.clip(np.nan_to_num(inputs[key]), -30, 30).astype(np.float32)
        mu, sd = x[train].mean(0), x[train].std(0) + 1e-3
        xt = torch.from_numpy((x - mu) / sd)
        yt = torch.from_numpy(y)
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 256), torch.nn.LeakyReLU(0.1), torch.nn.Dropout(0.2),
                                  torch.nn.Linear(256, 256), torch.nn.LeakyReLU(0.1), torch.nn.Dropout(0.2),
                                  torch.nn.Linear(256, y.shape[1]))
        opt = torch.optim.Adam(net.parameters(), 1e-3, weight_decay=1e-4)
        idx = np.flatnonzero(train)
        gen = np.random.default_rng(seed)
        for _ in range(epochs):
            net.train()
            order = gen.permutation(idx)
            for a in range(0, len(order), 64):
                i = torch.from_numpy(order[a : a + 64])
                loss = ((torch.tanh(net(xt[i])) - yt[i]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            rows[name] = scores(torch.tanh(net(xt[torch.from_numpy(~train)])).numpy())
    return {"tracks_train": int(train.sum()), "tracks_test": int((~train).sum()), "epochs": epochs, "rows": rows,
            "machine": _machine()}


def _stage_record(run_dir: Path) -> dict:
    import csv

    settings = json.loads((run_dir / "run.json").read_text())
    rows = list(csv.DictReader((run_dir / "log.csv").open()))
    total = sum(float(r["sampling_s"]) + float(r["training_s"]) + float(r["valid_s"]) for r in rows)
    corpora = [
        {"name": c["name"], **{k: c.get("corpus", {}).get("config", {}).get(k) for k in ("preset", "songs", "seconds", "seed")}}
        for c in settings["corpora"]
    ]
    init = settings.get("init")
    return {"config": settings["config"], "model_config": settings["model_config"], "corpora": corpora,
            "log": rows, "total_s": total, "init": init["sha256"][:12] if init else None,
            "init_encoder_only": bool(init and init.get("encoder_only"))}


def training_name(console: str) -> str:
    """The results name of the training record of console ``console``'s shipped model."""
    return "eami_training" if console == "v1" else f"eami_training_{console}"


def training_record(run_dirs: list[Path], corpora_dir: Path, console: str = "v1") -> dict:
    """How the shipped model of ``console`` was trained: per run (a stage; a later one
    fine-tunes the one before, ``train --init``) its settings, corpora, log and time; one
    plot over all."""
    from mixinvert.train.history import plot_history

    stages = [_stage_record(Path(d)) for d in run_dirs]
    history, offset = [], 0
    for st in stages:
        for r in st["log"]:
            row = {k: float(v) if k != "iteration" else int(v) + offset for k, v in r.items()}
            history.append(row)
        offset += len(st["log"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    plot_history(history, RESULTS / f"{training_name(console)}.png")
    return {"stages": stages, "average": _average_record(Path(run_dirs[-1]), corpora_dir, console),
            "machine": _machine(), "console": console}


def _average_record(run_dir: Path, corpora_dir: Path, console: str = "v1") -> dict | None:
    """If the shipped model is an average of model files (``mixinvert average-models``):
    each source's validation MRSD and the average's, on the validation songs of the last
    run, in one run (side by side)."""
    import torch

    from mixinvert.console.schema import get_schema
    from mixinvert.models.checkpoint import (
        DEFAULT_MODEL_PATHS,
        build_model,
        load_model,
        read_checkpoint,
    )
    from mixinvert.train.fitting import validate
    from mixinvert.train.songs import load_split

    model, _, meta = load_model(DEFAULT_MODEL_PATHS[console])
    sources = meta.get("averaged")
    if not sources:
        return None
    settings = json.loads((run_dir / "run.json").read_text())
    corpora = [corpora_dir / c["name"] for c in settings["corpora"]]
    songs = load_split(corpora, "valid", limit=settings["config"]["valid_songs"], schema=get_schema(console))
    torch.set_num_threads(2)
    rows = []
    for src in sources:
        obj = read_checkpoint(src["path"])
        net, _ = build_model(obj, where=src["path"])
        iteration = obj.get("iteration", (obj.get("meta") or {}).get("iteration"))
        rows.append({"sha256": src["sha256"][:12], "iteration": iteration,
                     "run_init": src["sha256"][:12] == (settings.get("init") or {}).get("sha256", "")[:12],
                     "valid_mrsd": validate(net.eval(), songs, schema=get_schema(console))["valid_mrsd"]})
    return {"sources": rows, "valid_songs": len(songs),
            "valid_mrsd": validate(model, songs, schema=get_schema(console))["valid_mrsd"],
            "sha256": model_digest(DEFAULT_MODEL_PATHS[console])}


def speed(repeats: int = 3) -> dict:
    """Time ``invert --method eami`` parts on a 30 s, 16-track song: small vs paper network."""
    import torch

    from mixinvert.console.match import match_gain_wet
    from mixinvert.console.render import Console
    from mixinvert.console.schema import CONSOLE_V1
    from mixinvert.models.checkpoint import DEFAULT_MODEL_PATH, DEFAULT_MODEL_PATHS, load_model
    from mixinvert.models.inverter import Inverter, get_model_config
    from mixinvert.models.predict import predict_features, song_features, song_transfer

    rng = np.random.default_rng(0)
    sr, n = 44100, 30 * 44100
    t = np.arange(n) / sr
    tracks = []
    for k in range(16):  # tones with on/off envelopes plus noise: content does not change the cost
        env = (np.sin(2 * np.pi * rng.uniform(0.5, 3) * t) > 0).astype(np.float32)
        x = 0.2 * np.sin(2 * np.pi * rng.uniform(60, 3000) * t) * env + 0.02 * rng.standard_normal(n)
        tracks.append(np.stack([x, x]) if k % 4 == 0 else x[None])
    tracks = [tr.astype(np.float32) for tr in tracks]
    values = CONSOLE_V1.denormalize(rng.uniform(-0.7, 0.7, size=(16, 16)))
    mix = Console(tracks, sr).render(values)
    models = {}
    if DEFAULT_MODEL_PATH.is_file():
        models["small (shipped)"] = load_model(None)[0]
    torch.manual_seed(0)
    models["paper (untrained, same cost)"] = Inverter(get_model_config("paper")).eval()
    out = {"song": "30 s, 16 tracks (4 stereo), 44.1 kHz", "machine": _machine(), "rows": {}}
    for name, model in models.items():
        best = None
        for _ in range(repeats):
            t0 = time.perf_counter()
            tf, mf = song_features(tracks, mix, sr)
            ta = time.perf_counter()
            transfer = song_transfer(tracks, mix, sr, **model.transfer_options) if model.needs_transfer else None
            t1 = time.perf_counter()
            p = predict_features(model, tf, mf, transfer=transfer)
            t2 = time.perf_counter()
            match_gain_wet(tracks, sr, CONSOLE_V1.denormalize(p), mix)  # what eami renders by default
            t3 = time.perf_counter()
            Console(tracks, sr).render(CONSOLE_V1.denormalize(p))  # --no-match
            t4 = time.perf_counter()
            row = {"features_s": ta - t0, "transfer_s": t1 - ta if model.needs_transfer else None,
                   "network_s": t2 - t1, "match_s": t3 - t2, "render_s": t4 - t3, "total_s": t3 - t0,
                   "total_no_match_s": t2 - t0 + t4 - t3}
            best = row if best is None or row["total_s"] < best["total_s"] else best
        out["rows"][name] = best
    if DEFAULT_MODEL_PATHS["v2"].is_file():
        out["rows"]["small, console v2 (shipped)"] = _speed_v2(tracks, sr, rng, repeats)
    return out


def _speed_v2(tracks: list, sr: int, rng: np.random.Generator, repeats: int) -> dict:
    """The parts of ``eami`` on console v2 (the shipped v2 network) on the speed song, mixed
    through console v2: features, transfer, network, the alignment, the fader and send
    match, the render."""
    from mixinvert.console.match import match_fader_send_v2
    from mixinvert.console.render_v2 import ConsoleV2
    from mixinvert.console.schema import CONSOLE_V2
    from mixinvert.dsp.alignment import estimate_alignment
    from mixinvert.methods.colonel_reiss import with_alignments
    from mixinvert.models.checkpoint import load_model
    from mixinvert.models.predict import predict_features, song_features, song_transfer

    values = CONSOLE_V2.denormalize(rng.uniform(-0.7, 0.7, size=(len(tracks), CONSOLE_V2.size)))
    shared = CONSOLE_V2.shared.from_dict(CONSOLE_V2.shared.neutral())
    mix = ConsoleV2(tracks, sr).render(values, shared)
    model = load_model(None, "v2")[0]
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        tf, mf = song_features(tracks, mix, sr)
        ta = time.perf_counter()
        transfer = song_transfer(tracks, mix, sr, **model.transfer_options)
        t1 = time.perf_counter()
        p, ps = predict_features(model, tf, mf, transfer=transfer, with_shared=True)
        t2 = time.perf_counter()
        est, est_shared = CONSOLE_V2.denormalize(p), CONSOLE_V2.shared.denormalize(ps)
        est = with_alignments(est, [estimate_alignment(t, mix, sr) for t in tracks], sr)
        ta2 = time.perf_counter()
        est, _ = match_fader_send_v2(tracks, sr, est, est_shared, mix)
        t3 = time.perf_counter()
        ConsoleV2(tracks, sr).render(est, est_shared)
        t4 = time.perf_counter()
        row = {"features_s": ta - t0, "transfer_s": t1 - ta, "network_s": t2 - t1, "alignment_s": ta2 - t2,
               "match_s": t3 - ta2, "render_s": t4 - t3, "total_s": t4 - t0, "total_no_match_s": t2 - t0 + t4 - t3}
        best = row if best is None or row["total_s"] < best["total_s"] else best
    return best


def _fmt(x: float, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


#: Columns of :func:`table1_row`.
TABLE1_HEADER = [
    "| corpus | method | MAE | MRSD | MRSD / sum | param err (norm.) | median gain err (dB) | median pan err | s / song | paper MAE / MRSD |",
    "|---|---|---|---|---|---|---|---|---|---|",
]


def table1_row(corpus: str, method: str, x: dict, sum_mrsd: float, paper: tuple[float, float] | None) -> str:
    """One method's row of a Table 1 analogue (``x``: ``Results.mean(method)``)."""
    return (
        f"| {corpus} | {method} | {x['mae']:.4f} | {x['mrsd']:.3f} | {x['mrsd'] / sum_mrsd:.2f} | "
        f"{_fmt(x.get('normalized_mae'))} | {_fmt(x.get('median_gain_db'), 2)} | {_fmt(x.get('median_pan'))} | "
        f"{x['seconds']:.2f} | {'{:.3f} / {:.3f}'.format(*paper) if paper else '-'} |"
    )


def model_digest(path: Path | None = None) -> str | None:
    """First 12 hex digits of the SHA-256 of a model file (default: the shipped one)."""
    import hashlib

    from mixinvert.models.checkpoint import DEFAULT_MODEL_PATH

    path = Path(path) if path else DEFAULT_MODEL_PATH
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else None


#: Version of what ``eami`` does around its network, stored with results that score it
#: (1: the network's settings rendered; 2: with the least-squares gain and wet match, and
#: eami+refine with that as a start).
EAMI_METHOD_VERSION = 2


def eami_model_note(t1: dict) -> list[str]:
    """A line under a Table 1 when its eami rows came from another model than the shipped one,
    or from the method before its gain and wet match."""
    if "eami" not in t1.get("methods", []):
        return []
    now, then = model_digest(), t1.get("eami_model")
    old_method = t1.get("eami_method_version", 1) < EAMI_METHOD_VERSION
    if then is not None and then == now and not old_method:
        return []
    was = f"model {then}" if then else "an earlier shipped model"
    if old_method:
        was += (", before `eami` fitted levels and reverb wet to the mix (the eami rows are the network's own settings, as `--no-match` gives today) "
                "and before eami+refine started from that")
    return [f"- The rows of the methods that use the network (eami, eami+refine) are from {was}; the model "
            f"shipped now ({now}) is scored in \"EAMI against the baselines\" above.", ""]


def table1_rows(t1: dict) -> list[str]:
    """Every corpus's rows of a stored Table 1 result (``{corpus: {"mean", "songs"}}``), best MRSD first."""
    rows = []
    for name in CORPORA:
        if name not in t1:
            continue
        means = t1[name]["mean"]
        for m in sorted(means, key=lambda k: means[k]["mrsd"]):
            rows.append(table1_row(f"{name} ({t1[name]['songs']} songs)", m, means[m], means["sum"]["mrsd"],
                                   PAPER_T1.get(m, {}).get(name)))
    return rows


def _loss_sentence(log: list[dict]) -> str:
    """What the training loss says, from the log: the loss over sigma^2 (the loss of
    answering the unperturbed prediction) early and late in the run."""
    rows = [r for r in log if float(r["sigma"]) > 0]
    if len(rows) < 3:
        return "The training loss is in the table below."
    third = len(rows) // 3

    def ratio(part: list[dict]) -> float:
        return float(np.mean([float(r["train_loss"]) / float(r["sigma"]) ** 2 for r in part]))

    early, late = ratio(rows[:third]), ratio(rows[-third:])
    floor = float(np.mean([float(r["train_loss"]) for r in rows[-third:]]))
    text = (f"Training loss over sigma^2 (sigma^2: the loss of answering the unperturbed prediction): {early:.2f} "
            f"over the first third of the run, {late:.2f} over the last third. ")
    text += ("Below 1, the network reads part of the sampling noise back from the rendered mixes. " if early < 1 else
             "The network reads none of the sampling noise back from the rendered mixes. ")
    if late > 1:
        text += (f"Late in the run the loss settles near {floor:.4f}, above sigma^2: there the network's answers for "
                 "mixes rendered from its own predictions differ from those predictions by more than the noise.")
    return text


#: Settings of the per-setting error table (the compressor's times are left out: with the
#: compressor idle, as on about half the tracks, they do nothing).
SETTING_COLUMNS = ("gain_db", "eq_low_shelf_gain_db", "eq_peak_gain_db", "eq_high_shelf_gain_db",
                   "comp_threshold_db", "comp_ratio", "pan", "reverb_room_size", "reverb_wet")


def _setting_errors(t1: dict) -> list[str]:
    """The Table 1 run's mean absolute error per setting, per corpus and method."""
    from mixinvert.console.schema import CONSOLE_V1
    from mixinvert.metrics.params import error_unit

    def head(n: str) -> str:
        unit = error_unit(CONSOLE_V1, n)
        return f"{n} ({unit})" if unit else n

    out = ["Mean absolute error per setting in the same run (the sum's settings are the neutral console: "
           "flat EQ, idle compressor, no reverb, centred):", "",
           "| corpus | method | " + " | ".join(head(n) for n in SETTING_COLUMNS) + " |",
           "|---|---|" + "---|" * len(SETTING_COLUMNS)]
    for name in CORPORA:
        for m in t1["methods"]:
            x = t1[name]["mean"][m]
            out.append(f"| {name} | {m} | " + " | ".join(_fmt(x.get(n), 2) for n in SETTING_COLUMNS) + " |")
    return [*out, ""]


def _table2_findings(modes: dict) -> list[str]:
    """What the sampling-modes table shows, computed from it (and set against the paper)."""
    mrsd = {m: x["mrsd"] for m, x in modes.items()}
    ranked = sorted(mrsd, key=mrsd.get)
    paper_ranked = sorted(PAPER_T2, key=lambda m: PAPER_T2[m][1])
    paper_modes = [m for m in ranked if m in PAPER_T2]
    out = [f"- Ranking by MRSD here: {' < '.join(ranked)}; in the paper: {' < '.join(paper_ranked)}."]
    if paper_modes:
        best = paper_modes[0]
        out.append(f"- Of the paper's six modes, `{best}` is best here"
                   + (", as in the paper." if best == paper_ranked[0] else f"; in the paper `{paper_ranked[0]}` is."))
        fixed = [m for m in ("fixed-0.05", "fixed-0.1", "fixed-0.5") if m in mrsd]
        if len(fixed) == 3:
            here_up = mrsd[fixed[0]] < mrsd[fixed[1]] < mrsd[fixed[2]]
            here_down = mrsd[fixed[0]] > mrsd[fixed[1]] > mrsd[fixed[2]]
            order = "smaller is better" if here_up else "larger is better" if here_down else "no monotone order"
            out.append(f"- Fixed sigmas: {order} here (paper: smaller is better).")
        if "random" in mrsd and "none" in mrsd:
            here = "above" if mrsd["random"] < mrsd["none"] else "below"
            out.append(f"- `random` (settings uniform over every range, no network) comes {here} `none` here "
                       "(paper: above). Uniform settings make mixes far from any engineer's (half-wet reverb, heavy "
                       "compression on every track).")
    if "exp+prior" in mrsd and "exp" in mrsd:
        d = mrsd["exp+prior"] - mrsd["exp"]
        out.append(f"- Beyond the paper, `exp+prior` (one of the two renders per song from the engineer prior, "
                   f"`--samples 1 --prior-samples 1`): MRSD {mrsd['exp+prior']:.3f} against {mrsd['exp']:.3f} for "
                   f"`exp` ({d:+.3f}).")
    out.append("- One run per mode on a small budget: differences of about 0.1 MRSD are within run-to-run noise "
               "(compare the validation MRSD's ups and downs in the training log above).")
    return out


def _training_section(rec: dict) -> list[str]:
    stages = rec.get("stages") or [{**rec, "init": None}]  # records before stages held one run
    console = rec.get("console", "v1")
    file = "eami_default.pt" if console == "v1" else f"eami_{console}.pt"
    parts = [f"## The shipped EAMI model{'' if console == 'v1' else ' for console ' + console} "
             f"(`src/mixinvert/models/{file}`)", ""]
    if len(stages) > 1:
        parts += [f"Trained in {len(stages)} runs of `mixinvert train`, each starting from the model file of the one "
                  "before (`--init`). Hardware: " + rec["machine"] + ".", ""]
    for n, st in enumerate(stages, 1):
        c, mc = st["config"], st["model_config"]
        corp = ", ".join(f"`{x['name']}` ({x['preset']}, {x['songs']} songs of {x['seconds']:g} s, seed {x['seed']})"
                         for x in st["corpora"])
        last = st["log"][-1]
        best = min(st["log"], key=lambda r: float(r["valid_mrsd"]))
        prior = c.get("prior_samples", 0)
        head = f"**Run {n}.** " if len(stages) > 1 else ""
        start = (f"Starts from the model file of run {n - 1} (sha256 {st['init']}). " if st.get("init") else
                 "Starts from the untrained network. ")
        if st.get("init_encoder_only"):
            start = (f"Starts from the encoder of the shipped console v1 model (sha256 {st['init']}; `--init-encoder`), "
                     "with fresh output heads. ")
        parts += [
            head + f"Trained with `mixinvert train` on {corp}, train splits; config `{c['model']}` "
            f"(U-Net {mc['unet_channels']}, time pool {mc['time_pool']}, {mc['conformer_layers']} Conformer layers of "
            f"{mc['conformer_heads']}x{mc['conformer_head_dim']}, kernel {mc['conformer_kernel']}, "
            f"{mc['lstm_layers']} BiLSTM layers of {mc['lstm_hidden']}"
            f"{'; transfer branch of ' + str(mc['transfer_hidden']) if mc.get('transfer_branch') else ''}"
            f"{', with the reverb channels' if mc.get('transfer_reverb') else ''}"
            f"{', with the compressor channels' if mc.get('transfer_compressor') else ''}). " + start
            + f"{len(st['log'])} iterations"
            + (f" (stopped after {len(st['log'])} of the {c['iterations']} planned, for time; `train` on the same "
               "run folder resumes it)" if len(st["log"]) < c["iterations"] else "")
            + ", sampling "
            f"`{c['sampling']}` with sigma {c['sigma_init']} x {c['gamma']}^t, K = {c['samples_per_song']}"
            + (f" plus {prior} pairs per song with settings from the engineer prior (`--prior-samples {prior}`)"
               if prior else "")
            + f", {c['songs_per_iteration'] or 'all'} songs per iteration, {c['epochs']} epochs, batch {c['batch_size']}, "
            f"Adam lr {c['lr']} betas ({c['beta1']}, {c['beta2']}), {c['excerpt_seconds']:g} s excerpts. "
            + (f"Hardware: {rec['machine']}. " if len(stages) == 1 else "")
            + f"Time: {st['total_s'] / 60:.1f} min, on a machine shared with "
            f"development work (tests, experiments) for most of the run "
            f"({st['total_s'] / len(st['log']):.0f} s per iteration). Best validation MRSD: iteration "
            f"{best['iteration']} ({float(best['valid_mrsd']):.3f}); "
            f"last iteration {last['iteration']}: MRSD {float(last['valid_mrsd']):.3f}."
            + (" The shipped file is the best iteration of this run." if n == len(stages) and not rec.get("average")
               else ""),
            "",
        ]
        if prior:
            parts += ["Its training loss mixes the pairs around the network's predictions with the prior's pairs, "
                      "whose settings are far from the network's answer: it is not comparable with sigma^2.", ""]
        else:
            parts += [_loss_sentence(st["log"]), ""]
    av = rec.get("average")
    if av:
        def who(s: dict) -> str:
            if s["run_init"]:
                return f"the model run {len(stages)} started from ({s['sha256']})"
            return f"run {len(stages)}, iteration {s['iteration']} ({s['sha256']})"

        best_src = min(s["valid_mrsd"] for s in av["sources"])
        parts += [
            f"**The shipped file** ({av['sha256']}) is `mixinvert average-models` of {len(av['sources'])} model files "
            "(the mean of their weights; `train --keep-models` keeps every iteration's): "
            + "; ".join(who(s) for s in av["sources"]) + f". Validation MRSD on run {len(stages)}'s "
            f"{av['valid_songs']} validation songs, measured in one run: the average {av['valid_mrsd']:.3f}, its "
            f"sources " + ", ".join(f"{s['valid_mrsd']:.3f}" for s in av["sources"])
            + f" (best {best_src:.3f}). The set was picked among three tried on these validation songs.",
            "",
        ]
    parts += [
        "![training loss and validation MRSD per iteration"
        + (" (the runs one after another)" if len(stages) > 1 else "") + f"](bench/results/{training_name(console)}.png)",
        "",
        "| " + ("run | " if len(stages) > 1 else "") + "iteration | sigma | training loss | valid MAE | valid MRSD | "
        "valid param err (norm.) |",
        "|---" * (6 + (len(stages) > 1)) + "|",
    ]
    for n, st in enumerate(stages, 1):
        for r in st["log"]:
            parts.append("| " + (f"{n} | " if len(stages) > 1 else "") + f"{r['iteration']} | "
                         f"{float(r['sigma']):.3f} | {float(r['train_loss']):.4f} | "
                         f"{float(r['valid_mae']):.4f} | {float(r['valid_mrsd']):.3f} | {float(r['valid_param_mae']):.3f} |")
    parts.append("")
    return parts


def markdown() -> str:
    """BENCHMARKS.md sections from the stored results (missing ones are said to be missing)."""
    parts = []
    for console in ("v1", "v2"):
        rec = _load(training_name(console))
        if rec:
            parts += _training_section(rec)
    t1 = _load("eami_table1")
    if t1:
        sizes = ", ".join(f"{k}: {t1[k]['songs']} songs" for k in CORPORA)
        parts += [
            "## EAMI against the baselines (Table 1 analogue)",
            "",
            f"`evaluate` on the test splits of the benchmark corpora ({sizes}), "
            f"model: {t1['model']}" + (f" ({t1['eami_model']})" if t1.get("eami_model") else "") + ". MRSD ratio = method / sum (paper: eami/sum = 0.66 on ENST-Drums, 0.45 on MedleyDB). "
            "Median errors are over all tracks. Paper figures (real data) for scale.",
            "",
            *TABLE1_HEADER,
        ]
        for name in CORPORA:
            means = t1[name]["mean"]
            for m in t1["methods"]:
                parts.append(table1_row(name, m, means[m], means["sum"]["mrsd"], PAPER_T1.get(m, {}).get(name)))
        parts.append("")
        targets = {"songs": 0.45, "drums": 0.66}
        for name in CORPORA:
            means = t1[name]["mean"]
            if "eami" not in means:
                continue
            ratio = means["eami"]["mrsd"] / means["sum"]["mrsd"]
            gain, pan = means["eami"].get("median_gain_db", float("nan")), means["eami"].get("median_pan", float("nan"))
            parts.append(
                f"- {name}: eami/sum MRSD {ratio:.2f} (target <= {targets[name]}: {'met' if ratio <= targets[name] else 'not met'}); "
                f"median gain error {gain:.2f} dB (target < 2: {'met' if gain < 2 else 'not met'}), "
                f"median pan error {pan:.3f} (target < 0.15: {'met' if pan < 0.15 else 'not met'})."
            )
            if NO_MATCH in means:
                raw = means[NO_MATCH]
                parts.append(
                    f"  Without the least-squares level and wet match (`{NO_MATCH}`, the paper's one-pass "
                    f"estimate): MRSD {raw['mrsd'] / means['sum']['mrsd']:.2f} x the sum, median gain error "
                    f"{raw.get('median_gain_db', float('nan')):.2f} dB; the match changes only gains, compressor "
                    "thresholds (by the same dB) and reverb wet levels.")
        parts.append("- s / song: wall time per song in that run (other work may have shared the 2 cores); "
                     "see the speed table below for a quiet measurement.")
        parts += ["", *_setting_errors(t1)]
    t2 = _load("eami_table2")
    if t2:
        b = t2["budget"]
        matched = any("mrsd_match" in x for x in t2["modes"].values())
        parts += [
            "## Sampling modes (Table 2 analogue)",
            "",
            "One `small` model per mode"
            + ("" if t2.get("model_config", {}).get("transfer_branch") else
               " (the `small` network as it was before its transfer branch)")
            + f" on the `songs` corpus, the same budget each: {b['iterations']} iterations x "
            f"{b['songs_per_iteration']} songs x K = {b['samples']} samples, {b['epochs']} epochs, lr {b['lr']}, "
            f"{b['excerpt_seconds']:g} s excerpts (exp: sigma {b['sigma_init']} x {b['gamma']}^t); evaluated on the test split"
            + (", the network's own settings (`--no-match`), and in the last two columns with the gain and wet match"
               if matched else "")
            + f". Hardware: {t2['machine']}.",
            "",
            "| sampling | MAE | MRSD | param err (norm.) | median gain err (dB) | median pan err | train min | "
            "paper MAE / MRSD |" + (" MRSD with match | median gain err with match (dB) |" if matched else ""),
            "|---|---|---|---|---|---|---|---|" + ("---|---|" if matched else ""),
        ]
        for mode, x in t2["modes"].items():
            paper = f"{PAPER_T2[mode][0]:.3f} / {PAPER_T2[mode][1]:.3f}" if mode in PAPER_T2 else "(not in the paper)"
            parts.append(
                f"| {mode} | {x['mae']:.4f} | {x['mrsd']:.3f} | {_fmt(x.get('normalized_mae'))} | "
                f"{_fmt(x.get('median_gain_db'), 2)} | {_fmt(x.get('median_pan'))} | {x['train_s'] / 60:.1f} | "
                f"{paper} |" + (f" {_fmt(x.get('mrsd_match'))} | {_fmt(x.get('median_gain_db_match'), 2)} |"
                                if matched else "")
            )
        parts += ["", *_table2_findings(t2["modes"])]
        parts.append("")
    orc = _load("eami_oracle")
    if orc:
        parts += [
            "## What each effect is worth (oracle settings)",
            "",
            "MRSD on the test splits when the listed settings are the true ones and every other setting is at "
            "the neutral console (where an untrained network starts). It bounds what getting only some effects "
            "right can reach: the `songs` target of 0.45 x the sum needs gain, pan, EQ and reverb all near the truth.",
            "",
            "| true settings | " + " | ".join(f"{k} MRSD" for k in CORPORA) + " |",
            "|---|" + "---|" * len(CORPORA),
        ]
        for key in orc[next(iter(CORPORA))]["mrsd"]:
            parts.append(f"| {key} | " + " | ".join(f"{orc[k]['mrsd'][key]:.3f}" for k in CORPORA) + " |")
        parts.append("")
    rd = _load("eami_readable")
    if rd:
        parts += [
            "## What the network can read (its inputs against the true settings)",
            "",
            f"`python bench/bench_eami.py readable --corpora-dir DIR`: supervised on the true settings (which "
            f"embodied self-supervised learning never sees), the same MLP (2 x 256 units, {rd['epochs']} epochs, one "
            f"seed) fitted from each input of the network on the train splits' tracks ({rd['tracks_train']}) of both "
            f"corpora, scored on the test splits' ({rd['tracks_test']}); whole 10 s songs. R^2: share of a setting's "
            "variance explained. An upper bound of what a network learns from that input here. "
            f"Hardware: {rd['machine']}.",
            "",
            "| input | " + " | ".join(f"R^2 {n}" for n in READABLE_PARAMS) + " | "
            + " | ".join(f"{c} gain err (dB) | {c} pan err" for c in CORPORA) + " |",
            "|---|" + "---|" * (len(READABLE_PARAMS) + 2 * len(CORPORA)),
        ]
        for name, r in rd["rows"].items():
            parts.append(f"| {name} | " + " | ".join(f"{r['r2'][n]:.2f}" for n in READABLE_PARAMS) + " | "
                         + " | ".join(f"{r[c]['gain_db']:.2f} | {r[c]['pan']:.3f}" for c in CORPORA) + " |")
        st, tr = rd["rows"].get("contrast statistics (log-mel)"), rd["rows"].get("transfer spectra")
        if st and tr:
            parts += [
                "",
                f"- From the log-mel statistics (the statistics branch) the MLP explains {st['r2']['gain_db']:.2f} of "
                f"the variance of gain and {st['r2']['pan']:.2f} of pan's; from the transfer spectra (least squares "
                f"per frequency, the transfer branch, `mixinvert.dsp.transfer`) {tr['r2']['gain_db']:.2f} and "
                f"{tr['r2']['pan']:.2f}: with ten tracks in one mix few time-frequency bins belong to one track, "
                "while least squares separates the tracks' shares. EQ and compressor settings stay mostly "
                "unexplained by either on its own: their effect on the mix is smaller than the spread of the music.",
            ]
            rv = rd["rows"].get("transfer spectra + reverb channels")
            if rv:
                parts.append(
                    f"- The reverb channels (the residual's power on each track's decayed direct power) raise the "
                    f"share of reverb wet's variance explained from {tr['r2']['reverb_wet']:.2f} to "
                    f"{rv['r2']['reverb_wet']:.2f}. With twice the inputs and the same {rd['tracks_train']} examples "
                    f"the MLP explains a little less of the rest (gain {rv['r2']['gain_db']:.2f}, pan "
                    f"{rv['r2']['pan']:.2f}); embodied self-supervised learning is not short of examples (every "
                    "render is one).")
                cp = rd["rows"].get("transfer spectra + reverb + compressor channels")
                if cp and "comp_ratio" in cp["r2"]:
                    parts.append(
                        f"- The compressor channels (per 1 dB bin of a track's own frame level, how its per-frame gain "
                        f"into the mix departs from its average) raise the share of the compressor threshold's "
                        f"variance explained from {rv['r2']['comp_threshold_db']:.2f} to "
                        f"{cp['r2']['comp_threshold_db']:.2f} and the ratio's from {rv['r2']['comp_ratio']:.2f} to "
                        f"{cp['r2']['comp_ratio']:.2f}. Part of it cannot be read from any input: a threshold above a "
                        "track's loudest frames, or a ratio near 1, leaves the mix as it would be without.")
        parts.append("")
    mt = _load("eami_match")
    if mt:
        sizes = ", ".join(f"{k}: {mt[k]['songs']}" for k in CORPORA if k in mt)
        parts += [
            "## Gain and wet match",
            "",
            "`eami` fits every track's level and reverb wet to the mix by least squares after its network "
            "(`mixinvert.console.match`; README, \"EAMI\"). Here on the shipped network's estimates "
            f"({mt['model']}) for the first validation songs of each corpus ({sizes}), where the ridge (a pull "
            f"towards the network's answer) was chosen: {mt['default_ridge']:g}, the default. Median gain error "
            "over all tracks; s / song: the match (or the plain render) alone. "
            f"{mt['machine']}.",
            "",
            "| corpus | variant | MRSD | median gain err (dB) | mean gain err (dB) | mean wet err | s / song |",
            "|---|---|---|---|---|---|---|",
        ]
        for name in CORPORA:
            if name not in mt:
                continue
            for v, x in mt[name]["rows"].items():
                parts.append(f"| {name} | {v} | {x['mrsd']:.3f} | {x['median_gain_db']:.2f} | {x['mean_gain_db']:.2f} | "
                             f"{x['mean_wet']:.3f} | {x['seconds']:.2f} |")
        parts.append("")
    sp = _load("eami_speed")
    if sp:
        parts += [
            "## `invert --method eami` speed",
            "",
            f"{sp['song']}; log-mel features + transfer spectra (networks with a transfer branch) + "
            "network + the least-squares level and wet match, which renders the mix (`eami`'s default), "
            f"fastest of 3; `--no-match` renders the network's settings once instead. On console v2, `eami` "
            "measures every track's offset and polarity (alignment), fits faders and sends by least squares "
            f"(match) and renders the mix (in its total). {sp['machine']}. Target: under 5 s on 2 cores.",
            "",
            "| network | log-mel s | transfer spectra s | network s | alignment s | match s | total s | render s | "
            "total, --no-match s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in sp["rows"].items():
            tr = f"{r['transfer_s']:.2f}" if r.get("transfer_s") is not None else "-"
            al = f"{r['alignment_s']:.2f}" if r.get("alignment_s") is not None else "-"
            if "match_s" in r:
                parts.append(f"| {name} | {r['features_s']:.2f} | {tr} | {r['network_s']:.2f} | {al} | "
                             f"{r['match_s']:.2f} | {r['total_s']:.2f} | {r['render_s']:.2f} | "
                             f"{r['total_no_match_s']:.2f} |")
            else:  # measured before the match
                parts.append(f"| {name} | {r['features_s']:.2f} | {tr} | {r['network_s']:.2f} | - | - | - | "
                             f"{r['render_s']:.2f} | {r['total_s']:.2f} |")
        parts.append("")
    if not parts:
        return ""
    return "\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("corpora", "table1", "table2", "training", "speed", "match", "oracle", "readable",
                                     "markdown"))
    ap.add_argument("--corpora-dir", type=Path, default=REPO / "bench" / ".cache" / "corpora")
    ap.add_argument("--runs-dir", type=Path, default=REPO / "bench" / ".cache" / "runs")
    ap.add_argument("--run", type=Path, action="append",
                    help="run folder of the shipped model (for `training`); repeat for runs that fine-tune the "
                         "one before (train --init), in order")
    ap.add_argument("--model", type=Path, help="model file for table1 (default: the shipped one)")
    ap.add_argument("--console", choices=("v1", "v2"), default="v1",
                    help="`training`: whose shipped model the runs made (default v1)")
    ap.add_argument("--previous-model", type=Path,
                    help="table1: an earlier model file whose eami row is measured in the same run")
    args = ap.parse_args()
    if args.what == "corpora":
        make_corpora(args.corpora_dir)
    elif args.what == "table1":
        _save("eami_table1", table1(args.corpora_dir, args.model, previous=args.previous_model))
    elif args.what == "table2":
        _save("eami_table2", table2(args.corpora_dir, args.runs_dir))
    elif args.what == "training":
        if args.run is None:
            ap.error("training needs --run RUN_DIR")
        _save(training_name(args.console), training_record(args.run, args.corpora_dir, args.console))
    elif args.what == "oracle":
        _save("eami_oracle", oracle(args.corpora_dir))
    elif args.what == "speed":
        _save("eami_speed", speed())
    elif args.what == "match":
        _save("eami_match", match_sweep(args.corpora_dir))
    elif args.what == "readable":
        _save("eami_readable", readable(args.corpora_dir))
    print(markdown())


if __name__ == "__main__":
    main()
