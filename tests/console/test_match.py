import numpy as np
import pytest

from mixinvert.console.match import match_gain_wet
from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
from tests.conftest import SR, noise_track

S = CONSOLE_V1
GAIN, THRESHOLD, WET = S.index("gain_db"), S.index("comp_threshold_db"), S.index("reverb_wet")
LEVEL_SETTINGS = [GAIN, THRESHOLD, WET]


def settings(**changes) -> np.ndarray:
    return S.from_dict({**NEUTRAL_V1, **changes})


@pytest.fixture
def song(rng):
    tracks = [noise_track(rng, 1, 1.0), noise_track(rng, 2, 1.0), noise_track(rng, 1, 1.0)]
    truth = np.stack([
        settings(gain_db=-3.0, comp_threshold_db=-24.0, comp_ratio=4.0, pan=-0.5, reverb_wet=0.3,
                 reverb_room_size=0.7),
        settings(gain_db=2.0, eq_peak_gain_db=6.0, pan=0.3, reverb_wet=0.0),
        settings(gain_db=-8.0, comp_threshold_db=-30.0, comp_ratio=8.0, reverb_wet=0.6, reverb_damping=0.2),
    ])
    mix = Console(tracks, SR).render(truth)
    return tracks, truth, mix


def off_level(truth: np.ndarray, level_db, wet) -> np.ndarray:
    """The truth with every level moved (gain and threshold together) and other wet levels."""
    start = truth.copy()
    start[:, GAIN] += level_db
    start[:, THRESHOLD] += level_db
    start[:, WET] = wet
    return start


def test_recovers_level_and_wet_exactly_when_the_rest_is_right(song):
    tracks, truth, mix = song
    start = off_level(truth, np.array([5.0, -6.0, 4.0]), np.array([0.0, 0.4, 0.1]))
    got = match_gain_wet(tracks, SR, start, mix, ridge=0.0)
    np.testing.assert_allclose(got.values[:, GAIN], truth[:, GAIN], atol=0.05)
    np.testing.assert_allclose(got.values[:, THRESHOLD], truth[:, THRESHOLD], atol=0.05)
    np.testing.assert_allclose(got.values[:, WET], truth[:, WET], atol=0.01)
    np.testing.assert_allclose(got.level_db, [-5.0, 6.0, -4.0], atol=0.05)
    others = [i for i in range(S.size) if i not in LEVEL_SETTINGS]
    np.testing.assert_array_equal(got.values[:, others], start[:, others])  # nothing else moves
    assert got.residual_db["after"] < got.residual_db["before"] - 30
    assert got.skipped is None and got.rerendered == ()


def test_levels_alone_when_the_wet_levels_are_kept(song):
    tracks, truth, mix = song
    start = off_level(truth, np.array([-4.0, -3.0, 2.0]), truth[:, WET])
    got = match_gain_wet(tracks, SR, start, mix, ridge=0.0, fit_wet=False)
    np.testing.assert_array_equal(got.values[:, WET], start[:, WET])
    np.testing.assert_allclose(got.values[:, GAIN], truth[:, GAIN], atol=0.05)
    wrong_wet = off_level(truth, 0.0, 0.5)
    got = match_gain_wet(tracks, SR, wrong_wet, mix, fit_wet=False)
    np.testing.assert_array_equal(got.values[:, WET], 0.5)
    rendered = Console(tracks, SR).render(got.values)
    assert np.abs(got.mix - rendered).max() <= 1e-3 * np.abs(rendered).max()


def test_the_mix_is_the_consoles_render_of_the_matched_settings(song):
    tracks, truth, mix = song
    got = match_gain_wet(tracks, SR, off_level(truth, np.array([3.0, -2.0, 1.0]), 0.2), mix)
    rendered = Console(tracks, SR).render(got.values)
    assert got.mix.dtype == np.float32 and got.mix.shape == mix.shape
    assert np.abs(got.mix - rendered).max() <= 1e-3 * np.abs(rendered).max()


def test_a_clipped_threshold_renders_that_track_again(song):
    tracks, truth, mix = song
    start = truth.copy()
    start[0, THRESHOLD] = -2.0  # the match lifts track 0 by 6 dB: its threshold would pass 0 dBFS
    start[0, GAIN] -= 6.0
    got = match_gain_wet(tracks, SR, start, mix, ridge=0.0)
    assert got.rerendered == (0,)
    assert got.values[0, THRESHOLD] == 0.0
    rendered = Console(tracks, SR).render(got.values)
    assert np.abs(got.mix - rendered).max() <= 1e-3 * np.abs(rendered).max()


def test_the_waveform_residual_never_grows(song, rng):
    tracks, truth, mix = song
    for _ in range(3):  # other settings wrong too: the match is only a best fit
        start = truth.copy()
        start[:, S.index("eq_low_shelf_gain_db")] = rng.uniform(-12, 12, len(tracks))
        start[:, S.index("pan")] = rng.uniform(-1, 1, len(tracks))
        start[:, WET] = rng.uniform(0, 1, len(tracks))
        for ridge in (0.0, 0.01, 1.0):
            got = match_gain_wet(tracks, SR, start, mix, ridge=ridge)
            err = lambda y: float(np.sum((y.astype(np.float64) - mix) ** 2))  # noqa: E731
            assert err(got.mix) <= err(Console(tracks, SR).render(start)) * (1 + 1e-4)


def test_a_large_ridge_keeps_the_settings_given(song):
    tracks, truth, mix = song
    start = off_level(truth, -4.0, 0.5)
    got = match_gain_wet(tracks, SR, start, mix, ridge=1e6)
    np.testing.assert_allclose(got.values, start, atol=1e-3)


def test_without_room_for_the_parts_it_renders_again_with_the_same_result(song):
    tracks, truth, mix = song
    start = off_level(truth, np.array([2.0, -3.0, 1.0]), 0.25)
    kept = match_gain_wet(tracks, SR, start, mix)
    streamed = match_gain_wet(tracks, SR, start, mix, max_part_bytes=0)
    np.testing.assert_allclose(streamed.values, kept.values, atol=1e-9)
    assert np.abs(streamed.mix - kept.mix).max() <= 1e-3 * np.abs(kept.mix).max()


def test_long_songs_are_matched_in_blocks(rng, monkeypatch):
    import mixinvert.console.match as match

    tracks = [noise_track(rng, 1, 1.0), noise_track(rng, 2, 1.0)]
    truth = np.stack([settings(gain_db=-4.0, reverb_wet=0.5), settings(comp_threshold_db=-20.0, comp_ratio=3.0)])
    mix = Console(tracks, SR).render(truth)
    whole = match_gain_wet(tracks, SR, off_level(truth, -3.0, 0.2), mix)
    monkeypatch.setattr(match, "RENDER_BLOCK", 10_000)  # several blocks, processors keep their state
    blocks = match_gain_wet(tracks, SR, off_level(truth, -3.0, 0.2), mix)
    np.testing.assert_allclose(blocks.values, whole.values, atol=1e-6)
    np.testing.assert_allclose(blocks.mix, whole.mix, atol=1e-5)


def test_a_silent_mix_or_silent_tracks_change_nothing(song, rng):
    tracks, truth, mix = song
    got = match_gain_wet(tracks, SR, truth, np.zeros_like(mix))
    assert got.skipped == "the reference mix is silent"
    np.testing.assert_array_equal(got.values, truth)
    silent = [np.zeros_like(t) for t in tracks]
    got = match_gain_wet(silent, SR, truth, mix)
    assert got.skipped is not None and np.array_equal(got.values, truth)
    # one silent track keeps its settings, the others are matched
    some = [tracks[0], np.zeros_like(tracks[1]), tracks[2]]
    start = off_level(truth, -3.0, 0.2)
    got = match_gain_wet(some, SR, start, Console(some, SR).render(truth), ridge=0.0)
    np.testing.assert_array_equal(got.values[1], start[1])
    np.testing.assert_allclose(got.values[[0, 2], GAIN], truth[[0, 2], GAIN], atol=0.05)


def test_bad_input_is_refused(song):
    tracks, truth, mix = song
    with pytest.raises(ValueError, match="reference mix must be"):
        match_gain_wet(tracks, SR, truth, mix[:1])
    bad = mix.copy()
    bad[0, 10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        match_gain_wet(tracks, SR, truth, bad)
    with pytest.raises(ValueError, match="ridge"):
        match_gain_wet(tracks, SR, truth, mix, ridge=-1.0)
    with pytest.raises(ValueError, match="shape"):
        match_gain_wet(tracks, SR, truth[:2], mix)


# ------------------------------------------------------------------------- console v2


def _v2_song(rng):
    from mixinvert.console.mixing import sum_values
    from mixinvert.console.render_v2 import ConsoleV2
    from mixinvert.console.schema import CONSOLE_V2

    s = CONSOLE_V2
    tracks = [noise_track(rng, 1, 1.0), noise_track(rng, 2, 1.0), noise_track(rng, 1, 1.0)]
    truth = sum_values(s, tracks)
    for name, column in {"fader_db": [-3.0, 2.0, -8.0], "reverb_send_db": [-12.0, -60.0, -6.0],
                         "pan": [-0.5, 0.3, 0.0], "comp_threshold_db": [-24.0, 0.0, -30.0],
                         "comp_ratio": [4.0, 1.0, 8.0], "eq_bell2_gain_db": [0.0, 6.0, -4.0]}.items():
        truth[:, s.index(name)] = column
    shared = s.shared.from_dict({**s.shared.neutral(), "reverb_room_size": 0.7, "reverb_return_db": -3.0,
                                 "master_eq_bell_gain_db": 3.0, "master_gain_db": -2.0})
    return tracks, truth, shared, ConsoleV2(tracks, SR).render(truth, shared), s


def test_v2_match_recovers_faders_and_sends_exactly_when_the_rest_is_right(rng):
    from mixinvert.console.match import match_fader_send_v2

    tracks, truth, shared, mix, s = _v2_song(rng)
    fi, si = s.index("fader_db"), s.index("reverb_send_db")
    start = truth.copy()
    start[:, fi] += [4.0, -5.0, 3.0]
    start[[0, 2], si] += [-6.0, 5.0]
    matched, residual = match_fader_send_v2(tracks, SR, start, shared, mix, ridge=0.0)
    np.testing.assert_allclose(matched[:, fi], truth[:, fi], atol=1e-3)
    np.testing.assert_allclose(matched[[0, 2], si], truth[[0, 2], si], atol=1e-3)
    assert matched[1, si] == s.lo[si]  # a closed send stays closed
    others = np.ones(s.size, dtype=bool)
    others[[fi, si]] = False
    np.testing.assert_array_equal(matched[:, others], start[:, others])
    assert residual["after"] < -80.0 < residual["before"]


def test_v2_match_never_raises_the_residual_and_handles_silence(rng):
    from mixinvert.console.match import match_fader_send_v2

    tracks, truth, shared, mix, s = _v2_song(rng)
    wrong = truth.copy()
    wrong[:, s.index("eq_bell2_gain_db")] = [8.0, -6.0, 5.0]  # what the match does not set is off
    _, residual = match_fader_send_v2(tracks, SR, wrong, shared, mix)
    assert residual["after"] <= residual["before"] + 1e-9
    same, residual = match_fader_send_v2(tracks, SR, wrong, shared, np.zeros_like(mix))
    assert residual == {} and np.array_equal(same, s.validate(wrong))
    with pytest.raises(ValueError, match="reference mix must be"):
        match_fader_send_v2(tracks, SR, wrong, shared, mix[:, :100])
