"""``mixinvert evaluate``: every method on every song of a dataset, the paper's Table 1.

For each song and method: the method's estimate, then MAE and MRSD of the re-rendered
mix against the reference (after loudness normalization, :mod:`mixinvert.metrics.audio`)
and, where the true settings are known, parameter errors (:mod:`mixinvert.metrics.params`).
Results come back as a :class:`Results` that renders a markdown table (mean per method,
then per song) and a JSON document.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from mixinvert.audio import write_text_atomic
from mixinvert.console.schema import CONSOLE_V1
from mixinvert.data.dataset import list_song_dirs
from mixinvert.data.song import DEFAULT_MAX_TRACKS, load_song
from mixinvert.errors import InputError, OutputExistsError
from mixinvert.methods.registry import get_method
from mixinvert.methods.run import run_method
from mixinvert.metrics.params import error_unit, param_errors

if TYPE_CHECKING:
    from mixinvert.executors import Executor

#: Parameter errors shown in the markdown table (all are in the JSON).
TABLE_PARAMS = ("gain_db", "pan", "eq_low_shelf_gain_db", "eq_peak_gain_db", "eq_high_shelf_gain_db", "reverb_wet")
#: Parameters whose median error over all tracks is reported (``median_gain_db``, ...).
MEDIAN_PARAMS = ("gain_db", "pan")


@dataclass
class SongResult:
    song: str
    method: str
    mae: float
    mrsd: float
    seconds: float
    param_errors: dict[str, float] | None = None
    #: Per-track absolute errors of the parameters in MEDIAN_PARAMS (for medians over tracks).
    track_errors: dict[str, list[float]] | None = None
    #: For methods that give intervals (eami+refine): how many true values fall inside
    #: them, and out of how many, over settings not flagged as undetermined.
    interval_hits: tuple[int, int] | None = None


@dataclass
class Results:
    dataset: str
    split: str | None
    methods: list[str]
    rows: list[SongResult] = field(default_factory=list)

    def mean(self, method: str) -> dict[str, float]:
        rows = [r for r in self.rows if r.method == method]
        out = {
            "mae": float(np.mean([r.mae for r in rows])),
            "mrsd": float(np.mean([r.mrsd for r in rows])),
            "seconds": float(np.mean([r.seconds for r in rows])),
            "songs": len(rows),
        }
        with_truth = [r.param_errors for r in rows if r.param_errors]
        if with_truth:
            for key in with_truth[0]:
                out[key] = float(np.mean([e[key] for e in with_truth]))
        hits = [r.interval_hits for r in rows if r.interval_hits]
        if hits and sum(n for _, n in hits):
            out["interval_coverage"] = sum(h for h, _ in hits) / sum(n for _, n in hits)
        per_track = [r.track_errors for r in rows if r.track_errors]
        for key in MEDIAN_PARAMS:
            values = [v for e in per_track for v in e.get(key, [])]
            if values:
                out[f"median_{key}"] = float(np.median(values))
        return out

    def to_json(self) -> dict:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "methods": self.methods,
            "mean": {m: self.mean(m) for m in self.methods},
            "songs": [vars(r) for r in self.rows],
        }

    def to_markdown(self) -> str:
        has_truth = any(r.param_errors for r in self.rows)
        cols = ["Method", "MAE", "MRSD"]
        if has_truth:
            cols += ["param MAE (norm.)"] + [f"{p} ({error_unit(CONSOLE_V1, p) or '-'})" for p in TABLE_PARAMS]
            cols += [f"median {p} ({error_unit(CONSOLE_V1, p) or '-'})" for p in MEDIAN_PARAMS]
        has_intervals = any(r.interval_hits for r in self.rows)
        if has_intervals:
            cols += ["true value in interval"]
        cols += ["s/song"]
        split = f", split `{self.split}`" if self.split else ""
        n_songs = len({r.song for r in self.rows})
        lines = [f"## Results on `{self.dataset}`{split} ({n_songs} songs)", "",
                 "MAE and MRSD after loudness normalization to -23 LUFS (EAMI section 5.1); "
                 "parameter errors are mean absolute errors against the true settings (medians: over all tracks).", "",
                 "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        ranked = sorted(self.methods, key=lambda m: self.mean(m)["mrsd"])
        for method in ranked:
            m = self.mean(method)
            cells = [method, f"{m['mae']:.4f}", f"{m['mrsd']:.3f}"]
            if has_truth:
                cells += [f"{m.get('normalized_mae', float('nan')):.3f}"] + [f"{m.get(p, float('nan')):.3g}" for p in TABLE_PARAMS]
                cells += [f"{m.get('median_' + p, float('nan')):.3g}" for p in MEDIAN_PARAMS]
            if has_intervals:
                coverage = m.get("interval_coverage")
                cells.append("-" if coverage is None else f"{100 * coverage:.0f} %")
            cells.append(f"{m['seconds']:.2f}")
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "### Per song", "", "| Song | Method | MAE | MRSD |", "|---|---|---|---|"]
        for r in sorted(self.rows, key=lambda r: (r.song, ranked.index(r.method))):
            lines.append(f"| {r.song} | {r.method} | {r.mae:.4f} | {r.mrsd:.3f} |")
        return "\n".join(lines) + "\n"


def interval_hits(track_details: Sequence[dict], truth: np.ndarray) -> tuple[int, int] | None:
    """How many true values lie in a method's intervals (``track_details[i]["uncertainty"]``),
    out of how many, leaving out settings it flags as undetermined; None without intervals."""
    if not track_details or not any("uncertainty" in d for d in track_details):
        return None
    inside = total = 0
    for row, true in zip(track_details, truth):
        flagged = row.get("undetermined", {})
        for name, iv in row.get("uncertainty", {}).items():
            if name in flagged:
                continue
            value = true[CONSOLE_V1.index(name)]
            slack = 1e-9 * max(1.0, abs(value))
            inside += int(iv["low"] - slack <= value <= iv["high"] + slack)
            total += 1
    return inside, total


def method_rng(seed: int, song: str, method: str) -> np.random.Generator:
    """The generator a method gets for one song: depends on (seed, song, method) only."""
    return np.random.default_rng([int(seed), zlib.crc32(song.encode()), zlib.crc32(method.encode())])


def evaluate_song(song_dir: str, methods: Sequence[str], seed: int, options: dict,
                  max_tracks: int | None = DEFAULT_MAX_TRACKS) -> list[SongResult]:
    """Every method on one song: its rows of the table (a task of :func:`evaluate`).

    A method that also returns other renderings (e.g. the console rendering of
    ``barchiesi-reiss``, whose own mix is its FIR rendering) gets a row per rendering,
    named ``method:rendering``.
    """
    song = load_song(song_dir, require_mix=True, max_tracks=max_tracks)
    rows: list[SongResult] = []
    for entry in (get_method(m) for m in methods):
        own = {k: v for k, v in options.items() if k in entry.options}
        run = run_method(song, entry.name, rng=method_rng(seed, song.name, entry.name), options=own)
        est = run.estimate
        errors = track_errors = None
        # parameter errors compare settings of one console only (a v2 estimate of a v1 truth has none)
        if song.params is not None and song.params.schema is est.params.schema:
            errors = param_errors(est.params.values, song.params.values)
            track_errors = {
                name: np.abs(est.params.values[:, i] - song.params.values[:, i]).tolist()
                for name in MEDIAN_PARAMS
                for i in [CONSOLE_V1.index(name)]
            }
        seconds = float(est.info.get("seconds", run.seconds))
        hits = interval_hits(est.track_details, song.params.values) if errors is not None else None
        rows.append(SongResult(song.name, entry.name, run.scores.mae, run.scores.mrsd, seconds, errors, track_errors,
                               hits))
        for key, other_scores in run.extra_scores.items():
            rows.append(SongResult(song.name, f"{entry.name}:{key}", other_scores.mae, other_scores.mrsd, seconds,
                                   errors, track_errors))
    return rows


def evaluate(
    dataset_dir: str | os.PathLike,
    methods: Sequence[str],
    *,
    split: str | None = None,
    seed: int = 0,
    max_tracks: int | None = DEFAULT_MAX_TRACKS,
    progress: Callable[[int], None] | None = None,
    options: dict | None = None,
    limit: int | None = None,
    executor: Executor | None = None,
    cpus_per_song: int = 1,
) -> Results:
    """Run ``methods`` on the songs of ``dataset_dir`` (optionally one split).

    ``options`` (e.g. ``{"model": path}``) go to every method that accepts them; an
    option no chosen method accepts is an error. ``limit`` keeps the first ``limit`` songs
    (in name order) of the split. A method that also returns other renderings (e.g. the
    console rendering of ``barchiesi-reiss``, whose own mix is its FIR rendering) gets a
    row per rendering, named ``method:rendering``.

    With an ``executor`` (e.g. a :class:`~mixinvert.executors.RayExecutor`) the songs run
    as parallel tasks (:func:`evaluate_song`), each read from its folder by the worker
    (on a cluster, the dataset must be at the same path on every node), ``cpus_per_song``
    cores each; without, one after another here. The table is the same either way, but
    for the seconds per song (colonel-reiss and eami+refine count their budgets in work,
    not seconds, unless a ``budget_seconds`` option caps them).
    """
    entries = [get_method(m) for m in methods]  # unknown names fail before any work
    if not entries:
        raise InputError("no methods given")
    options = dict(options or {})
    if "console" in options:  # a console is not an option a method may ignore: every method must take it
        for entry in entries:
            entry.check_options({"console": options["console"]})
    unused = sorted(k for k in options if not any(k in e.options for e in entries))
    if unused:
        raise InputError(f"option {', '.join(unused)} applies to none of the methods {', '.join(methods)}")
    if cpus_per_song < 1:
        raise InputError(f"cpus_per_song must be at least 1, got {cpus_per_song}")
    song_dirs = list_song_dirs(dataset_dir, split)
    if limit is not None:
        if limit < 1:
            raise InputError("limit must be at least 1")
        song_dirs = song_dirs[:limit]
    results = Results(str(dataset_dir), split, list(methods))
    jobs = ((str(Path(d).resolve()), tuple(methods), seed, options, max_tracks) for d in song_dirs)
    # whole songs are the tasks: each method already uses every core of the machine it runs on
    if executor is not None:
        rows_per_song = executor.map(evaluate_song, jobs, cpus_per_task=cpus_per_song)
    else:
        rows_per_song = (evaluate_song(*job) for job in jobs)
    for rows in rows_per_song:
        for row in rows:
            if row.method not in results.methods:  # e.g. barchiesi-reiss:console
                results.methods.append(row.method)
            results.rows.append(row)
        if progress is not None:
            progress(1)
    return results


def results_paths(out_md: str | os.PathLike, *, overwrite: bool = False, html: bool = False) -> list[Path]:
    """The markdown and JSON paths for ``out_md`` (and, with ``html``, the report's: same
    name, ``.html``); an error if any exists (unless ``overwrite``).

    Call it before a long evaluation so that a clash is found before any work is done.
    """
    out_md = Path(out_md)
    paths = [out_md, out_md.with_suffix(".json")] + ([out_md.with_suffix(".html")] if html else [])
    if out_md.suffix in (".json", ".html"):
        raise InputError(f"{out_md}: give the markdown file's name (e.g. results.md); the JSON and HTML go beside it")
    if not overwrite:
        for path in paths:
            if path.exists():
                raise OutputExistsError(f"{path} exists; refusing to overwrite it (use --overwrite)")
    return paths


def write_results(results: Results, out_md: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """Write the markdown table and, beside it, the JSON (same name, ``.json``). Returns the
    written paths. (The HTML report beside them is
    :func:`mixinvert.reporting.write_evaluation_report`'s.)"""
    paths = results_paths(out_md, overwrite=overwrite)
    write_text_atomic(paths[1], json.dumps(results.to_json(), indent=2) + "\n", overwrite=overwrite)
    write_text_atomic(paths[0], results.to_markdown(), overwrite=overwrite)
    return paths
