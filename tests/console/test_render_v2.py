import json

import numpy as np
import pedalboard as pb
import pytest

from mixinvert.console.mixing import render_mix, solos, sum_values
from mixinvert.console.params_io import MixParams, ParamsFileError, read_params, write_params
from mixinvert.console.render_v2 import ConsoleV2, render_strip, shift
from mixinvert.console.schema import CONSOLE_V1, CONSOLE_V2, ParamRangeError
from tests.conftest import SR, noise_track

SHARED = CONSOLE_V2.shared


@pytest.fixture
def tracks(rng):
    return [noise_track(rng, 1, 1.0), noise_track(rng, 2, 1.0), noise_track(rng, 1, 1.0)]


def _neutral_shared(**changes) -> np.ndarray:
    return SHARED.from_dict({**SHARED.neutral(), **changes})


def _values(tracks, **changes) -> np.ndarray:
    values = sum_values(CONSOLE_V2, tracks)
    for name, value in changes.items():
        values[:, CONSOLE_V2.index(name)] = value
    return values


def test_neutral_settings_are_a_plain_sum(tracks):
    mix = ConsoleV2(tracks, SR).render(sum_values(CONSOLE_V2, tracks), _neutral_shared())
    np.testing.assert_allclose(mix, sum(tracks), atol=1e-6)


def test_schema_is_data_with_sections():
    assert CONSOLE_V2.shared_size == len(SHARED.specs) > 0
    assert {s.section for s in SHARED.specs} == {"buses.reverb", "master"}
    assert all(s.neutral is not None for s in CONSOLE_V2.specs + SHARED.specs)
    # the bells keep their order: each one's range starts above the previous one's
    bells = [CONSOLE_V2.spec(n) for n in CONSOLE_V2.names if n.startswith("eq_bell") and n.endswith("_cutoff_hz")]
    assert len(bells) >= 3 and all(a.lo < b.lo and a.hi < b.hi for a, b in zip(bells, bells[1:]))


def test_polarity_is_discrete():
    p = np.zeros(CONSOLE_V2.size)
    i = CONSOLE_V2.index("polarity")
    for raw, want in ((-0.2, -1.0), (0.0, 1.0), (0.3, 1.0)):
        p[i] = raw
        assert CONSOLE_V2.denormalize(p)[i] == want
    row = CONSOLE_V2.neutral()
    row["polarity"] = 0.5
    with pytest.raises(ParamRangeError, match="polarity.*one of"):
        CONSOLE_V2.from_dict(row)


def test_polarity_and_fader(tracks):
    console = ConsoleV2(tracks[:1], SR)
    base = console.render(_values(tracks[:1]), _neutral_shared())
    flipped = console.render(_values(tracks[:1], polarity=-1.0, fader_db=3.0103 + 6.0), _neutral_shared())
    np.testing.assert_allclose(flipped, -base * 10 ** (6 / 20), atol=1e-5)


@pytest.mark.parametrize("samples", [12.0, -45.0, 7.5])
def test_shift_is_a_band_limited_delay(rng, samples):
    n = 8192
    spectrum = np.fft.rfft(rng.standard_normal(n)) * (np.fft.rfftfreq(n) < 0.3)  # band-limited noise
    x = np.fft.irfft(spectrum, n)[None].astype(np.float32)
    y = shift(x, samples)
    assert y.shape == x.shape and y.dtype == np.float32
    want = np.fft.irfft(spectrum * np.exp(-2j * np.pi * np.fft.rfftfreq(n) * samples), n)
    inner = slice(200, n - 200)  # away from the ends, where the shift loses or adds samples
    np.testing.assert_allclose(y[0, inner], want[inner], atol=2e-3 * np.abs(want).max())
    if float(samples).is_integer():
        k = int(samples)
        ref = np.roll(x[0], k)
        np.testing.assert_allclose(y[0, inner], ref[inner], atol=1e-5)
        assert np.abs(y[0, :k] if k > 0 else y[0, k:]).max() < 1e-3  # silence, not wrapped audio


def test_off_settings_bypass_their_processors(tracks):
    x = tracks[0]
    values = _values([x])[0]
    stereo, send = render_strip(x, SR, values)
    assert send is None  # the send at the bottom of its range is off
    # the high-pass just above its off end is a filter (two first-order sections)
    values_hpf = values.copy()
    values_hpf[CONSOLE_V2.index("hpf_cutoff_hz")] = 200.0
    filtered, _ = render_strip(x, SR, values_hpf)
    want = pb.Pedalboard([pb.HighpassFilter(200.0), pb.HighpassFilter(200.0), pb.Gain(3.0103)])(x, SR)
    np.testing.assert_allclose(filtered[0], want[0] * np.cos(np.pi / 4), atol=1e-4)


def test_reverb_bus_and_master_chain(tracks):
    console = ConsoleV2(tracks, SR)
    values = _values(tracks, reverb_send_db=-6.0)
    dry = console.render(_values(tracks), _neutral_shared())
    wet = console.render(values, _neutral_shared())
    muted = console.render(values, _neutral_shared(reverb_return_db=-40.0))
    assert np.abs(wet - dry).max() > 1e-2  # the bus adds its return
    assert np.abs(muted - dry).max() < np.abs(wet - dry).max() / 10
    limited = console.render(_values(tracks), _neutral_shared(master_limiter_ceiling_db=-12.0))
    assert np.abs(limited).max() <= 10 ** (-12 / 20) * 1.01 < np.abs(dry).max()
    louder = console.render(_values(tracks), _neutral_shared(master_gain_db=6.0))
    np.testing.assert_allclose(louder, dry * 10 ** (6 / 20), rtol=1e-5, atol=1e-6)


def test_render_is_the_same_on_any_number_of_threads(tracks, rng):
    values = CONSOLE_V2.denormalize(rng.uniform(-0.8, 0.8, (len(tracks), CONSOLE_V2.size)))
    shared = SHARED.denormalize(rng.uniform(-0.8, 0.8, SHARED.size))
    one = ConsoleV2(tracks, SR, workers=1).render(values, shared)
    two = ConsoleV2(tracks, SR, workers=3).render(values, shared)
    assert np.array_equal(one, two) and np.isfinite(one).all()


def test_solos_are_each_track_alone(tracks):
    params = MixParams(CONSOLE_V2, ("a", "b", "c"), _values(tracks), SR)
    alone = solos(tracks, SR, params)
    assert alone.shape == (3, 2, tracks[0].shape[1])
    np.testing.assert_allclose(alone[1], tracks[1], atol=1e-6)
    np.testing.assert_allclose(alone.sum(axis=0), render_mix(tracks, SR, params), atol=1e-5)


def test_params_json_v2_round_trip(tmp_path, tracks, rng):
    values = CONSOLE_V2.denormalize(rng.uniform(-1, 1, (3, CONSOLE_V2.size)))
    shared = SHARED.denormalize(rng.uniform(-1, 1, SHARED.size))
    params = MixParams(CONSOLE_V2, ("a", "b", "c"), values, SR, shared=shared)
    write_params(tmp_path / "p.json", params)
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["console"] == "v2" and "reverb_room_size" in doc["buses"]["reverb"]
    assert "master_gain_db" in doc["master"] and "master" not in doc["tracks"][0]
    back = read_params(tmp_path / "p.json")
    np.testing.assert_array_equal(back.values, params.values)
    np.testing.assert_array_equal(back.shared, params.shared)
    assert back.extra == {}
    np.testing.assert_array_equal(render_mix(tracks, SR, back), render_mix(tracks, SR, params))


def test_params_json_v2_needs_its_sections(tmp_path, tracks):
    params = MixParams(CONSOLE_V2, ("a", "b", "c"), _values(tracks), SR)
    doc = params.to_json()
    del doc["master"]["master_gain_db"]
    (tmp_path / "p.json").write_text(json.dumps(doc))
    with pytest.raises(ParamsFileError, match='needs "master_gain_db" in "master"'):
        read_params(tmp_path / "p.json")
    doc = params.to_json()
    doc["buses"]["reverb"]["reverb_width"] = 3.0
    (tmp_path / "p.json").write_text(json.dumps(doc))
    with pytest.raises(ParamsFileError, match="reverb_width"):
        read_params(tmp_path / "p.json")


def test_v1_params_have_no_shared_settings(tracks):
    params = MixParams(CONSOLE_V1, ("a", "b", "c"), sum_values(CONSOLE_V1, tracks), SR)
    assert params.shared is None and "master" not in params.to_json()
    np.testing.assert_allclose(render_mix(tracks, SR, params), sum(tracks), atol=1e-5)
