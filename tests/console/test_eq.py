"""Console v1's EQ has one definition: its closed form (numpy), the console's pedalboard
filters and the twin's torch form agree."""

from __future__ import annotations

import numpy as np
import pedalboard as pb
import pytest
import torch

from mixinvert.console.eq import EQ_SECTIONS, SHELF_Q, eq_response_db
from mixinvert.console.render import gain_eq_processors
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
from mixinvert.twin import model as twin

SR = 44100
SETTINGS = [
    {**NEUTRAL_V1},
    {**NEUTRAL_V1, "eq_low_shelf_gain_db": 9.0, "eq_low_shelf_cutoff_hz": 60.0, "eq_peak_gain_db": -7.0,
     "eq_peak_cutoff_hz": 2500.0, "eq_peak_q": 3.0, "eq_high_shelf_gain_db": 5.0, "eq_high_shelf_cutoff_hz": 9000.0},
    {**NEUTRAL_V1, "eq_low_shelf_gain_db": -12.0, "eq_low_shelf_cutoff_hz": 400.0, "eq_peak_gain_db": 12.0,
     "eq_peak_cutoff_hz": 150.0, "eq_peak_q": 0.4, "eq_high_shelf_gain_db": -10.0, "eq_high_shelf_cutoff_hz": 2000.0},
]
FREQS = np.geomspace(40.0, 18000.0, 40)


def _pedalboard_db(settings: dict) -> np.ndarray:
    """The console's own EQ processors measured with an impulse (0.67 Hz bins)."""
    n = 1 << 16
    impulse = np.zeros((1, n), dtype=np.float32)
    impulse[0, 0] = 1.0
    h = pb.Pedalboard(gain_eq_processors(settings)[1:])(impulse, SR, reset=True)[0].astype(np.float64)
    mag = np.abs(np.fft.rfft(h))
    return 20.0 * np.log10(np.interp(FREQS, np.fft.rfftfreq(n, 1.0 / SR), mag))


@pytest.mark.parametrize("settings", SETTINGS)
def test_closed_form_is_the_console_filters(settings):
    np.testing.assert_allclose(eq_response_db(settings, FREQS, SR), _pedalboard_db(settings), atol=0.05)


@pytest.mark.parametrize("settings", SETTINGS)
def test_closed_form_is_the_twins_torch_form(settings):
    n_fft = 1 << 16
    values = torch.tensor(CONSOLE_V1.from_dict(settings), dtype=torch.float64)
    h = twin.eq_response(values, SR, n_fft).detach().numpy()
    twin_db = 20.0 * np.log10(np.interp(FREQS, np.fft.rfftfreq(n_fft, 1.0 / SR), np.abs(h)))
    np.testing.assert_allclose(eq_response_db(settings, FREQS, SR), twin_db, atol=0.05)


def test_sections_name_every_eq_setting_once():
    named = [n for _, gain, cutoff, q in EQ_SECTIONS for n in (gain, cutoff, q) if n is not None]
    assert sorted(named) == sorted(n for n in CONSOLE_V1.names if n.startswith("eq_"))
    assert SHELF_Q == pytest.approx(2 ** -0.5, abs=1e-4)
