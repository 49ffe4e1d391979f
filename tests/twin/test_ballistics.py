"""Tests of JUCE's peak ballistics filter (the compressor's level detector), forward and backward."""

from __future__ import annotations

import math

import numpy as np
import pedalboard as pb
import pytest
import scipy.signal
import torch

from mixinvert.twin.ballistics import peak_envelope, time_constant
from mixinvert.twin.model import compressor
from tests.conftest import SR, noise_track

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def reference_envelope(a: np.ndarray, c_attack: np.ndarray, c_release: np.ndarray) -> np.ndarray:
    """The documented recursion, one sample at a time in plain Python."""
    out = np.empty_like(a, dtype=np.float64)
    for r in range(a.shape[0]):
        prev = 0.0
        for i in range(a.shape[1]):
            x = float(a[r, i])
            c = c_attack[r] if x > prev else c_release[r]
            prev = x + c * (prev - x)
            out[r, i] = prev
    return out


def test_time_constant_is_juce_formula():
    for ms, sr in [(0.5, 44100), (10.0, 48000), (1000.0, 22050)]:
        expected = math.exp(-2.0 * math.pi * 1000.0 / (ms * sr))
        c = time_constant(ms, sr)
        assert c.dtype == torch.float64
        assert float(c) == pytest.approx(expected, rel=1e-12)
    # longer times are slower (closer to 1)
    assert float(time_constant(100.0, SR)) > float(time_constant(1.0, SR))


def test_forward_matches_reference_loop_per_row(rng):
    a = np.abs(rng.standard_normal((3, 400))) * np.linspace(0.1, 1.0, 400)
    a[:, 150:200] = 0.0  # a silent stretch: release all the way down
    ca = np.array([0.3, 0.9, 0.99])
    cr = np.array([0.95, 0.5, 0.999])
    y = peak_envelope(torch.from_numpy(a), torch.from_numpy(ca), torch.from_numpy(cr))
    assert y.shape == a.shape and y.dtype == torch.float64
    np.testing.assert_allclose(y.numpy(), reference_envelope(a, ca, cr), rtol=1e-12, atol=1e-15)
    # rows really differ in coefficients: a single shared pair would give another result
    shared = reference_envelope(a, np.full(3, ca[0]), np.full(3, cr[0]))
    assert np.abs(y.numpy()[1:] - shared[1:]).max() > 1e-3


def test_forward_scalar_coefficients_broadcast_and_keep_dtype(rng):
    a = np.abs(rng.standard_normal((2, 300))).astype(np.float32)
    ca, cr = time_constant(1.0, SR), time_constant(50.0, SR)
    y = peak_envelope(torch.from_numpy(a), ca, cr)
    assert y.dtype == torch.float32
    expected = reference_envelope(a, np.full(2, float(ca)), np.full(2, float(cr)))
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6, atol=1e-7)


def test_equal_attack_and_release_is_one_pole_lowpass(rng):
    a = np.abs(rng.standard_normal((2, 2000)))
    c = float(time_constant(3.0, SR))
    ct = torch.tensor(c, dtype=torch.float64)
    y = peak_envelope(torch.from_numpy(a), ct, ct).numpy()
    # y[n] = (1 - c) a[n] + c y[n-1]
    expected = scipy.signal.lfilter([1.0 - c], [1.0, -c], a, axis=-1)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-13)


def test_attack_rises_faster_than_release_falls():
    a = np.zeros((1, 600))
    a[0, 100:300] = 1.0
    ca, cr = time_constant(1.0, SR), time_constant(100.0, SR)
    y = peak_envelope(torch.from_numpy(a), ca, cr).numpy()[0]
    assert np.all(y[:100] == 0.0)
    # rise: 1 - c_attack^k; fall: y[299] * c_release^k
    k = np.arange(1, 201)
    np.testing.assert_allclose(y[100:300], 1.0 - float(ca) ** k, rtol=1e-12)
    np.testing.assert_allclose(y[300:], y[299] * float(cr) ** np.arange(1, 301), rtol=1e-12)
    assert y[299] > 0.99  # fast attack has reached the step
    assert y[599] > 0.5  # slow release is far from done 300 samples later


def test_gradcheck_level_and_both_coefficients():
    gen = np.random.default_rng(7)
    rows, n = 2, 40
    # levels alternate between a low and a high band, so every sample is far from the
    # running envelope and the attack/release choice does not flip under gradcheck's eps
    high = gen.uniform(0.7, 1.0, size=(rows, n))
    low = gen.uniform(0.0, 0.2, size=(rows, n))
    pattern = (np.arange(n) // 3) % 2 == 0
    a_np = np.where(pattern, high, low)
    ca_np = np.array([0.4, 0.6])
    cr_np = np.array([0.7, 0.85])
    # precondition: the branch decisions have a wide margin
    y_np = reference_envelope(a_np, ca_np, cr_np)
    prev = np.concatenate([np.zeros((rows, 1)), y_np[:, :-1]], axis=1)
    assert np.abs(a_np - prev).min() > 1e-3
    a = torch.tensor(a_np, requires_grad=True)
    ca = torch.tensor(ca_np, requires_grad=True)
    cr = torch.tensor(cr_np, requires_grad=True)
    assert torch.autograd.gradcheck(peak_envelope, (a, ca, cr), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradcheck_through_shared_scalar_coefficients():
    gen = np.random.default_rng(8)
    a_np = np.where((np.arange(30) // 4) % 2 == 0, gen.uniform(0.6, 1.0, (2, 30)), gen.uniform(0.0, 0.1, (2, 30)))
    a = torch.tensor(a_np, requires_grad=True)
    ca = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    cr = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(peak_envelope, (a, ca, cr), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradient_reaches_time_in_ms(rng):
    a = torch.from_numpy(np.abs(noise_track(rng, 1, 0.05)).astype(np.float64))
    attack = torch.tensor(5.0, dtype=torch.float64, requires_grad=True)
    release = torch.tensor(50.0, dtype=torch.float64, requires_grad=True)
    y = peak_envelope(a, time_constant(attack, SR), time_constant(release, SR))
    y.sum().backward()
    # slower attack -> lower envelope on rises; slower release -> higher envelope on falls
    assert attack.grad is not None and float(attack.grad) < 0
    assert release.grad is not None and float(release.grad) > 0


def juce_compressor(x: np.ndarray, threshold_db: float, ratio: float, attack_ms: float, release_ms: float) -> np.ndarray:
    """juce::dsp::Compressor built from the ballistics filter and JUCE's static gain curve."""
    env = peak_envelope(
        torch.from_numpy(np.abs(x).astype(np.float64)), time_constant(attack_ms, SR), time_constant(release_ms, SR)
    ).numpy()
    threshold = 10.0 ** (threshold_db / 20.0)
    g = np.where(env < threshold, 1.0, np.power(np.maximum(env, 1e-30) / threshold, 1.0 / ratio - 1.0))
    return x * g


@pytest.mark.parametrize("channels", [1, 2])
def test_compressor_matches_pedalboard(rng, channels):
    x = noise_track(rng, channels, 0.5, level=0.2)
    settings = dict(threshold_db=-20.0, ratio=4.0, attack_ms=5.0, release_ms=100.0)
    expected = pb.Compressor(**settings)(x, SR)
    ours = juce_compressor(x, **settings)
    assert np.abs(expected - x).max() > 0.05  # the compressor really works on this signal
    np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=0)
    # the twin's compressor stage is the same thing
    twin = compressor(
        torch.from_numpy(x), torch.tensor(-20.0, dtype=torch.float64), torch.tensor(4.0, dtype=torch.float64),
        torch.tensor(5.0, dtype=torch.float64), torch.tensor(100.0, dtype=torch.float64), SR,
    )
    assert twin.dtype == torch.float32 and twin.shape == x.shape
    np.testing.assert_allclose(twin.numpy(), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("shape", [(10,), (1, 2, 10), ()])
def test_rejects_non_2d_level(shape):
    with pytest.raises(ValueError, match="rows, samples"):
        peak_envelope(torch.ones(shape, dtype=torch.float64), torch.tensor(0.5), torch.tensor(0.5))


@pytest.mark.parametrize("channels", [1, 2])
def test_fused_compressor_equals_the_torch_version_values_and_gradients(rng, channels):
    """twin.compressor on float32 runs the fused kernel; on float64 the torch operations it
    replaced: same output to float32 precision, same gradients for the signal and all four
    settings (threshold well inside the signal's range, so that every branch is taken)."""
    x = noise_track(rng, channels, 0.4)
    peak_db = 20 * math.log10(np.abs(x).max())
    settings = {"threshold_db": peak_db - 14.0, "ratio": 3.5, "attack_ms": 4.0, "release_ms": 60.0}

    def run(dtype):
        signal = torch.tensor(x, dtype=dtype, requires_grad=True)
        knobs = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in settings.items()}
        out = compressor(signal, knobs["threshold_db"], knobs["ratio"], knobs["attack_ms"], knobs["release_ms"], SR)
        weights = torch.linspace(-1.0, 2.0, out.numel(), dtype=torch.float64).reshape(out.shape)
        (out.to(torch.float64) * weights).sum().backward()
        return out.detach().double(), signal.grad.double(), {k: float(v.grad) for k, v in knobs.items()}

    fused, fused_grad_x, fused_grads = run(torch.float32)
    plain, plain_grad_x, plain_grads = run(torch.float64)
    assert fused.dtype == torch.float64 and (fused != torch.tensor(x, dtype=torch.float64)).any()  # it compresses
    np.testing.assert_allclose(fused, plain, atol=2e-7 * np.abs(x).max())
    np.testing.assert_allclose(fused_grad_x, plain_grad_x, rtol=1e-4, atol=1e-4 * plain_grad_x.abs().max().item())
    for k in settings:
        assert fused_grads[k] != 0.0
        assert fused_grads[k] == pytest.approx(plain_grads[k], rel=1e-4), k


def test_fused_compressor_below_threshold_is_identity_with_zero_setting_gradients(rng):
    from mixinvert.twin.ballistics import compress

    x = torch.tensor(noise_track(rng, 1, 0.2), requires_grad=True)
    knobs = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (10.0, -0.5, 0.9, 0.99)]
    out = compress(x, *knobs)  # a threshold of 10 (+20 dB): never reached
    assert torch.equal(out, x.detach())
    out.sum().backward()
    assert torch.allclose(x.grad, torch.ones_like(x))
    assert knobs[0].grad == 0 and knobs[1].grad == 0
    with pytest.raises(ValueError, match="float32"):
        compress(x.detach().double(), *knobs)
