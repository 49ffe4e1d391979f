"""Console v1's EQ as data and its magnitude response: the one definition of the EQ.

Three RBJ-cookbook biquads in series (pedalboard's, i.e. JUCE's, ``LowShelfFilter``,
``PeakFilter``, ``HighShelfFilter``): :data:`EQ_SECTIONS` names each section's kind and
the settings that drive it; the shelves run at :data:`SHELF_Q`. The renderer
(:mod:`mixinvert.console.render`), the differentiable twin (:mod:`mixinvert.twin.model`,
through ``dasp_pytorch.signal.biquad``), the least-squares fit and the report's curves
all read them here. :func:`eq_response_db` is the closed form in numpy (the least-squares
fit calls it thousands of times per song, where torch's per-call overhead would triple the
method's time); it is tested against pedalboard's filters and against the twin's torch form.
"""

from __future__ import annotations

import math
from typing import Literal, Mapping

import numpy as np

#: Q of console v1's shelving filters (pedalboard's default).
SHELF_Q = 0.7071

Kind = Literal["low_shelf", "peak", "high_shelf", "highpass1", "lowpass1"]

Section = tuple[Kind, "str | None", str, "str | None"]

#: The EQ's sections in the order the signal meets them: (kind, gain setting or None for
#: a filter without gain, cutoff setting, Q setting; None: :data:`SHELF_Q`).
EQ_SECTIONS: tuple[Section, ...] = (
    ("low_shelf", "eq_low_shelf_gain_db", "eq_low_shelf_cutoff_hz", None),
    ("peak", "eq_peak_gain_db", "eq_peak_cutoff_hz", "eq_peak_q"),
    ("high_shelf", "eq_high_shelf_gain_db", "eq_high_shelf_cutoff_hz", None),
)


def v2_sections(bells: int) -> tuple[Section, ...]:
    """Console v2's filters in the order the signal meets them: the high-pass (two
    first-order sections at one cutoff: 12 dB per octave, -6 dB at the cutoff), the low
    shelf, ``bells`` bells and the high shelf."""
    return (
        ("highpass1", None, "hpf_cutoff_hz", None),
        ("highpass1", None, "hpf_cutoff_hz", None),
        ("low_shelf", "eq_low_shelf_gain_db", "eq_low_shelf_cutoff_hz", None),
        *(("peak", f"eq_bell{i}_gain_db", f"eq_bell{i}_cutoff_hz", f"eq_bell{i}_q") for i in range(1, bells + 1)),
        ("high_shelf", "eq_high_shelf_gain_db", "eq_high_shelf_cutoff_hz", None),
    )


#: Console v2's master EQ: a low shelf, a bell and a high shelf.
MASTER_EQ_SECTIONS: tuple[Section, ...] = (
    ("low_shelf", "master_eq_low_shelf_gain_db", "master_eq_low_shelf_cutoff_hz", None),
    ("peak", "master_eq_bell_gain_db", "master_eq_bell_cutoff_hz", "master_eq_bell_q"),
    ("high_shelf", "master_eq_high_shelf_gain_db", "master_eq_high_shelf_cutoff_hz", None),
)
#: The reverb bus's low and high cut (first-order twice each: 12 dB per octave).
REVERB_BUS_SECTIONS: tuple[Section, ...] = (
    ("highpass1", None, "reverb_hpf_hz", None),
    ("highpass1", None, "reverb_hpf_hz", None),
    ("lowpass1", None, "reverb_lpf_hz", None),
    ("lowpass1", None, "reverb_lpf_hz", None),
)


def section_q(values: Mapping[str, float], q_name: str | None) -> float:
    """A section's Q: its setting, or :data:`SHELF_Q` for a shelf."""
    return SHELF_Q if q_name is None else float(values[q_name])


def biquad_coefficients(kind: Kind, gain_db: float, cutoff_hz: float, q: float, sample_rate: float
                        ) -> tuple[list[float], list[float]]:
    """RBJ-cookbook ``(b, a)`` of one section (``a[0]`` not normalized to 1)."""
    a_ = 10 ** (gain_db / 40.0)
    w0 = 2 * math.pi * cutoff_hz / sample_rate
    alpha = math.sin(w0) / (2 * q)
    cw, sa = math.cos(w0), math.sqrt(a_)
    if kind == "low_shelf":
        b = [a_ * ((a_ + 1) - (a_ - 1) * cw + 2 * sa * alpha), 2 * a_ * ((a_ - 1) - (a_ + 1) * cw),
             a_ * ((a_ + 1) - (a_ - 1) * cw - 2 * sa * alpha)]
        a = [(a_ + 1) + (a_ - 1) * cw + 2 * sa * alpha, -2 * ((a_ - 1) + (a_ + 1) * cw),
             (a_ + 1) + (a_ - 1) * cw - 2 * sa * alpha]
    elif kind == "high_shelf":
        b = [a_ * ((a_ + 1) + (a_ - 1) * cw + 2 * sa * alpha), -2 * a_ * ((a_ - 1) + (a_ + 1) * cw),
             a_ * ((a_ + 1) + (a_ - 1) * cw - 2 * sa * alpha)]
        a = [(a_ + 1) - (a_ - 1) * cw + 2 * sa * alpha, 2 * ((a_ - 1) - (a_ + 1) * cw),
             (a_ + 1) - (a_ - 1) * cw - 2 * sa * alpha]
    elif kind in ("highpass1", "lowpass1"):  # JUCE's first-order filters (bilinear, no gain or Q)
        n = math.tan(math.pi * cutoff_hz / sample_rate)
        b = [1.0, -1.0, 0.0] if kind == "highpass1" else [n, n, 0.0]
        a = [n + 1.0, n - 1.0, 0.0]
    elif kind == "peak":
        b = [1 + alpha * a_, -2 * cw, 1 - alpha * a_]
        a = [1 + alpha / a_, -2 * cw, 1 - alpha / a_]
    else:
        raise ValueError(f"unknown EQ section kind {kind!r}")
    return b, a


def biquad_db(kind: Kind, gain_db: float, cutoff_hz: float, q: float, freqs_hz: np.ndarray,
              sample_rate: float) -> np.ndarray:
    """Magnitude (dB) of one section at ``freqs_hz``."""
    b, a = biquad_coefficients(kind, gain_db, cutoff_hz, q, sample_rate)
    z = np.exp(-1j * 2 * np.pi * np.asarray(freqs_hz, dtype=np.float64) / sample_rate)
    h = (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)
    return 20.0 * np.log10(np.abs(h) + 1e-12)


def eq_response_db(values: Mapping[str, float], freqs_hz: np.ndarray, sample_rate: float, *,
                   with_gain: bool = False, sections: tuple[Section, ...] = EQ_SECTIONS,
                   gain_name: str = "gain_db") -> np.ndarray:
    """The EQ's magnitude (dB) at ``freqs_hz`` for one track's physical settings; with
    ``with_gain``, the setting ``gain_name`` added (v1: the gain before the EQ, all that
    precedes the compressor)."""
    total: float | np.ndarray = float(values[gain_name]) if with_gain else 0.0
    for kind, gain, cutoff, q in sections:  # summed in the signal's order
        total = total + biquad_db(kind, section_gain(values, gain), float(values[cutoff]), section_q(values, q),
                                  freqs_hz, sample_rate)
    return np.asarray(total) + np.zeros(np.shape(freqs_hz))  # the shape of the grid, with no section too


def section_gain(values: Mapping[str, float], gain_name: str | None) -> float:
    """A section's gain: its setting, or 0 dB for a filter without one."""
    return 0.0 if gain_name is None else float(values[gain_name])
