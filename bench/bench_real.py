"""Real mixes as the yardstick: every method on songs with the engineer's own mix.

``python bench/bench_real.py run [--songs DIR ...]`` scores every method on real songs
(default: ``../shared/data/real-dev``; a DIR is a song folder or a folder of them, each
with ``tracks/`` and ``mix.flac`` or ``mix.wav``) side by side in one run, and saves
``bench/results/real.json``; ``bench/run_all.py`` turns it into the "Real mixes" section of
BENCHMARKS.md. ``ladder`` measures what each capability of console v2 buys (:data:`LADDER`)
and saves ``bench/results/real_ladder.json``; ``synthetic [--corpora-dir DIR]`` scores the v2
fits on songs the synthetic engineer mixed through console v2 (``real_synthetic_v2.json``);
``adapt`` measures self-supervised adaptation of the v2 network (``mixinvert adapt``) on the
real songs, adapted on one and scored on the others (``real_adapt.json``); ``heldout
[--corpora-dir DIR]`` scores the v2 network on the test splits of its own training corpora
(remade from their seeds when missing; ``real_heldout_v2.json``).

Per song and method: the whole mix's MRSD after -23 LUFS (as ``evaluate``), over the plain
sum's, and the seconds. Two reference rows that are not methods:

- **linear bound**: the best time-invariant per-track filters (per STFT bin, least
  squares over the whole song; ``barchiesi_reiss.fit_filters`` without gain envelopes),
  rendered directly: what any static, linear per-track processing reaches. A console
  whose fit stops well above it cannot express what the engineer did.
- **engineer's stems, summed** (songs whose ``stems_reference/`` covers every track): what
  every track's own processing, exactly, reaches without the master stage.
- **alignment**: each track's offset and polarity in the mix (``dsp.alignment``), with
  the drift check.

Fader rides (:func:`rides`): whether time-varying gain (automation) could add to a static
console, measured on the engineer's material rather than through a fit: each stem against
the best time-invariant per-bin filter of its raw track, then with a gain per
:data:`RIDE_SECONDS` on top (residual energy in dB; the gap is all that per-track fader
automation could explain); and the same from the summed stems to the mix (the master stage).

Per stem, for songs with ``stems_reference/`` (``*_STEM_NN`` is what the tracks
``*_RAW_NN_*`` became in the mix): each track rendered alone through the recovered
settings (v2: its solo through its sends, the buses and the master chain) against the
engineer's processed stem. Both are scaled by their own mix's
loudness normalization (the method's mix, the engineer's mix), so a stem's score says
whether that track's level, tone, dynamics and place came out right. Over the plain
sum's stem score: below 1, the method recovered something of that track's processing.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_eami  # noqa: E402

REAL_DEV = bench_eami.REPO.parent / "shared" / "data" / "real-dev"
RESULT_NAME = "real"
LADDER_NAME = "real_ladder"
#: Rows in the order of the table: (label, method, console, extra mix scored instead of the
#: method's own mix[, more options]). ``linear bound`` is the reference row (not a method).
ROWS = (
    ("sum", "sum", "v1", None),
    ("random", "random", "v1", None),
    ("random v2", "random", "v2", None),
    ("barchiesi-reiss (its own rendering)", "barchiesi-reiss", "-", None),
    ("barchiesi-reiss", "barchiesi-reiss", "v1", "console"),
    ("barchiesi-reiss v2", "barchiesi-reiss", "v2", "console"),
    ("colonel-reiss", "colonel-reiss", "v1", None),
    ("colonel-reiss v2", "colonel-reiss", "v2", None),
    ("eami", "eami", "v1", None),
    ("eami v2, one pass (no match)", "eami", "v2", None, {"match": False}),
    ("eami v2", "eami", "v2", None),
    ("eami+refine", "eami+refine", "v1", None),
    ("eami+refine v2, without the network", "eami+refine", "v2", None, {"network": False}),
    ("eami+refine v2", "eami+refine", "v2", None),
)
BOUND = "linear bound (per-bin filters)"
#: A second reference row, for songs whose stems hold every track: the engineer's own
#: processed stems summed (every track's processing exactly, no master stage).
STEMS = "engineer's stems, summed"
#: The window of the fader-ride analysis (:func:`rides`): a gain per this many seconds.
RIDE_SECONDS = 0.5


def song_dirs(paths: list[Path]) -> list[Path]:
    """Song folders under ``paths`` (each a song folder or a folder of song folders)."""
    out: list[Path] = []
    for path in paths:
        if (path / "tracks").is_dir():
            out.append(path)
        elif path.is_dir():
            out += sorted(p for p in path.iterdir() if (p / "tracks").is_dir())
        else:
            raise SystemExit(f"{path}: not a folder")
    if not out:
        raise SystemExit(f"no song folders (with tracks/) under {', '.join(map(str, paths))}")
    return out


def _mix_file(song_dir: Path) -> Path:
    for name in ("mix.flac", "mix.wav"):
        if (song_dir / name).is_file():
            return song_dir / name
    raise SystemExit(f"{song_dir}: no mix.flac or mix.wav")


def load_real_song(song_dir: Path):
    from mixinvert.data.song import list_track_files, load_tracks_and_mix

    return load_tracks_and_mix(list_track_files(song_dir / "tracks"), _mix_file(song_dir), name=song_dir.name)


def reference_stems(song_dir: Path, track_names: tuple[str, ...]) -> dict[str, tuple[list[int], np.ndarray]]:
    """Stem name -> (indices of the tracks it holds, the stem ``(2, samples)``)."""
    from mixinvert.audio import read_audio

    folder = song_dir / "stems_reference"
    out: dict[str, tuple[list[int], np.ndarray]] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.iterdir()):
        m = re.search(r"_STEM_(\d+)$", path.stem)
        if not m:
            continue
        members = [i for i, t in enumerate(track_names) if re.search(rf"_RAW_{m.group(1)}_\d+", t)]
        if members:
            audio, _ = read_audio(path)
            out[path.stem] = (members, audio if audio.shape[0] == 2 else np.vstack([audio, audio]))
    return out


@dataclass
class Scored:
    mrsd: float
    seconds: float
    #: Each track's stereo contribution ``(n_tracks, 2, samples)``, or None.
    contributions: np.ndarray | None
    mix: np.ndarray


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    return x[:, :n] if x.shape[-1] >= n else np.pad(x, ((0, 0), (0, n - x.shape[-1])))


def stem_scores(song, stems: dict, scored: Scored) -> dict[str, float]:
    """MRSD per stem: the method's stem against the engineer's, each scaled by its own mix's
    loudness normalization (module doc)."""
    from mixinvert.dsp.loudness import loudness_normalize
    from mixinvert.metrics.audio import mrsd

    if scored.contributions is None:
        return {}
    _, est_gain_db = loudness_normalize(scored.mix, song.sample_rate)
    _, ref_gain_db = loudness_normalize(song.mix, song.sample_rate)
    out = {}
    for name, (members, stem) in stems.items():
        ours = scored.contributions[members].sum(axis=0) * 10 ** (est_gain_db / 20)
        theirs = _fit_length(stem, song.num_samples) * 10 ** (ref_gain_db / 20)
        out[name] = mrsd(ours, theirs)
    return out


def _run_method(song, method: str, console: str, extra: str | None, more: dict | None = None) -> Scored:
    from mixinvert.console.mixing import solos
    from mixinvert.methods.barchiesi_reiss import fit_filters, render_direct
    from mixinvert.methods.registry import get_method
    from mixinvert.methods.run import run_method

    # the console is always named: without one, a method that has both would run v2 (a
    # rendering of no console, "-", is barchiesi-reiss's own, whatever console it maps to)
    options = {"console": console if console != "-" else "v1"} if "console" in get_method(method).options else {}
    options.update(more or {})
    r = run_method(song, method, rng=np.random.default_rng(0), options=options)
    if extra is not None:
        mix, score = r.estimate.extra_mixes[extra], r.extra_scores[extra].mrsd
    else:
        mix, score = r.estimate.mix, r.scores.mrsd
    if method == "barchiesi-reiss" and extra is None:  # its own rendering: per-track filters x gains
        fit = fit_filters(song.tracks, song.mix)
        contributions = np.stack([_direct_track(fit, song, k, render_direct) for k in range(song.num_tracks)])
    else:
        contributions = solos(song.tracks, song.sample_rate, r.estimate.params)
    return Scored(score, r.seconds, contributions, mix)


def _direct_track(fit, song, k: int, render_direct: Callable) -> np.ndarray:
    from mixinvert.methods.barchiesi_reiss import FilterFit

    one = FilterFit(fit.filters[k:k + 1], fit.gains[k:k + 1], fit.track_power[k:k + 1], fit.frame_energy[k:k + 1])
    return render_direct([song.tracks[k]], one, song.num_samples)


def _linear_bound(song) -> Scored:
    from mixinvert.methods.barchiesi_reiss import fit_filters, render_direct
    from mixinvert.metrics.audio import compare_mixes

    start = time.perf_counter()
    fit = fit_filters(song.tracks, song.mix, gain_envelopes=False)
    mix = render_direct(song.tracks, fit, song.num_samples)
    seconds = time.perf_counter() - start
    contributions = np.stack([_direct_track(fit, song, k, render_direct) for k in range(song.num_tracks)])
    return Scored(compare_mixes(mix, song.mix, song.sample_rate).mrsd, seconds, contributions, mix)


def _lti(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x`` through the best per-bin linear filter towards ``y`` (STFT 2048, least squares over
    the song; mono, same length)."""
    from scipy.signal import istft, stft

    n = x.shape[-1]
    _, _, X = stft(x, nperseg=2048, noverlap=1536)
    _, _, Y = stft(y, nperseg=2048, noverlap=1536)
    h = (np.conj(X) * Y).sum(axis=1) / ((np.abs(X) ** 2).sum(axis=1) + 1e-12)
    _, out = istft(h[:, None] * X, nperseg=2048, noverlap=1536)
    return np.pad(out[:n], (0, max(0, n - out.shape[-1])))


def _ridden(y: np.ndarray, filtered: np.ndarray, window: int) -> np.ndarray:
    """``filtered`` times the least-squares gain (at least 0) towards ``y`` per ``window`` samples."""
    out = np.empty_like(filtered)
    for a in range(0, y.shape[-1], window):
        seg, ref = y[a:a + window], filtered[a:a + window]
        out[a:a + window] = max(0.0, float(np.dot(seg, ref) / (np.dot(ref, ref) + 1e-12))) * ref
    return out


def rides(song, stems: dict) -> dict:
    """What fader automation could add, measured on the engineer's material: per stem holding
    one track, the residual (dB) of the stem after the best static per-bin filter of its raw
    track, per channel, then with a gain per :data:`RIDE_SECONDS` on top; and, when the
    stems hold every track, the MRSD / sum of those filtered tracks summed, static and
    ridden (the best any per-track static filter or automation of it could reach), and the
    same residuals from the summed stems to the mix (the master stage)."""
    from mixinvert.methods.baseline import plain_sum
    from mixinvert.metrics.audio import compare_mixes

    window, n = int(RIDE_SECONDS * song.sample_rate), song.num_samples

    def db(residual: np.ndarray, whole: float) -> float:
        return float(10 * np.log10(float(np.sum(residual ** 2)) / whole))

    out: dict = {"stems": {}}
    static_mix, ridden_mix = np.zeros((2, n)), np.zeros((2, n))
    for name, (members, stem) in stems.items():
        if len(members) != 1:
            continue
        x, y = song.tracks[members[0]].mean(axis=0).astype(np.float64), _fit_length(stem, n).astype(np.float64)
        filtered = np.stack([_lti(x, y[c]) for c in range(2)])
        ridden = np.stack([_ridden(y[c], filtered[c], window) for c in range(2)])
        energy = float(np.sum(y * y))
        out["stems"][name] = [db(y - filtered, energy), db(y - ridden, energy)]
        static_mix += filtered
        ridden_mix += ridden
    if sorted(i for m, _ in stems.values() for i in m) == list(range(song.num_tracks)) and out["stems"]:
        base = compare_mixes(plain_sum(song), song.mix, song.sample_rate).mrsd
        out["mrsd_static"], out["mrsd_ridden"] = (compare_mixes(m.astype(np.float32), song.mix, song.sample_rate).mrsd
                                                  / base for m in (static_mix, ridden_mix))
        summed = sum(_fit_length(stem, n) for _, stem in stems.values()).astype(np.float64)
        mix = song.mix.astype(np.float64)
        master = np.stack([_lti(summed[c], mix[c]) for c in range(2)])
        master_ridden = np.stack([_ridden(mix[c], master[c], window) for c in range(2)])
        energy = float(np.sum(mix * mix))
        out["master"] = [db(mix - master, energy), db(mix - master_ridden, energy)]
    return out


def _stems_summed(song, stems: dict) -> Scored | None:
    """The engineer's stems summed, scored against the mix, when they hold every track."""
    from mixinvert.metrics.audio import compare_mixes

    if sorted(i for m, _ in stems.values() for i in m) != list(range(song.num_tracks)):
        return None
    mix = sum(_fit_length(stem, song.num_samples) for _, stem in stems.values()).astype(np.float32)
    return Scored(compare_mixes(mix, song.mix, song.sample_rate).mrsd, 0.0, None, mix)


def run(paths: list[Path], rows: tuple = ROWS) -> dict:
    from mixinvert.dsp.alignment import estimate_alignment
    from mixinvert.models.checkpoint import DEFAULT_MODEL_PATHS

    res: dict = {"machine": bench_eami._machine(), "eami_model": bench_eami.model_digest(),
                 "eami_model_v2": bench_eami.model_digest(DEFAULT_MODEL_PATHS["v2"]),
                 "rows": [label for label, *_ in rows] + [BOUND, STEMS], "songs": {}}
    for song_dir in song_dirs(paths):
        song = load_real_song(song_dir)
        stems = reference_stems(song_dir, song.track_names)
        print(f"{song.name}: {song.num_tracks} tracks, {song.duration_s:.1f} s, {len(stems)} stems", file=sys.stderr)
        entry: dict = {"seconds": song.duration_s, "tracks": list(song.track_names), "notes": list(song.notes),
                       "stems": {k: [song.track_names[i] for i in v[0]] for k, v in stems.items()},
                       "alignment": [estimate_alignment(t, song.mix, song.sample_rate).to_dict(song.sample_rate)
                                     for t in song.tracks],
                       "rides": rides(song, stems), "rows": {}}
        runs: list[tuple[str, str, Callable[[], Scored]]] = [
            (label, console, lambda m=method, c=console, e=extra, o=more: _run_method(song, m, c, e, *o))
            for label, method, console, extra, *more in rows
        ] + [(BOUND, "-", lambda: _linear_bound(song)), (STEMS, "-", lambda: _stems_summed(song, stems))]
        for label, console, fn in runs:
            scored = fn()
            if scored is None:
                continue
            entry["rows"][label] = {"console": console, "mrsd": scored.mrsd, "seconds": scored.seconds,
                                    "stems": stem_scores(song, stems, scored)}
            print(f"  {label}: MRSD {scored.mrsd:.3f} ({scored.seconds:.1f} s)", file=sys.stderr)
        res["songs"][song.name] = entry
    return res


#: What each capability of console v2 buys (colonel-reiss's fit on v2's twin, default
#: steps): (label, bells, track effects, shared effects, offsets and polarity applied).
LADDER = (
    ("v2 strip: high-pass, 4 bells", 4, ("hpf", "eq", "compressor", "fader", "pan"), (), False),
    ("+ reverb bus", 4, ("hpf", "eq", "compressor", "fader", "pan", "sends"), ("reverb bus",), False),
    ("+ master EQ and compressor", 4, ("hpf", "eq", "compressor", "fader", "pan", "sends"),
     ("reverb bus", "master eq", "master compressor"), False),
    ("+ offsets and polarity (the default)", 4, ("hpf", "eq", "compressor", "fader", "pan", "sends"),
     ("reverb bus", "master eq", "master compressor"), True),
    ("+ drive", 4, ("drive", "hpf", "eq", "compressor", "fader", "pan", "sends"),
     ("reverb bus", "master eq", "master compressor"), True),
    ("default with 2 bells", 2, ("hpf", "eq", "compressor", "fader", "pan", "sends"),
     ("reverb bus", "master eq", "master compressor"), True),
    ("default with 6 bells", 6, ("hpf", "eq", "compressor", "fader", "pan", "sends"),
     ("reverb bus", "master eq", "master compressor"), True),
)


def ladder(paths: list[Path]) -> dict:
    """Each rung of :data:`LADDER` fitted on every song: MRSD / sum of the real console's mix."""
    from mixinvert.console.mixing import render_mix
    from mixinvert.console.schema import CONSOLE_V2, ParamSchema, v2_track_specs
    from mixinvert.methods.baseline import plain_sum
    from mixinvert.methods.colonel_reiss import fit_v2
    from mixinvert.metrics.audio import compare_mixes
    from mixinvert.twin.fit import TwinFitConfig
    from mixinvert.work import WorkMeter

    # rungs already measured on this machine are kept (the ladder takes a while: it resumes)
    res: dict = bench_eami._load(LADDER_NAME) or {}
    if res.get("machine") != bench_eami._machine() or res.get("rungs") != [r[0] for r in LADDER]:
        res = {"machine": bench_eami._machine(), "rungs": [r[0] for r in LADDER], "songs": {}}
    for song_dir in song_dirs(paths):
        song = load_real_song(song_dir)
        sum_mrsd = compare_mixes(plain_sum(song), song.mix, song.sample_rate).mrsd
        rows = res["songs"].setdefault(song.name, {"sum_mrsd": sum_mrsd, "rows": {}})["rows"]
        for label, bells, track_effects, shared_effects, align in LADDER:
            if label in rows:
                continue
            schema = ParamSchema("v2", v2_track_specs(bells), shared=CONSOLE_V2.shared)
            start = time.perf_counter()
            params, info = fit_v2(song, TwinFitConfig(), WorkMeter(), schema=schema, track_effects=track_effects,
                                  shared_effects=shared_effects, align=align)
            mix = render_mix(song.tracks, song.sample_rate, params)
            rows[label] = {"mrsd": compare_mixes(mix, song.mix, song.sample_rate).mrsd,
                           "seconds": time.perf_counter() - start, "steps": info["steps"]}
            print(f"{song.name} {label}: {rows[label]['mrsd'] / sum_mrsd:.3f} x sum ({rows[label]['seconds']:.0f} s)",
                  file=sys.stderr)
            bench_eami._save(LADDER_NAME, res)
    return res


SYNTHETIC_NAME = "real_synthetic_v2"
#: The synthetic v2 songs: a corpus of its own (preset, songs, seconds, seed), each song cut
#: to its first tracks with sound (as bench_refine's comparison).
SYNTHETIC_CORPUS = ("songs", 3, 10.0, 11)
SYNTHETIC_MAX_TRACKS = 6
#: (method, console, extra mix scored instead of the method's own, budget in work units or None).
SYNTHETIC_METHODS = (("sum", "v2", None, None), ("barchiesi-reiss", "v2", "console", None),
                     ("colonel-reiss", "v2", None, None), ("eami+refine", "v2", None, None),
                     ("eami+refine", "v2", None, 80.0), ("colonel-reiss", "v1", None, None))


def synthetic(corpora_dir: Path) -> dict:
    """Console v2's fits on songs the synthetic engineer mixed through console v2 (buses and
    master chain included): MRSD / sum per song, side by side with colonel-reiss on v1."""
    import subprocess

    from mixinvert.console.mixing import render_mix
    from mixinvert.console.params_io import MixParams
    from mixinvert.data.dataset import list_song_dirs
    from mixinvert.data.song import Song, load_song
    from mixinvert.methods.run import run_method

    preset, n_songs, seconds, seed = SYNTHETIC_CORPUS
    target = corpora_dir / "synthetic_v2"
    subprocess.run([*bench_eami.MIXINVERT, "corpus", str(target), "--preset", preset, "--songs", str(n_songs),
                    "--seconds", str(seconds), "--seed", str(seed), "--kit", str(bench_eami.KIT), "--console", "v2"],
                   check=True)
    res: dict = {"machine": bench_eami._machine(), "corpus": list(SYNTHETIC_CORPUS), "songs": {}}
    for d in list_song_dirs(target):
        full = load_song(d, require_mix=True)
        keep = [i for i, t in enumerate(full.tracks) if np.abs(t).max() > 1e-3][:SYNTHETIC_MAX_TRACKS]
        names = tuple(full.track_names[i] for i in keep)
        tracks = [full.tracks[i] for i in keep]
        truth = MixParams(full.params.schema, names, full.params.values[keep], full.sample_rate,
                          shared=full.params.shared)
        song = Song(full.name, names, tracks, full.sample_rate, render_mix(tracks, full.sample_rate, truth))
        rows = {}
        for method, console, extra, budget in SYNTHETIC_METHODS:
            options = {"console": console, **({"budget": budget} if budget is not None else {})}
            r = run_method(song, method, rng=np.random.default_rng(0), options=options)
            score = r.extra_scores[extra].mrsd if extra else r.scores.mrsd
            label = f"{method} {console}" + (f", budget {budget:g}" if budget is not None else "")
            rows[label] = {"mrsd": score, "seconds": r.seconds}
            print(f"{song.name} {method} {console}: {score:.3f} ({r.seconds:.0f} s)", file=sys.stderr)
        res["songs"][song.name] = {"tracks": len(names), "rows": rows}
    return res


ADAPT_NAME = "real_adapt"
#: Methods scored with each network in the adaptation measurement: (label, method, options).
ADAPT_METHODS = (("eami, one pass", "eami", {"match": False}), ("eami", "eami", {}),
                 ("eami+refine", "eami+refine", {}))


def adaptation(paths: list[Path], work_dir: Path) -> dict:
    """Self-supervised adaptation (``mixinvert adapt``, default settings) measured honestly:
    the shipped v2 network adapted on each real song, then scored on every song, the other
    songs (held out: the adaptation never saw them) beside the unadapted network, and the
    song it was adapted on (what a studio adapting to its archive gets: no settings are
    used). MRSD / sum, side by side in one run."""
    import subprocess

    from mixinvert.methods.baseline import plain_sum
    from mixinvert.methods.run import run_method
    from mixinvert.metrics.audio import compare_mixes
    from mixinvert.models.checkpoint import DEFAULT_MODEL_PATHS

    dirs = song_dirs(paths)
    songs = {d.name: load_real_song(d) for d in dirs}
    res: dict = {"machine": bench_eami._machine(), "eami_model_v2": bench_eami.model_digest(DEFAULT_MODEL_PATHS["v2"]),
                 "adapted": {}, "scores": {}}
    models: dict[str, Path | None] = {"shipped": None}
    for d in dirs:
        out = work_dir / f"adapt_{d.name}"
        start = time.perf_counter()
        subprocess.run([*bench_eami.MIXINVERT, "adapt", str(d), "--out", str(out), "--device", "cpu", "-q"],
                       check=True)
        log = [ln.split(",") for ln in (out / "log.csv").read_text().splitlines()]
        res["adapted"][d.name] = {"seconds": time.perf_counter() - start, "iterations": len(log) - 1,
                                  "own_mix_mrsd": [float(r[log[0].index("valid_mrsd")]) for r in log[1:]]}
        models[d.name] = out / "model.pt"
        print(f"adapted on {d.name} in {res['adapted'][d.name]['seconds']:.0f} s", file=sys.stderr)
    for name, song in songs.items():
        sum_mrsd = compare_mixes(plain_sum(song), song.mix, song.sample_rate).mrsd
        rows: dict = {}
        for who, model in models.items():
            for label, method, options in ADAPT_METHODS:
                opts = {"console": "v2", **options, **({"model": model} if model is not None else {})}
                r = run_method(song, method, rng=np.random.default_rng(0), options=opts)
                rows.setdefault(who, {})[label] = {"mrsd_over_sum": r.scores.mrsd / sum_mrsd, "seconds": r.seconds}
                print(f"{name}, network {who}, {label}: {r.scores.mrsd / sum_mrsd:.3f} x sum", file=sys.stderr)
        res["scores"][name] = rows
    return res


HELDOUT_NAME = "real_heldout_v2"
#: The v2 network's training corpora, remade by ``mixinvert corpus`` with these settings
#: (preset, songs, seconds, seed; ``real`` from ``../shared/data/medleydb-raw``). Their test
#: splits are held out: the ``real`` one by source song.
TRAINING_CORPORA_V2 = {"real_v2": ("real", 300, 10.0, 25), "songs_v2": ("songs", 150, 10.0, 25)}
MEDLEYDB_RAW = REAL_DEV.parent / "medleydb-raw"
HELDOUT_SONGS = 15


def heldout(corpora_dir: Path) -> dict:
    """The v2 network on the test splits of its training corpora (made here if missing):
    MRSD / sum of eami (one pass and matched), per corpus."""
    import subprocess

    from mixinvert.data.dataset import list_song_dirs
    from mixinvert.data.song import load_song
    from mixinvert.methods.run import run_method

    res: dict = {"machine": bench_eami._machine(), "corpora": {}}
    for name, (preset, n, seconds, seed) in TRAINING_CORPORA_V2.items():
        target = corpora_dir / name
        extra = ["--sources", str(MEDLEYDB_RAW)] if preset == "real" else ["--kit", str(bench_eami.KIT), "--midi",
                                                                          str(bench_eami.MIDI)]
        subprocess.run([*bench_eami.MIXINVERT, "corpus", str(target), "--preset", preset, "--songs", str(n),
                        "--seconds", str(seconds), "--seed", str(seed), "--console", "v2", "-q", *extra], check=True)
        rows: dict = {}
        for d in list_song_dirs(target, "test")[:HELDOUT_SONGS]:
            song = load_song(d, require_mix=True)
            base = run_method(song, "sum", rng=np.random.default_rng(0), options={"console": "v2"}).scores.mrsd
            for label, options in (("eami, one pass", {"match": False}), ("eami", {})):
                r = run_method(song, "eami", rng=np.random.default_rng(0), options={"console": "v2", **options})
                rows.setdefault(label, []).append({"song": d.name, "mrsd_over_sum": r.scores.mrsd / base,
                                                   "seconds": r.seconds})
        res["corpora"][name] = {"settings": [preset, n, seconds, seed], "rows": rows}
        for label, got in rows.items():
            print(f"{name} {label}: {np.mean([g['mrsd_over_sum'] for g in got]):.3f} x sum", file=sys.stderr)
    return res


def markdown() -> str:
    res = bench_eami._load(RESULT_NAME)
    if not res:
        return ""
    songs = res["songs"]
    names = list(songs)
    parts = [
        "## Real mixes",
        "",
        "`python bench/bench_real.py run` scores every method on real songs (the engineers' own mixes: "
        f"{', '.join(names)}), side by side in one run. MRSD after -23 LUFS, over the plain sum's; the mean is "
        "over songs. *linear bound*: the best time-invariant per-track filters (per STFT bin, least squares over "
        "the song) rendered directly, not a method: what static linear per-track processing reaches. "
        f"Hardware: {res['machine']}.",
        "",
        "| method | console | " + " | ".join(f"{n} MRSD / sum" for n in names) + " | mean MRSD / sum | s / song |",
        "|---|---|" + "---|" * len(names) + "---|---|",
    ]
    for label in res["rows"]:
        have = [n for n in names if label in songs[n]["rows"]]
        if not have:
            continue
        ratios = {n: songs[n]["rows"][label]["mrsd"] / songs[n]["rows"]["sum"]["mrsd"] for n in have}
        seconds = np.mean([songs[n]["rows"][label]["seconds"] for n in have])
        console = songs[have[0]]["rows"][label]["console"]
        mean = f"**{np.mean(list(ratios.values())):.3f}**" if len(have) == len(names) else "-"
        parts.append(f"| {label} | {console} | " + " | ".join(f"{ratios[n]:.3f}" if n in ratios else "-"
                                                              for n in names) + f" | {mean} | {seconds:.1f} |")
    parts.append("")
    if any(songs[n].get("rides") for n in names):
        parts += [
            f"Fader rides, measured on the engineer's material (`rides`): each stem's residual after the best static "
            f"per-bin filter of its raw track, then with a gain per {RIDE_SECONDS:g} s on top (dB of the stem's "
            "energy; the gap is all that per-track fader automation could explain), and the same from the summed "
            "stems to the mix (*master*). *MRSD / sum*: those filtered tracks summed into a mix, static and ridden.",
            "",
            "| song | stem | static filter (dB) | + gain rides (dB) |",
            "|---|---|---|---|",
        ]
        for n in names:
            r = songs[n].get("rides", {})
            for stem, (static_db, ride_db) in r.get("stems", {}).items():
                parts.append(f"| {n} | {stem.rsplit('_', 1)[-1]} | {static_db:.1f} | {ride_db:.1f} |")
            if "master" in r:
                parts.append(f"| {n} | master | {r['master'][0]:.1f} | {r['master'][1]:.1f} |")
                parts.append(f"| {n} | MRSD / sum of the filtered tracks summed | {r['mrsd_static']:.3f} | "
                             f"{r['mrsd_ridden']:.3f} |")
        parts.append("")
    stemmed = [n for n in names if songs[n]["stems"]]
    if stemmed:
        parts += [
            "Per stem: each track rendered alone through the recovered settings against the engineer's processed "
            "stem of that track, both scaled by their own mix's loudness normalization; MRSD over the plain sum's "
            "stem MRSD (below 1: something of that track's processing was recovered).",
            "",
        ]
        for n in stemmed:
            stems = list(songs[n]["stems"])
            labels = [label for label in res["rows"] if songs[n]["rows"][label]["stems"]]
            parts += [f"*{n}* (sum's stem MRSD: " + ", ".join(
                f"{s.rsplit('_', 1)[-1]} {songs[n]['rows']['sum']['stems'][s]:.2f}" for s in stems) + ")", "",
                "| method | " + " | ".join(f"stem {s.rsplit('_', 1)[-1]}" for s in stems) + " |",
                "|---|" + "---|" * len(stems)]
            for label in labels:
                row = songs[n]["rows"][label]["stems"]
                parts.append(f"| {label} | " + " | ".join(
                    f"{row[s] / songs[n]['rows']['sum']['stems'][s]:.2f}" for s in stems) + " |")
            parts.append("")
    lad = bench_eami._load(LADDER_NAME)
    if lad:
        lnames = list(lad["songs"])
        parts += [
            "What each capability of console v2 buys, in the order it was added (`python bench/bench_real.py "
            "ladder`): colonel-reiss's fit on v2's twin (default steps), the effects named free, rendered through "
            "the real console v2; MRSD / sum. The v1 row is colonel-reiss on console v1 from the table above.",
            "",
            "| rung | " + " | ".join(lnames) + " | mean | s / song |",
            "|---|" + "---|" * len(lnames) + "---|---|",
        ]
        if all(n in songs and "colonel-reiss" in songs[n]["rows"] for n in lnames):
            v1 = [songs[n]["rows"]["colonel-reiss"]["mrsd"] / songs[n]["rows"]["sum"]["mrsd"] for n in lnames]
            parts.append("| console v1 | " + " | ".join(f"{r:.3f}" for r in v1) + f" | {np.mean(v1):.3f} | |")
        for rung in lad["rungs"]:
            got = [lad["songs"][n]["rows"].get(rung) for n in lnames]
            if not any(got):
                continue
            ratios = [g["mrsd"] / lad["songs"][n]["sum_mrsd"] if g else None for n, g in zip(lnames, got)]
            mean = f"**{np.mean(ratios):.3f}**" if all(got) else "-"
            secs = np.mean([g["seconds"] for g in got if g])
            parts.append(f"| {rung} | " + " | ".join("-" if r is None else f"{r:.3f}" for r in ratios)
                         + f" | {mean} | {secs:.0f} |")
        parts.append("")
    syn = bench_eami._load(SYNTHETIC_NAME)
    if syn:
        snames = list(syn["songs"])
        labels = list(syn["songs"][snames[0]]["rows"])
        parts += [
            "Synthetic songs mixed through console v2 by the synthetic engineer (`python bench/bench_real.py "
            f"synthetic`: `corpus --preset {syn['corpus'][0]} --console v2`, {len(snames)} songs of "
            f"{syn['corpus'][2]:g} s, their first tracks with sound): MRSD / sum.",
            "",
            "| method | " + " | ".join(snames) + " | mean | s / song |",
            "|---|" + "---|" * len(snames) + "---|---|",
        ]
        for label in labels:
            ratios = [syn["songs"][n]["rows"][label]["mrsd"] / syn["songs"][n]["rows"]["sum v2"]["mrsd"] for n in snames]
            secs = np.mean([syn["songs"][n]["rows"][label]["seconds"] for n in snames])
            parts.append(f"| {label} | " + " | ".join(f"{r:.3f}" for r in ratios)
                         + f" | **{np.mean(ratios):.3f}** | {secs:.0f} |")
        parts.append("")
    ada = bench_eami._load(ADAPT_NAME)
    if ada:
        anames = list(ada["scores"])
        who = list(ada["scores"][anames[0]])
        labels = [label for label, _, _ in ADAPT_METHODS]
        parts += [
            "Self-supervised adaptation (`python bench/bench_real.py adapt`): the shipped v2 network adapted with "
            "`mixinvert adapt SONG` (default settings; the song's tracks and mix only, no settings) on each song, "
            "then scored on each song beside the unadapted network; MRSD / sum. *held out*: scored on a song the "
            "adaptation never saw; *own*: on the song it adapted to (no ground truth is used, so this is what "
            "adapting to an archive before inverting it gives). Adapting took "
            + ", ".join(f"{a['seconds']:.0f} s ({n}, {a['iterations']} iterations; MRSD on its own mix per "
                        f"iteration {', '.join(f'{m:.2f}' for m in a['own_mix_mrsd'])})"
                        for n, a in ada["adapted"].items()) + f". Hardware: {ada['machine']}.",
            "",
            "| scored on | network | " + " | ".join(labels) + " |",
            "|---|---|" + "---|" * len(labels),
        ]
        for n in anames:
            for w in who:
                tag = "shipped, unadapted" if w == "shipped" else (f"adapted on {w} (own)" if w == n
                                                                    else f"adapted on {w} (held out)")
                row = ada["scores"][n][w]
                parts.append(f"| {n} | {tag} | " + " | ".join(f"{row[lb]['mrsd_over_sum']:.3f}" for lb in labels)
                             + " |")
        parts.append("")
    held = bench_eami._load(HELDOUT_NAME)
    if held:
        parts += [
            "The v2 network on the test splits of its own training corpora (`python bench/bench_real.py heldout`; "
            "in-model: mixed by the synthetic engineer through console v2; the `real` corpus's test songs are cut "
            f"from a source song that no training song came from); first {HELDOUT_SONGS} test songs, MRSD / sum "
            "(mean, median).",
            "",
            "| corpus | " + " | ".join(held["corpora"][next(iter(held["corpora"]))]["rows"]) + " | s / song |",
            "|---|" + "---|" * (len(held["corpora"][next(iter(held["corpora"]))]["rows"]) + 1),
        ]
        for cname, c in held["corpora"].items():
            cells = [f"{np.mean([g['mrsd_over_sum'] for g in got]):.3f} "
                     f"({np.median([g['mrsd_over_sum'] for g in got]):.3f})" for got in c["rows"].values()]
            secs = np.mean([g["seconds"] for got in c["rows"].values() for g in got])
            parts.append(f"| {cname} ({c['settings'][0]}, seed {c['settings'][3]}) | " + " | ".join(cells)
                         + f" | {secs:.1f} |")
        parts.append("")
    parts += ["Alignment (GCC-PHAT against the mix; offset in ms, positive: later in the mix; unreliable: a blunt "
              "peak, the offset is not used; drift: the offset moves over the song):", ""]
    for n in names:
        cells = []
        for t, a in zip(songs[n]["tracks"], songs[n]["alignment"]):
            what = (f"{a['offset_ms']:+.2f} ms" + (", inverted" if a["polarity"] < 0 else "")
                    + (f", drifts {a['drift_ms']:.2f} ms" if a["drifts"] else "")) if a["reliable"] else "unreliable"
            cells.append(f"{t.rsplit('.', 1)[0]}: {what}")
        parts.append(f"- {n}: " + "; ".join(cells))
    parts.append("")
    return "\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("run", "ladder", "synthetic", "adapt", "heldout", "markdown"))
    ap.add_argument("--corpora-dir", type=Path, default=Path(__file__).resolve().parent / ".cache" / "corpora",
                    help="where `synthetic` makes (or finds) its corpus")
    ap.add_argument("--songs", type=Path, action="append", help="song folder or folder of songs (repeatable)")
    args = ap.parse_args()
    if args.what == "run":
        bench_eami._save(RESULT_NAME, run(args.songs or [REAL_DEV]))
    elif args.what == "synthetic":
        bench_eami._save(SYNTHETIC_NAME, synthetic(args.corpora_dir))
    elif args.what == "adapt":
        bench_eami._save(ADAPT_NAME, adaptation(args.songs or [REAL_DEV], args.corpora_dir / "adapt_runs"))
    elif args.what == "heldout":
        bench_eami._save(HELDOUT_NAME, heldout(args.corpora_dir))
    elif args.what == "ladder":
        bench_eami._save(LADDER_NAME, ladder(args.songs or [REAL_DEV]))
    print(markdown())


if __name__ == "__main__":
    main()
