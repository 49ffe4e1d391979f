"""The public functions behind the command line (one per subcommand).

Library code never sees parsed command-line arguments; :mod:`mixinvert.cli` parses and
calls these. Every function that writes refuses to replace an existing file unless
``overwrite`` is true, never writes over its own inputs, and writes atomically.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixinvert.audio import write_audio, write_text_atomic
from mixinvert.console.params_io import MixParams, read_params, write_params
from mixinvert.console.render import Console
from mixinvert.data.song import DEFAULT_MAX_TRACKS, Song, list_track_files, load_tracks_and_mix
from mixinvert.methods.base import EXTRA_MIX_NAMES, Estimate, best_method, get_method
from mixinvert.metrics.audio import MixScores, compare_mixes
from mixinvert.metrics.params import param_errors


def _guard_outputs(outputs: list[Path], inputs: list[Path], overwrite: bool) -> None:
    resolved_inputs = {p.resolve() for p in inputs}
    for out in outputs:
        if out.resolve() in resolved_inputs:
            raise ValueError(f"{out} is one of the inputs; refusing to write over it")
        if out.exists() and not overwrite:
            raise FileExistsError(f"{out} exists; refusing to overwrite it (use --overwrite)")


def render(
    tracks_dir: str | os.PathLike,
    params_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    overwrite: bool = False,
    max_tracks: int | None = None,
) -> tuple[Path, Song]:
    """Render the tracks in ``tracks_dir`` with the settings of a params.json to a mix file.

    Tracks are matched to params.json rows by name; every track needs a row and every row
    a track. Returns the written path and the loaded song (its ``notes`` say what loading
    did to the input).
    """
    files = list_track_files(tracks_dir)
    out_path = Path(out_path)
    _guard_outputs([out_path], files + [Path(params_path)], overwrite)
    params = read_params(params_path)
    song = load_tracks_and_mix(files, None, name=Path(tracks_dir).name, params_file=params_path, max_tracks=max_tracks)
    if params.sample_rate is not None and params.sample_rate != song.sample_rate:
        song.notes.append(
            f"{params_path}: written for {params.sample_rate} Hz, rendering at the tracks' {song.sample_rate} Hz"
        )
    mix = Console(song.tracks, song.sample_rate).render(song.params.values)
    write_audio(out_path, mix, song.sample_rate, overwrite=overwrite)
    return out_path, song


@dataclass
class InvertResult:
    song: Song
    method: str
    estimate: Estimate
    scores: MixScores
    params_path: Path
    mix_path: Path
    #: The extra keys written to params.json (method, scores, mix_wav, other_mixes, ...).
    params_extra: dict = field(default_factory=dict)


def invert(
    tracks_dir: str | os.PathLike,
    mix_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    method: str = "auto",
    seed: int = 0,
    overwrite: bool = False,
    max_tracks: int | None = DEFAULT_MAX_TRACKS,
    options: dict | None = None,
) -> InvertResult:
    """Estimate console settings for ``tracks_dir`` that recreate ``mix_path``.

    Writes ``out_dir/params.json`` (the settings, plus ``"method"`` and the scores) and
    ``out_dir/mix.wav`` (the re-rendered estimate; ``"mix_wav"`` in params.json says which
    renderer made it). A method whose ``mix.wav`` is not the console rendering of its
    settings (``barchiesi-reiss``) also writes ``mix_console.wav``, scored under
    ``"other_mixes"``; with ``overwrite``, such a file left by an earlier run into the
    same folder is removed when the new method does not write it (it would no longer
    match params.json). ``method="auto"`` takes the best
    method available. ``options`` go to the method (e.g. ``{"model": "run/model.pt"}``
    for ``eami``).
    """
    options = dict(options or {})
    if method == "auto":
        name = best_method(options=tuple(options))
    else:
        name = method
    entry = get_method(name)
    entry.check_options(options)
    files = list_track_files(tracks_dir)
    out_dir = Path(out_dir)
    params_out, mix_out = out_dir / "params.json", out_dir / "mix.wav"
    # every mix.wav-like file a method may write (mix_console.wav, ...) is guarded up front
    possible = [out_dir / f"mix_{n}.wav" for n in EXTRA_MIX_NAMES]
    _guard_outputs([params_out, mix_out, *possible], files + [Path(mix_path)], overwrite)
    song = load_tracks_and_mix(files, mix_path, name=Path(tracks_dir).resolve().parent.name, max_tracks=max_tracks)
    start = time.perf_counter()
    est = entry.fn(song, rng=np.random.default_rng(seed), **options)
    seconds = time.perf_counter() - start
    scores = compare_mixes(est.mix, song.mix, song.sample_rate)
    info = {k: v for k, v in est.info.items() if isinstance(v, (str, int, float, bool))}
    extra = {
        "method": name,
        "seed": seed,
        "seconds": round(seconds, 3),
        "scores": {"mae": scores.mae, "mrsd": scores.mrsd},
        "mix_wav": info.get("mix_source", "console v1"),
        "notes": song.notes,
    }
    details = {k: v for k, v in info.items() if k not in ("seconds", "mix_source")}
    if details:
        extra["method_info"] = details
    extra_paths = []
    for key, other in est.extra_mixes.items():
        if key not in EXTRA_MIX_NAMES:
            raise ValueError(f"method {name!r} returned an unknown extra mix {key!r}")
        other_scores = compare_mixes(other, song.mix, song.sample_rate)
        extra.setdefault("other_mixes", {})[f"mix_{key}.wav"] = {
            "source": EXTRA_MIX_NAMES[key], "mae": other_scores.mae, "mrsd": other_scores.mrsd,
        }
        extra_paths.append((out_dir / f"mix_{key}.wav", other))
    params = MixParams(est.params.schema, est.params.track_names, est.params.values, song.sample_rate, extra,
                       tuple(est.track_details))
    write_audio(mix_out, est.mix, song.sample_rate, overwrite=overwrite)
    for path, other in extra_paths:
        write_audio(path, other, song.sample_rate, overwrite=overwrite)
    written = {p for p, _ in extra_paths}
    for stale in possible:  # only reachable with overwrite: an earlier invert's extra mix, now out of date
        if stale not in written and stale.exists():
            stale.unlink()
    write_params(params_out, params, overwrite=overwrite)
    return InvertResult(song, name, est, scores, params_out, mix_out, extra)


@dataclass
class DemoResult:
    song_dir: Path
    inverted: InvertResult
    baseline: MixScores | None
    param_errors: dict[str, float] | None


def demo(
    out_dir: str | os.PathLike = "mixinvert-demo",
    *,
    kit_dir: str | os.PathLike | None = None,
    seconds: float = 8.0,
    seed: int = 0,
    method: str = "auto",
) -> DemoResult:
    """Make a small song with the corpus code, invert it, and score the result.

    The song goes to ``out_dir/song_0000`` (a one-song ``songs`` corpus, drums included
    when ``kit_dir`` is given); the inversion to ``out_dir/inverted``. Running the demo
    again reuses the song and replaces only the demo's own inversion.
    """
    from mixinvert.data.corpus import CorpusConfig, make_corpus

    out_dir = Path(out_dir)
    config = CorpusConfig(
        preset="songs", songs=1, seconds=seconds, seed=seed,
        kit_dir=str(kit_dir) if kit_dir is not None else None,
    )
    make_corpus(out_dir, config, jobs=1)
    song_dir = out_dir / "song_0000"
    marker = out_dir / "inverted" / ".mixinvert-demo"
    inv_dir = out_dir / "inverted"
    if inv_dir.exists() and not marker.exists():
        raise FileExistsError(f"{inv_dir} exists and was not made by the demo; refusing to overwrite it")
    result = invert(song_dir / "tracks", song_dir / "mix.wav", inv_dir, method=method, seed=seed, overwrite=True)
    write_text_atomic(marker, "made by mixinvert demo\n", overwrite=True)
    baseline = None
    if result.method != "sum":
        est = get_method("sum").fn(result.song, rng=np.random.default_rng(seed))
        baseline = compare_mixes(est.mix, result.song.mix, result.song.sample_rate)
    truth = read_params(song_dir / "params.json").reordered(result.song.track_names)
    errors = param_errors(result.estimate.params.values, truth.values)
    return DemoResult(song_dir, result, baseline, errors)
