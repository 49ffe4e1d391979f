"""The ``mixinvert`` command line: parses arguments and calls one function of :mod:`mixinvert.api`.

Errors that come from the user's input (bad files, clashing outputs, missing programs)
are printed as one line, ``mixinvert: error: ...``, with exit status 2; nothing
half-written is left behind. Anything else is an internal error (exit status 1).
``--debug`` shows the traceback; ``--quiet`` prints only errors; ``--json`` prints one
JSON object per line (progress, notes, the result, errors) for scripts. Exit status 130
after an interruption (Ctrl-C).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

from mixinvert.errors import InputError, MixinvertError
from mixinvert.methods.registry import PREFERENCE
from mixinvert.progress import emit_json, progress_bar, progress_mode

EXAMPLES = """\
examples:
  mixinvert demo --kit ../shared/data/muldjordkit
  mixinvert corpus corpus/ --preset songs --songs 20 --seconds 10 --seed 0 --kit KIT_DIR
  mixinvert corpus real/ --preset real --sources ../shared/data/medleydb-raw --console v2 --songs 200
  mixinvert evaluate corpus/ --methods sum,random --split test --out results.md
  mixinvert evaluate corpus/ --methods sum,barchiesi-reiss,colonel-reiss,eami --split test --limit 10
  mixinvert invert SONG/tracks SONG/mix.wav --out inverted/
  mixinvert invert SONG/tracks SONG/mix.wav --method eami+refine --budget 120 --out inverted/
  mixinvert invert SONG/tracks SONG/mix.wav --method colonel-reiss --budget 60 --budget-seconds 90 --out inverted/
  mixinvert train corpus/ --config small --iterations 30 --out runs/small
  mixinvert train corpus/ --init runs/small/model.pt --iterations 10 --keep-models --out runs/tuned
  mixinvert adapt my_songs/ --out runs/adapted
  mixinvert average-models runs/tuned/models/iteration_008.pt runs/tuned/models/iteration_010.pt --out tuned.pt
  mixinvert invert SONG/tracks SONG/mix.wav --method eami --out inverted/
  mixinvert invert SONG/tracks SONG/mix.wav --method eami --model runs/small/model.pt --out inverted/
  mixinvert render SONG/tracks --params inverted/params.json --out remix.wav
  mixinvert report inverted/
  mixinvert export inverted/ --out session.dawproject
  mixinvert --json invert SONG/tracks SONG/mix.wav --out inverted/ > events.jsonl

exit status: 0 done, 1 internal error, 2 bad input or set-up, 130 interrupted
"""


class Ui:
    """How a command talks: ``human`` (text, progress bars on a terminal), ``quiet`` (only
    errors) or ``json`` (one JSON object per line on stdout: ``progress``, ``note``,
    ``result`` and ``error`` events, for scripts)."""

    def __init__(self, mode: str = "human") -> None:
        self.mode = mode

    @property
    def progress(self) -> str:
        return {"human": "auto", "quiet": "off", "json": "json"}[self.mode]

    def say(self, text: str) -> None:
        """A line of human-readable output (stdout); nothing in quiet or json mode."""
        if self.mode == "human":
            print(text)

    def note(self, text: str) -> None:
        """Something the user should know that is not an error (stderr, or a ``note`` event)."""
        if self.mode == "human":
            print(f"note: {text}", file=sys.stderr)
        elif self.mode == "json":
            emit_json("note", message=text)

    def notes(self, notes: Sequence[str]) -> None:
        for note in notes:
            self.note(note)

    def result(self, command: str, **fields: Any) -> None:
        """The command's outcome as data: a ``result`` event in json mode."""
        if self.mode == "json":
            emit_json("result", command=command, **fields)

    def error(self, message: str, code: int) -> None:
        print(f"mixinvert: error: {message}", file=sys.stderr)
        if self.mode == "json":
            emit_json("error", message=message, exit_code=code)


#: The methods, for help texts (the registry itself loads lazily).
METHOD_NAMES = ", ".join(PREFERENCE)


def _bar(total: int | None, desc: str, unit: str):
    return progress_bar(total, desc, unit, leave=True)


def cmd_render(args: argparse.Namespace, ui: Ui) -> int:
    from mixinvert.api import render

    out, song = render(args.tracks_dir, args.params, args.out, overwrite=args.overwrite, max_tracks=args.max_tracks)
    ui.notes(song.notes)
    ui.say(f"rendered {song.num_tracks} tracks ({song.duration_s:.1f} s) to {out}")
    ui.result("render", out=str(out), tracks=song.num_tracks, seconds=song.duration_s)
    return 0


def cmd_corpus(args: argparse.Namespace, ui: Ui) -> int:
    from mixinvert.data.corpus import CorpusConfig, make_corpus

    config = CorpusConfig(
        preset=args.preset, songs=args.songs, seconds=args.seconds, seed=args.seed,
        kit_dir=str(args.kit) if args.kit else None, midi_path=str(args.midi) if args.midi else None,
        soundfont=str(args.soundfont) if args.soundfont else None, console=args.console,
        sources_dir=str(args.sources) if args.sources else None,
    )
    if args.preset == "songs" and args.kit is None:
        ui.note("no --kit given, so the songs have no drums")
    with _bar(args.songs, f"corpus ({args.preset})", "song") as bar:
        make_corpus(args.out_dir, config, jobs=args.jobs, progress=bar.update)
    ui.say(f"made {args.songs} songs in {args.out_dir} (splits in {Path(args.out_dir) / 'splits.json'})")
    ui.result("corpus", out=str(args.out_dir), songs=args.songs, splits=str(Path(args.out_dir) / "splits.json"))
    return 0


def cmd_evaluate(args: argparse.Namespace, ui: Ui) -> int:
    from mixinvert.data.dataset import list_song_dirs
    from mixinvert.evaluation import evaluate, results_paths, write_results

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    n = len(list_song_dirs(args.dataset_dir, args.split))
    if args.limit is not None:
        n = min(n, max(args.limit, 0))
    paths = results_paths(args.out, overwrite=args.overwrite, html=args.report) if args.out else []  # fail before the work
    for option, value in (("--songs-at-once", args.songs_at_once), ("--cpus-per-song", args.cpus_per_song)):
        if value is not None and value < 1:
            raise InputError(f"{option} must be at least 1, got {value}")
    executor = None
    if args.ray or args.songs_at_once:
        from mixinvert.executors import make_executor

        cpus = args.cpus_per_song or 1
        executor = make_executor(args.ray, None if args.ray else args.songs_at_once * cpus)
        ui.note(f"songs run as parallel tasks on {executor.describe()}, {cpus} core(s) each")
    try:
        with _bar(n, "evaluate", "song") as bar:
            results = evaluate(args.dataset_dir, methods, split=args.split, seed=args.seed,
                               max_tracks=args.max_tracks, progress=bar.update,
                               options=_method_options(args), limit=args.limit, executor=executor,
                               cpus_per_song=args.cpus_per_song or 1)
    finally:
        if executor is not None:
            executor.close()
    ui.say(results.to_markdown())
    written = []
    if args.out:
        written = write_results(results, args.out, overwrite=args.overwrite)
        if args.report:
            from mixinvert.reporting import write_evaluation_report

            written.append(write_evaluation_report(results, paths[-1], overwrite=args.overwrite))
        ui.say(f"wrote {', '.join(str(p) for p in written)}")
    ui.result("evaluate", mean=results.to_json()["mean"], songs=len({r.song for r in results.rows}),
              written=[str(p) for p in written])
    return 0


def cmd_train(args: argparse.Namespace, ui: Ui) -> int:
    import torch

    from mixinvert.executors import make_executor
    from mixinvert.train.config import TrainConfig
    from mixinvert.train.distributed import (
        backend_for,
        init_from_env,
        resolve_device,
        shutdown,
    )
    from mixinvert.train.essl import train

    defaults = TrainConfig()
    overrides = {
        "model": args.config,
        "iterations": args.iterations,
        "samples_per_song": args.samples,
        "sampling": args.sampling,
        "sigma_init": args.sigma_init,
        "gamma": args.gamma,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "excerpt_seconds": args.excerpt_seconds,
        "songs_per_iteration": args.songs_per_iteration,
        "valid_songs": args.valid_songs,
        "seed": args.seed,
        "max_tracks": args.max_tracks,
        "prior_samples": args.prior_samples,
        "console": args.console,
    }
    config = TrainConfig(**{**defaults.to_dict(), **{k: v for k, v in overrides.items() if v is not None}})
    device = resolve_device(args.device, int(os.environ.get("LOCAL_RANK", "0")))  # a clear error before any work
    ranks = init_from_env(args.device)  # launched by torchrun: DistributedDataParallel over its processes
    if ranks is not None and args.ray == "local":
        shutdown()
        raise InputError('--ray local would start one Ray per torchrun process: start Ray once with `ray start '
                         '--head` and pass --ray auto (or the cluster address)')
    if ranks is not None:
        if not ranks.is_main:
            ui = Ui("quiet")  # one voice: rank 0's
        ui.note(f"distributed training: {ranks.world} processes (DistributedDataParallel, {backend_for(device)})")
    if device.type == "cuda" and (ranks is None or ranks.is_main):
        ui.note(f"training step on {device} ({torch.cuda.get_device_name(device)})")
    executor = make_executor(args.ray, args.workers)
    if args.ray:
        ui.note(f"renders run on {executor.describe()}")
    try:
        result = train(args.corpus_dirs, args.out, config, workers=args.workers, progress=ui.mode != "quiet",
                       log=ui.say if ui.mode != "json" else ui.note, executor=executor, device=str(device),
                       init=args.init, keep_models=args.keep_models, init_encoder=args.init_encoder)
    except KeyboardInterrupt:
        if ranks is None or ranks.is_main:
            print(f"mixinvert: interrupted; {args.out} keeps every finished iteration: run the same command "
                  "to resume", file=sys.stderr)
        return 130
    finally:
        executor.close()
        shutdown()
    if result.history:
        last = result.history[-1]
        ui.say(f"trained {last['iteration']} iterations; last validation MRSD {last['valid_mrsd']:.3f}")
    ui.say(f"model: {result.model_path} (best validation MRSD); log: {result.run_dir / 'log.csv'}")
    ui.result("train", model=str(result.model_path), log=str(result.run_dir / "log.csv"),
              history=result.history)
    return 0


#: ``mixinvert adapt``'s schedule: a few iterations, small noise around a trained network's
#: answers, many excerpts of each of a few songs.
ADAPT_DEFAULTS = {"iterations": 6, "samples_per_song": 8, "sigma_init": 0.15, "gamma": 0.8, "epochs": 4,
                  "lr": 2e-4, "prior_samples": 0, "valid_songs": None}


def cmd_adapt(args: argparse.Namespace, ui: Ui) -> int:
    from mixinvert.models.checkpoint import DEFAULT_MODEL_PATHS, load_model
    from mixinvert.train.config import TrainConfig
    from mixinvert.train.essl import train

    model_path = args.model or DEFAULT_MODEL_PATHS["v2"]
    net, schema, _ = load_model(model_path)
    overrides = {"iterations": args.iterations, "samples_per_song": args.samples, "sigma_init": args.sigma_init,
                 "excerpt_seconds": args.excerpt_seconds, "seed": args.seed, "max_tracks": args.max_tracks}
    config = TrainConfig(**{**TrainConfig().to_dict(), **ADAPT_DEFAULTS, "model": net.config.name,
                            "console": schema.version, "adapt": True,
                            **{k: v for k, v in overrides.items() if v is not None}})
    try:
        result = train(args.song_dirs, args.out, config, workers=args.workers, progress=ui.mode != "quiet",
                       log=ui.say if ui.mode != "json" else ui.note, device=args.device, init=model_path)
    except KeyboardInterrupt:
        print(f"mixinvert: interrupted; {args.out} keeps every finished iteration: run the same command to resume",
              file=sys.stderr)
        return 130
    first = result.history[0]["valid_mrsd"] if result.history else float("nan")
    if result.history:
        ui.say(f"adapted for {result.history[-1]['iteration']} iterations; MRSD on the songs' own mixes "
               f"{first:.3f} after the first, {result.history[-1]['valid_mrsd']:.3f} after the last")
    ui.say(f"model: {result.model_path} (use it with --model); log: {result.run_dir / 'log.csv'}")
    ui.result("adapt", model=str(result.model_path), log=str(result.run_dir / "log.csv"), history=result.history)
    return 0


def cmd_average_models(args: argparse.Namespace, ui: Ui) -> int:
    from mixinvert.console.schema import get_schema
    from mixinvert.models.checkpoint import model_payload, save_atomic
    from mixinvert.train.config import TrainError
    from mixinvert.train.surgery import average_models

    if args.out.exists() and not args.overwrite:
        raise TrainError(f"{args.out} exists; pass --overwrite to replace it")
    if args.out.resolve() in {Path(m).resolve() for m in args.models}:
        raise TrainError(f"{args.out} is one of the models to average; write the average to another file")
    model, meta = average_models(args.models)
    save_atomic(model_payload(model, get_schema(meta["console"]), meta), args.out)
    ui.say(f"averaged {len(args.models)} models into {args.out}")
    ui.result("average-models", model=str(args.out), sources=meta["averaged"])
    return 0


def _method_options(args: argparse.Namespace) -> dict:
    """Method options given on the command line (``--model``, ``--steps``, ``--budget``, ``--budget-seconds``,
    ``--console``)."""
    given = {"model": args.model, "steps": args.steps, "budget": args.budget, "budget_seconds": args.budget_seconds,
             "match": False if args.no_match else None, "console": args.console,
             "network": False if args.no_network else None}
    return {k: v for k, v in given.items() if v is not None}


def _add_method_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--console", choices=("v1", "v2"), default=None,
                   help="console to express the mix with: v1, or v2 (polarity, time offset, drive, high-pass, "
                        "more EQ, a reverb bus and a master chain). Default: v2, except with --model (the model's "
                        "console) and on songs whose true settings are known on v1 (a v1 corpus), which stay on v1 "
                        "so that settings can be scored")
    p.add_argument("--model", type=Path, default=None, metavar="MODEL.pt",
                   help="EAMI model file for eami and eami+refine (default: the shipped model of the console)")
    p.add_argument("--no-match", action="store_true",
                   help="eami: the network's answer as it is (the paper's one-pass estimate), without the closed-form "
                        "match: levels and reverb wet by least squares (v1); offsets and polarity measured, faders "
                        "and sends by least squares (v2)")
    p.add_argument("--no-network", action="store_true",
                   help="eami+refine on v2: leave the network's answer out of the candidate starts (the sum and "
                        "barchiesi-reiss's settings only)")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="most gradient steps on the twin per song (colonel-reiss: default 200; eami+refine: 400)")
    p.add_argument("--budget", type=float, default=None, metavar="UNITS",
                   help="work budget per song in work units, about seconds of a quiet 2-core machine; the answer "
                        "is the same on any machine and under any load (eami+refine: default 60; colonel-reiss: "
                        "default none, --steps bounds it)")
    p.add_argument("--budget-seconds", type=float, default=None, metavar="S",
                   help="an optional wall-clock cap per song for eami+refine and colonel-reiss, for a deadline: "
                        "what it cuts short is recorded in params.json, and the answer then depends on the machine "
                        "and its load")


def _add_ray_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help='run the renders on Ray (pip install "mixinvert[ray]"): "local" starts Ray here, "auto" '
                        'joins the cluster `ray start` runs here, HOST:PORT or ray://HOST:PORT a remote one')


def _invert_summary(result: Any) -> dict:
    """What ``invert`` found, as data (the json ``result`` event)."""
    params = result.params
    return {
        "method": result.method,
        "seconds": result.params_extra.get("seconds"),
        "scores": {"mae": result.scores.mae, "mrsd": result.scores.mrsd},
        "params": str(result.params_path) if result.params_path else None,
        "mix": str(result.mix_path) if result.mix_path else None,
        "report": str(result.report_path) if result.report_path else None,
        "dawproject": str(result.dawproject_path) if result.dawproject_path else None,
        "tracks": [{"name": n, **params.schema.to_dict(v)} for n, v in zip(params.track_names, params.values)],
    }


def cmd_invert(args: argparse.Namespace, ui: Ui) -> int:
    from mixinvert.api import invert

    options = _method_options(args)
    result = invert(args.tracks_dir, args.mix, args.out, method=args.method, seed=args.seed,
                    overwrite=args.overwrite, max_tracks=args.max_tracks, options=options,
                    report=args.report, dawproject=args.export_dawproject)
    ui.notes(result.song.notes)
    ui.say(f"method {result.method}: MAE {result.scores.mae:.4f}, MRSD {result.scores.mrsd:.3f} against {args.mix}")
    for name, other in result.params_extra.get("other_mixes", {}).items():
        ui.say(f"also {name} ({other['source']}): MAE {other['mae']:.4f}, MRSD {other['mrsd']:.3f}")
    details = result.estimate.track_details
    if details and any("uncertainty" in d for d in details):
        n_iv = sum(len(d.get("uncertainty", {})) for d in details)
        n_un = sum(len(d.get("undetermined", {})) for d in details)
        intervals = (f"an interval for each of {n_iv} settings" if n_iv else
                     "no intervals (the budget left no work to measure them: raise --budget)")
        ui.say(f"uncertainty: {intervals}; {n_un} settings the audio does not determine "
               f"(\"uncertainty\" and \"undetermined\" beside each track's values in params.json)")
    ui.say(f"wrote {result.params_path} and {result.mix_path} ({result.params_extra.get('mix_wav', 'console v1')})")
    if result.report_path:
        ui.say(f"report: {result.report_path} (open it in a browser)")
    if result.dawproject_path:
        ui.say(f"DAW session: {result.dawproject_path}")
    ui.result("invert", **_invert_summary(result))
    return 0


def cmd_report(args: argparse.Namespace, ui: Ui) -> int:
    from mixinvert.api import report

    path = report(args.out_dir, tracks=args.tracks, mix=args.mix)
    ui.say(f"report: {path} (open it in a browser)")
    ui.result("report", report=str(path))
    return 0


def cmd_export(args: argparse.Namespace, ui: Ui) -> int:
    from mixinvert.api import export

    path = export(args.out_dir, tracks=args.tracks, out_path=args.out, overwrite=args.overwrite)
    ui.say(f"DAW session: {path}")
    ui.result("export", dawproject=str(path))
    return 0


def cmd_demo(args: argparse.Namespace, ui: Ui) -> int:
    from mixinvert.api import demo

    ui.say(f"making a {args.seconds:g} s song in {args.out} (music21 score rendered with fluidsynth"
           f"{', drums from ' + str(args.kit) if args.kit else ', no drums: pass --kit for drums'}) ...")
    res = demo(args.out, kit_dir=args.kit, seconds=args.seconds, seed=args.seed, method=args.method,
               report=args.report)
    inv = res.inverted
    ui.say(f"song: {res.song_dir} ({inv.song.num_tracks} tracks: {', '.join(inv.song.track_names)})")
    ui.say(f"method: {inv.method} ({inv.estimate.info.get('seconds', 0):.2f} s)")
    ui.say(f"  MAE  {inv.scores.mae:.4f}   MRSD {inv.scores.mrsd:.3f}   (reference: {res.song_dir / 'mix.wav'})")
    if res.baseline is not None:
        ui.say(f"  sum baseline: MAE {res.baseline.mae:.4f}   MRSD {res.baseline.mrsd:.3f}")
    if res.param_errors:
        e = res.param_errors
        ui.say(f"  parameter error vs truth: {e['normalized_mae']:.3f} (normalized MAE), "
               f"gain {e['gain_db']:.2f} dB, pan {e['pan']:.3f}")
    ui.say(f"outputs: {inv.params_path} (settings), {inv.mix_path} (re-rendered mix)")
    if inv.report_path:
        ui.say(f"report: {inv.report_path} (open it in a browser)")
    ui.say(f"re-render: mixinvert render {res.song_dir / 'tracks'} --params {inv.params_path} --out remix.wav")
    ui.result("demo", song=str(res.song_dir), baseline=vars(res.baseline) if res.baseline else None,
              param_errors=res.param_errors, **_invert_summary(inv))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from mixinvert import __version__

    parser = argparse.ArgumentParser(
        prog="mixinvert",
        description="Recover how a mix was made: per-track gain, EQ, compression, pan and reverb "
        "from the raw tracks and the stereo mixdown.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mixinvert {__version__}")
    _add_output_options(parser, argparse.ArgumentParser(add_help=False))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # the same options after the command name (`mixinvert invert ... --quiet`); SUPPRESS keeps
    # a subcommand from resetting what was given before it
    common = argparse.ArgumentParser(add_help=False)
    _add_output_options(common, common, suppress=True)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        examples = [line for line in EXAMPLES.splitlines() if line.strip().startswith(f"mixinvert {name} ")
                    or line.strip().startswith(f"mixinvert --json {name} ")]
        epilog = "examples:\n" + "\n".join(examples) if examples else None
        return sub.add_parser(name, help=help_, description=help_, parents=[common], epilog=epilog,
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    def max_tracks(p: argparse.ArgumentParser, default: int | None) -> None:
        p.add_argument("--max-tracks", type=int, default=default, metavar="N",
                       help=f"refuse songs with more tracks than this (default: {default or 'no limit'})")

    p = add("render", "render tracks through the console (v1 or v2) and the settings of a params.json")
    p.add_argument("tracks_dir", type=Path, metavar="TRACKS_DIR",
                   help="folder of track files (names must match params.json)")
    p.add_argument("--params", type=Path, required=True, metavar="FILE", help="params.json with the settings")
    p.add_argument("--out", type=Path, required=True, metavar="MIX.wav", help="mix file to write (32-bit float WAV)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    max_tracks(p, None)
    p.set_defaults(func=cmd_render)

    p = add("corpus", "make a synthetic multitrack corpus with known mixing settings")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR",
                   help="folder to create (an unfinished corpus there is resumed)")
    p.add_argument("--preset", choices=("drums", "songs", "real"), default="songs",
                   help="drums: ENST-Drums-like kit mics; songs: MedleyDB-like songs (default); real: excerpts of "
                        "real raw multitracks (--sources), split by source song")
    p.add_argument("--sources", type=Path, metavar="DIR",
                   help="the real preset's folder of MedleyDB raw multitracks (<Song>/<Song>_METADATA.yaml, "
                        "<Song>_RAW/), e.g. ../shared/data/medleydb-raw")
    p.add_argument("--songs", type=int, default=10, metavar="N", help="number of songs (default 10)")
    p.add_argument("--seconds", type=float, default=10.0, metavar="S", help="length of each song (default 10)")
    p.add_argument("--seed", type=int, default=0, metavar="K", help="random seed (default 0)")
    p.add_argument("--kit", type=Path, metavar="KIT_DIR", help="multi-mic drum kit folder (MuldjordKit layout)")
    p.add_argument("--midi", type=Path, metavar="FILE", help="drum performance MIDI file to play (half the drum songs)")
    p.add_argument("--soundfont", type=Path, metavar="FILE.sf2", help="General MIDI soundfont (default: FluidR3_GM)")
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="worker processes (default: all cores)")
    p.add_argument("--console", choices=("v1", "v2"), default="v1",
                   help="console the synthetic engineer mixes with (default v1; v2 adds high-pass, more EQ, drive, "
                        "polarity and offsets, a reverb bus, and a master compressor and limiter)")
    p.set_defaults(func=cmd_corpus)

    p = add("evaluate", "run methods on every song of a dataset and print the paper's Table 1")
    p.add_argument("dataset_dir", type=Path, metavar="DATASET_DIR", help="folder of song folders (e.g. a corpus)")
    p.add_argument("--methods", default="sum,random", metavar="M1,M2,...",
                   help=f"comma-separated methods among {METHOD_NAMES} (default sum,random)")
    p.add_argument("--split", choices=("train", "valid", "test"), help="only this split (needs splits.json)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N songs (by name) of the split")
    _add_method_options(p)
    p.add_argument("--out", type=Path, metavar="RESULTS.md",
                   help="markdown file to write; the JSON and an HTML report (results.html) go beside it")
    p.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                   help="with --out, an HTML report beside the markdown (default: yes)")
    p.add_argument("--seed", type=int, default=0, metavar="K", help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    max_tracks(p, 16)
    _add_ray_option(p)
    p.add_argument("--songs-at-once", type=int, default=None, metavar="N",
                   help="without --ray: N songs in parallel on this machine (default: one after another)")
    p.add_argument("--cpus-per-song", type=int, default=None, metavar="N",
                   help="with --ray or --songs-at-once: cores reserved per song (default 1; the scores do not depend on "
                        "it, only the seconds per song, unless --budget-seconds caps a method)")
    p.set_defaults(func=cmd_evaluate)

    p = add("train", "train an EAMI network by embodied self-supervised learning")
    p.add_argument("corpus_dirs", type=Path, nargs="+", metavar="CORPUS_DIR",
                   help="corpus folders (their train split trains, valid validates)")
    p.add_argument("--out", type=Path, required=True, metavar="RUN_DIR",
                   help="run folder (an existing run with the same settings is resumed)")
    p.add_argument("--config", choices=("small", "paper"), default=None,
                   help="network size: small (2-core CPU, default) or paper (the paper's sizes)")
    p.add_argument("--iterations", type=int, metavar="T", help="sampling/training iterations T (default 30)")
    p.add_argument("--console", choices=("v1", "v2"), default=None,
                   help="the console the network learns to set (default v1): v2's network also answers each "
                        "song's reverb bus and master chain")
    p.add_argument("--sampling", choices=("exp", "fixed", "none", "random"),
                   help="exp: sigma_init*gamma^t (default); fixed: sigma_init; none: no noise; "
                        "random: uniform settings (paper Table 2)")
    p.add_argument("--sigma-init", type=float, metavar="SIGMA", help="initial noise sigma, normalized units (default 0.5)")
    p.add_argument("--gamma", type=float, metavar="GAMMA", help="sigma decay per iteration (default 0.92)")
    p.add_argument("--samples", type=int, metavar="K", help="samples K per song and iteration (default 2)")
    p.add_argument("--prior-samples", type=int, metavar="K",
                   help="beyond the paper: K more pairs per song and iteration with settings drawn from the "
                        "engineer prior (human mixes), not from the network (default 0)")
    p.add_argument("--init", type=Path, metavar="MODEL.pt", default=None,
                   help="start from this model's weights instead of an untrained network (fine-tuning; "
                        "its network must be --config's)")
    p.add_argument("--init-encoder", type=Path, metavar="MODEL.pt", default=None,
                   help="start from this model's encoder, of any console, with fresh output heads (e.g. a v2 "
                        "network from the shipped v1 one)")
    p.add_argument("--epochs", type=int, metavar="E", help="epochs E per training step (default 8; paper 10)")
    p.add_argument("--batch-size", type=int, metavar="N", help="batch size in songs (default 4)")
    p.add_argument("--lr", type=float, metavar="LR", help="Adam learning rate (default 5e-4)")
    p.add_argument("--excerpt-seconds", type=float, metavar="S", help="seconds of each song per iteration (default 3)")
    p.add_argument("--songs-per-iteration", type=int, metavar="N",
                   help="random subset of training songs per iteration (default: all)")
    p.add_argument("--valid-songs", type=int, metavar="N", help="validation songs scored per iteration (default 16)")
    p.add_argument("--seed", type=int, metavar="K", help="random seed (default 0)")
    p.add_argument("--workers", type=int, metavar="N", default=None,
                   help="render threads (default: all cores); with --ray local: the CPUs Ray may use")
    _add_ray_option(p)
    p.add_argument("--device", default="auto", metavar="DEVICE",
                   help="where the training step runs: auto (a GPU when torch sees one, else the CPU; default), "
                        "cpu, cuda or cuda:N; under torchrun each process takes the GPU of its LOCAL_RANK. "
                        "Renders stay on CPUs")
    p.add_argument("--max-tracks", type=int, default=None, metavar="N", help="refuse songs with more tracks (default 16)")
    p.add_argument("--keep-models", action="store_true",
                   help="also keep every iteration's network as RUN_DIR/models/iteration_NNN.pt (for average-models)")
    p.set_defaults(func=cmd_train)

    p = add("adapt", "specialize a trained network to your own songs by embodied self-supervision "
                     "(tracks and mixes, no settings needed)")
    p.add_argument("song_dirs", type=Path, nargs="+", metavar="SONGS_DIR",
                   help="song folders (tracks/ and mix) or folders of them; every song trains")
    p.add_argument("--out", type=Path, required=True, metavar="RUN_DIR",
                   help="run folder (an existing run with the same settings is resumed)")
    p.add_argument("--model", type=Path, default=None, metavar="MODEL.pt",
                   help="the network to adapt (default: the shipped console v2 network)")
    p.add_argument("--iterations", type=int, metavar="T", help=f"iterations (default {ADAPT_DEFAULTS['iterations']})")
    p.add_argument("--samples", type=int, metavar="K",
                   help=f"excerpts per song and iteration (default {ADAPT_DEFAULTS['samples_per_song']})")
    p.add_argument("--sigma-init", type=float, metavar="SIGMA",
                   help=f"initial noise around the network's answers (default {ADAPT_DEFAULTS['sigma_init']})")
    p.add_argument("--excerpt-seconds", type=float, metavar="S", help="seconds of each excerpt (default 3)")
    p.add_argument("--seed", type=int, metavar="K", help="random seed (default 0)")
    p.add_argument("--workers", type=int, metavar="N", default=None, help="render threads (default: all cores)")
    p.add_argument("--device", default="auto", metavar="DEVICE", help="where the training step runs (default auto)")
    p.add_argument("--max-tracks", type=int, default=None, metavar="N", help="refuse songs with more tracks (default 16)")
    p.set_defaults(func=cmd_adapt)

    p = add("average-models", "average the weights of model files of one network (e.g. a run's last iterations)")
    p.add_argument("models", type=Path, nargs="+", metavar="MODEL.pt",
                   help="model files or training checkpoints of one network (a model without some transfer "
                        "channels is widened)")
    p.add_argument("--out", type=Path, required=True, metavar="OUT.pt", help="the averaged model file")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_average_models)

    p = add("invert", "estimate the settings that turn the tracks into the mix")
    p.add_argument("tracks_dir", type=Path, metavar="TRACKS_DIR", help="folder of raw track files")
    p.add_argument("mix", type=Path, metavar="MIX.wav", help="the stereo mixdown")
    p.add_argument("--method", default="auto", metavar="METHOD", help=f"inversion method: {METHOD_NAMES} (default: auto, the best "
                   "available)")
    _add_method_options(p)
    p.add_argument("--out", type=Path, required=True, metavar="OUT_DIR",
                   help="folder for params.json, mix.wav and report.html")
    p.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                   help="write OUT_DIR/report.html: settings, plots, audio (default: yes; it takes a few seconds)")
    p.add_argument("--export-dawproject", action="store_true",
                   help="also write the session as OUT/session.dawproject, for a DAW")
    p.add_argument("--seed", type=int, default=0, metavar="K", help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that exist")
    max_tracks(p, 16)
    p.set_defaults(func=cmd_invert)

    p = add("report", "(re)build report.html in an invert output folder: settings, plots, audio")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="folder that invert wrote (params.json, mix.wav)")
    p.add_argument("--tracks", type=Path, metavar="TRACKS_DIR",
                   help="folder of the raw tracks (default: where params.json says)")
    p.add_argument("--mix", type=Path, metavar="MIX.wav", help="the reference mix (default: where params.json says)")
    p.set_defaults(func=cmd_report)

    p = add("export", "write an invert output folder's session as a DAWproject file for a DAW")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="folder that invert wrote (params.json)")
    p.add_argument("--tracks", type=Path, metavar="TRACKS_DIR",
                   help="folder of the raw tracks (default: where params.json says)")
    p.add_argument("--out", type=Path, metavar="FILE.dawproject",
                   help="file to write (default: OUT_DIR/session.dawproject)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_export)

    p = add("demo", "make a small song, invert it, and print the scores")
    p.add_argument("--out", type=Path, default=Path("mixinvert-demo"), metavar="DIR",
                   help="folder (default ./mixinvert-demo)")
    p.add_argument("--kit", type=Path, metavar="KIT_DIR", help="multi-mic drum kit folder, for drums in the song")
    p.add_argument("--seconds", type=float, default=8.0, metavar="S", help="song length (default 8)")
    p.add_argument("--seed", type=int, default=0, metavar="K", help="random seed (default 0)")
    p.add_argument("--method", default="auto", metavar="METHOD",
                   help=f"inversion method: {METHOD_NAMES} (default: auto)")
    p.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                   help="write report.html beside the settings (default: yes)")
    p.set_defaults(func=cmd_demo)
    return parser


def _add_output_options(p: argparse.ArgumentParser, group_owner: argparse.ArgumentParser,
                        suppress: bool = False) -> None:
    kw = {"default": argparse.SUPPRESS} if suppress else {}
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("-q", "--quiet", action="store_true", help="print only errors (no progress bars)", **kw)
    mode.add_argument("--json", action="store_true",
                      help="print JSON lines on stdout (progress, note, result and error events) for scripts", **kw)
    p.add_argument("-v", "--verbose", action="store_true", help="log what is done (stderr)", **kw)
    p.add_argument("--debug", action="store_true", help="show the traceback of an error", **kw)


#: Errors that come from the input or the set-up (:mod:`mixinvert.errors`) and from the file
#: system: one line and exit status 2. Anything else is a bug.
BAD_INPUT = (MixinvertError, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ui = Ui("json" if args.json else "quiet" if args.quiet else "human")
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(name)s: %(message)s")
    logging.getLogger("mixinvert").setLevel(level)
    try:
        with progress_mode(ui.progress):
            return args.func(args, ui)
    except BAD_INPUT as err:
        if args.debug:
            traceback.print_exc()
        ui.error(_one_line(err), 2)
        return 2
    except KeyboardInterrupt:
        print("mixinvert: interrupted; finished outputs are kept, nothing half-written is left", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: still one line, with the way to the traceback
        if args.debug:
            traceback.print_exc()
        ui.error(f"internal error: {type(err).__name__}: {_one_line(err)} "
                 "(run again with --debug for the traceback, and please report it)", 1)
        return 1


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, OSError) and err.filename and str(err.filename) not in text:
        text = f"{err.filename}: {text}"
    return text


if __name__ == "__main__":
    sys.exit(main())
