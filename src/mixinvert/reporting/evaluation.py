"""``write_evaluation_report``: the evaluation's Table 1 and per-song plots as one HTML page.

The numbers come from :class:`mixinvert.evaluation.Results` itself (``Results.mean``,
the same summary as ``Results.to_markdown``); the page adds grouped bar charts of MRSD
and MAE per song and method (log scale), embedded as PNG, so the file stands alone.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from mixinvert.audio import write_text_atomic
from mixinvert.console.schema import CONSOLE_V1
from mixinvert.errors import InputError, OutputExistsError
from mixinvert.evaluation import MEDIAN_PARAMS, TABLE_PARAMS, Results
from mixinvert.metrics.params import error_unit
from mixinvert.reporting import plots
from mixinvert.reporting.html import CSS, e
from mixinvert.reporting.media import png_data_uri


def _cell(value: float | None, fmt: str, best: bool = False, *, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '<td class="num">-</td>'
    text = format(value, fmt) + unit
    return f'<td class="num">{"<b>" + text + "</b>" if best else text}</td>'


def summary_table(results: Results) -> str:
    """Table 1: the mean over songs per method (best MAE and MRSD in bold), as an HTML table."""
    ranked = sorted(results.methods, key=lambda m: results.mean(m)["mrsd"])
    means = {m: results.mean(m) for m in ranked}
    has_truth = any(r.param_errors for r in results.rows)
    has_intervals = any(r.interval_hits for r in results.rows)
    cols = ["method", "songs", "MAE", "MRSD"]
    if has_truth:
        cols += ["param MAE (norm.)"] + [f"{p} ({error_unit(CONSOLE_V1, p) or '-'})" for p in TABLE_PARAMS]
        cols += [f"median {p} ({error_unit(CONSOLE_V1, p) or '-'})" for p in MEDIAN_PARAMS]
    if has_intervals:
        cols.append("true value in interval")
    cols.append("s/song")
    best_mae = min(m["mae"] for m in means.values())
    best_mrsd = min(m["mrsd"] for m in means.values())
    body = []
    for method, m in means.items():
        cells = [f"<td>{e(method)}</td>", _cell(m["songs"], "d"),
                 _cell(m["mae"], ".4f", m["mae"] == best_mae), _cell(m["mrsd"], ".3f", m["mrsd"] == best_mrsd)]
        if has_truth:
            cells.append(_cell(m.get("normalized_mae"), ".3f"))
            cells += [_cell(m.get(p), ".3g") for p in TABLE_PARAMS]
            cells += [_cell(m.get(f"median_{p}"), ".3g") for p in MEDIAN_PARAMS]
        if has_intervals:
            coverage = m.get("interval_coverage")
            cells.append(_cell(None if coverage is None else 100 * coverage, ".0f", unit=" %"))
        cells.append(_cell(m["seconds"], ".2f"))
        body.append(f"<tr>{''.join(cells)}</tr>")
    head = "".join(f"<th>{e(c)}</th>" for c in cols)
    return f'<table class="table1"><tr>{head}</tr>{"".join(body)}</table>'


def per_song_series(results: Results, key: str) -> tuple[list[str], dict[str, list[float]]]:
    """Songs (sorted) and, per method, its ``key`` (``"mrsd"``, ``"mae"``) for each song (NaN where missing)."""
    songs = sorted({r.song for r in results.rows})
    value = {(r.song, r.method): getattr(r, key) for r in results.rows}
    return songs, {m: [float(value.get((s, m), math.nan)) for s in songs] for m in results.methods}


def evaluation_page(results: Results) -> str:
    """The complete HTML page for ``results``."""
    from mixinvert import __version__

    if not results.rows:
        raise InputError("no results to report")
    songs, mrsd = per_song_series(results, "mrsd")
    _, mae = per_song_series(results, "mae")
    mrsd_png = png_data_uri(plots.grouped_bars_png(songs, mrsd, ylabel="MRSD (log)"))
    mae_png = png_data_uri(plots.grouped_bars_png(songs, mae, ylabel="MAE (log)"))
    ranked = sorted(results.methods, key=lambda m: results.mean(m)["mrsd"])
    rows = sorted(results.rows, key=lambda r: (r.song, ranked.index(r.method) if r.method in ranked else 0))
    per_song = "".join(f"<tr><td>{e(r.song)}</td><td>{e(r.method)}</td>{_cell(r.mae, '.4f')}{_cell(r.mrsd, '.3f')}"
                       f"{_cell(r.seconds, '.2f')}</tr>" for r in rows)
    split = f", split {results.split}" if results.split else ""
    title = f"mixinvert evaluation: {results.dataset}{split} ({len(songs)} songs)"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title><style>{CSS}</style></head>
<body>
<h1>{e(title)}</h1>
<div class="card">{summary_table(results)}
<p class="caption">Mean over songs. MAE and MRSD after loudness normalization to -23 LUFS (EAMI section 5.1);
parameter errors are mean absolute errors against the true settings (medians: over all tracks). Lower is better.</p></div>
<h2>MRSD per song</h2>
<div class="card"><img class="plot" src="{mrsd_png}" alt="MRSD per song and method"></div>
<h2>MAE per song</h2>
<div class="card"><img class="plot" src="{mae_png}" alt="MAE per song and method"></div>
<h2>Per song</h2>
<div class="card"><table><tr><th>song</th><th>method</th><th>MAE</th><th>MRSD</th><th>s</th></tr>{per_song}</table></div>
<footer>mixinvert {e(__version__)}</footer>
</body></html>
"""


def write_evaluation_report(results: Results, html_path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the evaluation as one self-contained HTML page (atomic).

    Raises ``FileExistsError`` (mentioning ``--overwrite``) if ``html_path`` exists and
    ``overwrite`` is false, ``ValueError`` if ``results`` has no rows.
    """
    html_path = Path(html_path)
    if html_path.exists() and not overwrite:
        raise OutputExistsError(f"{html_path} exists; refusing to overwrite it (use --overwrite)")
    return write_text_atomic(html_path, evaluation_page(results), overwrite=overwrite)
