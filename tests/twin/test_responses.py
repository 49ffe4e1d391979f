"""The fused EQ and reverb responses against the same formulas written as torch expressions
(autograd's gradients), and their gradients against finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from dasp_pytorch.signal import biquad

from mixinvert.twin import model as twin
from mixinvert.twin.responses import biquad_chain_response, reverb_response

N_FFT = 4096
SR = 44100


def reverb_reference(feedback: torch.Tensor, damp: torch.Tensor, grid) -> torch.Tensor:
    """Freeverb's wet response as plain torch complex expressions (autograd does the rest)."""
    combs, chain, z1 = (torch.from_numpy(x) for x in grid)
    low = 1.0 - damp * z1
    comb_sum = (combs * low / (low - feedback * (1.0 - damp) * combs)).sum(dim=1)
    return comb_sum * chain


def biquads_reference(b: torch.Tensor, a: torch.Tensor, z1: np.ndarray) -> torch.Tensor:
    z1 = torch.from_numpy(z1)
    z2 = z1 * z1
    h = torch.ones_like(z1)
    for s in range(b.shape[0]):
        h = h * (b[s, 0] + b[s, 1] * z1 + b[s, 2] * z2) / (a[s, 0] + a[s, 1] * z1 + a[s, 2] * z2)
    return h


def _weights(shape, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(shape, generator=g, dtype=torch.float64),
                         torch.randn(shape, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("room, damping", [(0.0, 0.0), (0.5, 0.5), (0.97, 0.9)])
def test_reverb_response_matches_torch_expression_and_its_gradients(room, damping):
    grid = twin._reverb_grid(N_FFT, SR)
    w = _weights((2, N_FFT // 2 + 1))
    out = {}
    for name, fn in (("fused", reverb_response), ("reference", reverb_reference)):
        f = torch.tensor(room * 0.28 + 0.7, dtype=torch.float64, requires_grad=True)
        d = torch.tensor(damping * 0.4, dtype=torch.float64, requires_grad=True)
        h = fn(f, d, grid)
        (h.to(torch.complex128) * w).real.sum().backward()
        out[name] = (h.detach().to(torch.complex128), f.grad.item(), d.grad.item())
    h_fused, gf, gd = out["fused"]
    h_ref, rf, rd = out["reference"]
    assert torch.allclose(h_fused, h_ref, rtol=1e-5, atol=1e-5 * h_ref.abs().max().item())
    assert gf == pytest.approx(rf, rel=1e-6)
    assert gd == pytest.approx(rd, rel=1e-6)


def test_reverb_response_gradient_matches_finite_differences():
    grid = twin._reverb_grid(N_FFT, SR)
    w = _weights((2, N_FFT // 2 + 1), seed=1)

    def loss(f: float, d: float) -> float:
        h = reverb_response(torch.tensor(f, dtype=torch.float64), torch.tensor(d, dtype=torch.float64), grid)
        return float((h.to(torch.complex128) * w).real.sum())

    f = torch.tensor(0.85, dtype=torch.float64, requires_grad=True)
    d = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    (reverb_response(f, d, grid).to(torch.complex128) * w).real.sum().backward()
    eps = 1e-3  # the output is float32: a smaller step drowns in rounding
    assert f.grad.item() == pytest.approx((loss(0.85 + eps, 0.2) - loss(0.85 - eps, 0.2)) / (2 * eps), rel=2e-2)
    assert d.grad.item() == pytest.approx((loss(0.85, 0.2 + eps) - loss(0.85, 0.2 - eps)) / (2 * eps), rel=2e-2)


@pytest.mark.parametrize("settings", [
    [(-12.0, 30.0, 0.7071), (9.0, 800.0, 4.0), (12.0, 16000.0, 0.7071)],
    [(3.0, 120.0, 0.7071), (-6.0, 3000.0, 0.3), (-4.0, 4000.0, 0.7071)],
])
def test_biquad_chain_matches_torch_expression_and_its_gradients(settings):
    kinds = ("low_shelf", "peaking", "high_shelf")
    z1 = twin._z1_grid(N_FFT)
    w = _weights(N_FFT // 2 + 1, seed=2)
    out = {}
    for name, fn in (("fused", biquad_chain_response), ("reference", biquads_reference)):
        params = torch.tensor(settings, dtype=torch.float64, requires_grad=True)
        bs, as_ = zip(*(biquad(params[i, 0:1], params[i, 1:2], params[i, 2:3], float(SR), kind)
                        for i, kind in enumerate(kinds)))
        h = fn(torch.cat(bs), torch.cat(as_), z1)
        (h.to(torch.complex128) * w).real.sum().backward()
        out[name] = (h.detach().to(torch.complex128), params.grad.clone())
    (h_fused, g_fused), (h_ref, g_ref) = out["fused"], out["reference"]
    assert torch.allclose(h_fused, h_ref, rtol=1e-5, atol=1e-6)
    assert torch.allclose(g_fused, g_ref, rtol=1e-6, atol=1e-6 * g_ref.abs().max().item())


def test_eq_response_is_flat_at_zero_gain_and_follows_a_shelf():
    values = twin.denormalize(torch.zeros(16, dtype=torch.float64))
    values = values.clone()
    for name in ("eq_low_shelf_gain_db", "eq_peak_gain_db", "eq_high_shelf_gain_db"):
        values[twin._idx(name)] = 0.0
    h = twin.eq_response(values, SR, N_FFT)
    assert torch.allclose(h.abs(), torch.ones_like(h.abs()), atol=1e-5)
    values[twin._idx("eq_low_shelf_gain_db")] = 12.0
    h = twin.eq_response(values, SR, N_FFT)
    assert 20 * math.log10(h.abs()[1].item()) == pytest.approx(12.0, abs=0.2)  # ~11 Hz: the full shelf gain
    assert 20 * math.log10(h.abs()[-1].item()) == pytest.approx(0.0, abs=0.1)
