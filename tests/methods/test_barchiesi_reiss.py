"""The ``barchiesi-reiss`` method: least-squares filters, direct rendering, console v1 settings."""

from __future__ import annotations

import numpy as np
import pedalboard as pb
import pytest

from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
from mixinvert.data.song import Song, SongError
from mixinvert.methods.barchiesi_reiss import (
    _SQRT_HANN,
    HOP,
    N_FFT,
    console_settings,
    eq_curve_db,
    fit_compressor,
    fit_filters,
    fit_gain_eq,
    render_direct,
)
from mixinvert.methods.baseline import plain_sum
from mixinvert.methods.registry import get_method
from mixinvert.metrics.audio import compare_mixes, mae, mrsd
from tests.conftest import SR, noise_track

I_GAIN, I_PAN = CONSOLE_V1.index("gain_db"), CONSOLE_V1.index("pan")
GRID = np.geomspace(30.0, 18000.0, 96)


def _values(rows: list[dict[str, float]]) -> np.ndarray:
    """Physical values ``(n_tracks, 16)``: neutral settings with ``rows`` applied."""
    return np.stack([CONSOLE_V1.from_dict({**NEUTRAL_V1, **r}) for r in rows])


@pytest.fixture(scope="module")
def linear_song():
    """Noise tracks (mono, stereo, mono) through console v1 with compressor and reverb off."""
    rng = np.random.default_rng(11)
    seconds = 2.0
    tracks = [noise_track(rng, 1, seconds), noise_track(rng, 2, seconds), noise_track(rng, 1, seconds)]
    values = _values([
        {"gain_db": float(rng.uniform(-10, 4)), "pan": float(rng.uniform(-0.8, 0.8)),
         "eq_low_shelf_gain_db": float(rng.uniform(-6, 6)), "eq_peak_gain_db": float(rng.uniform(-6, 6)),
         "eq_peak_cutoff_hz": float(rng.uniform(300, 3000)), "eq_peak_q": 1.0,
         "eq_high_shelf_gain_db": float(rng.uniform(-6, 6))}
        for _ in tracks
    ])
    assert (values[:, CONSOLE_V1.index("comp_ratio")] == 1.0).all()
    assert (values[:, CONSOLE_V1.index("reverb_wet")] == 0.0).all()
    mix = Console(tracks, SR).render(values)
    return Song("linear", ("a.wav", "b.wav", "c.wav"), tracks, SR, mix), values


def test_filters_reproduce_a_linear_mix(linear_song):
    song, _ = linear_song
    fit = fit_filters(song.tracks, song.mix)
    assert fit.filters.shape == (3, 2, N_FFT // 2 + 1) and fit.gains.shape[0] == 3
    # no compression in the mix: the gain envelopes stay at 1 where the tracks are loud
    np.testing.assert_allclose(np.median(fit.gains, axis=1), 1.0, atol=0.02)
    direct = render_direct(song.tracks, fit, song.num_samples)
    assert direct.shape == song.mix.shape and direct.dtype == np.float32
    d_direct, d_sum = mrsd(direct, song.mix), mrsd(plain_sum(song), song.mix)
    assert d_direct < 0.05 * d_sum and d_direct < 0.1, (d_direct, d_sum)
    assert mae(direct, song.mix) < 0.01 * float(np.abs(song.mix).sum(axis=0).mean())


def test_filters_alone_are_the_linear_bound(linear_song):
    # without gain envelopes: every gain is 1 and the filters alone reproduce a linear mix
    song, _ = linear_song
    fit = fit_filters(song.tracks, song.mix, gain_envelopes=False)
    assert (fit.gains == 1.0).all()
    direct = render_direct(song.tracks, fit, song.num_samples)
    assert mrsd(direct, song.mix) < 0.05 * mrsd(plain_sum(song), song.mix)


def test_console_settings_recover_gain_pan_and_eq(linear_song):
    song, truth = linear_song
    fit = fit_filters(song.tracks, song.mix)
    values = console_settings(song, fit)
    CONSOLE_V1.validate(values)
    np.testing.assert_allclose(values[:, I_GAIN], truth[:, I_GAIN], atol=1.5)
    np.testing.assert_allclose(values[:, I_PAN], truth[:, I_PAN], atol=0.1)
    # the fitted gain + EQ curve matches the true one where noise has energy
    for est, true in zip(values, truth):
        got = eq_curve_db(CONSOLE_V1.to_dict(est), GRID, SR)
        want = eq_curve_db(CONSOLE_V1.to_dict(true), GRID, SR)
        assert np.max(np.abs(got - want)) < 1.0
    # no compression and no reverb where the mix has none
    assert (values[:, CONSOLE_V1.index("comp_ratio")] == 1.0).all()
    assert (values[:, CONSOLE_V1.index("reverb_wet")] == 0.0).all()
    # so the console rendering of those settings is close to the mix as well
    assert mrsd(Console(song.tracks, SR).render(values), song.mix) < 0.2


def test_eq_curve_is_pedalboards_response():
    v = {"gain_db": -4.0, "eq_low_shelf_cutoff_hz": 150.0, "eq_low_shelf_gain_db": 5.0,
         "eq_peak_cutoff_hz": 1200.0, "eq_peak_gain_db": -6.0, "eq_peak_q": 1.5,
         "eq_high_shelf_cutoff_hz": 6000.0, "eq_high_shelf_gain_db": 4.0}
    board = pb.Pedalboard([
        pb.Gain(v["gain_db"]),
        pb.LowShelfFilter(v["eq_low_shelf_cutoff_hz"], v["eq_low_shelf_gain_db"], 0.7071),
        pb.PeakFilter(v["eq_peak_cutoff_hz"], v["eq_peak_gain_db"], v["eq_peak_q"]),
        pb.HighShelfFilter(v["eq_high_shelf_cutoff_hz"], v["eq_high_shelf_gain_db"], 0.7071),
    ])
    impulse = np.zeros((1, 1 << 16), dtype=np.float32)
    impulse[0, 0] = 1.0
    h = board(impulse, SR, reset=True)[0]
    measured = np.interp(GRID, np.fft.rfftfreq(h.size, 1.0 / SR), 20 * np.log10(np.abs(np.fft.rfft(h))))
    np.testing.assert_allclose(eq_curve_db(v, GRID, SR), measured, atol=0.05)


@pytest.mark.parametrize("truth", [
    {"gain_db": -4.0, "eq_low_shelf_cutoff_hz": 150.0, "eq_low_shelf_gain_db": 5.0, "eq_peak_cutoff_hz": 1200.0,
     "eq_peak_gain_db": -6.0, "eq_peak_q": 1.5, "eq_high_shelf_cutoff_hz": 6000.0, "eq_high_shelf_gain_db": 4.0},
    {"gain_db": 6.0, "eq_low_shelf_cutoff_hz": 60.0, "eq_low_shelf_gain_db": -8.0, "eq_peak_cutoff_hz": 4000.0,
     "eq_peak_gain_db": 9.0, "eq_peak_q": 3.0, "eq_high_shelf_cutoff_hz": 2500.0, "eq_high_shelf_gain_db": -5.0},
])
def test_fit_gain_eq_recovers_a_curve_of_its_own_family(truth):
    target = eq_curve_db(truth, GRID, SR)
    got = fit_gain_eq(target, np.ones_like(GRID), GRID, SR)
    assert set(got) == set(truth)
    for name, value in got.items():
        spec = CONSOLE_V1.spec(name)
        assert spec.lo <= value <= spec.hi, name
    assert np.max(np.abs(eq_curve_db(got, GRID, SR) - target)) < 0.5
    assert got["gain_db"] == pytest.approx(truth["gain_db"], abs=0.5)


def test_fit_gain_eq_follows_the_weights():
    # where the weight is zero the target is ignored: a wild curve up there changes nothing
    truth = {**{k: NEUTRAL_V1[k] for k in NEUTRAL_V1 if k.startswith(("gain", "eq_"))}, "gain_db": -2.0,
             "eq_low_shelf_gain_db": 4.0}
    target = eq_curve_db(truth, GRID, SR)
    weights = (GRID < 1000.0).astype(float)
    target[GRID >= 1000.0] += 30.0
    got = fit_gain_eq(target, weights, GRID, SR)
    low = GRID < 1000.0
    assert np.max(np.abs(eq_curve_db(got, GRID, SR)[low] - target[low])) < 0.5


def _frame_reduction_db(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per STFT frame of the method (same framing as fit_filters): gain reduction of
    ``y`` against ``x`` in dB (<= 0), and which frames are loud."""
    n = x.shape[-1]
    frames = (n + N_FFT) // HOP + 1
    total = (frames - 1) * HOP + N_FFT
    idx = np.arange(frames)[:, None] * HOP + np.arange(N_FFT)[None, :]
    window = _SQRT_HANN ** 2

    def energy(s: np.ndarray) -> np.ndarray:
        padded = np.pad(s[0].astype(np.float64), (N_FFT, total - n - N_FFT))
        return (padded[idx] ** 2 * window).sum(axis=1)

    ex, ey = energy(x), energy(y)
    loud = ex > ex.max() * 1e-4
    reduction = np.where(loud, 10 * np.log10(np.clip(ey / np.maximum(ex, 1e-30), 1e-8, 1.0)), 0.0)
    return reduction, loud


@pytest.fixture(scope="module")
def stepped_noise():
    """2 s of noise whose level jumps every 0.25 s between -36 and -3 dBFS."""
    rng = np.random.default_rng(3)
    n, seg = int(2.0 * SR), int(0.25 * SR)
    levels_db = np.repeat(rng.uniform(-36, -3, size=n // seg + 1), seg)[:n]
    return (rng.standard_normal(n) * 10 ** (levels_db / 20)).astype(np.float32)[None]


@pytest.mark.parametrize("threshold_db, ratio", [(-20.0, 8.0), (-12.0, 8.0), (-30.0, 2.0)])
def test_fit_compressor_recovers_threshold_and_ratio(stepped_noise, threshold_db, ratio):
    x = stepped_noise
    y = pb.Compressor(threshold_db=threshold_db, ratio=ratio, attack_ms=5.0, release_ms=50.0)(x, SR, reset=True)
    reduction, loud = _frame_reduction_db(x, y)
    assert reduction.min() < -3.0  # the compressor did work on this signal
    got = fit_compressor(x, reduction, loud, SR)
    assert got["comp_threshold_db"] == pytest.approx(threshold_db, abs=6.0)
    if ratio >= 8:
        assert got["comp_ratio"] > 4.0
    else:
        assert got["comp_ratio"] == pytest.approx(ratio, rel=0.3)
    for name, value in got.items():
        spec = CONSOLE_V1.spec(name)
        assert spec.lo <= value <= spec.hi, name


def test_fit_compressor_without_reduction_or_loud_frames(stepped_noise):
    x = stepped_noise
    reduction, loud = _frame_reduction_db(x, x)
    assert fit_compressor(x, reduction, loud, SR)["comp_ratio"] == pytest.approx(1.0, abs=0.05)
    off = fit_compressor(x, reduction, np.zeros_like(loud), SR)
    assert off == {"comp_threshold_db": 0.0, "comp_ratio": 1.0, "comp_attack_ms": 10.0, "comp_release_ms": 100.0}


def test_registered_method(linear_song, rng):
    song, _ = linear_song
    entry = get_method("barchiesi-reiss")
    assert entry.needs_mix and entry.options == ("console",)
    est = entry.fn(song, rng=rng)
    CONSOLE_V1.validate(est.params.values)
    assert est.params.values.shape == (3, CONSOLE_V1.size)
    assert est.params.track_names == song.track_names and est.params.sample_rate == SR
    assert est.mix.shape == (2, song.num_samples)
    assert est.info["mix_source"] == "direct FIR rendering" and est.info["seconds"] > 0
    assert set(est.extra_mixes) == {"console"}
    np.testing.assert_allclose(est.extra_mixes["console"], Console(song.tracks, SR).render(est.params.values),
                               atol=1e-6)
    # the direct rendering is the fitted filters' mix, not the console's
    fit = fit_filters(song.tracks, song.mix)
    np.testing.assert_allclose(est.mix, render_direct(song.tracks, fit, song.num_samples), atol=1e-6)
    assert compare_mixes(est.mix, song.mix, SR).mrsd < compare_mixes(plain_sum(song), song.mix, SR).mrsd


def test_needs_a_mix(linear_song, rng):
    song, _ = linear_song
    with pytest.raises(SongError, match="reference mix"):
        get_method("barchiesi-reiss").fn(Song("nomix", song.track_names, song.tracks, SR), rng=rng)


def test_silent_track(rng):
    a, b = noise_track(rng, 1, 1.0), noise_track(rng, 2, 1.0)
    silent = np.zeros_like(a)
    values = _values([{"gain_db": -3.0, "pan": -0.5}, {"gain_db": 2.0, "pan": 0.3}, {}])
    mix = Console([a, b, silent], SR).render(values)
    song = Song("s", ("a.wav", "b.wav", "silent.wav"), [a, b, silent], SR, mix)
    assert song.silent_tracks == ("silent.wav",)
    est = get_method("barchiesi-reiss").fn(song, rng=rng)
    CONSOLE_V1.validate(est.params.values)
    assert np.isfinite(est.mix).all() and np.isfinite(est.extra_mixes["console"]).all()
    np.testing.assert_allclose(est.params.values[:2, I_GAIN], [-3.0, 2.0], atol=1.5)
    np.testing.assert_allclose(est.params.values[:2, I_PAN], [-0.5, 0.3], atol=0.1)
    assert mrsd(est.mix, mix) < 0.1


def test_stereo_track_silent_on_the_left(rng):
    a, b = noise_track(rng, 1, 1.0), noise_track(rng, 2, 1.0)
    b[0] = 0.0  # e.g. a stereo recording with the source hard right
    values = _values([{"gain_db": -3.0, "pan": -0.5}, {"gain_db": 2.0, "pan": 0.3}])
    mix = Console([a, b], SR).render(values)
    song = Song("s", ("a.wav", "b.wav"), [a, b], SR, mix)
    est = get_method("barchiesi-reiss").fn(song, rng=rng)
    assert mrsd(est.mix, mix) < 0.1  # the filters themselves are fine
    assert est.params.values[1, I_GAIN] == pytest.approx(2.0, abs=1.5)  # got -24 dB (the bottom of the range)
