"""Methods on console v2: sum, random, barchiesi-reiss, colonel-reiss and eami+refine take
``console="v2"``; the others refuse it with a message that names the methods that take it."""

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
from mixinvert.models.checkpoint import DEFAULT_MODEL_PATH
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


def test_methods_without_v2_say_which_have_it():
    from mixinvert.methods.base import MethodEntry

    v1_only = MethodEntry("v1-only", lambda song, rng: None, "a method registered without a console option")
    with pytest.raises(InputError, match="console v1 only.*barchiesi-reiss, colonel-reiss, eami, eami\\+refine, "
                                         "random, sum"):
        v1_only.check_options({"console": "v2"})


def test_a_mono_mix_is_fitted_on_v2_with_pan_and_width_left_out(song_v2):
    song, _ = song_v2
    mono = Song("mono", song.track_names, song.tracks, SR, np.vstack([song.mix.mean(axis=0)] * 2), mono_mix=True)
    with pytest.raises(InputError, match=r"mono mix needs console v2 \(--console v2\)"):
        run_method(mono, "sum", rng=np.random.default_rng(0), options={"console": "v1"})
    with pytest.raises(InputError, match=r"mono mix needs console v2 \(--console v2\)"):
        run_method(mono, "eami", rng=np.random.default_rng(0), options={"model": DEFAULT_MODEL_PATH})
    # named no console, a method that has v2 takes it
    assert run_method(mono, "sum", rng=np.random.default_rng(0)).estimate.params.schema is CONSOLE_V2
    for method, options in (("colonel-reiss", {"steps": 20}), ("barchiesi-reiss", {}), ("random", {}),
                            ("eami+refine", {"budget": 8.0}), ("eami", {})):
        r = run_method(mono, method, rng=np.random.default_rng(0), options={"console": "v2", **options})
        params = r.estimate.params
        assert (params.values[:, CONSOLE_V2.index("pan")] == 0.0).all()
        assert (params.values[:, CONSOLE_V2.index("width")] == 0.0).all()
        mix = render_mix(song.tracks, SR, params)
        np.testing.assert_array_equal(mix[0], mix[1])  # the console's output is mono, like the mix


def test_cma_search_on_v2_searches_the_shared_settings_after_the_tracks(song_v2):
    from mixinvert.dsp.excerpts import Excerpt
    from mixinvert.methods.refine.cma_search import CmaConfig, cma_search
    from mixinvert.methods.refine.objective import ExcerptObjective

    song, truth = song_v2
    shared = SHARED.from_dict({**SHARED.neutral(), "master_gain_db": -6.0})  # the mix was made at 0 dB
    free_shared = np.isin(SHARED.names, ["master_gain_db"])
    obj = ExcerptObjective(song.tracks, song.mix, SR, [Excerpt(0, 4410, 40000)], truth, schema=CONSOLE_V2,
                           shared=shared, workers=1)
    ps = SHARED.normalize(shared)
    result = cma_search(obj, CONSOLE_V2.normalize(truth), np.zeros(CONSOLE_V2.size, dtype=bool),
                        CmaConfig(rounds=1, generations=8, sigma=0.2), shared_start=ps, free_shared=free_shared)
    assert [b[1] for b in result.blocks] == [-1]  # no track setting free: the shared block alone
    assert result.loss < 0.5 * result.start_loss
    assert result.shared_p[~free_shared].tolist() == ps[~free_shared].tolist()
    assert SHARED.denormalize(result.shared_p)[SHARED.index("master_gain_db")] > -3.0
    assert obj.loss() == pytest.approx(result.loss)


def test_eami_refine_on_v2_starts_from_the_sum_and_barchiesi_reiss(song_v2, one_torch_thread):
    song, truth = song_v2
    r = run_method(song, "eami+refine", rng=np.random.default_rng(0),
                   options={"console": "v2", "budget": 40.0})
    params, info = r.estimate.params, r.estimate.info
    ix = CONSOLE_V2.index
    assert params.schema is CONSOLE_V2 and params.shared is not None
    assert {"start_loss_sum", "start_loss_barchiesi-reiss"} <= set(info) and info["twin_from"] == "sum"
    assert info["budget"]["work_used"] <= 40.0
    # polarity and offset from the audio, kept; every candidate scored and the best chosen
    assert params.values[0, ix("polarity")] == -1.0
    assert params.values[0, ix("offset_ms")] == pytest.approx(2.0, abs=0.02)
    assert info[f"mrsd_{info['chosen']}"] == min(v for k, v in info.items() if k.startswith("mrsd_"))
    assert mrsd(r.estimate.mix, song.mix) < 0.5 * mrsd(plain_sum(song), song.mix)
    np.testing.assert_allclose(r.estimate.mix, render_mix(song.tracks, SR, params), atol=1e-6)
    details = r.estimate.track_details
    assert details[0]["alignment"]["reliable"] is True
    # every free track setting gets its interval, containing its value
    assert info["uncertainty"] == "measured"
    fader = details[0]["uncertainty"]["fader_db"]
    assert fader["low"] <= params.values[0, ix("fader_db")] <= fader["high"]
    assert "offset_ms" not in details[0]["uncertainty"]  # kept as measured, not fitted
    # the shipped network is console v1's: refused on v2, with the reason
    from mixinvert.models.checkpoint import DEFAULT_MODEL_PATH

    with pytest.raises(InputError, match="network for console v1, not v2"):
        run_method(song, "eami+refine", rng=np.random.default_rng(0),
                   options={"console": "v2", "model": DEFAULT_MODEL_PATH})


def test_the_default_console_is_v2_unless_the_truth_or_the_method_says_otherwise(song_v2):
    from mixinvert.console.schema import CONSOLE_V1
    from mixinvert.methods.registry import get_method
    from mixinvert.methods.run import DEFAULT_CONSOLE, default_console

    song, _ = song_v2
    unknown = Song("real", song.track_names, song.tracks, SR, song.mix)  # no known settings: a real song
    assert DEFAULT_CONSOLE == "v2" and default_console(get_method("sum"), unknown) == "v2"
    assert default_console(get_method("eami"), unknown) == "v2"  # a network ships for each console
    assert default_console(get_method("colonel-reiss"), song) == "v2"  # the truth's console
    # a model file is a network for one console: the shipped one predicts v1's settings
    from mixinvert.models.checkpoint import DEFAULT_MODEL_PATH

    assert default_console(get_method("eami+refine"), unknown, {"model": DEFAULT_MODEL_PATH}) == "v1"
    truth_v1 = MixParams(CONSOLE_V1, song.track_names, sum_values(CONSOLE_V1, song.tracks), SR)
    on_v1 = Song("corpus", song.track_names, song.tracks, SR, song.mix, truth_v1)
    assert run_method(on_v1, "sum", rng=np.random.default_rng(0)).estimate.params.schema is CONSOLE_V1
    assert run_method(unknown, "sum", rng=np.random.default_rng(0)).estimate.params.schema is CONSOLE_V2


def test_eami_refine_network_option_is_for_v2_and_excludes_a_model(song_v2):
    song, _ = song_v2
    with pytest.raises(InputError, match="network=no is for console v2"):
        run_method(song, "eami+refine", rng=np.random.default_rng(0), options={"console": "v1", "network": False})
    with pytest.raises(InputError, match="give one or the other"):
        run_method(song, "eami+refine", rng=np.random.default_rng(0),
                   options={"console": "v2", "network": False, "model": DEFAULT_MODEL_PATH})
    r = run_method(song, "eami+refine", rng=np.random.default_rng(0),
                   options={"console": "v2", "network": False, "budget": 6.0, "steps": 2})
    assert "start_loss_eami" not in r.estimate.info and "start_loss_sum" in r.estimate.info
