"""report.html: the page itself, assembled from plain data (no audio work, no plotting).

Every string that comes from the user or the inputs (track names, paths, notes, reasons)
goes through :func:`html.escape`. Pictures and audio arrive as ``data:`` URIs, so the page
is one file that works offline: no scripts, no external style sheets, no fetches.

Each shown setting carries its exact value for machines as well as people:
``<span class="v" data-param="gain_db" data-value="-3.0103">-3.0 dB</span>``; an
interval is ``data-low``/``data-high`` on a ``span.iv``; an undetermined setting gets the
class ``und`` and its reason is listed, visibly, under the strip.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from mixinvert.console.schema import CONSOLE_V1, ParamSchema
from mixinvert.reporting.plots import THEME


def label(name: str, schema: ParamSchema = CONSOLE_V1) -> str:
    """A setting's label on a channel strip (the schema's), or its name if it has none."""
    return schema.spec(name).label if name in schema.names else name


def format_value(name: str, value: float, schema: ParamSchema = CONSOLE_V1) -> str:
    """A setting in the units a mixing engineer reads (the schema's display format)."""
    return schema.spec(name).format(value)


@dataclass
class Strip:
    """One channel strip: a track's settings, their intervals and flags, and its pictures."""

    name: str
    values: Mapping[str, float]
    eq_png_uri: str
    comp_png_uri: str
    audio_uri: str | None = None
    #: ``{name: (low, high)}``, physical units.
    intervals: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    #: ``{name: why the audio does not determine it}``.
    undetermined: Mapping[str, str] = field(default_factory=dict)
    #: The settings' schema (a v2 bus or master strip: ``CONSOLE_V2.shared``).
    schema: ParamSchema = CONSOLE_V1
    #: Pictures by effect beyond the EQ and compressor (v2: the master's and the bus's curves).
    pictures: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Page:
    """Everything report.html shows, already computed."""

    title: str
    #: ``(label, text)`` rows of the summary (method, time, inputs, ...).
    facts: Sequence[tuple[str, str]]
    #: ``(mix, source, mae, mrsd)`` rows; the last is the plain sum, the first the recreated mix.
    scores: Sequence[tuple[str, str, float, float]]
    notes: Sequence[str]
    strips: Sequence[Strip]
    spectrogram_png_uri: str
    spectrogram_caption: str
    reference_audio_uri: str | None
    recreated_audio_uri: str | None
    audio_caption: str
    footer: str
    #: What the console heading says (``"4 tracks"``) and how the strips read.
    console_caption: str = ""
    chain_caption: str = ("Each strip is console v1's chain for one track (gain &rarr; EQ &rarr; compressor "
                          "&rarr; pan &rarr; reverb). Solo: the track alone through its strip.")


CSS = """
:root{--bg:#121418;--panel:%(bg)s;--fg:%(fg)s;--muted:%(muted)s;--grid:%(grid)s;--curve:%(curve)s;
--accent:%(accent)s;--warn:#ff6b5e}
*{box-sizing:border-box}
body{margin:0;padding:20px 28px;background:var(--bg);color:var(--fg);font:14px/1.4 system-ui,sans-serif}
h1{font-size:22px;margin:0 0 12px}h2{font-size:17px;margin:26px 0 10px;border-bottom:1px solid var(--grid)}
.card{background:var(--panel);border:1px solid var(--grid);border-radius:8px;padding:12px 16px}
.summary{display:grid;grid-template-columns:minmax(320px,1fr) minmax(360px,1.3fr);gap:16px}
table{border-collapse:collapse}td,th{padding:3px 10px 3px 0;text-align:left;vertical-align:top}
th{color:var(--muted);font-weight:500}.num{text-align:right;font-variant-numeric:tabular-nums}
.big{font-size:20px;color:var(--accent)}
.notes li{color:var(--muted)}
.desk{display:grid;grid-template-columns:repeat(auto-fill,minmax(218px,1fr));gap:8px}
.strip{background:var(--panel);border:1px solid var(--grid);border-radius:8px;padding:8px;display:flex;
flex-direction:column;gap:6px;min-width:0}
.strip header{display:flex;align-items:center;gap:4px;background:#2a2f37;border-radius:4px;padding:4px 6px}
.strip h3{flex:1;min-width:0;margin:0;font-size:13px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.sec{border-top:1px solid var(--grid);padding-top:4px}.sec b{font-size:11px;color:var(--muted);
text-transform:uppercase;letter-spacing:.06em}
.sec img{display:block;width:100%%;height:auto}
.kv{width:100%%;font-size:12px}.kv th{font-size:11px;padding:1px 4px 1px 0;white-space:nowrap}
.kv td{padding:1px 0;text-align:right}
.iv{display:block;color:var(--muted);font-size:10px}
.und{color:var(--warn)}.und::after{content:" ?";font-weight:700}
.flag{display:inline-block;background:var(--warn);color:#111;border-radius:3px;padding:0 5px;font-size:11px;
font-weight:600;white-space:nowrap}
.warn{color:var(--warn)}
.reasons{font-size:11px;color:var(--warn);margin:0;padding-left:14px}
.fp{display:flex;gap:10px;align-items:stretch}
.fader{position:relative;width:34px;height:150px;margin:4px 0 4px 26px}
.fader .slot{position:absolute;left:15px;top:0;bottom:0;width:4px;background:#0a0b0d;border-radius:2px}
.fader .band{position:absolute;left:9px;width:16px;background:var(--accent);opacity:.25;border-radius:3px}
.fader .knob{position:absolute;left:3px;width:28px;height:12px;margin-bottom:-6px;border-radius:3px;
background:linear-gradient(#d9dde3,#8a9099);border:1px solid #222}
.fader .tick{position:absolute;left:-26px;width:22px;text-align:right;font-size:9px;color:var(--muted);
margin-bottom:-6px}
.panbox{flex:1;display:flex;flex-direction:column;gap:8px;font-size:12px}
.pan{position:relative;height:10px;background:#0a0b0d;border-radius:5px;margin:4px 2px}
.pan .mark{position:absolute;top:-3px;width:6px;height:16px;margin-left:-3px;background:var(--curve);
border-radius:2px}.pan .band{position:absolute;top:0;height:10px;background:var(--curve);opacity:.3}
.meter{height:5px;background:#0a0b0d;border-radius:3px}.meter i{display:block;height:5px;
background:var(--accent);border-radius:3px}
audio{width:100%%;height:32px}
.players{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.spec img{width:100%%;height:auto;display:block}
img.plot{max-width:100%%;height:auto;display:block}
.caption{color:var(--muted);font-size:12px}
footer{margin-top:28px;color:var(--muted);font-size:12px}
""" % THEME


def e(text: object) -> str:
    """HTML-escaped ``str(text)``, quotes included (safe in text and attribute values)."""
    return html.escape(str(text), quote=True)


def _value(name: str, value: float, strip: Strip) -> str:
    cls = "v und" if name in strip.undetermined else "v"
    title = f' title="{e(strip.undetermined[name])}"' if name in strip.undetermined else ""
    text = format_value(name, value, strip.schema)
    out = f'<span class="{cls}" data-param="{name}" data-value="{value!r}"{title}>{e(text)}</span>'
    if name in strip.intervals:
        lo, hi = strip.intervals[name]
        out += (f'<span class="iv" data-param="{name}" data-low="{lo!r}" data-high="{hi!r}">'
                f'[{e(format_value(name, lo, strip.schema))} &hellip; {e(format_value(name, hi, strip.schema))}]</span>')
    return out


def _rows(strip: Strip, names: Sequence[str]) -> str:
    cells = "".join(f"<tr><th>{label(n, strip.schema)}</th><td>{_value(n, strip.values[n], strip)}</td></tr>"
                    for n in names)
    return f'<table class="kv">{cells}</table>'


def _fraction(name: str, value: float, schema: ParamSchema = CONSOLE_V1) -> float:
    spec = schema.spec(name)
    return min(1.0, max(0.0, (value - spec.lo) / (spec.hi - spec.lo)))


def _band(strip: Strip, name: str, start: str, size: str) -> str:
    """The interval of setting ``name`` as a band along a fader or pan slot (none if not measured)."""
    if name not in strip.intervals:
        return ""
    lo, hi = (_fraction(name, v) for v in strip.intervals[name])
    return f'<span class="band" style="{start}:{100 * lo:.1f}%;{size}:{100 * (hi - lo):.1f}%"></span>'


def _fader(strip: Strip) -> str:
    ticks = "".join(f'<span class="tick" style="bottom:{100 * _fraction("gain_db", db):.1f}%">{db:+d}</span>'
                    for db in (12, 6, 0, -6, -12, -18, -24)).replace(">+0<", ">0<")
    band = _band(strip, "gain_db", "bottom", "height")
    knob = f'<span class="knob" style="bottom:{100 * _fraction("gain_db", strip.values["gain_db"]):.1f}%"></span>'
    return f'<div class="fader" aria-hidden="true"><span class="slot"></span>{ticks}{band}{knob}</div>'


def _pan(strip: Strip) -> str:
    band = _band(strip, "pan", "left", "width")
    mark = f'<span class="mark" style="left:{100 * _fraction("pan", strip.values["pan"]):.1f}%"></span>'
    return f'<div class="pan" aria-hidden="true">{band}{mark}</div>'


def _meters(strip: Strip) -> str:
    out = []
    for n in ("reverb_room_size", "reverb_damping", "reverb_wet"):
        out.append(f"<tr><th>{label(n)}</th><td>{_value(n, strip.values[n], strip)}"
                   f'<div class="meter"><i style="width:{100 * _fraction(n, strip.values[n]):.0f}%"></i></div>'
                   "</td></tr>")
    return f'<table class="kv">{"".join(out)}</table>'


def _reasons(strip: Strip) -> str:
    if not strip.undetermined:
        return ""
    by_reason: dict[str, list[str]] = {}
    for name, why in strip.undetermined.items():
        by_reason.setdefault(why, []).append(label(name))
    items = "".join(f"<li><b>{e(', '.join(names))}</b>: {e(why)}</li>" for why, names in by_reason.items())
    return f'<div class="sec"><b class="warn">undetermined</b><ul class="reasons">{items}</ul></div>'


#: How a v2 strip titles each effect.
_TITLES = {"hpf": "High-pass", "eq": "EQ", "compressor": "Compressor", "sends": "Send", "time": "Time",
           "polarity": "Polarity", "drive": "Drive", "pan": "Pan and width", "fader": "Fader"}


def _switched_off(strip: Strip, names: Sequence[str]) -> bool:
    """Whether an effect is switched off: it has one setting with an off end (a limiter's
    ceiling, a send's level, a high-pass's cutoff), and that setting is there."""
    switches = [s for s in (strip.schema.spec(n) for n in names) if s.off_at is not None]
    return len(switches) == 1 and switches[0].is_off(strip.values[switches[0].name])


def generic_strip_html(strip: Strip) -> str:
    """A strip of any schema (console v2's tracks, its reverb bus and its master), one
    section per effect in the chain's order: its settings, its picture (EQ and compressor
    curves), "off" for a processor at its off end; the solo player for a track."""
    sections = []
    for effect, names in strip.schema.effects.items():
        names = [n for n in names if n in strip.values]
        if not names:
            continue
        title = _TITLES.get(effect, effect[:1].upper() + effect[1:])
        if _switched_off(strip, names):
            sections.append(f'<div class="sec"><b>{e(title)}</b> <span class="caption">off</span></div>')
            continue
        picture = strip.pictures.get(effect, "")
        if effect == "eq" or effect.endswith(" eq"):
            picture = picture or strip.eq_png_uri
        elif effect.endswith("compressor"):
            picture = picture or strip.comp_png_uri
        img = f'<img src="{picture}" alt="{e(title)} of {e(strip.name)}">' if picture else ""
        sections.append(f'<div class="sec"><b>{e(title)}</b>{img}{_rows(strip, names)}</div>')
    flag = ""
    if strip.undetermined:
        flag = (f'<span class="flag" title="settings the audio does not determine">'
                f"{len(strip.undetermined)} undetermined</span>")
    audio = (f'<div class="sec"><b>Solo</b><audio controls preload="metadata" src="{strip.audio_uri}" '
             f'title="solo: {e(strip.name)}"></audio></div>' if strip.audio_uri else "")
    return f"""<section class="strip" data-track="{e(strip.name)}">
<header><h3 title="{e(strip.name)}">{e(strip.name)}</h3>{flag}</header>
{"".join(sections)}
{_reasons(strip)}
{audio}
</section>"""


def strip_html(strip: Strip) -> str:
    """One channel strip: EQ, compressor, reverb, pan, fader, flags and the solo player."""
    if strip.schema is not CONSOLE_V1:
        return generic_strip_html(strip)
    flag = ""
    if strip.undetermined:
        flag = (f'<span class="flag" title="settings the audio does not determine">'
                f"{len(strip.undetermined)} undetermined</span>")
    audio = (f'<audio controls preload="metadata" src="{strip.audio_uri}" title="solo: {e(strip.name)}"></audio>'
             if strip.audio_uri else "")
    eq_names = ("eq_low_shelf_cutoff_hz", "eq_low_shelf_gain_db", "eq_peak_cutoff_hz", "eq_peak_gain_db",
                "eq_peak_q", "eq_high_shelf_cutoff_hz", "eq_high_shelf_gain_db")
    comp_names = ("comp_threshold_db", "comp_ratio", "comp_attack_ms", "comp_release_ms")
    return f"""<section class="strip" data-track="{e(strip.name)}">
<header><h3 title="{e(strip.name)}">{e(strip.name)}</h3>{flag}</header>
<div class="sec"><b>EQ</b><img src="{strip.eq_png_uri}" alt="EQ response of {e(strip.name)}">{_rows(strip, eq_names)}</div>
<div class="sec"><b>Compressor</b><img src="{strip.comp_png_uri}" alt="compressor curve of {e(strip.name)}">{_rows(strip, comp_names)}</div>
<div class="sec"><b>Reverb</b>{_meters(strip)}</div>
<div class="sec fp">{_fader(strip)}<div class="panbox"><div><b>Pan</b>{_pan(strip)}{_rows(strip, ("pan",))}</div>
<div><b>Fader</b>{_rows(strip, ("gain_db",))}</div></div></div>
{_reasons(strip)}
<div class="sec"><b>Solo</b>{audio}</div>
</section>"""


def _scores_table(rows: Sequence[tuple[str, str, float, float]]) -> str:
    sum_mrsd = rows[-1][3]
    body = []
    for mix, source, mae, mrsd in rows:
        ratio = f"&times;{mrsd / sum_mrsd:.2f}" if sum_mrsd > 0 else "-"
        body.append(f'<tr><td>{e(mix)}</td><td class="caption">{e(source)}</td><td class="num">{mae:.4f}</td>'
                    f'<td class="num">{mrsd:.3f}</td><td class="num">{ratio}</td></tr>')
    head = "<tr><th>mix</th><th>rendered by</th><th>MAE</th><th>MRSD</th><th>MRSD / plain sum</th></tr>"
    return f'<table class="scores">{head}{"".join(body)}</table>'


def report_page(page: Page) -> str:
    """The complete report.html for ``page``."""
    best = page.scores[0]
    facts = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in page.facts)
    notes = "".join(f"<li>{e(n)}</li>" for n in page.notes) or "<li>none</li>"
    strips = "\n".join(strip_html(s) for s in page.strips)

    def player(label: str, uri: str | None) -> str:
        audio = f'<audio controls preload="metadata" src="{uri}"></audio>' if uri else ""
        return f"<div><b>{label}</b>{audio}</div>"

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(page.title)}</title><style>{CSS}</style></head>
<body>
<h1>{e(page.title)}</h1>
<div class="summary">
<div class="card"><table>{facts}</table></div>
<div class="card"><div>recreated mix: MRSD <span class="big" id="mrsd">{best[3]:.3f}</span>
&nbsp; MAE <span class="big" id="mae">{best[2]:.4f}</span></div>
{_scores_table(page.scores)}
<p class="caption">Distances to the reference mix after loudness normalization to -23 LUFS (EAMI section 5.1);
lower is better. The plain sum of the raw tracks is given for scale.</p>
<b>Notes</b><ul class="notes">{notes}</ul></div>
</div>
<h2>Console ({page.console_caption or f"{len(page.strips)} tracks"})</h2>
<p class="caption">{page.chain_caption}
Grey brackets and shaded bands: the interval in which the mix barely changes; red with &ldquo;?&rdquo;: settings the audio does not determine.</p>
<div class="desk">
{strips}
</div>
<h2>Mixes</h2>
<div class="card"><div class="players">{player("Reference", page.reference_audio_uri)}{player("Recreated", page.recreated_audio_uri)}</div>
<p class="caption">{e(page.audio_caption)}</p>
<div class="spec"><img src="{page.spectrogram_png_uri}" alt="spectrograms of the reference, the recreated mix and their difference"></div>
<p class="caption">{e(page.spectrogram_caption)}</p></div>
<footer>{e(page.footer)}</footer>
</body></html>
"""
