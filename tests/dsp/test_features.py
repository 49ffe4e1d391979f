"""Tests of the network's input features (log-magnitude mel spectrograms)."""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest
import torch

from mixinvert.dsp.features import (
    FMAX_HZ,
    FMIN_HZ,
    LOG_FLOOR,
    MIN_SAMPLE_RATE,
    N_MELS,
    frame_sizes,
    log_floor,
    log_mel,
    num_frames,
    stereo_log_mel,
)
from tests.conftest import SR, noise_track

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def sine(freq: float, seconds: float, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def mel_centres() -> np.ndarray:
    return librosa.mel_frequencies(N_MELS + 2, fmin=FMIN_HZ, fmax=FMAX_HZ)[1:-1]


# -- frames and shapes ------------------------------------------------------------------


@pytest.mark.parametrize("sr", [44100, 48000])
def test_frame_sizes_are_50ms_windows_and_25ms_hops(sr):
    win, hop, n_fft = frame_sizes(sr)
    assert abs(win - 0.050 * sr) <= 0.5
    assert abs(hop - 0.025 * sr) <= 0.5
    # the FFT is the next power of two that holds the window
    assert n_fft >= win and n_fft & (n_fft - 1) == 0 and n_fft // 2 < win


def test_frame_sizes_known_values():
    assert frame_sizes(48000) == (2400, 1200, 4096)
    win, hop, n_fft = frame_sizes(44100)
    assert win == 2205 and hop in (1102, 1103) and n_fft == 4096


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("n", [2500, 4410, 12345, 44100])
def test_num_frames_formula_and_output_length(sr, n, rng):
    _, hop, _ = frame_sizes(sr)
    assert num_frames(n, sr) == n // hop + 1
    feats = log_mel(rng.standard_normal(n).astype(np.float32) * 0.1, sr)
    assert feats.shape == (num_frames(n, sr), N_MELS)
    assert feats.dtype == torch.float32


@pytest.mark.parametrize("lead", [(), (1,), (2,), (3, 2), (2, 1, 2)])
def test_leading_dimensions_are_kept(lead, rng):
    n = 5000
    x = rng.standard_normal((*lead, n)).astype(np.float32) * 0.1
    feats = log_mel(x, SR)
    assert feats.shape == (*lead, num_frames(n, SR), N_MELS)


def test_leading_dimensions_do_not_mix_channels(rng):
    # Each row of a batch is processed on its own: batched == one at a time.
    x = rng.standard_normal((3, 2, 6000)).astype(np.float32) * 0.1
    x[1, 0] *= 0.01
    batched = log_mel(x, SR)
    for i in range(3):
        for c in range(2):
            torch.testing.assert_close(batched[i, c], log_mel(x[i, c], SR), atol=1e-5, rtol=1e-5)


def test_very_short_input_still_gives_frames():
    # shorter than half an FFT: the reflect padding cannot be used, the result must still be finite
    x = np.full(100, 0.1, dtype=np.float32)
    feats = log_mel(x, SR)
    assert feats.shape == (num_frames(100, SR), N_MELS)
    assert torch.isfinite(feats).all()


# -- what the values mean ---------------------------------------------------------------


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("freq", [1000.0, 250.0, 5000.0])
def test_sine_peaks_in_the_band_nearest_its_frequency(sr, freq):
    feats = log_mel(sine(freq, 0.5, sr), sr)
    profile = feats[2:-2].mean(dim=0)  # skip the padded edge frames
    expected = int(np.argmin(np.abs(mel_centres() - freq)))
    assert int(profile.argmax()) == expected
    # and it is a clear peak: far above bands an octave and more away
    far = np.abs(np.log2(mel_centres() / freq)) > 1.0
    assert float(profile[expected]) > float(profile[torch.from_numpy(far)].max()) + 5.0


def test_sine_peak_band_is_stable_over_time():
    feats = log_mel(sine(1000.0, 0.5), SR)
    expected = int(np.argmin(np.abs(mel_centres() - 1000.0)))
    assert (feats[1:-1].argmax(dim=-1) == expected).all()


@pytest.mark.parametrize("a", [0.25, 0.5, 3.0])
def test_scaling_shifts_by_log_gain_above_the_floor(a, rng):
    x = rng.standard_normal(SR // 4).astype(np.float32) * 0.3
    f1 = log_mel(x, SR)
    f2 = log_mel(x * a, SR)
    loud = (f1 > math.log(LOG_FLOOR) + 9) & (f2 > math.log(LOG_FLOOR) + 9)  # mel magnitude > ~8000x floor
    assert loud.float().mean() > 0.9  # white noise fills every band
    diff = (f2 - f1)[loud]
    np.testing.assert_allclose(diff.numpy(), math.log(a), atol=2e-3)


def test_quiet_bands_approach_the_floor_not_minus_infinity():
    x = sine(1000.0, 0.25, amp=1e-7)
    feats = log_mel(x, SR)
    assert torch.isfinite(feats).all()
    assert float(feats.min()) >= math.log(LOG_FLOOR) - 1e-4


def test_silence_is_log_floor_everywhere():
    feats = log_mel(np.zeros((2, 8000), dtype=np.float32), SR)
    assert feats.shape == (2, num_frames(8000, SR), N_MELS)
    np.testing.assert_allclose(feats.numpy(), math.log(LOG_FLOOR), rtol=1e-6)
    assert log_floor() == pytest.approx(math.log(LOG_FLOOR))
    np.testing.assert_allclose(feats.numpy(), log_floor(), rtol=1e-6)


def test_louder_signal_has_larger_features(rng):
    x = rng.standard_normal(SR // 4).astype(np.float32)
    assert float(log_mel(0.5 * x, SR).mean()) > float(log_mel(0.05 * x, SR).mean()) + 1.0


# -- stereo -----------------------------------------------------------------------------


def test_stereo_log_mel_duplicates_mono(rng):
    x = noise_track(rng, 1, 0.3)
    feats = stereo_log_mel(x, SR)
    assert feats.shape == (2, num_frames(x.shape[-1], SR), N_MELS)
    torch.testing.assert_close(feats[0], feats[1], rtol=0, atol=0)
    torch.testing.assert_close(feats[0], log_mel(x[0], SR), rtol=0, atol=0)
    # the two channels are separate memory, not a broadcast view
    assert feats.is_contiguous()
    feats[0, 0, 0] += 1.0
    assert feats[1, 0, 0] != feats[0, 0, 0]


def test_stereo_log_mel_keeps_left_and_right_distinct(rng):
    x = noise_track(rng, 2, 0.3)
    x[1] = rng.standard_normal(x.shape[1]).astype(np.float32) * 0.01  # a different right channel
    feats = stereo_log_mel(x, SR)
    assert feats.shape == (2, num_frames(x.shape[-1], SR), N_MELS)
    torch.testing.assert_close(feats[0], log_mel(x[0], SR))
    torch.testing.assert_close(feats[1], log_mel(x[1], SR))
    assert not torch.allclose(feats[0], feats[1])


def test_panned_left_signal_has_louder_left_features(rng):
    mono = rng.standard_normal(SR // 4).astype(np.float32) * 0.2
    right_gain = 0.3
    stereo = np.stack([mono, right_gain * mono])
    feats = stereo_log_mel(stereo, SR)
    left, right = feats[0], feats[1]
    assert (left > right).float().mean() > 0.99
    # in L/R log features a pan is a plain level difference
    np.testing.assert_allclose((left - right).median().item(), -math.log(right_gain), atol=1e-2)
    # and swapping the channels swaps the features (a reversed-stride view must be accepted)
    swapped = stereo_log_mel(stereo[::-1], SR)
    torch.testing.assert_close(swapped[0], right)
    torch.testing.assert_close(swapped[1], left)


# -- input types and purity -------------------------------------------------------------


def test_numpy_and_torch_inputs_agree(rng):
    x = noise_track(rng, 2, 0.3)
    ref = log_mel(x, SR)
    torch.testing.assert_close(log_mel(torch.from_numpy(x.copy()), SR), ref, rtol=0, atol=0)
    torch.testing.assert_close(stereo_log_mel(torch.from_numpy(x.copy()), SR), stereo_log_mel(x, SR), rtol=0, atol=0)
    # float64 input (numpy or torch) is computed in float32
    out64 = log_mel(x.astype(np.float64), SR)
    assert out64.dtype == torch.float32
    torch.testing.assert_close(out64, ref, rtol=0, atol=0)
    torch.testing.assert_close(log_mel(torch.from_numpy(x.astype(np.float64)), SR), ref, rtol=0, atol=0)
    # and a list works too
    torch.testing.assert_close(log_mel(x[0].tolist(), SR), ref[0], rtol=0, atol=0)


def test_non_contiguous_inputs(rng):
    x = noise_track(rng, 2, 0.2)
    interleaved = np.ascontiguousarray(x.T)  # (samples, 2), as read from a file
    torch.testing.assert_close(log_mel(interleaved.T, SR), log_mel(x, SR), rtol=0, atol=0)
    torch.testing.assert_close(log_mel(torch.from_numpy(interleaved).T, SR), log_mel(x, SR), rtol=0, atol=0)


def test_pure_same_result_twice_and_input_untouched(rng):
    x = noise_track(rng, 2, 0.3)
    x_copy = x.copy()
    t = torch.from_numpy(x.copy())
    t_copy = t.clone()
    a = stereo_log_mel(x, SR)
    b = stereo_log_mel(x, SR)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    np.testing.assert_array_equal(x, x_copy)
    log_mel(t, SR)
    torch.testing.assert_close(t, t_copy, rtol=0, atol=0)
    # modifying an output does not leak into the next call (no shared cached buffers)
    a += 100.0
    torch.testing.assert_close(stereo_log_mel(x, SR), b, rtol=0, atol=0)


def test_features_differ_between_sample_rates_only_in_framing():
    # the same 1 kHz tone at 44.1 and 48 kHz peaks in the same band
    expected = int(np.argmin(np.abs(mel_centres() - 1000.0)))
    for sr in (44100, 48000):
        assert int(log_mel(sine(1000.0, 0.3, sr), sr)[1:-1].mean(0).argmax()) == expected


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("sr", [8000, 22050, 32000, MIN_SAMPLE_RATE - 1])
def test_low_sample_rate_is_refused(sr):
    with pytest.raises(ValueError, match="sample rate"):
        log_mel(np.zeros(4000, dtype=np.float32), sr)
    with pytest.raises(ValueError, match="sample rate"):
        stereo_log_mel(np.zeros((2, 4000), dtype=np.float32), sr)


def test_min_sample_rate_is_accepted():
    assert MIN_SAMPLE_RATE / 2 >= FMAX_HZ
    feats = log_mel(np.zeros(4000, dtype=np.float32), MIN_SAMPLE_RATE)
    assert feats.shape[-1] == N_MELS


@pytest.mark.parametrize("shape", [(3, 1000), (0, 1000), (1000,), (1, 2, 1000), (4, 1000)])
def test_stereo_log_mel_rejects_wrong_shapes(shape):
    with pytest.raises(ValueError, match="expected"):
        stereo_log_mel(np.zeros(shape, dtype=np.float32), SR)
    with pytest.raises(ValueError, match="expected"):
        stereo_log_mel(torch.zeros(shape), SR)


@pytest.mark.parametrize("shape", [(), (1,), (2, 1)])
def test_log_mel_rejects_too_short_audio(shape):
    with pytest.raises(ValueError):
        log_mel(np.zeros(shape, dtype=np.float32), SR)
