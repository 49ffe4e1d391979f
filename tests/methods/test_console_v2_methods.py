"""Methods on console v2: sum, random and barchiesi-reiss take ``console="v2"``; the others
refuse it with a message that names the methods that take it."""

import numpy as np
import pytest

from mixinvert.console.mixing import render_mix, sum_values
from mixinvert.console.params_io import MixParams
from mixinvert.console.schema import CONSOLE_V2
from mixinvert.data.song import Song
from mixinvert.errors import InputError
from mixinvert.methods.baseline import plain_sum
from mixinvert.methods.run import run_method
from mixinvert.metrics.audio import mrsd
from tests.conftest import SR, noise_track

SHARED = CONSOLE_V2.shared


@pytest.fixture(scope="module")
def song_v2():
    """Three noise tracks mixed by console v2: one track 2 ms late and inverted, EQ and pan."""
    rng = np.random.default_rng(3)
    tracks = [noise_track(rng, 1, 3.0) for _ in range(3)]
    values = sum_values(CONSOLE_V2, tracks)
    ix = CONSOLE_V2.index
    values[0, ix("offset_ms")], values[0, ix("polarity")] = 2.0, -1.0
    values[1, ix("eq_bell2_gain_db")], values[1, ix("pan")] = 6.0, -0.5
    values[2, ix("hpf_cutoff_hz")], values[2, ix("fader_db")], values[2, ix("pan")] = 300.0, -3.0, 0.6
    params = MixParams(CONSOLE_V2, ("a.wav", "b.wav", "c.wav"), values, SR)
    return Song("v2", params.track_names, tracks, SR, render_mix(tracks, SR, params), params), values


def test_sum_on_v2_is_the_plain_sum(song_v2):
    song, _ = song_v2
    r = run_method(song, "sum", rng=np.random.default_rng(0), options={"console": "v2"})
    assert r.estimate.params.schema is CONSOLE_V2 and r.estimate.params.shared is not None
    np.testing.assert_allclose(r.estimate.mix, plain_sum(song), atol=1e-5)


def test_random_on_v2_draws_every_setting(song_v2):
    song, _ = song_v2
    a = run_method(song, "random", rng=np.random.default_rng(0), options={"console": "v2"}).estimate.params
    b = run_method(song, "random", rng=np.random.default_rng(1), options={"console": "v2"}).estimate.params
    assert not np.array_equal(a.shared, b.shared) and not np.array_equal(a.values, b.values)
    SHARED.validate(a.shared)


def test_barchiesi_reiss_on_v2_recovers_offset_polarity_and_tone(song_v2):
    song, truth = song_v2
    r = run_method(song, "barchiesi-reiss", rng=np.random.default_rng(0), options={"console": "v2"})
    values = r.estimate.params.values
    ix = CONSOLE_V2.index
    assert values[0, ix("polarity")] == -1.0
    assert values[0, ix("offset_ms")] == pytest.approx(2.0, abs=0.02)
    np.testing.assert_allclose(values[:, ix("pan")], truth[:, ix("pan")], atol=0.1)
    console_mix = r.estimate.extra_mixes["console"]
    assert mrsd(console_mix, song.mix) < 0.3 * mrsd(plain_sum(song), song.mix)


def test_colonel_reiss_on_v2_fits_the_twin(song_v2):
    song, truth = song_v2
    r = run_method(song, "colonel-reiss", rng=np.random.default_rng(0), options={"console": "v2", "steps": 40})
    params = r.estimate.params
    ix = CONSOLE_V2.index
    # polarity and offset come from the audio and are kept; the fit brings the mix closer
    assert params.values[0, ix("polarity")] == -1.0
    assert params.values[0, ix("offset_ms")] == pytest.approx(2.0, abs=0.02)
    assert r.estimate.info["stopped"] in ("steps", "plateau") and r.estimate.info["fit_loss"] < r.estimate.info[
        "fit_loss_start"]
    assert mrsd(r.estimate.mix, song.mix) < 0.5 * mrsd(plain_sum(song), song.mix)  # like with like: both as rendered
    assert params.track_extra[0]["alignment"]["reliable"] is True
    # the limiter stays off and drive too (the twin has no limiter; drive is not fitted by default)
    assert params.shared[SHARED.index("master_limiter_ceiling_db")] == 0.0
    assert (params.values[:, ix("drive_db")] == 0.0).all()


def test_methods_without_v2_say_which_have_it(song_v2):
    song, _ = song_v2
    with pytest.raises(InputError, match="console v1 only.*barchiesi-reiss, colonel-reiss, random, sum"):
        run_method(song, "eami", rng=np.random.default_rng(0), options={"console": "v2"})


def test_a_mono_mix_is_fitted_on_v2_with_pan_and_width_left_out(song_v2):
    song, _ = song_v2
    mono = Song("mono", song.track_names, song.tracks, SR, np.vstack([song.mix.mean(axis=0)] * 2), mono_mix=True)
    with pytest.raises(InputError, match="mono mix needs console v2"):
        run_method(mono, "sum", rng=np.random.default_rng(0))
    for method, options in (("colonel-reiss", {"steps": 20}), ("barchiesi-reiss", {}), ("random", {})):
        r = run_method(mono, method, rng=np.random.default_rng(0), options={"console": "v2", **options})
        params = r.estimate.params
        assert (params.values[:, CONSOLE_V2.index("pan")] == 0.0).all()
        assert (params.values[:, CONSOLE_V2.index("width")] == 0.0).all()
        mix = render_mix(song.tracks, SR, params)
        np.testing.assert_array_equal(mix[0], mix[1])  # the console's output is mono, like the mix
