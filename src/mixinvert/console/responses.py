"""The twin's EQ and reverb frequency responses, each one fused numba loop, differentiable.

Written as plain torch expressions (as the tests write them, to check these against),
each response is a chain of complex operations over a whole FFT grid (60 001 bins for a
2.5 s excerpt with its tails), and autograd
keeps every intermediate and runs its backward op by op: with the loss they took about
two thirds of a fitting step. Here each is one loop over the bins that computes the
response and its derivatives with respect to its few real inputs together (the reverb:
feedback and damping; the EQ: the 18 biquad coefficients), and a
:class:`torch.autograd.Function` whose backward is a sum over the bins. Same values to
float precision, same gradients (tested against the torch versions). The loops release
the GIL, so songs fitted on several threads at once (``evaluate --songs-at-once``) run in
parallel.

PyTorch's convention for a real input ``x`` and a complex output ``H`` (conjugate
Wirtinger calculus): ``dL/dx = sum(Re(conj(g) * dH/dx))`` with ``g`` the gradient
arriving at ``H``.
"""

from __future__ import annotations

import numba
import numpy as np
import torch


@numba.njit(cache=True, nogil=True)
def _div(num, den):
    """``num / den`` without the scaling complex division does (``den`` is far from 0 and inf)."""
    return num * den.conjugate() / (den.real * den.real + den.imag * den.imag)


# -- reverb --------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True, fastmath=True)
def _reverb_kernel(combs, chain, z1, feedback, damp):
    """Freeverb's wet response per channel and its derivatives in feedback and damping.

    A comb: ``C L / (L - G C)``, ``L = 1 - d z^-1``, ``G = f (1 - d)``; summed over the 8
    combs, times the allpass chain. ``dH/df = chain (1 - d) L S`` and
    ``dH/dd = chain (G z^-1 - f L) S`` with ``S = sum C^2 / (L - G C)^2``.
    """
    channels, count, bins = combs.shape
    h = np.empty((channels, bins), dtype=np.complex128)
    dh_f = np.empty((channels, bins), dtype=np.complex128)
    dh_d = np.empty((channels, bins), dtype=np.complex128)
    g = feedback * (1.0 - damp)
    for ch in range(channels):
        for i in range(bins):
            low = 1.0 - damp * z1[i]
            total = 0j
            s = 0j
            for k in range(count):
                c = combs[ch, k, i]
                q = _div(c, low - g * c)
                total += q * low
                s += q * q
            h[ch, i] = chain[ch, i] * total
            dh_f[ch, i] = chain[ch, i] * (1.0 - damp) * low * s
            dh_d[ch, i] = chain[ch, i] * (g * z1[i] - feedback * low) * s
    return h, dh_f, dh_d


@numba.njit(cache=True, nogil=True)
def _real_dot(grad, dh):
    """``sum(Re(conj(g) dh))`` over every element."""
    total = 0.0
    flat_g, flat_d = grad.ravel(), dh.ravel()
    for i in range(flat_g.shape[0]):
        total += flat_g[i].real * flat_d[i].real + flat_g[i].imag * flat_d[i].imag
    return total


class _ReverbResponse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, feedback, damp, combs, chain, z1):
        h, dh_f, dh_d = _reverb_kernel(combs, chain, z1, float(feedback), float(damp))
        ctx.save_for_backward(torch.from_numpy(dh_f), torch.from_numpy(dh_d))
        return torch.from_numpy(h.astype(np.complex64))

    @staticmethod
    def backward(ctx, grad):
        dh_f, dh_d = ctx.saved_tensors
        g = np.ascontiguousarray(grad.detach().numpy())
        grad_f = torch.tensor(_real_dot(g, dh_f.numpy()), dtype=torch.float64) if ctx.needs_input_grad[0] else None
        grad_d = torch.tensor(_real_dot(g, dh_d.numpy()), dtype=torch.float64) if ctx.needs_input_grad[1] else None
        return grad_f, grad_d, None, None, None


def reverb_response(feedback: torch.Tensor, damp: torch.Tensor, grid: tuple[np.ndarray, np.ndarray, np.ndarray]
                    ) -> torch.Tensor:
    """Freeverb's wet responses ``(2, bins)`` complex64 for comb ``feedback`` and ``damp``
    (0-dim float64 tensors, differentiable) on ``grid = (combs (2, 8, bins), chain (2, bins),
    z^-1 (bins,))``, complex128 arrays."""
    combs, chain, z1 = grid
    return _ReverbResponse.apply(feedback.to(torch.float64), damp.to(torch.float64), combs, chain, z1)


# -- EQ ------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _eq_kernel(b, a, z1):
    """The product of biquads ``(b0 + b1 z^-1 + b2 z^-2) / (a0 + a1 z^-1 + a2 z^-2)`` over the
    bins, float64 throughout (low cutoffs put poles next to ``z = 1``); also ``H / B_s`` and
    ``H / A_s`` per section, the derivatives' common factors (``dH/db_sj = H z^-j / B_s``,
    ``dH/da_sj = -H z^-j / A_s``)."""
    sections = b.shape[0]
    bins = z1.shape[0]
    h = np.empty(bins, dtype=np.complex128)
    over_b = np.empty((sections, bins), dtype=np.complex128)
    over_a = np.empty((sections, bins), dtype=np.complex128)
    for i in range(bins):
        w1 = z1[i]
        w2 = w1 * w1
        total = 1.0 + 0j
        for s in range(sections):
            num = b[s, 0] + b[s, 1] * w1 + b[s, 2] * w2
            den = a[s, 0] + a[s, 1] * w1 + a[s, 2] * w2
            over_b[s, i] = _div(1.0 + 0j, num)
            over_a[s, i] = _div(1.0 + 0j, den)
            total *= num * over_a[s, i]
        h[i] = total
        for s in range(sections):
            over_b[s, i] *= total
            over_a[s, i] *= total
    return h, over_b, over_a


@numba.njit(cache=True, nogil=True)
def _eq_backward_kernel(grad, over_b, over_a, z1):
    """``sum(Re(conj(g) dH/db_sj))`` and the same for ``a`` (see :func:`_eq_kernel`)."""
    sections = over_b.shape[0]
    grad_b = np.zeros((sections, 3))
    grad_a = np.zeros((sections, 3))
    for i in range(z1.shape[0]):
        g = np.conj(grad[i])
        w1 = z1[i]
        w2 = w1 * w1
        for s in range(sections):
            gb = g * over_b[s, i]
            ga = g * over_a[s, i]
            grad_b[s, 0] += gb.real
            grad_b[s, 1] += (gb * w1).real
            grad_b[s, 2] += (gb * w2).real
            grad_a[s, 0] -= ga.real
            grad_a[s, 1] -= (ga * w1).real
            grad_a[s, 2] -= (ga * w2).real
    return grad_b, grad_a


class _BiquadChain(torch.autograd.Function):
    @staticmethod
    def forward(ctx, b, a, z1):
        h, over_b, over_a = _eq_kernel(b.detach().numpy(), a.detach().numpy(), z1)
        ctx.z1, ctx.over_b, ctx.over_a = z1, over_b, over_a
        return torch.from_numpy(h.astype(np.complex64))

    @staticmethod
    def backward(ctx, grad):
        g = np.ascontiguousarray(grad.detach().numpy())
        grad_b, grad_a = _eq_backward_kernel(g, ctx.over_b, ctx.over_a, ctx.z1)
        return torch.from_numpy(grad_b), torch.from_numpy(grad_a), None


def biquad_chain_response(b: torch.Tensor, a: torch.Tensor, z1: np.ndarray) -> torch.Tensor:
    """The response ``(bins,)`` complex64 of biquads in series: ``b``, ``a`` ``(sections, 3)``
    float64 tensors (differentiable), ``z1`` the grid's ``z^-1`` (complex128 array)."""
    return _BiquadChain.apply(b.to(torch.float64).contiguous(), a.to(torch.float64).contiguous(), z1)
