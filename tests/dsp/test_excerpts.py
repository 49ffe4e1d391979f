"""Tests of the choice of loud, non-overlapping excerpts (with pre-roll) for per-song fitting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixinvert.dsp.excerpts import Excerpt, choose_excerpts

SR = 1000  # a low rate keeps the arrays tiny; the function only counts samples


def quiet_mix(rng: np.random.Generator, seconds: float, channels: int = 2, level: float = 0.01) -> np.ndarray:
    return (rng.standard_normal((channels, int(seconds * SR))) * level).astype(np.float32)


def check_invariants(excerpts: list[Excerpt], n: int, count: int, win: int, pre: int) -> None:
    assert 1 <= len(excerpts) <= count
    for e in excerpts:
        assert e.stop - e.start == win
        assert e.preroll == pre == e.start - e.render_start
        assert 0 <= e.render_start <= e.start < e.stop <= n
    for a, b in zip(excerpts, excerpts[1:]):
        assert a.start < b.start  # time order
        assert a.stop <= b.start  # scored windows do not overlap


def test_count_length_preroll_and_order():
    rng = np.random.default_rng(0)
    mix = quiet_mix(rng, 30.0)
    excerpts = choose_excerpts(mix, SR, count=4, seconds=2.0, preroll_seconds=0.5)
    assert len(excerpts) == 4
    check_invariants(excerpts, mix.shape[-1], 4, win=2000, pre=500)
    assert all(isinstance(e, Excerpt) for e in excerpts)


def test_loudest_region_is_chosen():
    rng = np.random.default_rng(1)
    mix = quiet_mix(rng, 20.0)
    burst = slice(12_300, 12_800)
    mix[:, burst] += rng.standard_normal((2, 500)).astype(np.float32)
    (only,) = choose_excerpts(mix, SR, count=1, seconds=1.0, preroll_seconds=0.25)
    # on a half-window grid, some window holds the whole half-window burst: that one wins
    assert only.start <= burst.start and burst.stop <= only.stop
    assert only.preroll == 250 and only.stop - only.start == 1000
    # with more windows, the burst's window is still among them, and it is the loudest
    several = choose_excerpts(mix, SR, count=3, seconds=1.0, preroll_seconds=0.25)
    assert only in several
    check_invariants(several, mix.shape[-1], 3, win=1000, pre=250)


def test_loud_regions_spread_out_rather_than_overlap():
    rng = np.random.default_rng(2)
    mix = quiet_mix(rng, 20.0)
    mix[:, 5000:9000] += 1.0  # one long loud stretch, and a shorter, quieter one elsewhere
    mix[:, 15_000:16_000] += 0.5
    excerpts = choose_excerpts(mix, SR, count=3, seconds=1.0, preroll_seconds=0.0)
    check_invariants(excerpts, mix.shape[-1], 3, win=1000, pre=0)
    # three non-overlapping windows inside the 4 s loud stretch beat anything else
    assert all(5000 <= e.start and e.stop <= 9000 for e in excerpts)
    # with two more, the second loud region is found too (the long one holds at most four)
    more = choose_excerpts(mix, SR, count=5, seconds=1.0, preroll_seconds=0.0)
    assert sum(5000 <= e.start and e.stop <= 9000 for e in more) >= 3
    assert any(e.start < 16_000 and e.stop > 15_000 for e in more)


def test_short_song_is_one_whole_excerpt():
    mix = np.ones((2, 700), dtype=np.float32)
    assert choose_excerpts(mix, SR, count=3, seconds=1.0, preroll_seconds=0.5) == [Excerpt(0, 0, 700)]
    # longer than a window but not than window + pre-roll: still the whole song, no pre-roll
    mix = np.ones((1, 1400), dtype=np.float32)
    (whole,) = choose_excerpts(mix, SR, count=2, seconds=1.0, preroll_seconds=0.5)
    assert whole == Excerpt(0, 0, 1400) and whole.preroll == 0


def test_fewer_windows_than_asked_when_the_song_is_short():
    mix = quiet_mix(np.random.default_rng(3), 3.0)
    excerpts = choose_excerpts(mix, SR, count=10, seconds=1.0, preroll_seconds=0.2)
    check_invariants(excerpts, 3000, 10, win=1000, pre=200)
    assert 1 <= len(excerpts) <= 2  # at most two 1 s windows fit in 3 s minus the 0.2 s pre-roll


@pytest.mark.parametrize("count", [0, -1])
def test_count_below_one_raises(count):
    with pytest.raises(ValueError, match="count"):
        choose_excerpts(np.zeros((2, 10_000), np.float32), SR, count=count, seconds=1.0, preroll_seconds=0.1)


def test_mono_and_silent_mix():
    mix = np.zeros((1, 10_000), dtype=np.float32)
    excerpts = choose_excerpts(mix, SR, count=3, seconds=1.0, preroll_seconds=0.1)
    assert len(excerpts) == 3
    check_invariants(excerpts, 10_000, 3, win=1000, pre=100)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 6000),
    count=st.integers(1, 6),
    seconds=st.floats(0.05, 2.0),
    preroll=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_invariants_hold_for_any_song(n, count, seconds, preroll, seed):
    mix = np.random.default_rng(seed).standard_normal((2, n)).astype(np.float32)
    excerpts = choose_excerpts(mix, SR, count=count, seconds=seconds, preroll_seconds=preroll)
    win, pre = int(round(seconds * SR)), int(round(preroll * SR))
    if n <= win + pre:
        assert excerpts == [Excerpt(0, 0, n)]
    else:
        check_invariants(excerpts, n, count, win, pre)


# -- choose_excerpts_covering ------------------------------------------------------------------

def _covering(**kw):
    from mixinvert.dsp.excerpts import choose_excerpts_covering

    return choose_excerpts_covering(**kw)


def test_covering_hears_a_track_that_plays_only_once():
    sr = 1000
    n = 20 * sr
    loud = np.ones((1, n), dtype=np.float32)  # plays throughout, louder in the first half
    loud[:, n // 2:] = 0.5
    fill = np.zeros((1, n), dtype=np.float32)
    fill[:, 17 * sr:18 * sr] = 0.05  # a quiet fill near the end
    mix = np.concatenate([loud + fill] * 2)
    plain = choose_excerpts(mix, sr, count=2, seconds=2.0, preroll_seconds=0.5)
    covering = _covering(mix=mix, tracks=[loud, fill], sample_rate=sr, count=2, seconds=2.0, preroll_seconds=0.5)
    heard = lambda ex: any(e.start < 18 * sr and e.stop > 17 * sr for e in ex)  # noqa: E731
    assert not heard(plain)  # the loudest windows are all in the first half
    assert heard(covering) and len(covering) == 3  # the two loudest, and one for the fill
    assert {e.start for e in plain} <= {e.start for e in covering}
    no_extra = _covering(mix=mix, tracks=[loud, fill], sample_rate=sr, count=2, seconds=2.0, preroll_seconds=0.5,
                         extra=0)
    assert no_extra == plain
    everyone_heard = _covering(mix=mix, tracks=[loud], sample_rate=sr, count=2, seconds=2.0, preroll_seconds=0.5)
    assert everyone_heard == plain
    starts = [e.start for e in covering]
    assert starts == sorted(starts)
    for a, b in zip(covering, covering[1:]):
        assert b.start >= a.stop  # no overlap
    for e in covering:
        assert e.start - e.render_start == 500 and e.stop - e.start == 2000


def test_covering_short_song_and_silent_tracks():
    sr = 1000
    mix = np.ones((2, 1500), dtype=np.float32)
    one = _covering(mix=mix, tracks=[mix[:1]], sample_rate=sr, count=3, seconds=2.0, preroll_seconds=0.5)
    assert [(e.render_start, e.start, e.stop) for e in one] == [(0, 0, 1500)]
    mix = np.ones((2, 10 * sr), dtype=np.float32)
    silent = np.zeros((1, 10 * sr), dtype=np.float32)
    ex = _covering(mix=mix, tracks=[silent, silent], sample_rate=sr, count=3, seconds=2.0, preroll_seconds=0.5)
    assert 1 <= len(ex) <= 3
    assert ex == choose_excerpts(mix, sr, count=3, seconds=2.0, preroll_seconds=0.5)  # silent: nothing to add
    with pytest.raises(ValueError, match="count"):
        _covering(mix=mix, tracks=[silent], sample_rate=sr, count=0, seconds=2.0, preroll_seconds=0.5)
    with pytest.raises(ValueError, match="extra"):
        _covering(mix=mix, tracks=[silent], sample_rate=sr, count=1, seconds=2.0, preroll_seconds=0.5, extra=-1)
