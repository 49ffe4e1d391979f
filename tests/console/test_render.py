import json
import math

import numpy as np
import pedalboard as pb
import pytest

from mixinvert.console.params_io import read_params
from mixinvert.console.render import Console, render_track
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
from tests.conftest import SR, noise_track

S = CONSOLE_V1


def reference_render(x: np.ndarray, v: dict) -> np.ndarray:
    """An independent rendering: each pedalboard plugin called on its own, in order."""
    y = x.astype(np.float32)
    for plugin in [
        pb.Gain(gain_db=v["gain_db"]),
        pb.LowShelfFilter(cutoff_frequency_hz=v["eq_low_shelf_cutoff_hz"], gain_db=v["eq_low_shelf_gain_db"], q=0.7071),
        pb.PeakFilter(cutoff_frequency_hz=v["eq_peak_cutoff_hz"], gain_db=v["eq_peak_gain_db"], q=v["eq_peak_q"]),
        pb.HighShelfFilter(cutoff_frequency_hz=v["eq_high_shelf_cutoff_hz"], gain_db=v["eq_high_shelf_gain_db"], q=0.7071),
        pb.Compressor(threshold_db=v["comp_threshold_db"], ratio=v["comp_ratio"],
                      attack_ms=v["comp_attack_ms"], release_ms=v["comp_release_ms"]),
    ]:
        y = plugin(y, SR)
    theta = (v["pan"] + 1) * math.pi / 4
    if y.shape[0] == 1:
        y = np.concatenate([math.cos(theta) * y, math.sin(theta) * y])
    else:
        y = np.stack([math.sqrt(2) * math.cos(theta) * y[0], math.sqrt(2) * math.sin(theta) * y[1]])
    reverb = pb.Reverb(room_size=v["reverb_room_size"], damping=v["reverb_damping"],
                       wet_level=v["reverb_wet"], dry_level=1 - v["reverb_wet"], width=1.0)
    return reverb(y.astype(np.float32), SR)


def test_params_json_render_matches_per_plugin_pedalboard(tmp_path, rng):
    tracks = [noise_track(rng, 1, 1.0), noise_track(rng, 2, 1.0), noise_track(rng, 1, 1.0)]
    names = ["a.wav", "b.wav", "c.wav"]
    p = rng.uniform(-1, 1, size=(3, 16))
    p[2, S.index("reverb_wet")] = -1.0  # one fully dry track exercises the dry shortcut
    values = S.denormalize(p)
    doc = {"sample_rate": SR, "console": "v1",
           "tracks": [{"name": n, **S.to_dict(v)} for n, v in zip(names, values)]}
    (tmp_path / "params.json").write_text(json.dumps(doc))
    params = read_params(tmp_path / "params.json")
    mix = Console(tracks, SR).render(params.values)
    expected = sum(reference_render(x, S.to_dict(v)) for x, v in zip(tracks, params.values))
    assert mix.dtype == np.float32 and mix.shape == (2, SR)
    np.testing.assert_allclose(mix, expected, atol=2e-6, rtol=0)
    assert np.abs(mix).max() > 1e-2  # not trivially zero


def test_dry_reverb_shortcut_is_bit_exact(rng):
    x = noise_track(rng, 2, 0.5)
    dry = pb.Reverb(room_size=0.9, damping=0.1, wet_level=0.0, dry_level=1.0, width=1.0)(x, SR)
    np.testing.assert_array_equal(dry, 2.0 * x)


def test_neutral_mono_is_pan_law_times_two(rng):
    x = noise_track(rng, 1, 0.5)
    y = render_track(x, SR, S.from_dict(NEUTRAL_V1))
    np.testing.assert_allclose(y, np.concatenate([x, x]) * math.sqrt(0.5) * 2, atol=1e-6)


def test_hard_left_silences_right(rng):
    x = noise_track(rng, 1, 0.5)
    y = render_track(x, SR, S.from_dict({**NEUTRAL_V1, "pan": -1.0}))
    assert np.abs(y[1]).max() < 1e-7
    assert np.abs(y[0]).max() > 0.1


def test_stereo_pan_scales_each_channel(rng):
    x = noise_track(rng, 2, 0.5)
    y = render_track(x, SR, S.from_dict({**NEUTRAL_V1, "pan": 0.5}))
    theta = 1.5 * math.pi / 4
    np.testing.assert_allclose(y[0], 2 * math.sqrt(2) * math.cos(theta) * x[0], atol=1e-6)
    np.testing.assert_allclose(y[1], 2 * math.sqrt(2) * math.sin(theta) * x[1], atol=1e-6)


def test_low_shelf_gives_its_gain_far_below_cutoff():
    t = np.arange(SR) / SR
    x = (0.1 * np.sin(2 * np.pi * 25.0 * t)).astype(np.float32)[None]
    y = render_track(x, SR, S.from_dict({**NEUTRAL_V1, "eq_low_shelf_cutoff_hz": 500.0, "eq_low_shelf_gain_db": 12.0}))
    ref = render_track(x, SR, S.from_dict(NEUTRAL_V1))
    gain_db = 20 * np.log10(np.std(y[0, SR // 2:]) / np.std(ref[0, SR // 2:]))
    assert gain_db == pytest.approx(12.0, abs=0.5)


def test_gain_is_exact_db(rng):
    x = noise_track(rng, 1, 0.5)
    y = render_track(x, SR, S.from_dict({**NEUTRAL_V1, "gain_db": -12.0}))
    ref = render_track(x, SR, S.from_dict(NEUTRAL_V1))
    np.testing.assert_allclose(y, ref * 10 ** (-12 / 20), rtol=1e-5, atol=1e-7)


def test_compressor_reduces_loud_signal(rng):
    x = noise_track(rng, 1, 1.0, level=0.5)
    base = {**NEUTRAL_V1, "comp_attack_ms": 1.0}
    y = render_track(x, SR, S.from_dict({**base, "comp_threshold_db": -30.0, "comp_ratio": 10.0}))
    ref = render_track(x, SR, S.from_dict(base))
    assert np.std(y) < 0.5 * np.std(ref)


def test_reset_every_render_and_length(rng):
    x = noise_track(rng, 1, 0.7)
    v = S.denormalize(rng.uniform(-1, 1, 16))
    a = render_track(x, SR, v)
    b = render_track(x, SR, v)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, x.shape[1])


def test_render_many_matches_render_in_order(rng):
    tracks = [noise_track(rng, 1, 0.5), noise_track(rng, 2, 0.5)]
    console = Console(tracks, SR, workers=2)
    batch = S.denormalize(rng.uniform(-1, 1, size=(5, 2, 16)))
    seen = []
    many = console.render_many(batch, progress=seen.append)
    assert many.shape == (5, 2, tracks[0].shape[1]) and len(seen) == 5
    for b in range(5):
        np.testing.assert_array_equal(many[b], console.render(batch[b]))
    np.testing.assert_array_equal(console.render_many(batch, workers=1), many)


def test_contributions_sum_to_mix(rng):
    tracks = [noise_track(rng, 1, 0.5), noise_track(rng, 1, 0.5)]
    console = Console(tracks, SR)
    v = S.denormalize(rng.uniform(-1, 1, size=(2, 16)))
    np.testing.assert_allclose(console.contributions(v).sum(axis=0), console.render(v), atol=1e-6)


def test_console_rejects_bad_shapes(rng):
    with pytest.raises(ValueError, match="one length"):
        Console([noise_track(rng, 1, 0.5), noise_track(rng, 1, 0.6)], SR)
    with pytest.raises(ValueError, match="mono or stereo|1 or 2"):
        Console([np.zeros((3, 100), np.float32)], SR)
    console = Console([noise_track(rng, 1, 0.5)], SR)
    with pytest.raises(ValueError, match=r"\(1, 16\)"):
        console.render(np.zeros((2, 16)))
    v = S.from_dict(NEUTRAL_V1)[None].copy()
    v[0, S.index("comp_ratio")] = 30.0
    with pytest.raises(ValueError, match="comp_ratio"):
        console.render(v)


def test_threaded_render_is_bit_identical_to_one_thread(rng):
    from mixinvert.console.render import Console
    from mixinvert.console.schema import CONSOLE_V1
    from tests.conftest import SR, noise_track

    tracks = [noise_track(rng, 1 + (i % 2), 0.3) for i in range(5)]
    values = CONSOLE_V1.denormalize(rng.uniform(-0.8, 0.8, size=(5, CONSOLE_V1.size)))
    console = Console(tracks, SR)
    one = console.render(values, workers=1)
    for workers in (2, 3, 8):
        np.testing.assert_array_equal(console.render(values, workers=workers), one)
    batch = np.stack([values, values[::-1]])
    many = console.render_many(batch, workers=2)
    np.testing.assert_array_equal(many[0], one)
    np.testing.assert_array_equal(console.render_many(batch[:1], workers=2)[0], one)


def test_block_render_is_bit_identical_to_whole_tracks(rng, monkeypatch):
    """Long songs render in blocks (bounded memory); processor state carries across them."""
    import mixinvert.console.render as render

    tracks = [noise_track(rng, 1 + (i % 2), 0.5) for i in range(4)]
    values = S.denormalize(rng.uniform(-0.9, 0.9, size=(4, S.size)))
    values[:, S.index("reverb_wet")] = [0.0, 0.2, 0.5, 0.9]  # the dry shortcut and the reverb's tail
    values[:, S.index("comp_threshold_db")] = -30.0  # the compressor acts, its envelope spans blocks
    whole = np.zeros((2, tracks[0].shape[1]), np.float32)
    for x, v in zip(tracks, values):
        whole += render_track(x, SR, v)
    monkeypatch.setattr(render, "RENDER_BLOCK", 1000)  # 0.5 s at 44.1 kHz: 23 blocks, the last short
    console = Console(tracks, SR)
    np.testing.assert_array_equal(console.render(values, workers=1), whole)
    np.testing.assert_array_equal(console.render(values, workers=3), whole)
