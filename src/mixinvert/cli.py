"""The ``mixinvert`` command line: parses arguments and calls one function of :mod:`mixinvert.api`.

Errors that come from the user's input (bad files, clashing outputs) are printed as one
line, ``mixinvert: error: ...``, with exit status 2; nothing half-written is left behind.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

EXAMPLES = """\
examples:
  mixinvert demo --kit ../shared/data/muldjordkit
  mixinvert corpus corpus/ --preset songs --songs 20 --seconds 10 --seed 0 --kit KIT_DIR
  mixinvert evaluate corpus/ --methods sum,random --split test --out results.md
  mixinvert evaluate corpus/ --methods sum,barchiesi-reiss,colonel-reiss,eami --split test --limit 10
  mixinvert invert SONG/tracks SONG/mix.wav --out inverted/
  mixinvert invert SONG/tracks SONG/mix.wav --method eami+refine --budget-seconds 120 --out inverted/
  mixinvert invert SONG/tracks SONG/mix.wav --method colonel-reiss --budget-seconds 60 --out inverted/
  mixinvert train corpus/ --config small --iterations 30 --out runs/small
  mixinvert invert SONG/tracks SONG/mix.wav --method eami --out inverted/
  mixinvert invert SONG/tracks SONG/mix.wav --method eami --model runs/small/model.pt --out inverted/
  mixinvert render SONG/tracks --params inverted/params.json --out remix.wav
"""


def _tqdm(total: int, desc: str, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=None, leave=True)


def _print_notes(notes: Sequence[str]) -> None:
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


def cmd_render(args: argparse.Namespace) -> int:
    from mixinvert.api import render

    out, song = render(args.tracks_dir, args.params, args.out, overwrite=args.overwrite, max_tracks=args.max_tracks)
    _print_notes(song.notes)
    print(f"rendered {song.num_tracks} tracks ({song.duration_s:.1f} s) to {out}")
    return 0


def cmd_corpus(args: argparse.Namespace) -> int:
    from mixinvert.data.corpus import CorpusConfig, make_corpus

    config = CorpusConfig(
        preset=args.preset, songs=args.songs, seconds=args.seconds, seed=args.seed,
        kit_dir=str(args.kit) if args.kit else None, midi_path=str(args.midi) if args.midi else None,
        soundfont=str(args.soundfont) if args.soundfont else None,
    )
    if args.preset == "songs" and args.kit is None:
        print("note: no --kit given, so the songs have no drums", file=sys.stderr)
    with _tqdm(args.songs, f"corpus ({args.preset})", "song") as bar:
        make_corpus(args.out_dir, config, jobs=args.jobs, progress=bar.update)
    print(f"made {args.songs} songs in {args.out_dir} (splits in {Path(args.out_dir) / 'splits.json'})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mixinvert.data.dataset import list_song_dirs
    from mixinvert.evaluation import evaluate, results_paths, write_results

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    n = len(list_song_dirs(args.dataset_dir, args.split))
    if args.limit is not None:
        n = min(n, max(args.limit, 0))
    if args.out:
        results_paths(args.out, overwrite=args.overwrite)  # fail before the work, not after
    with _tqdm(n, "evaluate", "song") as bar:
        results = evaluate(args.dataset_dir, methods, split=args.split, seed=args.seed,
                           max_tracks=args.max_tracks, progress=bar.update,
                           options=_method_options(args), limit=args.limit)
    print(results.to_markdown())
    if args.out:
        md, js = write_results(results, args.out, overwrite=args.overwrite)
        print(f"wrote {md} and {js}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from mixinvert.train.essl import TrainConfig, train

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
    }
    config = TrainConfig(**{**defaults.to_dict(), **{k: v for k, v in overrides.items() if v is not None}})
    try:
        result = train(args.corpus_dirs, args.out, config, workers=args.workers, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"mixinvert: interrupted; {args.out} keeps every finished iteration: run the same command "
              "to resume", file=sys.stderr)
        return 130
    if result.history:
        last = result.history[-1]
        print(f"trained {last['iteration']} iterations; last validation MRSD {last['valid_mrsd']:.3f}")
    print(f"model: {result.model_path} (best validation MRSD); log: {result.run_dir / 'log.csv'}")
    return 0


def _method_options(args: argparse.Namespace) -> dict:
    """Method options given on the command line (``--model``, ``--steps``, ``--budget-seconds``)."""
    given = {"model": args.model, "steps": args.steps, "budget_seconds": args.budget_seconds}
    return {k: v for k, v in given.items() if v is not None}


def _add_method_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, default=None,
                   help="EAMI model file for eami and eami+refine (default: the shipped model)")
    p.add_argument("--steps", type=int, default=None,
                   help="most gradient steps on the twin per song (colonel-reiss: default 200; eami+refine: 400)")
    p.add_argument("--budget-seconds", type=float, default=None,
                   help="time budget per song in seconds (eami+refine: default 60, everything included; "
                        "colonel-reiss: default 120)")


def cmd_invert(args: argparse.Namespace) -> int:
    from mixinvert.api import invert

    options = _method_options(args)
    result = invert(args.tracks_dir, args.mix, args.out, method=args.method, seed=args.seed,
                    overwrite=args.overwrite, max_tracks=args.max_tracks, options=options)
    _print_notes(result.song.notes)
    print(f"method {result.method}: MAE {result.scores.mae:.4f}, MRSD {result.scores.mrsd:.3f} against {args.mix}")
    for name, other in result.params_extra.get("other_mixes", {}).items():
        print(f"also {name} ({other['source']}): MAE {other['mae']:.4f}, MRSD {other['mrsd']:.3f}")
    details = result.estimate.track_details
    if details and any("uncertainty" in d for d in details):
        n_iv = sum(len(d.get("uncertainty", {})) for d in details)
        n_un = sum(len(d.get("undetermined", {})) for d in details)
        print(f"uncertainty: an interval for each of {n_iv} settings; {n_un} settings the audio does not determine "
              f"(\"uncertainty\" and \"undetermined\" beside each track's values in params.json)")
    print(f"wrote {result.params_path} and {result.mix_path} ({result.params_extra.get('mix_wav', 'console v1')})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from mixinvert.api import demo

    print(f"making a {args.seconds:g} s song in {args.out} (music21 score rendered with fluidsynth"
          f"{', drums from ' + str(args.kit) if args.kit else ', no drums: pass --kit for drums'}) ...")
    res = demo(args.out, kit_dir=args.kit, seconds=args.seconds, seed=args.seed, method=args.method)
    inv = res.inverted
    print(f"song: {res.song_dir} ({inv.song.num_tracks} tracks: {', '.join(inv.song.track_names)})")
    print(f"method: {inv.method} ({inv.estimate.info.get('seconds', 0):.2f} s)")
    print(f"  MAE  {inv.scores.mae:.4f}   MRSD {inv.scores.mrsd:.3f}   (reference: {res.song_dir / 'mix.wav'})")
    if res.baseline is not None:
        print(f"  sum baseline: MAE {res.baseline.mae:.4f}   MRSD {res.baseline.mrsd:.3f}")
    if res.param_errors:
        e = res.param_errors
        print(f"  parameter error vs truth: {e['normalized_mae']:.3f} (normalized MAE), "
              f"gain {e['gain_db']:.2f} dB, pan {e['pan']:.3f}")
    print(f"outputs: {inv.params_path} (settings), {inv.mix_path} (re-rendered mix)")
    print(f"re-render: mixinvert render {res.song_dir / 'tracks'} --params {inv.params_path} --out remix.wav")
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
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is done")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_)

    def max_tracks(p: argparse.ArgumentParser, default: int | None) -> None:
        p.add_argument("--max-tracks", type=int, default=default,
                       help=f"refuse songs with more tracks than this (default: {default or 'no limit'})")

    p = add("render", "render tracks through console v1 with the settings of a params.json")
    p.add_argument("tracks_dir", type=Path, help="folder of track files (names must match params.json)")
    p.add_argument("--params", type=Path, required=True, help="params.json with the settings")
    p.add_argument("--out", type=Path, required=True, help="mix file to write (32-bit float WAV)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    max_tracks(p, None)
    p.set_defaults(func=cmd_render)

    p = add("corpus", "make a synthetic multitrack corpus with known mixing settings")
    p.add_argument("out_dir", type=Path, help="folder to create (an unfinished corpus there is resumed)")
    p.add_argument("--preset", choices=("drums", "songs"), default="songs",
                   help="drums: ENST-Drums-like kit mics; songs: MedleyDB-like songs (default)")
    p.add_argument("--songs", type=int, default=10, help="number of songs (default 10)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each song (default 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--kit", type=Path, help="multi-mic drum kit folder (MuldjordKit layout)")
    p.add_argument("--midi", type=Path, help="drum performance MIDI file to play (half the drum songs)")
    p.add_argument("--soundfont", type=Path, help="General MIDI soundfont (default: FluidR3_GM)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.set_defaults(func=cmd_corpus)

    p = add("evaluate", "run methods on every song of a dataset and print the paper's Table 1")
    p.add_argument("dataset_dir", type=Path, help="folder of song folders (e.g. a corpus)")
    p.add_argument("--methods", default="sum,random", help="comma-separated methods (default sum,random)")
    p.add_argument("--split", choices=("train", "valid", "test"), help="only this split (needs splits.json)")
    p.add_argument("--limit", type=int, default=None, help="only the first N songs (by name) of the split")
    _add_method_options(p)
    p.add_argument("--out", type=Path, help="markdown file to write; the JSON goes beside it")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    max_tracks(p, 16)
    p.set_defaults(func=cmd_evaluate)

    p = add("train", "train an EAMI network by embodied self-supervised learning")
    p.add_argument("corpus_dirs", type=Path, nargs="+", metavar="CORPUS_DIR",
                   help="corpus folders (their train split trains, valid validates)")
    p.add_argument("--out", type=Path, required=True,
                   help="run folder (an existing run with the same settings is resumed)")
    p.add_argument("--config", choices=("small", "paper"), default=None,
                   help="network size: small (2-core CPU, default) or paper (the paper's sizes)")
    p.add_argument("--iterations", type=int, help="sampling/training iterations T (default 30)")
    p.add_argument("--sampling", choices=("exp", "fixed", "none", "random"),
                   help="exp: sigma_init*gamma^t (default); fixed: sigma_init; none: no noise; "
                        "random: uniform settings (paper Table 2)")
    p.add_argument("--sigma-init", type=float, help="initial noise sigma, normalized units (default 0.5)")
    p.add_argument("--gamma", type=float, help="sigma decay per iteration (default 0.92)")
    p.add_argument("--samples", type=int, help="samples K per song and iteration (default 2)")
    p.add_argument("--epochs", type=int, help="epochs E per training step (default 8; paper 10)")
    p.add_argument("--batch-size", type=int, help="batch size in songs (default 4)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 5e-4)")
    p.add_argument("--excerpt-seconds", type=float, help="seconds of each song per iteration (default 3)")
    p.add_argument("--songs-per-iteration", type=int,
                   help="random subset of training songs per iteration (default: all)")
    p.add_argument("--valid-songs", type=int, help="validation songs scored per iteration (default 16)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--workers", type=int, default=None, help="render threads (default: all cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--max-tracks", type=int, default=None, help="refuse songs with more tracks (default 16)")
    p.set_defaults(func=cmd_train)

    p = add("invert", "estimate the settings that turn the tracks into the mix")
    p.add_argument("tracks_dir", type=Path, help="folder of raw track files")
    p.add_argument("mix", type=Path, help="the stereo mixdown")
    p.add_argument("--method", default="auto", help="inversion method (default: the best available)")
    _add_method_options(p)
    p.add_argument("--out", type=Path, required=True, help="folder for params.json and mix.wav")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that exist")
    max_tracks(p, 16)
    p.set_defaults(func=cmd_invert)

    p = add("demo", "make a small song, invert it, and print the scores")
    p.add_argument("--out", type=Path, default=Path("mixinvert-demo"), help="folder (default ./mixinvert-demo)")
    p.add_argument("--kit", type=Path, help="multi-mic drum kit folder, for drums in the song")
    p.add_argument("--seconds", type=float, default=8.0, help="song length (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--method", default="auto", help="inversion method (default: the best available)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileExistsError, FileNotFoundError, RuntimeError) as err:
        if args.verbose:
            raise
        print(f"mixinvert: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mixinvert: interrupted; finished outputs are kept, nothing half-written is left", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
