"""The public functions behind the command line (one per subcommand).

Library code never sees parsed command-line arguments; :mod:`mixinvert.cli` parses and
calls these. Every function that writes refuses to replace an existing file unless
``overwrite`` is true, never writes over its own inputs, and writes atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from mixinvert.audio import write_audio, write_text_atomic
from mixinvert.console.mixing import render_mix
from mixinvert.console.params_io import MixParams, read_params, write_params
from mixinvert.data.song import (
    DEFAULT_MAX_TRACKS,
    Song,
    list_track_files,
    load_tracks_and_mix,
)
from mixinvert.errors import (
    InputError,
    InputMissingError,
    MixinvertError,
    OutputExistsError,
)
from mixinvert.methods.base import EXTRA_MIX_NAMES, Estimate
from mixinvert.methods.registry import best_method, get_method
from mixinvert.methods.run import run_method
from mixinvert.metrics.audio import MixScores
from mixinvert.metrics.params import param_errors


def _guard_outputs(outputs: list[Path], inputs: list[Path], overwrite: bool) -> None:
    resolved_inputs = {p.resolve() for p in inputs}
    for out in outputs:
        if out.resolve() in resolved_inputs:
            raise InputError(f"{out} is one of the inputs; refusing to write over it")
        if out.exists() and not overwrite:
            raise OutputExistsError(f"{out} exists; refusing to overwrite it (use --overwrite)")


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
    mix = render_mix(song.tracks, song.sample_rate, song.params)
    write_audio(out_path, mix, song.sample_rate, overwrite=overwrite)
    return out_path, song


#: What ``invert`` writes into its output folder besides the extra mixes.
PARAMS_FILE, MIX_FILE, REPORT_FILE, DAWPROJECT_FILE = "params.json", "mix.wav", "report.html", "session.dawproject"


@dataclass
class InvertResult:
    """What :func:`invert` found for one song.

    ``params`` are the settings with everything params.json records (method, scores,
    uncertainty, ...); ``mix`` the re-rendered estimate ``(2, samples)``; ``scores`` its
    distance to the reference. ``params_path`` / ``mix_path`` (and ``report_path``,
    ``dawproject_path``) are where it was written, or None while it is only in memory:
    :meth:`save` writes it.
    """

    song: Song
    method: str
    estimate: Estimate
    scores: MixScores
    params_path: Path | None = None
    mix_path: Path | None = None
    #: The extra keys written to params.json (method, scores, mix_wav, other_mixes, ...).
    params_extra: dict = field(default_factory=dict)
    report_path: Path | None = None
    dawproject_path: Path | None = None
    #: Other renderings worth keeping (file name -> ``(2, samples)``), e.g. ``mix_console.wav``.
    extra_mixes: dict[str, np.ndarray] = field(default_factory=dict)
    track_files: tuple[Path, ...] = ()

    @property
    def params(self) -> MixParams:
        """The settings as params.json holds them (track order of the loaded song)."""
        est = self.estimate.params
        return MixParams(est.schema, est.track_names, est.values, self.song.sample_rate, self.params_extra,
                         tuple(self.estimate.track_details), est.shared)

    @property
    def mix(self) -> np.ndarray:
        return self.estimate.mix

    def save(self, out_dir: str | os.PathLike, *, overwrite: bool = False, report: bool = False,
             dawproject: bool = False) -> "InvertResult":
        """Write params.json and mix.wav (and the extra mixes) into ``out_dir``; with
        ``report``, report.html; with ``dawproject``, session.dawproject. Refuses to replace
        existing files unless ``overwrite``; never writes over an input. Returns ``self``
        with the paths filled in."""
        out_dir = Path(out_dir)
        inputs = list(self.track_files) + [Path(p) for p in [self.params_extra.get("inputs", {}).get("mix")] if p]
        _guard_outputs(output_paths(out_dir, report=report, dawproject=dawproject), inputs, overwrite)
        sr = self.song.sample_rate
        params_out, mix_out = out_dir / PARAMS_FILE, out_dir / MIX_FILE
        write_audio(mix_out, self.mix, sr, overwrite=overwrite)
        for name, other in self.extra_mixes.items():
            write_audio(out_dir / name, other, sr, overwrite=overwrite)
        for stale in output_paths(out_dir)[2:]:  # only reachable with overwrite: an earlier run's extra mix
            if stale.name not in self.extra_mixes and stale.exists():
                stale.unlink()
        write_params(params_out, self.params, overwrite=overwrite)
        self.params_path, self.mix_path = params_out, mix_out
        if report:
            from mixinvert.reporting import build_report

            self.report_path = build_report(out_dir, overwrite=overwrite)
        if dawproject:
            self.dawproject_path = export(out_dir, tracks=self.track_files, overwrite=overwrite)
        return self


def output_paths(out_dir: str | os.PathLike, *, report: bool = False, dawproject: bool = False) -> list[Path]:
    """Every file ``invert`` may write into ``out_dir`` with these options."""
    out_dir = Path(out_dir)
    paths = [out_dir / PARAMS_FILE, out_dir / MIX_FILE, *(out_dir / f"mix_{n}.wav" for n in EXTRA_MIX_NAMES)]
    if report:
        paths.append(out_dir / REPORT_FILE)
    if dawproject:
        paths.append(out_dir / DAWPROJECT_FILE)
    return paths


def _track_files(tracks: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(tracks, (str, os.PathLike)):
        return list_track_files(tracks)
    files = [Path(t) for t in tracks]
    if not files:
        raise InputError("no track files given")
    return files


def invert(
    tracks: str | os.PathLike | Sequence[str | os.PathLike],
    mix: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    method: str = "auto",
    seed: int = 0,
    overwrite: bool = False,
    max_tracks: int | None = DEFAULT_MAX_TRACKS,
    options: dict | None = None,
    report: bool = False,
    dawproject: bool = False,
) -> InvertResult:
    """Estimate console settings for the tracks that recreate the reference ``mix``.

    ``tracks`` is a folder of track files or a list of files; ``mix`` the stereo mixdown.
    With ``out_dir``, writes ``out_dir/params.json`` (the settings, plus ``"method"``, the
    scores and where the inputs were) and ``out_dir/mix.wav`` (the re-rendered estimate;
    ``"mix_wav"`` in params.json says which renderer made it); with ``report`` also
    ``report.html``, with ``dawproject`` also ``session.dawproject``. Without ``out_dir``
    nothing is written: call :meth:`InvertResult.save` later. A method whose ``mix.wav``
    is not the console rendering of its settings (``barchiesi-reiss``) also writes
    ``mix_console.wav``, scored under ``"other_mixes"``; with ``overwrite``, such a file
    left by an earlier run into the same folder is removed when the new method does not
    write it (it would no longer match params.json). ``method="auto"`` takes the best
    method available. ``options`` go to the method (e.g. ``{"model": "run/model.pt"}`` for
    ``eami``, ``{"budget": 120}`` work units for ``eami+refine``). params.json records the
    seed and, for budgeted methods, the budget (``"budget"``: work units given and used,
    the wall-clock cap and the seconds taken, and the stages the cap cut short).
    """
    options = dict(options or {})
    name = best_method(options=tuple(options)) if method == "auto" else method
    entry = get_method(name)
    entry.check_options(options)
    files = _track_files(tracks)
    if out_dir is not None:  # fail before the work, not after
        _guard_outputs(output_paths(out_dir, report=report, dawproject=dawproject), files + [Path(mix)], overwrite)
    if report or dawproject:
        _check_optional_outputs(report, dawproject)
    song = load_tracks_and_mix(files, mix, name=files[0].resolve().parent.parent.name, max_tracks=max_tracks)
    run = run_method(song, name, rng=np.random.default_rng(seed), options=options)
    est, scores = run.estimate, run.scores
    info = {k: v for k, v in est.info.items() if isinstance(v, (str, int, float, bool))}
    extra = {
        "method": name,
        "seed": seed,
        "seconds": round(run.seconds, 3),
        "scores": {"mae": scores.mae, "mrsd": scores.mrsd},
        "mix_wav": info.get("mix_source", f"console {est.params.schema.version}"),
        "notes": song.notes,
        # where the inputs were, so that `mixinvert report` / `export` can find them again
        "inputs": {"tracks_dir": str(files[0].resolve().parent), "tracks": [str(f.resolve()) for f in files],
                   "mix": str(Path(mix).resolve())},
    }
    if isinstance(est.info.get("budget"), dict):
        extra["budget"] = est.info["budget"]
    details = {k: v for k, v in info.items() if k not in ("seconds", "mix_source")}
    if details:
        extra["method_info"] = details
    extra_mixes = {}
    for key, other_scores in run.extra_scores.items():
        extra.setdefault("other_mixes", {})[f"mix_{key}.wav"] = {
            "source": EXTRA_MIX_NAMES[key], "mae": other_scores.mae, "mrsd": other_scores.mrsd,
        }
        extra_mixes[f"mix_{key}.wav"] = est.extra_mixes[key]
    result = InvertResult(song, name, est, scores, params_extra=extra, extra_mixes=extra_mixes,
                          track_files=tuple(files))
    if out_dir is not None:
        result.save(out_dir, overwrite=overwrite, report=report, dawproject=dawproject)
    return result


def _check_optional_outputs(report: bool, dawproject: bool) -> None:
    """Fail before the work if an optional output cannot be made here."""
    if report:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise MixinvertError("the report needs matplotlib: pip install matplotlib, or run without the report "
                               "(--no-report)") from None


def _inputs_of(out_dir: Path, tracks: str | os.PathLike | Sequence[str | os.PathLike] | None) -> tuple[MixParams, list[Path]]:
    """params.json of an ``invert`` output folder and the track files it was made from."""
    params = read_params(out_dir / PARAMS_FILE)
    if tracks is not None:
        files = _track_files(tracks)
    else:
        recorded = params.extra.get("inputs", {}).get("tracks")
        if not recorded:
            raise InputError(f"{out_dir / PARAMS_FILE} does not say where its tracks are; pass them (--tracks DIR)")
        files = [Path(f) for f in recorded]
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise InputMissingError(f"{missing[0]}: track recorded in {out_dir / PARAMS_FILE} is gone; "
                                    "pass the tracks' folder (--tracks DIR)")
    return params, files


def export(
    out_dir: str | os.PathLike,
    *,
    tracks: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    out_path: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the session of an ``invert`` output folder as a DAWproject file.

    The settings come from ``out_dir/params.json``, the audio from the tracks it records
    (or ``tracks``: a folder or a list of files). Writes ``out_path`` (default
    ``out_dir/session.dawproject``) and returns it.
    """
    from mixinvert.daw.dawproject import export_dawproject

    out_dir = Path(out_dir)
    params, files = _inputs_of(out_dir, tracks)
    by_name = {f.name: f for f in files}
    missing = [n for n in params.track_names if n not in by_name]
    if missing:
        raise InputError(f"{out_dir / PARAMS_FILE} has track(s) {', '.join(missing)} that are not among the tracks "
                         f"given ({', '.join(by_name)})")
    out_path = Path(out_path) if out_path is not None else out_dir / DAWPROJECT_FILE
    _guard_outputs([out_path], files + [out_dir / PARAMS_FILE], overwrite)
    return export_dawproject(params, [by_name[n] for n in params.track_names], out_path, overwrite=overwrite,
                             title=params.extra.get("song") or out_dir.name)


def report(
    out_dir: str | os.PathLike,
    *,
    tracks: str | os.PathLike | None = None,
    mix: str | os.PathLike | None = None,
    overwrite: bool = True,
) -> Path:
    """(Re)build ``out_dir/report.html`` from what ``invert`` left in ``out_dir``."""
    from mixinvert.reporting import build_report

    return build_report(out_dir, tracks_dir=tracks, mix_path=mix, overwrite=overwrite)


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
    report: bool = False,
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
        raise OutputExistsError(f"{inv_dir} exists and was not made by the demo; refusing to overwrite it")
    truth = read_params(song_dir / "params.json")
    # inverted on the console that made the song, so that the settings can be scored
    name = best_method() if method == "auto" else method
    options = {"console": truth.schema.version} if "console" in get_method(name).options else {}
    result = invert(song_dir / "tracks", song_dir / "mix.wav", inv_dir, method=name, seed=seed, overwrite=True,
                    report=report, options=options)
    write_text_atomic(marker, "made by mixinvert demo\n", overwrite=True)
    baseline = None
    if result.method != "sum":
        baseline = run_method(result.song, "sum", rng=np.random.default_rng(seed), options=options).scores
    truth = truth.reordered(result.song.track_names)
    errors = param_errors(result.estimate.params.values, truth.values)
    return DemoResult(song_dir, result, baseline, errors)
