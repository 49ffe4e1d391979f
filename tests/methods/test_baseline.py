import numpy as np
import pytest

from mixinvert.console.schema import CONSOLE_V1
from mixinvert.data.song import Song
from mixinvert.methods.baseline import plain_sum
from mixinvert.methods.registry import available_methods, best_method, get_method
from tests.conftest import SR, noise_track


@pytest.fixture
def song(rng):
    tracks = [noise_track(rng, 1, 0.5), noise_track(rng, 2, 0.5), noise_track(rng, 1, 0.5)]
    return Song("s", ("a.wav", "b.wav", "c.wav"), tracks, SR, mix=noise_track(rng, 2, 0.5))


def test_sum_is_plain_sum_through_the_console(song, rng):
    est = get_method("sum").fn(song, rng=rng)
    expected = song.tracks[0] + song.tracks[1] + song.tracks[2]  # mono broadcasts to both channels
    np.testing.assert_allclose(est.mix, expected, atol=2e-7)
    np.testing.assert_array_equal(plain_sum(song), expected)
    gains = est.params.values[:, CONSOLE_V1.index("gain_db")]
    np.testing.assert_allclose(gains, [-3.0103, -6.0206, -3.0103], atol=1e-4)


def test_random_is_seeded_and_in_range(song):
    a = get_method("random").fn(song, rng=np.random.default_rng(5))
    b = get_method("random").fn(song, rng=np.random.default_rng(5))
    c = get_method("random").fn(song, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(a.params.values, b.params.values)
    assert not np.allclose(a.params.values, c.params.values)
    CONSOLE_V1.validate(a.params.values)
    # uniform in normalized units: spread over the range, not stuck at one value
    assert np.ptp(a.params.normalized) > 1.0


def test_registry():
    assert {"sum", "random"} <= set(available_methods())
    assert best_method() in available_methods()
    with pytest.raises(ValueError, match="unknown method 'nope'.*sum"):
        get_method("nope")
