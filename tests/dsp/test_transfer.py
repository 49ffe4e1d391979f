"""Tests of the transfer spectra (per-band least squares of the mix on the tracks)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from mixinvert.dsp.features import N_MELS
from mixinvert.dsp.transfer import (
    COMP_LEVEL_MIN_DB,
    LOG_COEF_FLOOR,
    LOG_GAIN_FLOOR,
    LOG_OCC_FLOOR,
    MAX_FRAMES,
    N_FFT,
    transfer_features,
)

SR = 44100


@pytest.fixture
def noises():
    rng = np.random.default_rng(0)
    n = 2 * SR
    return [rng.standard_normal((1, n)).astype(np.float32) * 0.1 for _ in range(3)]


def _db(log_amp):
    return 20.0 * np.asarray(log_amp) / np.log(10.0)


def test_gains_and_pan_of_independent_tracks_are_read_back(noises):
    # track k reaches left with gain a_k and right with gain b_k
    left, right = np.array([1.0, 0.5, 0.1]), np.array([1.0, 0.25, 0.2])
    mix = np.stack([sum(a * t[0] for a, t in zip(left, noises)), sum(b * t[0] for b, t in zip(right, noises))])
    out = transfer_features(noises, mix.astype(np.float32), SR)
    assert out.shape == (3, 3, N_MELS) and out.dtype == np.float32
    bands = slice(20, 75)  # bands with many FFT bins (the lowest hold one or none)
    np.testing.assert_allclose(_db(out[:, 0, bands]), np.repeat(_db(np.log(left))[:, None], 55, 1), atol=0.5)
    np.testing.assert_allclose(_db(out[:, 1, bands]), np.repeat(_db(np.log(right))[:, None], 55, 1), atol=0.5)
    # the power channel is the track's own band power: the same for equally loud noises
    np.testing.assert_allclose(out[0, 2, bands], out[1, 2, bands], atol=0.3)


def test_an_eq_shows_in_the_bands_it_touches(noises):
    sos = scipy.signal.butter(4, 2000, "lowpass", fs=SR, output="sos")
    filtered = scipy.signal.sosfilt(sos, noises[0][0]).astype(np.float32)
    mix = np.stack([filtered + noises[1][0], filtered + noises[1][0]])
    out = transfer_features(noises[:2], mix, SR)
    from librosa import mel_frequencies

    centres = mel_frequencies(N_MELS + 2, fmin=20.0, fmax=20000.0)[1:-1]
    low, high = centres < 1000, centres > 6000
    assert np.abs(_db(out[0, 0, low & (centres > 200)])).max() < 1.5  # pass band: 0 dB
    assert _db(out[0, 0, high]).max() < -30  # stop band
    assert np.abs(_db(out[1, 0, 20:75])).max() < 0.5  # the other track is untouched


def test_stereo_tracks_use_their_own_channels():
    rng = np.random.default_rng(1)
    n = SR
    stereo = rng.standard_normal((2, n)).astype(np.float32) * 0.1
    mono = rng.standard_normal((1, n)).astype(np.float32) * 0.1
    mix = np.stack([0.5 * stereo[0] + mono[0], 2.0 * stereo[1] + mono[0]])
    out = transfer_features([stereo, mono], mix, SR)
    np.testing.assert_allclose(_db(out[0, 0, 20:75]), _db(np.log(0.5)), atol=0.5)
    np.testing.assert_allclose(_db(out[0, 1, 20:75]), _db(np.log(2.0)), atol=0.5)


def test_a_silent_track_reads_the_floor_and_the_others_are_unharmed(noises):
    silent = np.zeros_like(noises[0])
    mix = np.stack([noises[0][0], noises[0][0]])
    out = transfer_features([noises[0], silent], mix, SR)
    assert np.isfinite(out).all()
    assert (out[1, :2] == LOG_GAIN_FLOOR).all()
    np.testing.assert_allclose(_db(out[0, :2, 20:75]), 0.0, atol=0.5)


def test_permuting_tracks_permutes_the_result(noises):
    mix = np.stack([noises[0][0] + 0.3 * noises[2][0], 0.5 * noises[1][0] + noises[2][0]])
    a = transfer_features(noises, mix, SR)
    b = transfer_features([noises[2], noises[0], noises[1]], mix, SR)
    np.testing.assert_array_equal(transfer_features(noises, mix, SR), a)  # deterministic
    a = a[[2, 0, 1]]
    # The normal equations are formed in float32, so reordering the tracks changes every
    # gain's rounding by a few float32 steps of the largest gain (1 here), whatever the
    # CPU's summation order. Compared as amplitudes, that is an absolute error; as logs, a
    # near-zero gain (a track absent from a channel reads about -9) would magnify it.
    np.testing.assert_allclose(np.exp(b[:, :2]), np.exp(a[:, :2]), rtol=0, atol=1e-5)
    # each track's own power does not involve the others
    np.testing.assert_allclose(b[:, 2], a[:, 2], rtol=1e-6)


def test_long_songs_use_a_bounded_number_of_frames():
    rng = np.random.default_rng(2)
    n = (MAX_FRAMES + 200) * (N_FFT // 2)  # more frames than are used
    t = rng.standard_normal((1, n)).astype(np.float32) * 0.1
    out = transfer_features([t], np.stack([0.5 * t[0], 0.5 * t[0]]), SR)
    np.testing.assert_allclose(_db(out[0, :2, 20:75]), _db(np.log(0.5)), atol=0.5)


def test_short_and_bad_inputs():
    rng = np.random.default_rng(3)
    t = rng.standard_normal((1, 300)).astype(np.float32)
    out = transfer_features([t], np.stack([t[0], t[0]]), SR)  # shorter than one frame
    assert out.shape == (1, 3, N_MELS) and np.isfinite(out).all()
    with pytest.raises(ValueError, match="at least one track"):
        transfer_features([], np.zeros((2, 300), np.float32), SR)
    with pytest.raises(ValueError, match=r"\(2, samples\)"):
        transfer_features([t], t, SR)
    with pytest.raises(ValueError, match="track 0"):
        transfer_features([t[:, :200]], np.zeros((2, 300), np.float32), SR)


def test_non_finite_samples_are_refused(noises):
    mix = np.stack([noises[0][0], noises[0][0]])
    bad = noises[1].copy()
    bad[0, 100] = np.nan
    with pytest.raises(ValueError, match="track 1 has NaN or infinite"):
        transfer_features([noises[0], bad], mix, SR)
    mix[1, 5] = np.inf
    with pytest.raises(ValueError, match="the mix has NaN or infinite"):
        transfer_features(noises[:1], mix, SR)


# -- the reverb channels ---------------------------------------------------------------


def _bursts(rng, n, rate_hz=4.0):
    """Noise in short bursts (a tail shows in the gaps), ``(1, n)`` float32."""
    t = np.arange(n) / SR
    env = (np.sin(2 * np.pi * rate_hz * t + rng.uniform(0, 2 * np.pi)) > 0.6).astype(np.float64)
    return (0.1 * env * rng.standard_normal(n)).astype(np.float32)[None]


def _reverb(x, seconds=0.4, level=0.5, seed=9):
    """A stereo diffuse tail of ``x``: decaying noise impulse responses, one per channel."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    decay = np.exp(-np.arange(n) / (0.12 * SR))
    out = []
    for _ in range(2):
        ir = rng.standard_normal(n) * decay
        ir[: int(0.01 * SR)] = 0.0  # pre-delay
        ir *= level / np.sqrt((ir**2).sum())
        out.append(scipy.signal.fftconvolve(x[0], ir)[: x.shape[-1]])
    return np.stack(out)


def _tail(out, track):
    """Mean of a track's two decay channels over bands with many bins."""
    return out[track, 3:5, 30:75].mean()


def test_reverb_channels_find_the_track_that_went_to_a_reverb():
    rng = np.random.default_rng(4)
    n = 6 * SR
    dry, wet = _bursts(rng, n, 3.0), _bursts(rng, n, 5.0)
    mix = (np.stack([dry[0], dry[0]]) + np.stack([wet[0], wet[0]]) + _reverb(wet)).astype(np.float32)
    out = transfer_features([dry, wet], mix, SR, reverb=True)
    assert out.shape == (2, 6, N_MELS) and out.dtype == np.float32 and np.isfinite(out).all()
    # the first three channels are those of reverb=False
    np.testing.assert_array_equal(out[:, :3], transfer_features([dry, wet], mix, SR))
    assert _tail(out, 1) > _tail(out, 0) + 3.0  # e^3: twenty times the coefficient
    # a louder send reads higher
    louder = (np.stack([dry[0], dry[0]]) + np.stack([wet[0], wet[0]]) + _reverb(wet, level=2.0)).astype(np.float32)
    assert _tail(transfer_features([dry, wet], louder, SR, reverb=True), 1) > _tail(out, 1) + 1.0
    # and with no reverb anywhere, neither track reads one
    plain = (np.stack([dry[0], dry[0]]) + np.stack([wet[0], wet[0]])).astype(np.float32)
    none = transfer_features([dry, wet], plain, SR, reverb=True)
    assert max(_tail(none, 0), _tail(none, 1)) < _tail(out, 1) - 3.0


def test_reverb_channels_on_a_long_song_read_in_blocks():
    rng = np.random.default_rng(5)
    n = (MAX_FRAMES * 3) * (N_FFT // 2)  # three times the frames that are used
    dry, wet = _bursts(rng, n, 3.0), _bursts(rng, n, 5.0)
    mix = (np.stack([dry[0], dry[0]]) + np.stack([wet[0], wet[0]]) + _reverb(wet)).astype(np.float32)
    out = transfer_features([dry, wet], mix, SR, reverb=True)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(_db(out[:, :2, 20:75]), 0.0, atol=1.0)
    assert _tail(out, 1) > _tail(out, 0) + 3.0


def test_reverb_channels_of_a_silent_track_read_the_floor(noises):
    silent = np.zeros_like(noises[0])
    mix = np.stack([noises[0][0], noises[0][0]])
    out = transfer_features([noises[0], silent], mix, SR, reverb=True)
    assert np.isfinite(out).all() and (out[1, 3:] == LOG_COEF_FLOOR).all()
    short = noises[0][:, :300]
    assert transfer_features([short], np.stack([short[0], short[0]]), SR, reverb=True).shape == (1, 6, N_MELS)


def _dynamic_noise(rng, n, lo_db=-45.0, hi_db=-3.0, steps=60):
    """Noise whose level jumps between ``steps`` random levels (dBFS of its mean square)."""
    env = np.repeat(10 ** (rng.uniform(lo_db, hi_db, steps) / 20.0), -(-n // steps))[:n]
    return (rng.standard_normal(n) * env).astype(np.float32)[None]


def _level_curve(out, track, at=6):
    """Level bins the track plays at, in dBFS, and its mean gain change there in dB
    (``at``: the first compressor channel)."""
    occupied = out[track, at + 1] > np.log(5e-3)
    return np.flatnonzero(occupied) + COMP_LEVEL_MIN_DB + 0.5, _db(out[track, at, occupied])


def test_compressor_channels_show_where_a_compressor_pulls_a_track_down():
    import pedalboard

    rng = np.random.default_rng(6)
    n = 8 * SR
    loud, steady = _dynamic_noise(rng, n), (0.05 * rng.standard_normal((1, n))).astype(np.float32)
    comp = pedalboard.Compressor(threshold_db=-20.0, ratio=6.0, attack_ms=2.0, release_ms=40.0)
    squashed = comp(loud, SR)
    mix = np.concatenate([squashed + steady, squashed + steady]).astype(np.float32)
    out = transfer_features([loud, steady], mix, SR, reverb=True, compressor=True)
    assert out.shape == (2, 8, N_MELS) and out.dtype == np.float32 and np.isfinite(out).all()
    # the other channels are those without the compressor ones
    np.testing.assert_array_equal(out[:, :6], transfer_features([loud, steady], mix, SR, reverb=True))
    levels, gain_db = _level_curve(out, 0)
    quiet, hot = gain_db[levels < -30].mean(), gain_db[levels > -8].mean()
    assert quiet - hot > 8.0  # the loudest frames are turned down against the quiet ones
    # the steady track plays at one level: no change there
    _, steady_db = _level_curve(out, 1)
    assert np.abs(steady_db).max() < 1.0
    # without a compressor the curve is flat
    plain = np.concatenate([loud + steady, loud + steady]).astype(np.float32)
    _, flat_db = _level_curve(transfer_features([loud, steady], plain, SR, compressor=True), 0, at=3)
    assert np.abs(flat_db).max() < 1.0


def test_compressor_channels_of_silent_tracks_and_long_songs(noises):
    import pedalboard

    silent = np.zeros_like(noises[0])
    mix = np.stack([noises[0][0], noises[0][0]])
    out = transfer_features([noises[0], silent], mix, SR, compressor=True)
    assert out.shape == (2, 5, N_MELS) and np.isfinite(out).all()
    assert (out[1, 3] == 0.0).all() and (out[1, 4] == LOG_OCC_FLOOR).all()
    rng = np.random.default_rng(7)
    n = (MAX_FRAMES * 3) * (N_FFT // 2)
    loud = _dynamic_noise(rng, n, steps=200)
    comp = pedalboard.Compressor(threshold_db=-20.0, ratio=6.0, attack_ms=2.0, release_ms=40.0)(loud, SR)
    out = transfer_features([loud], np.concatenate([comp, comp]), SR, compressor=True)
    levels, gain_db = _level_curve(out, 0, at=3)
    assert gain_db[levels < -30].mean() - gain_db[levels > -8].mean() > 8.0
