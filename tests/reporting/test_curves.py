"""The numbers behind the report's plots: EQ responses measured on the console, the
compressor's static curve, and the spectrogram's level scale."""

import numpy as np
import pytest

from mixinvert.console.schema import NEUTRAL_V1
from mixinvert.reporting.curves import compressor_curve_db, eq_response_db, spectrogram_db

SR = 44100


def test_flat_eq_is_0_db_everywhere():
    freqs, gain = eq_response_db(NEUTRAL_V1, SR)
    assert freqs[0] == pytest.approx(20.0) and freqs[-1] == pytest.approx(20000.0)
    assert np.all(np.diff(np.log(freqs)) > 0)
    np.testing.assert_allclose(gain, 0.0, atol=0.1)


def test_the_fader_gain_is_not_part_of_the_eq_curve():
    _, gain = eq_response_db({**NEUTRAL_V1, "gain_db": 9.0}, SR)
    np.testing.assert_allclose(gain, 0.0, atol=0.1)


@pytest.mark.parametrize("centre_hz", [250.0, 1000.0, 4000.0])
def test_a_6_db_bell_shows_6_db_at_its_centre(centre_hz):
    v = {**NEUTRAL_V1, "eq_peak_cutoff_hz": centre_hz, "eq_peak_gain_db": 6.0, "eq_peak_q": 1.0}
    _, at = eq_response_db(v, SR, np.array([centre_hz, centre_hz / 16, min(centre_hz * 16, 20000.0)]))
    assert at[0] == pytest.approx(6.0, abs=0.1)
    assert abs(at[1]) < 0.5 and abs(at[2]) < 0.5  # four octaves away the bell is gone


def test_shelves_give_their_gain_far_from_the_cutoff():
    v = {**NEUTRAL_V1, "eq_low_shelf_cutoff_hz": 100.0, "eq_low_shelf_gain_db": -9.0,
         "eq_high_shelf_cutoff_hz": 4000.0, "eq_high_shelf_gain_db": 5.0}
    _, at = eq_response_db(v, SR, np.array([20.0, 700.0, 18000.0]))
    assert at[0] == pytest.approx(-9.0, abs=0.3)
    assert abs(at[1]) < 0.5
    assert at[2] == pytest.approx(5.0, abs=0.3)


def test_compressor_curve_is_identity_below_threshold_and_slope_1_over_ratio_above():
    thr, ratio = -20.0, 4.0
    x = np.linspace(-60.0, 0.0, 121)
    y = compressor_curve_db(x, thr, ratio)
    below, above = x <= thr, x > thr
    np.testing.assert_allclose(y[below], x[below])
    np.testing.assert_allclose(np.diff(y[above]) / np.diff(x[above]), 1.0 / ratio)
    assert compressor_curve_db(np.array([0.0]), thr, ratio)[0] == pytest.approx(-15.0)  # by hand: -20 + 20/4
    np.testing.assert_allclose(compressor_curve_db(x, thr, 1.0), x)  # ratio 1: no compression
    with pytest.raises(ValueError, match="ratio"):
        compressor_curve_db(x, thr, 0.5)


def test_spectrogram_of_a_full_scale_sine_reads_0_db_at_its_frequency():
    n = SR
    f0 = 1000.0
    x = np.sin(2 * np.pi * f0 * np.arange(n) / SR).astype(np.float32)[None].repeat(2, axis=0)
    times, freqs, db = spectrogram_db(x, SR, n_fft=2048)
    assert db.shape == (freqs.size, times.size)
    middle = db[:, times.size // 2]
    k = int(np.argmax(middle))
    assert freqs[k] == pytest.approx(f0, abs=SR / 2048)
    assert middle[k] == pytest.approx(0.0, abs=1.5)  # Hann scalloping is at most 1.4 dB


def test_spectrogram_frames_stay_bounded_for_long_audio():
    x = np.zeros((1, SR * 60), dtype=np.float32)
    times, _, db = spectrogram_db(x, SR, max_frames=500)
    assert times.size <= 501 and db.shape[1] == times.size
    assert np.all(db <= -199.0)  # silence sits at the floor
