import numpy as np
import pytest

from mixinvert.dsp.alignment import estimate_alignment, window_drift

SR = 44100


def _shift(x: np.ndarray, lag: int) -> np.ndarray:
    """``x`` delayed by ``lag`` samples (advanced when negative), same length."""
    out = np.zeros_like(x)
    if lag >= 0:
        out[..., lag:] = x[..., : x.shape[-1] - lag]
    else:
        out[..., :lag] = x[..., -lag:]
    return out


@pytest.fixture
def song(rng):
    seconds = 10
    track = rng.standard_normal((1, seconds * SR)).astype(np.float32)
    others = 0.5 * rng.standard_normal((2, seconds * SR)).astype(np.float32)
    return track, others


@pytest.mark.parametrize("lag", [-45, 0, 7, 600])
def test_finds_the_offset(song, lag):
    track, others = song
    mix = 0.7 * _shift(track, lag) + others
    a = estimate_alignment(track, mix, SR)
    assert a.reliable and a.polarity == 1 and not a.drifts
    assert a.offset_samples == pytest.approx(lag, abs=0.1)
    assert a.offset_ms(SR) == pytest.approx(1000 * lag / SR, abs=0.01)


def test_finds_an_inverted_polarity(song):
    track, others = song
    a = estimate_alignment(track, -0.7 * _shift(track, 12) + others, SR)
    assert a.polarity == -1 and a.offset_samples == pytest.approx(12, abs=0.1)


def test_fractional_offset_within_a_fraction_of_a_sample(song):
    track, others = song
    n = track.shape[-1]
    spectrum = np.fft.rfft(track[0])
    delayed = np.fft.irfft(spectrum * np.exp(-2j * np.pi * np.fft.rfftfreq(n) * 10.4), n)
    a = estimate_alignment(track, 0.7 * delayed[None] + others, SR)
    assert a.offset_samples == pytest.approx(10.4, abs=0.3)


def test_a_track_not_in_the_mix_is_unreliable(song, rng):
    track, others = song
    a = estimate_alignment(track, others, SR)
    assert not a.reliable and a.window_offsets_samples == ()


def test_a_drifting_copy_is_flagged(song):
    # the second half of the song sits 2 ms later than the first: no single offset fits
    track, others = song
    half = track.shape[-1] // 2
    moved = np.concatenate([_shift(track, 10)[:, :half], _shift(track, 98)[:, half:]], axis=1)
    a = estimate_alignment(track, 0.7 * moved + others, SR)
    assert a.drifts and a.drift_samples == pytest.approx(88, abs=50)
    d = a.to_dict(SR)
    assert d["drifts"] is True and d["drift_ms"] > 1.0 and len(d["window_offsets_samples"]) >= 3


def test_one_disagreeing_window_is_not_a_drift():
    assert window_drift([-45.0, -45.1, -44.9, 0.0, -45.0]) == pytest.approx(0.2)
    assert window_drift([0.0, 0.0, 40.0, 40.0, 0.0]) == pytest.approx(40.0)
    assert window_drift([0.0, 40.0]) == 0.0


def test_lengths_must_match(song):
    track, others = song
    with pytest.raises(ValueError, match="differ in length"):
        estimate_alignment(track[:, :-1], others, SR)


def test_offsets_under_a_sample_are_not_applied(song):
    track, others = song
    spectrum = np.fft.rfft(track[0])
    n = track.shape[-1]
    nudged = np.fft.irfft(spectrum * np.exp(-2j * np.pi * np.fft.rfftfreq(n) * 0.3), n)[None]
    a = estimate_alignment(track, 0.7 * nudged + others, SR)
    assert a.usable and abs(a.offset_samples) > 0.01 and a.applied_offset_samples() == 0.0
    b = estimate_alignment(track, 0.7 * _shift(track, -45) + others, SR)
    assert b.applied_offset_samples() == pytest.approx(-45, abs=0.1)
