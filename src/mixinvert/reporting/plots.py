"""The report's plots: pure functions, data in, PNG bytes out.

matplotlib is imported inside each function (``import mixinvert.reporting`` stays light)
and only through :class:`matplotlib.figure.Figure` with the Agg canvas: no pyplot, so no
global figure state, no GUI backend, and nothing left open between calls. Colours match
the page's dark theme (:data:`THEME`).
"""

from __future__ import annotations

import io
from typing import Mapping, Sequence

import numpy as np

#: Colours shared with report.html's CSS.
THEME = {
    "bg": "#1b1e23",
    "fg": "#d8dde6",
    "grid": "#3a3f48",
    "curve": "#ffb347",
    "accent": "#5ec8f2",
    "muted": "#8a93a3",
}
#: Colours of methods in the evaluation plots, in order.
METHOD_COLOURS = ("#5ec8f2", "#ffb347", "#9be37e", "#f27eb0", "#c49bff", "#f2e35e", "#7ef2d9", "#f28a5e")


def _figure(width_in: float, height_in: float, dpi: int = 100):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi, facecolor=THEME["bg"])
    return fig


def _style(ax) -> None:
    ax.set_facecolor(THEME["bg"])
    for spine in ax.spines.values():
        spine.set_color(THEME["grid"])
    ax.tick_params(which="both", colors=THEME["fg"], labelsize=7, length=2)
    ax.xaxis.label.set_color(THEME["fg"])
    ax.yaxis.label.set_color(THEME["fg"])
    ax.title.set_color(THEME["fg"])
    ax.grid(True, color=THEME["grid"], linewidth=0.5)


def _png(fig) -> bytes:
    """The figure as a 256-colour PNG: colour maps have 256 entries, and a palette PNG of a
    spectrogram is about a third of a true-colour one (~300 KB instead of ~800 KB)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image  # a dependency of matplotlib

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    image = Image.fromarray(np.ascontiguousarray(rgb)).quantize(
        256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _log_freq_axis(ax, f_min: float, f_max: float, axis: str = "x", *, dense: bool = False) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ticks = [t for t in (dense and (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
                         or (100, 1000, 10000)) if f_min <= t <= f_max]
    fmt = FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}")
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    (ax.set_xlim if axis == "x" else ax.set_ylim)(f_min, f_max)
    target.set_major_locator(FixedLocator(ticks))
    target.set_major_formatter(fmt)
    if dense:
        target.set_minor_locator(NullLocator())


def eq_curve_png(freqs_hz: np.ndarray, gain_db: np.ndarray, *, width_in: float = 2.0, height_in: float = 1.5) -> bytes:
    """The EQ's magnitude response on a log-frequency axis (dB against Hz)."""
    freqs_hz, gain_db = np.asarray(freqs_hz), np.asarray(gain_db)
    if freqs_hz.shape != gain_db.shape or freqs_hz.ndim != 1:
        raise ValueError(f"freqs {freqs_hz.shape} and gains {gain_db.shape} must be equal 1-D arrays")
    fig = _figure(width_in, height_in)
    ax = fig.add_axes((0.2, 0.16, 0.76, 0.78))
    _style(ax)
    lim = max(15.0, 3.0 * np.ceil(np.max(np.abs(gain_db)) / 3.0 + 0.5))
    ax.axhline(0.0, color=THEME["muted"], linewidth=0.8)
    ax.fill_between(freqs_hz, 0.0, gain_db, color=THEME["curve"], alpha=0.25, linewidth=0)
    ax.plot(freqs_hz, gain_db, color=THEME["curve"], linewidth=1.5)
    _log_freq_axis(ax, float(freqs_hz[0]), float(freqs_hz[-1]))
    ax.set_ylim(-lim, lim)
    ax.set_yticks(np.arange(-lim + lim % 6, lim + 1e-9, 6.0) if lim > 15 else [-12, -6, 0, 6, 12])
    ax.set_ylabel("dB", fontsize=7, labelpad=1)
    return _png(fig)


def compressor_curve_png(
    in_db: np.ndarray, out_db: np.ndarray, threshold_db: float, *, width_in: float = 2.0, height_in: float = 1.6
) -> bytes:
    """The compressor's static curve (output dB against input dB), the identity dashed."""
    in_db, out_db = np.asarray(in_db), np.asarray(out_db)
    if in_db.shape != out_db.shape or in_db.ndim != 1:
        raise ValueError(f"input {in_db.shape} and output {out_db.shape} must be equal 1-D arrays")
    fig = _figure(width_in, height_in)
    ax = fig.add_axes((0.2, 0.2, 0.76, 0.74))
    _style(ax)
    lo, hi = float(in_db[0]), float(in_db[-1])
    ax.plot([lo, hi], [lo, hi], color=THEME["muted"], linewidth=0.8, linestyle="--")
    ax.axvline(threshold_db, color=THEME["grid"], linewidth=0.8)
    ax.plot(in_db, out_db, color=THEME["accent"], linewidth=1.6)
    ax.plot([threshold_db], [threshold_db], "o", color=THEME["accent"], markersize=3)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("in (dB)", fontsize=7, labelpad=1)
    ax.set_ylabel("out (dB)", fontsize=7, labelpad=1)
    return _png(fig)


def spectrograms_png(
    panels: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    *,
    vmin_db: float,
    vmax_db: float,
    f_min_hz: float = 20.0,
    width_in: float = 12.0,
    panel_height_in: float = 2.3,
) -> bytes:
    """Spectrograms stacked on one time axis and ONE colour scale, with its colour bar.

    ``panels``: ``(title, times_s (frames,), freqs_hz (bins,), db (bins, frames))`` each.
    Frequencies are drawn on a log axis from ``f_min_hz`` to the highest bin.
    """
    if not panels:
        raise ValueError("no spectrograms to draw")
    if not vmin_db < vmax_db:
        raise ValueError(f"vmin_db ({vmin_db}) must be below vmax_db ({vmax_db})")
    fig = _figure(width_in, panel_height_in * len(panels) + 0.4)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    fig.subplots_adjust(left=0.06, right=0.9, top=0.95, bottom=0.12 / len(panels) + 0.03, hspace=0.35)
    mesh = None
    for ax, (title, times, freqs, db) in zip(axes, panels):
        _style(ax)
        ax.grid(False)
        keep = freqs >= f_min_hz
        mesh = ax.pcolormesh(times, freqs[keep], db[keep], shading="nearest", cmap="magma",
                             vmin=vmin_db, vmax=vmax_db, rasterized=True)
        _log_freq_axis(ax, float(freqs[keep][0]), float(freqs[-1]), axis="y", dense=True)
        ax.set_title(title, fontsize=9, loc="left", color=THEME["fg"])
        ax.set_ylabel("Hz", fontsize=8)
    axes[-1].set_xlabel("time (s)", fontsize=8)
    cax = fig.add_axes((0.915, 0.15, 0.012, 0.75))
    bar = fig.colorbar(mesh, cax=cax)
    bar.set_label("dB (0 dB: full-scale sine)", color=THEME["fg"], fontsize=8)
    bar.ax.tick_params(colors=THEME["fg"], labelsize=7)
    bar.outline.set_edgecolor(THEME["grid"])
    return _png(fig)


def grouped_bars_png(
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    ylabel: str,
    log: bool = True,
    height_in: float = 3.2,
) -> bytes:
    """Grouped bars: one group per entry of ``groups`` (songs), one bar per series (methods).

    ``series[name][i]`` is the value for ``groups[i]`` (NaN: no bar). ``log``: logarithmic
    value axis (for MRSD, which spans orders of magnitude between methods).
    """
    n_groups, n_series = len(groups), len(series)
    if not n_groups or not n_series:
        raise ValueError("nothing to plot")
    for name, values in series.items():
        if len(values) != n_groups:
            raise ValueError(f"series {name!r} has {len(values)} values for {n_groups} groups")
    width_in = min(40.0, max(12.0, 0.25 * n_groups * (n_series + 1) + 1.5))
    fig = _figure(width_in, height_in)
    ax = fig.add_axes((0.9 / width_in, 0.32, 1 - 1.1 / width_in, 0.58))
    _style(ax)
    ax.grid(True, axis="y")
    ax.grid(False, axis="x")
    bar_w = 0.8 / n_series
    x = np.arange(n_groups)
    for k, (name, values) in enumerate(series.items()):
        ax.bar(x - 0.4 + (k + 0.5) * bar_w, np.asarray(values, dtype=float), bar_w,
               label=name, color=METHOD_COLOURS[k % len(METHOD_COLOURS)])
    if log:
        from matplotlib.ticker import FuncFormatter

        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")  # 0.5, 2, 3 rather than 5x10^-1
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=45 if n_groups > 4 else 0, ha="right" if n_groups > 4 else "center", fontsize=7)
    ax.set_xlim(-0.6, n_groups - 0.4)
    ax.set_ylabel(ylabel, fontsize=8)
    legend = ax.legend(fontsize=7, ncol=min(n_series, 6), loc="lower left", bbox_to_anchor=(0, 1.01),
                       frameon=False)
    for text in legend.get_texts():
        text.set_color(THEME["fg"])
    return _png(fig)
