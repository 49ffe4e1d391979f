"""``build_report``: report.html from what ``invert`` left in its output folder.

``invert`` writes ``params.json`` (the settings, the method, the scores, and where its
inputs were: ``"inputs": {"tracks_dir", "mix"}``) and ``mix.wav``. The report re-loads
those inputs, renders every track's solo through its console (v1 or v2), measures the EQ curves,
scores the plain sum for scale, and writes one self-contained ``report.html`` beside them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from mixinvert.audio import read_audio, write_text_atomic
from mixinvert.console.eq import EQ_SECTIONS, MASTER_EQ_SECTIONS, REVERB_BUS_SECTIONS, v2_sections
from mixinvert.console.mixing import solos as track_solos
from mixinvert.console.params_io import MixParams, read_params
from mixinvert.console.render_v2 import active_sections, bells_of
from mixinvert.console.schema import CONSOLE_V1, ParamSchema
from mixinvert.data.song import Song, list_track_files, load_tracks_and_mix
from mixinvert.dsp.loudness import TARGET_LUFS, loudness_normalize
from mixinvert.errors import InputError, InputMissingError, OutputExistsError
from mixinvert.metrics.audio import MixScores, compare_mixes
from mixinvert.reporting import curves, plots
from mixinvert.reporting.html import Page, Strip, report_page
from mixinvert.reporting.media import (
    MIX_COMPRESSION,
    SOLO_COMPRESSION,
    audio_data_uri,
    png_data_uri,
)

REPORT_NAME = "report.html"
#: How the strips of each console read (the report's caption above them).
_CHAINS = {
    "v1": ("Each strip is console v1's chain for one track (gain &rarr; EQ &rarr; compressor &rarr; pan &rarr; "
           "reverb). Solo: the track alone through its strip."),
    "v2": ("Each track strip is console v2's chain (polarity &rarr; time offset &rarr; drive &rarr; high-pass &rarr; "
           "EQ &rarr; compressor &rarr; fader &rarr; pan &rarr; send); the sends feed the reverb bus, and the tracks "
           "and the bus's return sum into the master (EQ &rarr; compressor &rarr; limiter &rarr; gain). Solo: the "
           "track alone through its strip, its send, the bus and the master."),
}
#: Audio embedded per clip by default, seconds from the start (see :mod:`mixinvert.reporting.media` for sizes).
DEFAULT_AUDIO_SECONDS = 90.0
#: Colour range of the spectrograms below their loudest bin, dB.
SPECTROGRAM_RANGE_DB = 90.0
#: Input levels of the compressor curve, dB.
COMP_CURVE_DB = (-60.0, 0.0)


def _say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _input_path(given: str | os.PathLike | None, inputs: Mapping[str, Any], key: str, what: str,
                option: str, params_path: Path) -> Path:
    """The path of an input: as given, or as recorded in params.json, with errors that say what to pass."""
    if given is not None:
        path = Path(given)
        source = f"given as {option.split()[0]}"
    else:
        recorded = inputs.get(key) if isinstance(inputs, Mapping) else None
        if not isinstance(recorded, str) or not recorded:
            raise InputError(f'{params_path} does not say where the {what} is (no "inputs": {{"{key}": ...}}); '
                             f"pass it with {option}")
        path = Path(recorded)
        source = f'recorded in {params_path} under "inputs"'
    exists = path.is_dir() if key == "tracks_dir" else path.is_file()
    if not exists:
        raise InputMissingError(f"the {what} {path} ({source}) is not there; pass where it is now with {option}")
    return path


def _intervals(row: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """``{name: (low, high)}`` from a params.json track row's ``"uncertainty"``.

    Accepts ``{"low": lo, "high": hi, ...}`` (what ``eami+refine`` writes) or ``[lo, hi]``.
    """
    out = {}
    for name, iv in (row.get("uncertainty") or {}).items():
        if name not in names:
            continue
        if isinstance(iv, Mapping) and "low" in iv and "high" in iv:
            lo, hi = iv["low"], iv["high"]
        elif isinstance(iv, (list, tuple)) and len(iv) == 2:
            lo, hi = iv
        else:
            raise InputError(f'uncertainty of {name}: expected {{"low": .., "high": ..}} or [low, high], got {iv!r}')
        out[name] = (float(min(lo, hi)), float(max(lo, hi)))
    return out


def _load(params: MixParams, tracks_dir: Path, mix_path: Path, params_path: Path) -> tuple[Song, MixParams, list[str]]:
    notes: list[str] = []
    files = {p.name: p for p in list_track_files(tracks_dir)}
    missing = [n for n in params.track_names if n not in files]
    if missing:
        raise InputMissingError(f"{tracks_dir} lacks track(s) {', '.join(missing)} named in {params_path}; "
                                f"pass the folder that holds them with --tracks DIR (tracks_dir=)")
    unused = sorted(set(files) - set(params.track_names))
    if unused:
        notes.append(f"{tracks_dir}: {', '.join(unused)} not in params.json; left out of the report")
    chosen = [p for name, p in sorted(files.items()) if name in params.track_names]
    song = load_tracks_and_mix(chosen, mix_path, name=tracks_dir.resolve().parent.name, max_tracks=None)
    if params.track_names != song.track_names:
        params = params.reordered(song.track_names, where=str(params_path))
    return song, params, notes


def _recreated(path: Path, song: Song, notes: list[str]) -> np.ndarray:
    mix, sr = read_audio(path)
    if mix.shape[0] != 2:
        raise InputError(f"{path}: expected a stereo mix, got {mix.shape[0]} channel(s)")
    if sr != song.sample_rate:
        raise InputError(f"{path} is at {sr} Hz but the tracks and the reference at {song.sample_rate} Hz; "
                         f"are --tracks / --mix the inputs of this inversion?")
    diff = mix.shape[-1] - song.num_samples
    if diff:
        notes.append(f"{path.name}: {abs(diff) / sr:.3f} s {'longer' if diff > 0 else 'shorter'} than the tracks; "
                     f"{'cut' if diff > 0 else 'padded'} for the comparison")
        mix = mix[:, : song.num_samples] if diff > 0 else np.pad(mix, ((0, 0), (0, -diff)))
    return mix


def _spectrograms(reference: np.ndarray, recreated: np.ndarray, sample_rate: int) -> bytes:
    ref, _ = loudness_normalize(reference, sample_rate, TARGET_LUFS)
    rec, _ = loudness_normalize(recreated, sample_rate, TARGET_LUFS)
    specs = [curves.spectrogram_db(x, sample_rate) for x in (ref, rec, rec - ref)]
    top = float(max(np.max(specs[0][2]), np.max(specs[1][2])))
    vmax = 10.0 * np.ceil(top / 10.0)
    titles = ("reference mix", "recreated mix (mix.wav)", "difference (recreated - reference)")
    return plots.spectrograms_png([(t, *s) for t, s in zip(titles, specs)],
                                  vmin_db=vmax - SPECTROGRAM_RANGE_DB, vmax_db=vmax)


def _eq_png(values: Mapping[str, float], sample_rate: int, sections: tuple) -> str:
    freqs, eq_db = curves.eq_response_db(values, sample_rate, sections=sections)
    return png_data_uri(plots.eq_curve_png(freqs, eq_db))


def _comp_png(threshold_db: float, ratio: float) -> str:
    in_db = np.linspace(*COMP_CURVE_DB, 241)
    out_db = curves.compressor_curve_db(in_db, threshold_db, ratio)
    return png_data_uri(plots.compressor_curve_png(in_db, out_db, threshold_db))


def _strip(name: str, values: dict[str, float], row: Mapping[str, Any], sample_rate: int,
           audio_uri: str | None, schema: ParamSchema = CONSOLE_V1) -> Strip:
    flags = row.get("undetermined") or {}
    if not isinstance(flags, Mapping):
        raise InputError(f'track {name!r}: "undetermined" must map setting names to reasons, got {flags!r}')
    if schema.version == "v1":
        sections: tuple = EQ_SECTIONS
    else:  # the high-pass and the EQ as the console runs them (a high-pass at its off end is out)
        sections = active_sections(values, v2_sections(bells_of(schema)), schema)
    return Strip(
        name=name, values=values,
        eq_png_uri=_eq_png(values, sample_rate, sections),
        comp_png_uri=_comp_png(values["comp_threshold_db"], values["comp_ratio"]),
        audio_uri=audio_uri, intervals=_intervals(row, tuple(values)),
        undetermined={str(k): str(v) for k, v in flags.items()}, schema=schema,
    )


def _shared_strips(params: MixParams, sample_rate: int) -> list[Strip]:
    """Console v2's reverb bus and master as strips of their own (none for v1)."""
    shared = params.schema.shared
    if shared is None:
        return []
    values = shared.to_dict(params.shared)
    out = []
    for title, section in (("reverb bus", "buses.reverb"), ("master", "master")):
        own = {n: values[n] for n in shared.names if shared.spec(n).section == section}
        pictures = {}
        if section == "master":
            pictures["master eq"] = _eq_png(own, sample_rate, MASTER_EQ_SECTIONS)
            pictures["master compressor"] = _comp_png(own["master_comp_threshold_db"], own["master_comp_ratio"])
        else:
            pictures["reverb bus"] = _eq_png(own, sample_rate, active_sections(own, REVERB_BUS_SECTIONS, shared))
        out.append(Strip(name=title, values=own, eq_png_uri="", comp_png_uri="", schema=shared, pictures=pictures))
    return out


def _short(value: object) -> str:
    """A method detail as a person reads it: floats to 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def build_report(
    out_dir: str | os.PathLike,
    *,
    tracks_dir: str | os.PathLike | None = None,
    mix_path: str | os.PathLike | None = None,
    overwrite: bool = True,
    progress: Callable[[str], None] | None = None,
    max_audio_seconds: float | None = DEFAULT_AUDIO_SECONDS,
) -> Path:
    """(Re)build ``out_dir/report.html`` from the ``params.json`` and ``mix.wav`` of an inversion.

    Parameters
    ----------
    out_dir : the folder ``invert`` wrote
    tracks_dir, mix_path : the raw tracks and the reference mix; by default where
        params.json's ``"inputs"`` says they were
    overwrite : replace an existing report.html (the default: the report is derived data)
    progress : called with a short message as each stage starts
    max_audio_seconds : the players hold at most this many seconds from the start of
        each clip (None: all); the spectrograms and scores always use the whole song

    The recreated mix's MAE and MRSD are params.json's ``"scores"`` (what ``invert``
    measured on these very files) unless ``tracks_dir`` or ``mix_path`` is given, a
    length had to be fixed, or they are missing; then they are measured again.

    Returns the path written. Raises ``FileNotFoundError`` when params.json, mix.wav, the
    tracks or the reference are missing (naming the option to pass), ``ValueError``
    (e.g. :class:`~mixinvert.console.params_io.ParamsFileError`,
    :class:`~mixinvert.data.song.SongError`) for inputs that cannot be used, and
    ``FileExistsError`` when report.html exists and ``overwrite`` is false.
    """
    from mixinvert import __version__
    from mixinvert.methods.baseline import (
        plain_sum,  # the "sum" method's mix, without loading the others
    )

    out_dir = Path(out_dir)
    report = out_dir / REPORT_NAME
    if report.exists() and not overwrite:
        raise OutputExistsError(f"{report} exists; refusing to overwrite it (use --overwrite)")
    params_path, mix_wav = out_dir / "params.json", out_dir / "mix.wav"
    for path in (params_path, mix_wav):
        if not path.is_file():
            raise InputMissingError(f"{path} not found: is {out_dir} the output folder of `mixinvert invert`?")
    if max_audio_seconds is not None and max_audio_seconds <= 0:
        raise InputError(f"max_audio_seconds must be positive, got {max_audio_seconds}")
    _say(progress, "loading the tracks and mixes")
    params = read_params(params_path)
    extra = params.extra
    inputs = extra.get("inputs") or {}
    overridden = tracks_dir is not None or mix_path is not None
    tracks_dir = _input_path(tracks_dir, inputs, "tracks_dir", "tracks folder", "--tracks DIR (tracks_dir=)",
                             params_path)
    mix_path = _input_path(mix_path, inputs, "mix", "reference mix", "--mix FILE (mix_path=)", params_path)
    song, params, notes = _load(params, tracks_dir, mix_path, params_path)
    sr = song.sample_rate
    if params.sample_rate is not None and params.sample_rate != sr:
        notes.append(f"params.json was written for {params.sample_rate} Hz; the tracks are at {sr} Hz")
    recreated = _recreated(mix_wav, song, notes)

    _say(progress, "scoring the recreated mix and the plain sum")
    recorded = extra.get("scores")
    if not overridden and not notes and isinstance(recorded, Mapping) and {"mae", "mrsd"} <= set(recorded):
        # invert scored exactly these files; rescoring would double the report's time
        scores = MixScores(mae=float(recorded["mae"]), mrsd=float(recorded["mrsd"]))
    else:
        scores = compare_mixes(recreated, song.mix, sr)
    sum_scores = compare_mixes(plain_sum(song), song.mix, sr)
    score_rows = [("mix.wav", str(extra.get("mix_wav", "console v1")), scores.mae, scores.mrsd)]
    for name, other in sorted((extra.get("other_mixes") or {}).items()):
        if isinstance(other, Mapping) and {"mae", "mrsd"} <= set(other):
            score_rows.append((name, f"{other.get('source', '')} (scores from params.json)",
                               float(other["mae"]), float(other["mrsd"])))
    score_rows.append(("plain sum", "the raw tracks added, for scale", sum_scores.mae, sum_scores.mrsd))

    _say(progress, "drawing the spectrograms")
    spectrogram = png_data_uri(_spectrograms(song.mix, recreated, sr))

    _say(progress, f"rendering and encoding {song.num_tracks} track solos")
    n_audio = song.num_samples if max_audio_seconds is None else min(song.num_samples, int(max_audio_seconds * sr))
    # the consoles are causal and keep length: rendering the excerpt gives the excerpt of the render
    # (v2's time offsets move at most 20 ms across the excerpt's end)
    solos = track_solos([t[:, :n_audio] for t in song.tracks], sr, params)
    clips = [song.mix[:, :n_audio], recreated[:, :n_audio]]
    peak = max(float(np.max(np.abs(x))) for x in [*clips, solos])
    scale = min(1.0, 0.99 / peak) if peak > 0 else 1.0  # one gain for all players keeps their balance
    ref_uri, rec_uri = (audio_data_uri(x * scale, sr, compression_level=MIX_COMPRESSION) for x in clips)
    rows = params.track_extra or tuple({} for _ in params.track_names)
    strips = []
    for i, name in enumerate(params.track_names):
        uri = audio_data_uri(solos[i] * scale, sr, compression_level=SOLO_COMPRESSION)
        strips.append(_strip(name, params.schema.to_dict(params.values[i]), rows[i], sr, uri, params.schema))
        alignment = rows[i].get("alignment") if isinstance(rows[i], Mapping) else None
        if isinstance(alignment, Mapping) and alignment.get("drifts"):
            notes.append(f"{name}: its time offset drifts over the song by {float(alignment['drift_ms']):.2f} ms "
                         "(the mix holds no time-invariant copy of it: edited or retimed?); it was not shifted")
    strips += _shared_strips(params, sr)

    seconds = extra.get("seconds")
    facts = [
        ("song", song.name),
        ("method", str(extra.get("method", "unknown"))),
        ("time taken", f"{float(seconds):.3g} s" if isinstance(seconds, (int, float)) else "not recorded"),
        ("tracks", f"{song.num_tracks} x {song.duration_s:.1f} s at {sr} Hz"),
        ("mix.wav rendered by", str(extra.get("mix_wav", "console v1"))),
        ("tracks folder", str(tracks_dir)),
        ("reference mix", str(mix_path)),
    ]
    if "seed" in extra:
        facts.insert(3, ("seed", str(extra["seed"])))
    info = extra.get("method_info")
    if isinstance(info, Mapping) and info:
        facts.append(("method details", "; ".join(f"{k} {_short(v)}" for k, v in info.items())))
    audio_caption = (f"Players: the first {n_audio / sr:.1f} s of {song.duration_s:.1f} s" if n_audio < song.num_samples
                     else f"Players: all {song.duration_s:.1f} s")
    audio_caption += ", Ogg Vorbis" + (f", every player {20 * np.log10(scale):.1f} dB down to avoid clipping."
                                       if scale < 1.0 else ".")
    page = Page(
        title=f"mixinvert report: {song.name}",
        facts=facts,
        scores=score_rows,
        notes=[str(n) for n in extra.get("notes") or []] + notes,
        strips=strips,
        spectrogram_png_uri=spectrogram,
        spectrogram_caption=("Both mixes normalized to -23 LUFS, as for the scores; one colour scale for all "
                             "three (0 dB: a full-scale sine). The difference is the spectrogram of recreated "
                             "minus reference."),
        reference_audio_uri=ref_uri,
        recreated_audio_uri=rec_uri,
        audio_caption=audio_caption,
        console_caption=(f"{song.num_tracks} tracks" if params.schema.shared is None
                         else f"{song.num_tracks} tracks, the reverb bus and the master"),
        chain_caption=_CHAINS.get(params.schema.version, ""),
        footer=f"mixinvert {__version__}, console {params.schema.version}; from {params_path.name} and "
               f"{mix_wav.name} in {out_dir}",
    )
    _say(progress, f"writing {report}")
    return write_text_atomic(report, report_page(page), overwrite=overwrite)
