"""What the HTML report and the DAWproject export cost: seconds and bytes against song length.

``python bench/bench_report.py run`` makes one ``songs``-preset song per length (10, 60 and
180 s; music21 + fluidsynth melodic parts when fluidsynth is there, drums from the
MuldjordKit), inverts each with ``barchiesi-reiss`` (the fastest method with real
settings) without a report, then builds ``report.html`` with the default 90 s of audio
per player and with the whole song, and writes ``session.dawproject``, timing each and
measuring the files. Results go to ``bench/results/report_cost.json``; ``bench/run_all.py``
renders them into BENCHMARKS.md without recomputing.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_eami  # noqa: E402

LENGTHS_S = (10.0, 60.0, 180.0)
MB = 1e6


def _song(root: Path, seconds: float) -> Path:
    from mixinvert.data.corpus import CorpusConfig, make_corpus

    midi = bench_eami.MIDI if bench_eami.MIDI.is_file() else None
    config = CorpusConfig(preset="songs", songs=1, seconds=seconds, seed=7, kit_dir=str(bench_eami.KIT),
                          midi_path=str(midi) if midi else None)
    corpus = make_corpus(root / f"corpus_{int(seconds)}", config)
    return corpus / "song_0000"


def run(lengths: tuple[float, ...] = LENGTHS_S) -> dict:
    import mixinvert
    from mixinvert.daw.dawproject import export_dawproject
    from mixinvert.reporting import build_report

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-report-") as scratch:
        root = Path(scratch)
        for seconds in lengths:
            print(f"{seconds:.0f} s song ...", file=sys.stderr)
            song = _song(root, seconds)
            tracks = sorted((song / "tracks").glob("*.wav"))
            out = root / f"inverted_{int(seconds)}"
            t0 = time.perf_counter()
            result = mixinvert.invert(song / "tracks", song / "mix.wav", out, method="barchiesi-reiss")
            invert_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            capped = build_report(out)
            report_s = time.perf_counter() - t0
            capped_bytes = capped.stat().st_size
            t0 = time.perf_counter()
            whole = build_report(out, max_audio_seconds=None)
            whole_s = time.perf_counter() - t0
            whole_bytes = whole.stat().st_size
            t0 = time.perf_counter()
            session = export_dawproject(result.params, [song / "tracks" / n for n in result.params.track_names],
                                        out / "session.dawproject")
            export_s = time.perf_counter() - t0
            rows.append({
                "seconds": seconds,
                "tracks": len(tracks),
                "track_bytes": sum(p.stat().st_size for p in tracks),
                "invert_s": invert_s,
                "report_s": report_s,
                "report_bytes": capped_bytes,
                "report_whole_s": whole_s,
                "report_whole_bytes": whole_bytes,
                "export_s": export_s,
                "export_bytes": session.stat().st_size,
            })
    return {"machine": bench_eami._machine(), "rows": rows}


def markdown() -> str:
    res = bench_eami._load("report_cost")
    if not res:
        return ""
    lines = [
        "## What the report and the DAWproject export cost",
        "",
        "`python bench/bench_report.py run`: one `songs`-preset song per length, inverted with barchiesi-reiss "
        "(no report), then `report.html` built with the default 90 s of audio per player and with the whole "
        "song (`max_audio_seconds=None`), and `session.dawproject` written; one run, side by side. Sizes in MB "
        f"(10^6 bytes); ratios to the inversion's own time. Hardware: {res['machine']}.",
        "",
        "| song | tracks (WAV MB) | invert s | report s (x invert) | report MB | whole-song report s | "
        "whole-song report MB | export s | export MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['seconds']:.0f} s | {r['tracks']} ({r['track_bytes'] / MB:.1f}) | {r['invert_s']:.2f} | "
            f"{r['report_s']:.2f} ({r['report_s'] / r['invert_s']:.1f}x) | {r['report_bytes'] / MB:.1f} | "
            f"{r['report_whole_s']:.2f} | {r['report_whole_bytes'] / MB:.1f} | {r['export_s']:.2f} | "
            f"{r['export_bytes'] / MB:.1f} |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    bench_eami.run_or_render(__doc__, "report_cost", run, markdown)


if __name__ == "__main__":
    main()
