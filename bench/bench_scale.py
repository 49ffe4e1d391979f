"""Scaling past one machine: sampling-step throughput on local threads and on Ray, and a
projection of the paper's MedleyDB schedule onto 1, 8 and 64 CPU nodes.

``python bench/bench_scale.py run`` (needs the ``ray`` extra, the MuldjordKit beside the
repo and fluidsynth) makes 8 ``songs``-preset songs of 6 s, then times, interleaved over
3 rounds (best of 3), one EAMI sampling step (8 songs x 4 samples of 3 s excerpts: the
network's input features and predictions, the perturbations, 32 renders through console
v1 and their log-mel features) on local threads and on a local Ray instance with 1 and 2
workers; then the parts a projection needs: the renders and the input features per
track-second (tasks), the network's forward passes (serial, on the driver), and the
training step per pair. Results
go to ``bench/results/scale.json``; ``bench/run_all.py`` renders them into BENCHMARKS.md
without recomputing.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_eami  # noqa: E402

SONGS, SONG_SECONDS, SAMPLES, EXCERPT_S, ROUNDS = 8, 6.0, 4, 3.0, 3
WORKERS = (1, 2)
# the paper's MedleyDB schedule (EAMI section 4): 196 songs, ~7 h; the 120 with at most
# 16 tracks are used, split 8:1:1; 100 iterations. Tracks per song and the samples per
# song are not given: 10 tracks (MedleyDB's songs under 16 inputs) and K = 2 (mixinvert's
# default) are assumptions, as are the nodes below.
MEDLEYDB = {"train_songs": 96, "song_seconds": 7 * 3600 / 196, "tracks": 10, "samples": 2, "iterations": 100}
NODE_CORES = 16
NETWORK_GBIT_S = 10.0
NODES = (1, 8, 64)


def _songs(root: Path):
    from mixinvert.data.corpus import CorpusConfig, make_corpus
    from mixinvert.data.dataset import list_song_dirs
    from mixinvert.data.song import load_song
    from mixinvert.train.songs import TrainSong

    midi = bench_eami.MIDI if bench_eami.MIDI.is_file() else None
    config = CorpusConfig(preset="songs", songs=SONGS, seconds=SONG_SECONDS, seed=11, kit_dir=str(bench_eami.KIT),
                          midi_path=str(midi) if midi else None)
    corpus = make_corpus(root / "corpus", config)
    return [TrainSong.from_song(load_song(d), "bench") for d in list_song_dirs(corpus)]


def _executor(kind: str, workers: int):
    from mixinvert.executors import LocalExecutor, RayExecutor

    return LocalExecutor(workers) if kind == "local" else RayExecutor("local", workers)


def run() -> dict:
    import torch

    from mixinvert.executors import LocalExecutor
    from mixinvert.models.inverter import Inverter, get_model_config
    from mixinvert.train.config import TrainConfig
    from mixinvert.train.fitting import training_step
    from mixinvert.train.sampling import sampling_step
    from mixinvert.train.tasks import (
        SongAudio,
        network_payload,
        predict_excerpt,
        render_log_mel,
    )

    torch.manual_seed(0)
    model = Inverter(get_model_config("small"))
    config = TrainConfig(samples_per_song=SAMPLES, excerpt_seconds=EXCERPT_S, seed=0)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        songs = _songs(Path(scratch))
    tracks_per_song = float(np.mean([len(s.tracks) for s in songs]))
    renders = SONGS * SAMPLES
    track_seconds = renders * tracks_per_song * EXCERPT_S

    print("sampling step, interleaved rounds ...", file=sys.stderr)
    best: dict[str, float] = {}
    for r in range(ROUNDS):
        for kind in ("local", "ray"):
            for w in WORKERS:
                with _executor(kind, w) as ex:
                    sampling_step(model, songs[:2], config, 0, executor=ex)  # warm the workers
                    t0 = time.perf_counter()
                    data = sampling_step(model, songs, config, r, executor=ex)
                    dt = time.perf_counter() - t0
                assert len(data) == renders
                key = f"{kind}_{w}"
                best[key] = min(best.get(key, float("inf")), dt)
                print(f"  round {r + 1}: {key} {dt:.2f} s", file=sys.stderr)

    print("parts of a step ...", file=sys.stderr)
    audio = [SongAudio(list(s.tracks), s.sample_rate) for s in songs]
    n = int(EXCERPT_S * songs[0].sample_rate)
    excerpts = [SongAudio([t[:, :n] for t in a.tracks], a.sample_rate, np.zeros((2, n), np.float32))
                for a in audio]
    jobs = [(e, np.zeros((len(e.tracks), 16)), "v1") for e in excerpts for _ in range(SAMPLES)]
    with LocalExecutor(1) as one:
        t0 = time.perf_counter()
        list(one.map(render_log_mel, jobs))
        render_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        net = network_payload(model, "bench")
        driver_s = time.perf_counter() - t0
        list(one.map(predict_excerpt, [(excerpts[0], net)]))  # the network is built once per worker
        t0 = time.perf_counter()
        list(one.map(predict_excerpt, [(e, net) for e in excerpts]))
        features_s = time.perf_counter() - t0
    weights_bytes = sum(v.numel() * v.element_size() for v in net["payload"]["state_dict"].values())
    with LocalExecutor(2) as two:
        data = sampling_step(model, songs, config, 0, executor=two)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    t0 = time.perf_counter()
    training_step(model, optimizer, data, TrainConfig(epochs=1, excerpt_seconds=EXCERPT_S), 0)
    train_s = time.perf_counter() - t0
    return {
        "machine": bench_eami._machine(),
        "songs": SONGS,
        "samples": SAMPLES,
        "excerpt_s": EXCERPT_S,
        "tracks_per_song": tracks_per_song,
        "renders": renders,
        "track_seconds": track_seconds,
        "sample_rate": songs[0].sample_rate,
        "step_s": best,
        "render_s_per_track_s": render_s / track_seconds,
        "features_s_per_track_s": features_s / (SONGS * tracks_per_song * EXCERPT_S),
        "driver_s_per_step": driver_s,
        "weights_bytes": weights_bytes,
        "train_s_per_pair_epoch": train_s / len(data),
    }


def projection(res: dict) -> list[dict]:
    """The paper's MedleyDB schedule on N nodes of NODE_CORES cores, from the measured costs
    (seconds per iteration)."""
    m = MEDLEYDB
    eff = res["step_s"]["ray_1"] / (2 * res["step_s"]["ray_2"])  # Ray's efficiency at 2 workers
    song_track_s = m["tracks"] * m["song_seconds"]
    task_cpu_s = m["train_songs"] * song_track_s * (m["samples"] * res["render_s_per_track_s"]
                                                    + res["features_s_per_track_s"])
    driver_s = res["driver_s_per_step"]  # the network's payload; everything else is tasks
    audio_bytes = m["train_songs"] * song_track_s * res["sample_rate"] * 4  # float32 mono, once per song
    # the training step: 10 epochs (the paper) over the pairs at this CPU's measured rate
    # (per pair and epoch of a 3 s excerpt, scaled to whole songs); GPUs run it faster
    train_s = 10 * m["train_songs"] * m["samples"] * res["train_s_per_pair_epoch"] * m["song_seconds"] / res["excerpt_s"]
    rows = []
    for nodes in NODES:
        workers = nodes * NODE_CORES
        tasks_s = task_cpu_s / (workers * eff)
        network_s = (audio_bytes + nodes * res["weights_bytes"]) / (NETWORK_GBIT_S * 1e9 / 8) if nodes > 1 else 0.0
        step = max(tasks_s, network_s) + driver_s
        rows.append({
            "nodes": nodes, "workers": workers, "renders_s": tasks_s, "driver_s": driver_s, "network_s": network_s,
            "sampling_s": step, "train_s": train_s, "total_h": m["iterations"] * (step + train_s) / 3600,
            "sampling_bottleneck": "tasks" if tasks_s >= network_s else "network",
        })
    return rows


def markdown() -> str:
    res = bench_eami._load("scale")
    if not res:
        return ""
    s = res["step_s"]
    lines = [
        "## Sampling-step throughput: local threads and Ray",
        "",
        f"`python bench/bench_scale.py run`: one EAMI sampling step ({res['songs']} songs x {res['samples']} samples "
        f"of {res['excerpt_s']:g} s excerpts, {res['tracks_per_song']:.1f} tracks per song on average: the network's "
        f"input features and predictions, {res['renders']} renders through console v1 and their log-mel features), best of "
        f"{ROUNDS} interleaved rounds. Efficiency = throughput / (workers x the same executor's 1-worker "
        f"throughput). Hardware: {res['machine']}.",
        "",
        "| executor | workers | step s | mixes / s | efficiency | ratio to local, 1 worker |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("local", "ray"):
        for w in WORKERS:
            dt = s[f"{kind}_{w}"]
            lines.append(f"| {'local threads' if kind == 'local' else 'Ray (local instance)'} | {w} | {dt:.2f} | "
                         f"{res['renders'] / dt:.1f} | {s[f'{kind}_1'] / (w * dt):.2f} | {s['local_1'] / dt:.2f} |")
    m = MEDLEYDB
    lines += [
        "",
        f"Measured parts, per track-second of audio: renders {1e3 * res['render_s_per_track_s']:.2f} ms and "
        f"the network's input features and forward pass {1e3 * res['features_s_per_track_s']:.2f} ms (tasks, "
        f"1 worker); on the driver, only the network's weights ({res['weights_bytes'] / 1e6:.1f} MB, "
        f"{1e3 * res['driver_s_per_step']:.0f} ms per step); the training step {res['train_s_per_pair_epoch']:.3f} s per pair and epoch (small "
        "network, this CPU).",
        "",
        "### Projection: the paper's MedleyDB schedule on CPU nodes",
        "",
        f"{m['iterations']} iterations over {m['train_songs']} training songs of {m['song_seconds']:.0f} s "
        f"(whole songs), {m['tracks']} tracks each (assumed), K = {m['samples']} samples per song, 10 epochs per "
        f"training step; nodes of {NODE_CORES} cores at the Ray efficiency measured above, "
        f"{NETWORK_GBIT_S:g} Gbit/s from the driver (each song's tracks sent once per iteration, float32 mono). "
        "The training step is this CPU's measured rate scaled to whole songs: on GPUs it is several times "
        "shorter, and DistributedDataParallel divides it across them. Seconds per iteration:",
        "",
        "| nodes | workers | tasks (renders, features, forward passes) | driver | network | sampling step | "
        "sampling limited by | training step (CPU) | 100 iterations |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in projection(res):
        lines.append(f"| {r['nodes']} | {r['workers']} | {r['renders_s']:.0f} | {r['driver_s']:.0f} | "
                     f"{r['network_s']:.0f} | {r['sampling_s']:.0f} | {r['sampling_bottleneck']} | "
                     f"{r['train_s']:.0f} | {r['total_h']:.1f} h |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    bench_eami.run_or_render(__doc__, "scale", run, markdown)


if __name__ == "__main__":
    main()
