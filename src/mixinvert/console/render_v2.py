"""Console v2: a console that can express real mixes, on pedalboard's built-in processors.

Per track, in order::

    polarity -> time offset -> drive -> high-pass -> EQ (low shelf, bells, high shelf)
    -> compressor -> fader -> pan (mono) or balance and width (stereo) -> send to the reverb bus

then the tracks and the reverb bus's return are summed and run through the master chain::

    master EQ (low shelf, bell, high shelf) -> glue compressor -> limiter -> master gain

=============== ========================================================================
stage           how
=============== ========================================================================
polarity        ``x * polarity`` (-1 or 1)
time offset     a band-limited shift by ``offset_ms`` (fractions of a sample included),
                applied to the spectrum of the whole track (positive: later in the mix);
                what moves past either end is lost, the gap is silence
drive           ``Distortion(drive_db)``: ``tanh(x * 10 ** (drive_db / 20))``; off at 0 dB
high-pass       ``HighpassFilter(hpf_cutoff_hz)`` twice (12 dB per octave, -6 dB at the
                cutoff); off at the bottom of its range
EQ              ``LowShelfFilter`` and ``HighShelfFilter`` at Q 0.7071 and ``PeakFilter``
                bells (:func:`mixinvert.console.eq.v2_sections`)
compressor      ``Compressor`` (as console v1)
fader           ``Gain(fader_db)``
pan             constant power as console v1: mono ``(cos t, sin t) x``, ``t = (pan + 1) pi / 4``;
                a stereo track's side signal is scaled by ``width`` first, then
                ``L *= sqrt(2) cos t``, ``R *= sqrt(2) sin t`` (balance)
send            the track's stereo output times ``10 ** (reverb_send_db / 20)`` to the bus
                (post-fader, post-pan); off at the bottom of its range
reverb bus      ``Reverb(room_size, damping, wet_level=1, dry_level=0, width)``, then its
                low cut (``HighpassFilter`` twice) and high cut (``LowpassFilter`` twice),
                each off at its range's end, then ``Gain(reverb_return_db)``
master          the EQ (:data:`~mixinvert.console.eq.MASTER_EQ_SECTIONS`), ``Compressor``,
                ``BrickwallLimiter(ceiling_db, release_ms)`` (off at a 0 dB ceiling), and
                ``Gain(master_gain_db)``
=============== ========================================================================

The order of the master chain is the issue's (EQ, glue compressor, limiter, gain): the
limiter last before the output level, so that its ceiling is relative to the mix it
catches and the master gain sets the level a listener hears.

Unlike v1 there is no per-track reverb, hence no doubled dry path: a mono track at pan
centre reaches each side at ``cos(pi / 4)`` (-3.01 dB), so a plain sum has the fader at
:data:`UNITY_FADER_DB` (+3.01 dB mono, 0 dB stereo).

Everything runs in float32 at the tracks' sample rate, output length = input length;
processors are made afresh for every render (a render depends only on its inputs); the
tracks render on a thread pool (pedalboard releases the GIL) and are added in track order,
so the result does not depend on the number of threads.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping, Sequence

import numpy as np
import pedalboard as pb

from mixinvert.audio import Tracks
from mixinvert.console.eq import MASTER_EQ_SECTIONS, REVERB_BUS_SECTIONS, section_gain, section_q, v2_sections
from mixinvert.console.schema import CONSOLE_V2, ParamSchema

#: The fader that makes a neutral strip pass a track at its level, by the track's channels
#: (it cancels the pan law at centre).
UNITY_FADER_DB = {1: 20.0 * math.log10(math.sqrt(2.0)), 2: 0.0}

#: What a mono mix leaves out: every track centred and folded to mono (width 0), the reverb
#: bus mono too; the console's output is then the same on both sides, like the mix.
MONO_FIXED = {"pan": 0.0, "width": 0.0}
MONO_FIXED_SHARED = {"reverb_width": 0.0}


def for_mono_mix(values: np.ndarray, shared: np.ndarray | None, schema: ParamSchema = CONSOLE_V2
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Settings with :data:`MONO_FIXED` and :data:`MONO_FIXED_SHARED` applied (copies)."""
    values = np.array(values, dtype=np.float64, copy=True)
    for name, value in MONO_FIXED.items():
        values[..., schema.index(name)] = value
    if shared is not None:
        shared = np.array(shared, dtype=np.float64, copy=True)
        for name, value in MONO_FIXED_SHARED.items():
            shared[schema.shared.index(name)] = value
    return values, shared


_FILTERS = {"low_shelf": pb.LowShelfFilter, "peak": pb.PeakFilter, "high_shelf": pb.HighShelfFilter}
_FIRST_ORDER = {"highpass1": pb.HighpassFilter, "lowpass1": pb.LowpassFilter}


def active_sections(v: Mapping[str, float], sections, schema: ParamSchema) -> tuple:
    """``sections`` without the first-order ones whose cutoff setting is at its off end
    (the filters a render runs, and the curve a report draws)."""
    return tuple(sec for sec in sections if not (sec[0] in _FIRST_ORDER and schema.spec(sec[2]).is_off(v[sec[2]])))


def filter_processors(v: Mapping[str, float], sections, schema: ParamSchema) -> list:
    """pedalboard filters for the :func:`active_sections` of ``sections`` at settings ``v``."""
    out = []
    for kind, gain, cutoff, q in active_sections(v, sections, schema):
        if kind in _FIRST_ORDER:
            out.append(_FIRST_ORDER[kind](cutoff_frequency_hz=v[cutoff]))
        else:
            out.append(_FILTERS[kind](cutoff_frequency_hz=v[cutoff], gain_db=section_gain(v, gain), q=section_q(v, q)))
    return out


def bells_of(schema: ParamSchema) -> int:
    """How many bells a v2 schema's EQ has."""
    return sum(1 for n in schema.names if n.startswith("eq_bell") and n.endswith("_gain_db"))


def shift(x: np.ndarray, samples: float) -> np.ndarray:
    """``x`` ``(channels, n)`` delayed by ``samples`` (fractional; negative: earlier), same
    length: a linear phase on a zero-padded spectrum, so nothing wraps around."""
    if samples == 0.0:
        return x
    n = x.shape[-1]
    pad = int(math.ceil(abs(samples))) + 64
    n_fft = 1 << int(math.ceil(math.log2(n + 2 * pad)))
    spectrum = np.fft.rfft(np.pad(x.astype(np.float64), ((0, 0), (pad, 0))), n_fft)
    spectrum *= np.exp(-2j * math.pi * np.fft.rfftfreq(n_fft) * samples)
    return np.fft.irfft(spectrum, n_fft)[:, pad:pad + n].astype(np.float32)


def render_strip(x: np.ndarray, sample_rate: int, values: np.ndarray, schema: ParamSchema = CONSOLE_V2
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """One track's stereo output ``(2, n)`` and its send to the reverb bus (None when off),
    for validated physical ``values``."""
    v = dict(zip(schema.names, (float(t) for t in values)))
    y = np.ascontiguousarray(x, dtype=np.float32)
    if v["polarity"] < 0:
        y = -y
    y = shift(y, v["offset_ms"] * sample_rate / 1000.0)
    chain = []
    if not schema.spec("drive_db").is_off(v["drive_db"]):
        chain.append(pb.Distortion(drive_db=v["drive_db"]))
    chain += filter_processors(v, v2_sections(bells_of(schema)), schema)
    chain.append(pb.Compressor(threshold_db=v["comp_threshold_db"], ratio=v["comp_ratio"],
                               attack_ms=v["comp_attack_ms"], release_ms=v["comp_release_ms"]))
    chain.append(pb.Gain(gain_db=v["fader_db"]))
    y = pb.Pedalboard(chain)(y, sample_rate)
    theta = (v["pan"] + 1.0) * math.pi / 4.0
    if y.shape[0] == 1:
        stereo = y * np.array([[math.cos(theta)], [math.sin(theta)]], dtype=np.float32)
    else:
        mid, side = (y[0] + y[1]) * 0.5, (y[0] - y[1]) * (0.5 * v["width"])
        stereo = np.stack([mid + side, mid - side]) * np.array(
            [[math.sqrt(2.0) * math.cos(theta)], [math.sqrt(2.0) * math.sin(theta)]], dtype=np.float32)
    stereo = stereo.astype(np.float32)
    send = None
    if not schema.spec("reverb_send_db").is_off(v["reverb_send_db"]):
        send = stereo * np.float32(10.0 ** (v["reverb_send_db"] / 20.0))
    return stereo, send


def reverb_bus(v: Mapping[str, float], shared_schema: ParamSchema) -> pb.Pedalboard:
    """The reverb bus of shared settings ``v`` (by name): reverb fully wet, its filters, the return."""
    return pb.Pedalboard([
        pb.Reverb(room_size=v["reverb_room_size"], damping=v["reverb_damping"], wet_level=1.0, dry_level=0.0,
                  width=v["reverb_width"]),
        *filter_processors(v, REVERB_BUS_SECTIONS, shared_schema),
        pb.Gain(gain_db=v["reverb_return_db"]),
    ])


def render_bus_and_master(dry: np.ndarray, sends: np.ndarray | None, sample_rate: int, shared: np.ndarray,
                          schema: ParamSchema = CONSOLE_V2) -> np.ndarray:
    """The mix ``(2, n)`` from the summed strips ``dry`` and summed sends (validated shared settings)."""
    shared_schema = schema.shared
    v = dict(zip(shared_schema.names, (float(t) for t in shared)))
    mix = np.array(dry, dtype=np.float32, copy=True)
    if sends is not None:
        mix += reverb_bus(v, shared_schema)(np.ascontiguousarray(sends, dtype=np.float32), sample_rate)
    chain = filter_processors(v, MASTER_EQ_SECTIONS, shared_schema)
    chain.append(pb.Compressor(threshold_db=v["master_comp_threshold_db"], ratio=v["master_comp_ratio"],
                               attack_ms=v["master_comp_attack_ms"], release_ms=v["master_comp_release_ms"]))
    if not shared_schema.spec("master_limiter_ceiling_db").is_off(v["master_limiter_ceiling_db"]):
        chain.append(pb.BrickwallLimiter(ceiling_db=v["master_limiter_ceiling_db"],
                                         release_ms=v["master_limiter_release_ms"]))
    chain.append(pb.Gain(gain_db=v["master_gain_db"]))
    return pb.Pedalboard(chain)(mix, sample_rate)


class ConsoleV2(Tracks):
    """Console v2 loaded with one song's tracks (the counterpart of :class:`~mixinvert.console.render.Console`).

    Settings are ``values`` ``(n_tracks, schema.size)`` and ``shared`` ``(schema.shared_size,)``,
    physical units.
    """

    def __init__(self, tracks: Sequence[np.ndarray], sample_rate: int, *, schema: ParamSchema = CONSOLE_V2,
                 workers: int | None = None) -> None:
        if not tracks:
            raise ValueError("a console needs at least one track")
        if len({t.shape[-1] for t in tracks}) != 1:
            raise ValueError(f"tracks must share one length, got {sorted({t.shape[-1] for t in tracks})}")
        self.tracks = [np.ascontiguousarray(t, dtype=np.float32) for t in tracks]
        for t in self.tracks:
            if t.ndim != 2 or t.shape[0] not in (1, 2):
                raise ValueError(f"a track must be (1 or 2, samples), got shape {t.shape}")
        if schema.shared is None or schema.version != "v2":
            raise ValueError(f"ConsoleV2 implements console v2, not {schema.version}")
        self.sample_rate = int(sample_rate)
        self.schema = schema
        self.workers = workers or os.cpu_count() or 1

    def validate(self, values: np.ndarray, shared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] != self.num_tracks:
            raise ValueError(f"expected parameters of shape ({self.num_tracks}, {self.schema.size}), got {values.shape}")
        return self.schema.validate(values), self.schema.shared.validate(np.asarray(shared, dtype=np.float64))

    def render(self, values: np.ndarray, shared: np.ndarray, *, only: Sequence[int] | None = None,
               workers: int | None = None) -> np.ndarray:
        """The stereo mix ``(2, samples)``; with ``only``, the mix of those tracks alone
        (through their sends, the bus and the master chain: what a solo would play)."""
        values, shared = self.validate(values, shared)
        order = list(range(self.num_tracks)) if only is None else [int(i) for i in only]
        n_workers = max(1, min(workers or self.workers, len(order)))

        def one(i: int) -> tuple[np.ndarray, np.ndarray | None]:
            return render_strip(self.tracks[i], self.sample_rate, values[i], self.schema)

        if n_workers > 1:
            with ThreadPoolExecutor(max_workers=n_workers) as pool:
                outputs = list(pool.map(one, order))
        else:
            outputs = [one(i) for i in order]
        dry = np.zeros((2, self.num_samples), dtype=np.float32)
        sends = None
        for stereo, send in outputs:  # added in track order: the same for any thread count
            dry += stereo
            if send is not None:
                sends = send.copy() if sends is None else sends + send
        return render_bus_and_master(dry, sends, self.sample_rate, shared, self.schema)

    def solos(self, values: np.ndarray, shared: np.ndarray) -> np.ndarray:
        """Each track's mix alone ``(n_tracks, 2, samples)`` (:meth:`render` with ``only``)."""
        return np.stack([self.render(values, shared, only=[i]) for i in range(self.num_tracks)])
