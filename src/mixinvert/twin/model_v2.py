"""A differentiable twin of console v2 in PyTorch (:mod:`mixinvert.console.render_v2`).

The same chain, parameters and units, written so that gradients reach the settings a fit
frees; each stage reuses console v1's twin where the processor is the same, and is
checked against pedalboard (tests/twin/test_model_v2.py):

=============== =========================================================================
stage           how
=============== =========================================================================
polarity, time  a sign and a linear phase ``exp(-i w offset)`` on the track's spectrum
offset          (the renderer's band-limited shift), with the filters in one product
drive           ``tanh(x * 10 ** (drive_db / 20))`` in the time domain, on tracks whose
                drive is on (between two FFTs)
high-pass, EQ   the filters' exact frequency responses (JUCE's first-order high-pass and
                RBJ biquads, :mod:`mixinvert.console.eq`) on a zero-padded FFT grid
compressor      JUCE's ballistics (:func:`mixinvert.twin.ballistics.compress`), per channel
fader, pan,     gains; width on a stereo track's side signal
width, send
reverb bus      Freeverb's closed-form response (console v1's twin) of the summed sends,
                its width mix ``0.5 * 3 * (1 +- width)`` and its low and high cut as
                first-order responses, then the return gain
master          the EQ's responses on the mix's spectrum, the compressor on both
                channels, the master gain
=============== =========================================================================

Not in the twin: the master limiter (a look-ahead brick-wall limiter with a hold; its
gain has no useful gradient) and settings at the exact "off" end of their range, where
the renderer bypasses a processor while the twin runs it at that end (a send at -60 dB,
a high-pass at 10 Hz): the differences are at most that small. A fit keeps the limiter
off.

Audio is float32; settings are physical values, float64 tensors: ``values``
``(n_tracks, schema.size)`` and ``shared`` ``(schema.shared.size,)``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from mixinvert.console.eq import MASTER_EQ_SECTIONS, REVERB_BUS_SECTIONS, SHELF_Q, v2_sections
from mixinvert.console.render_v2 import bells_of
from mixinvert.console.schema import CONSOLE_V2, ParamSchema
from mixinvert.twin import responses
from mixinvert.twin.ballistics import compress, time_constant
from mixinvert.twin.model import (
    EQ_TAIL_SAMPLES,
    REVERB_INPUT_GAIN,
    REVERB_TAIL_SECONDS,
    REVERB_WET_SCALE,
    WRAP_GUARD_NEPERS,
    _angular_grid,
    _reverb_grid,
    _z1_grid,
    fft_size,
)

_DASP_KIND = {"low_shelf": "low_shelf", "peak": "peaking", "high_shelf": "high_shelf"}


def section_coefficients(kind: str, gain_db: torch.Tensor | None, cutoff_hz: torch.Tensor, q: torch.Tensor | None,
                         sample_rate: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(b, a)`` ``(rows, 3)`` float64 of one kind of section for ``(rows,)`` settings, as
    :func:`mixinvert.console.eq.biquad_coefficients` (differentiable)."""
    cutoff_hz = cutoff_hz.to(torch.float64)
    if kind in ("highpass1", "lowpass1"):
        n = torch.tan(math.pi * cutoff_hz / sample_rate)
        one, zero = torch.ones_like(n), torch.zeros_like(n)
        b = torch.stack([one, -one, zero] if kind == "highpass1" else [n, n, zero], dim=-1)
        return b, torch.stack([n + 1.0, n - 1.0, zero], dim=-1)
    from dasp_pytorch.signal import biquad

    q = torch.full_like(cutoff_hz, SHELF_Q) if q is None else q.to(torch.float64)
    return biquad(gain_db.to(torch.float64), cutoff_hz, q, float(sample_rate), _DASP_KIND[kind])


def sections_response(rows: dict[str, torch.Tensor], sections, sample_rate: float, n_fft: int,
                      off: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The responses ``(rows, n_fft // 2 + 1)`` complex64 of ``sections`` in series, settings
    by name (each ``(rows,)``); ``off`` marks, per cutoff setting, the rows where a
    first-order section is bypassed (its setting at the off end). Every section, first
    order too, runs in the fused biquad kernel."""
    off = off or {}
    bs, as_ = [], []
    for kind, gain, cutoff, q in sections:
        b, a = section_coefficients(kind, rows[gain] if gain else None, rows[cutoff], rows[q] if q else None,
                                    sample_rate)
        if kind in ("highpass1", "lowpass1"):
            if kind == "highpass1":
                # the zero at 0 Hz moved a hair inside the circle: the fused kernel's gradient
                # divides by each numerator (the response moves by 1e-12 relative)
                b = b * torch.tensor([1.0, 1.0 - 1e-12, 0.0], dtype=torch.float64)
            bypass = off.get(cutoff)
            if bypass is not None:  # at its off end the renderer leaves the filter out: a unit section
                unit = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
                b = torch.where(bypass[:, None], unit, b)
                a = torch.where(bypass[:, None], unit, a)
        bs.append(b)
        as_.append(a)
    return responses.biquad_chain_responses(torch.stack(bs, dim=1), torch.stack(as_, dim=1), _z1_grid(n_fft))


def _is_off(schema: ParamSchema, name: str, v: dict[str, torch.Tensor]) -> torch.Tensor:
    """Where setting ``name`` is at its off end (:meth:`ParamSpec.is_off`), as a bool tensor."""
    spec = schema.spec(name)
    return torch.abs(v[name].to(torch.float64) - spec.off_at) <= 1e-9 * (spec.hi - spec.lo)


def _columns(values: torch.Tensor, schema: ParamSchema) -> dict[str, torch.Tensor]:
    return {name: values[..., i] for i, name in enumerate(schema.names)}


class PreparedTracksV2:
    """Tracks that many renders share (a fit's excerpts), for console v2's twin: each
    track's spectrum on the filters' FFT grid is computed once (:class:`mixinvert.twin.model.PreparedTracks`
    for v1)."""

    def __init__(self, tracks: Sequence[torch.Tensor], sample_rate: int, *, schema: ParamSchema = CONSOLE_V2,
                 tail_seconds: float = REVERB_TAIL_SECONDS) -> None:
        if not tracks:
            raise ValueError("no tracks")
        for x in tracks:
            if x.ndim != 2 or x.shape[0] not in (1, 2):
                raise ValueError(f"a track must be (1 or 2, samples), got {tuple(x.shape)}")
        if len({x.shape[-1] for x in tracks}) > 1:
            raise ValueError("tracks must all have the same length")
        self.schema = schema
        self.sections = v2_sections(bells_of(schema))
        self.sample_rate = sr = int(sample_rate)
        self.num_tracks = len(tracks)
        self.num_samples = n = tracks[0].shape[-1]
        self.channels = [int(x.shape[0]) for x in tracks]
        # each track's channels, padded to two rows (a mono track's second row is unused)
        self.eq_fft = fft_size(n, EQ_TAIL_SAMPLES + int(math.ceil(schema.spec("offset_ms").hi * sr / 1000.0)))
        stacked = torch.zeros(self.num_tracks, 2, n, dtype=torch.float32)
        for i, x in enumerate(tracks):
            stacked[i, : x.shape[0]] = x.to(torch.float32)
        self.audio = stacked
        self.spectra = torch.fft.rfft(stacked, self.eq_fft)  # (tracks, 2, bins)
        self.stereo = torch.tensor([c == 2 for c in self.channels])
        self.reverb_fft = fft_size(n, int(tail_seconds * sr))
        alpha = WRAP_GUARD_NEPERS / self.reverb_fft
        t = torch.arange(n, dtype=torch.float64)
        self._down = (torch.exp(-alpha * t) * REVERB_INPUT_GAIN).to(torch.float32)
        self._up = torch.exp(alpha * t).to(torch.float32)
        self.master_fft = fft_size(n, EQ_TAIL_SAMPLES)
        self._shift_cache: tuple | None = None

    def render(self, values: torch.Tensor, shared: torch.Tensor, *, fixed_offsets: bool = False) -> torch.Tensor:
        """The stereo mix ``(2, samples)`` for physical ``values`` and ``shared``. With
        ``fixed_offsets``, the polarity and time offsets take no gradient and their shifted
        tracks are kept for the next render with the same offsets (a fit that does not
        free them pays for the shift once)."""
        schema, sr, n = self.schema, self.sample_rate, self.num_samples
        if values.shape != (self.num_tracks, schema.size) or shared.shape != (schema.shared.size,):
            raise ValueError(f"expected settings ({self.num_tracks}, {schema.size}) and ({schema.shared.size},)")
        v, s = _columns(values, schema), _columns(shared, schema.shared)
        filters = sections_response(v, self.sections, sr, self.eq_fft,
                                    off={"hpf_cutoff_hz": _is_off(schema, "hpf_cutoff_hz", v)})  # (tracks, bins)
        pre, spectra = self._shifted(v["offset_ms"], v["polarity"], fixed_offsets)
        drive_on = v["drive_db"] > schema.spec("drive_db").lo
        if bool(drive_on.any()):
            g = torch.pow(10.0, v["drive_db"] / 20.0).to(torch.float32)[:, None, None]
            spectra = torch.fft.rfft(torch.where(drive_on[:, None, None], torch.tanh(pre * g), pre), self.eq_fft)
        y = torch.fft.irfft(spectra * filters[:, None, :], self.eq_fft)[..., :n]  # (tracks, 2, n)
        thresholds = torch.pow(10.0, v["comp_threshold_db"] / 20.0)
        exponents = 1.0 / v["comp_ratio"] - 1.0
        attacks, releases = time_constant(v["comp_attack_ms"], sr), time_constant(v["comp_release_ms"], sr)
        y = compress(y.reshape(-1, n), *(t.repeat_interleave(2) for t in (thresholds, exponents, attacks, releases)))
        y = y.reshape(self.num_tracks, 2, n) * torch.pow(10.0, v["fader_db"] / 20.0).to(torch.float32)[:, None, None]
        # pan (mono) or width and balance (stereo) as one 2x2 matrix per track
        theta = (v["pan"] + 1.0) * math.pi / 4.0
        cos, sin = torch.cos(theta), torch.sin(theta)
        width = v["width"]
        root2 = math.sqrt(2.0)
        mono = torch.stack([torch.stack([cos, torch.zeros_like(cos)], -1),
                            torch.stack([sin, torch.zeros_like(sin)], -1)], dim=1)  # (tracks, out 2, in 2)
        a, b = 0.5 * (1.0 + width), 0.5 * (1.0 - width)  # L' = a L + b R, R' = b L + a R
        st = torch.stack([torch.stack([root2 * cos * a, root2 * cos * b], -1),
                          torch.stack([root2 * sin * b, root2 * sin * a], -1)], dim=1)
        matrix = torch.where(self.stereo[:, None, None], st, mono).to(torch.float32)
        out = torch.einsum("toi,tin->ton", matrix, y)  # (tracks, 2, n)
        dry = out.sum(dim=0)
        send = torch.where(_is_off(schema, "reverb_send_db", v), 0.0,
                           torch.pow(10.0, v["reverb_send_db"] / 20.0)).to(torch.float32)
        bus_in = torch.einsum("t,tcn->n", send, out)  # Freeverb reads L + R
        mix = dry + self._reverb_bus(bus_in, s)
        return self._master(mix, s)

    def _shifted(self, offset_ms: torch.Tensor, polarity: torch.Tensor, fixed: bool
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """The tracks after polarity and time offset, ``(tracks, 2, n)``, and their spectra
        on the filters' grid: shifted on the grid, then cut to the song as the renderer
        cuts them (what moves past either end is lost before any filter sees it). With
        ``fixed``, computed without gradient and kept for the same offsets."""
        if fixed:
            offset_ms, polarity = offset_ms.detach(), polarity.detach()
            key = (tuple(offset_ms.tolist()), tuple(polarity.tolist()))
            if self._shift_cache is not None and self._shift_cache[0] == key:
                return self._shift_cache[1]
        n = self.num_samples
        omega = _angular_grid(self.eq_fft)
        delay = torch.polar(torch.ones_like(omega)[None, :], -omega[None, :] * (offset_ms * (self.sample_rate / 1000.0))[:, None])
        sign = torch.where(polarity < 0, -1.0, 1.0).to(torch.float64)
        pre = torch.fft.irfft(self.spectra * (delay * sign[:, None]).to(torch.complex64)[:, None, :], self.eq_fft)[..., :n]
        out = (pre, torch.fft.rfft(pre, self.eq_fft))
        if fixed:
            self._shift_cache = (key, out)
        return out

    def _reverb_bus(self, bus_in: torch.Tensor, s: dict[str, torch.Tensor]) -> torch.Tensor:
        sr, n = self.sample_rate, self.num_samples
        feedback = s["reverb_room_size"].to(torch.float64) * 0.28 + 0.7
        damp = s["reverb_damping"].to(torch.float64) * 0.4
        paths = responses.reverb_response(feedback, damp, _reverb_grid(self.reverb_fft, sr))  # (2, bins)
        width = s["reverb_width"]
        wet1, wet2 = 0.5 * REVERB_WET_SCALE * (1.0 + width), 0.5 * REVERB_WET_SCALE * (1.0 - width)
        mixed = torch.stack([paths[0] * wet1 + paths[1] * wet2, paths[1] * wet1 + paths[0] * wet2])
        keys = ("reverb_hpf_hz", "reverb_lpf_hz")
        cuts = sections_response({k: s[k][None] for k in keys}, REVERB_BUS_SECTIONS, sr, self.reverb_fft,
                                 off={k: _is_off(self.schema.shared, k, s)[None] for k in keys})[0]
        # (on the unit circle, used on the wrap guard's circle: r - 1 is about 1e-5 there)
        gain = torch.pow(10.0, s["reverb_return_db"] / 20.0)
        spectrum = torch.fft.rfft(bus_in * self._down, self.reverb_fft)
        wet = torch.fft.irfft(spectrum[None] * (mixed * (cuts * gain).to(torch.complex64)[None]), self.reverb_fft)
        return wet[..., :n] * self._up

    def _master(self, mix: torch.Tensor, s: dict[str, torch.Tensor]) -> torch.Tensor:
        sr, n = self.sample_rate, self.num_samples
        eq = sections_response({k: t[None] for k, t in s.items()}, MASTER_EQ_SECTIONS, sr, self.master_fft)[0]
        y = torch.fft.irfft(torch.fft.rfft(mix, self.master_fft) * eq[None], self.master_fft)[..., :n]
        y = compress(y, torch.pow(10.0, s["master_comp_threshold_db"] / 20.0), 1.0 / s["master_comp_ratio"] - 1.0,
                     time_constant(s["master_comp_attack_ms"], sr), time_constant(s["master_comp_release_ms"], sr))
        return y * torch.pow(10.0, s["master_gain_db"] / 20.0).to(torch.float32)


def render(tracks: Sequence[torch.Tensor], sample_rate: int, values: torch.Tensor, shared: torch.Tensor, *,
           schema: ParamSchema = CONSOLE_V2, tail_seconds: float = REVERB_TAIL_SECONDS) -> torch.Tensor:
    """The stereo mix ``(2, samples)`` of console v2's twin (:class:`PreparedTracksV2` for one render)."""
    return PreparedTracksV2(tracks, sample_rate, schema=schema, tail_seconds=tail_seconds).render(values, shared)


def np_settings(values: np.ndarray, shared: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Physical numpy settings as the twin's float64 tensors."""
    return torch.as_tensor(np.asarray(values, dtype=np.float64)), torch.as_tensor(np.asarray(shared, dtype=np.float64))
