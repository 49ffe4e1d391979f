"""The twin's EQ and reverb frequency responses, each one fused numba loop, differentiable.

Written as plain torch expressions (as the tests write them, to check these against),
each response is a chain of complex operations over a whole FFT grid (60 001 bins for a
2.5 s excerpt with its tails), and autograd
keeps every intermediate and runs its backward op by op: with the loss they took about
two thirds of a fitting step. Here each is one loop over the bins that computes the
response and its derivatives with respect to its few real inputs together (the reverb:
feedback and damping; the EQ: the 18 biquad coefficients), and a
:class:`torch.autograd.Function` whose backward is a sum over the bins. Same values to
float precision, same gradients (tested against the torch versions). Each call takes
every track of a song at once (a row per track), split over threads by
:func:`over_rows`; the loops release the GIL, so songs fitted on several threads at once
(``evaluate --songs-at-once``) run in parallel too.

PyTorch's convention for a real input ``x`` and a complex output ``H`` (conjugate
Wirtinger calculus): ``dL/dx = sum(Re(conj(g) * dH/dx))`` with ``g`` the gradient
arriving at ``H``.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numba
import numpy as np
import torch


@numba.njit(cache=True, nogil=True)
def _div(num, den):
    """``num / den`` without the scaling complex division does (``den`` is far from 0 and inf)."""
    return num * den.conjugate() / (den.real * den.real + den.imag * den.imag)


# -- running over tracks on threads -------------------------------------------------------------

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="mixinvert-responses")
        return _POOL


def over_rows(kernel: Callable[..., None], rows: int, *args) -> None:
    """``kernel(first, stop, *args)`` over ``range(rows)`` in up to ``torch.get_num_threads()``
    contiguous chunks, on a shared thread pool (the kernels release the GIL and write
    disjoint rows of their outputs). Why not numba's ``parallel=True``: its default
    threading layer may not be called from several threads at once, and songs are fitted
    on several threads at once (``evaluate --songs-at-once``)."""
    chunks = max(1, min(rows, torch.get_num_threads()))
    if chunks == 1:
        kernel(0, rows, *args)
        return
    bounds = np.linspace(0, rows, chunks + 1).astype(np.int64)
    futures = [_pool().submit(kernel, int(a), int(b), *args) for a, b in zip(bounds[:-1], bounds[1:])]
    for f in futures:
        f.result()


# -- reverb --------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True, fastmath=True)
def _reverb_rows(first, stop, combs, chain, z1, feedback, damp, h, common):
    """Freeverb's wet response per track and channel, for tracks ``first:stop``.

    A comb: ``C L / (L - G C)``, ``L = 1 - d z^-1``, ``G = f (1 - d)``; summed over the 8
    combs, times the allpass chain: ``h``. The derivatives share a factor, kept in
    ``common = chain S`` with ``S = sum C^2 / (L - G C)^2``: ``dH/df = (1 - d) L common``
    and ``dH/dd = (G z^-1 - f L) common`` (:func:`_reverb_grad_rows`).
    """
    channels, count, bins = combs.shape
    for t in range(first, stop):
        f = feedback[t]
        d = damp[t]
        g = f * (1.0 - d)
        for ch in range(channels):
            for i in range(bins):
                low = 1.0 - d * z1[i]
                total = 0j
                s = 0j
                for k in range(count):
                    c = combs[ch, k, i]
                    q = _div(c, low - g * c)
                    total += q * low
                    s += q * q
                h[t, ch, i] = chain[ch, i] * total
                common[t, ch, i] = chain[ch, i] * s


@numba.njit(cache=True, nogil=True, fastmath=True)
def _reverb_grad_rows(first, stop, grad, common, z1, feedback, damp, grad_f, grad_d):
    """``sum(Re(conj(g) dH/df))`` and the same for ``d``, per track (see :func:`_reverb_rows`)."""
    channels, bins = common.shape[1], common.shape[2]
    for t in range(first, stop):
        f = feedback[t]
        d = damp[t]
        g = f * (1.0 - d)
        total_f = 0.0
        total_d = 0.0
        for ch in range(channels):
            for i in range(bins):
                low = 1.0 - d * z1[i]
                w = np.conj(np.complex128(grad[t, ch, i])) * common[t, ch, i]
                total_f += (w * ((1.0 - d) * low)).real
                total_d += (w * (g * z1[i] - f * low)).real
        grad_f[t] = total_f
        grad_d[t] = total_d


class _ReverbResponses(torch.autograd.Function):
    @staticmethod
    def forward(ctx, feedback, damp, combs, chain, z1):
        f = np.ascontiguousarray(feedback.detach().numpy(), dtype=np.float64)
        d = np.ascontiguousarray(damp.detach().numpy(), dtype=np.float64)
        tracks, (channels, _, bins) = f.shape[0], combs.shape
        h = np.empty((tracks, channels, bins), dtype=np.complex64)
        common = np.empty((tracks, channels, bins), dtype=np.complex128)
        over_rows(_reverb_rows, tracks, combs, chain, z1, f, d, h, common)
        ctx.numpy = (common, z1, f, d)
        return torch.from_numpy(h)

    @staticmethod
    def backward(ctx, grad):
        common, z1, f, d = ctx.numpy
        g = np.ascontiguousarray(grad.detach().numpy())
        grad_f, grad_d = np.empty_like(f), np.empty_like(d)
        over_rows(_reverb_grad_rows, f.shape[0], g, common, z1, f, d, grad_f, grad_d)
        return torch.from_numpy(grad_f), torch.from_numpy(grad_d), None, None, None


def reverb_responses(feedback: torch.Tensor, damp: torch.Tensor, grid: tuple[np.ndarray, np.ndarray, np.ndarray]
                     ) -> torch.Tensor:
    """Freeverb's wet responses ``(tracks, 2, bins)`` complex64 for comb ``feedback`` and
    ``damp`` (``(tracks,)`` float64 tensors, differentiable) on ``grid = (combs (2, 8, bins),
    chain (2, bins), z^-1 (bins,))``, complex128 arrays; tracks run on threads."""
    combs, chain, z1 = grid
    return _ReverbResponses.apply(feedback.to(torch.float64).reshape(-1), damp.to(torch.float64).reshape(-1),
                                  combs, chain, z1)


def reverb_response(feedback: torch.Tensor, damp: torch.Tensor, grid: tuple[np.ndarray, np.ndarray, np.ndarray]
                    ) -> torch.Tensor:
    """:func:`reverb_responses` for one track: ``(2, bins)`` from 0-dim ``feedback`` and ``damp``."""
    return reverb_responses(feedback.reshape(1), damp.reshape(1), grid)[0]


# -- EQ ------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _eq_rows(first, stop, b, a, z1, h, over_b, over_a):
    """Per track ``t`` in ``first:stop``: the product of biquads ``(b0 + b1 z^-1 + b2 z^-2) /
    (a0 + a1 z^-1 + a2 z^-2)`` over the bins, float64 throughout (low cutoffs put poles
    next to ``z = 1``); also ``H / B_s`` and ``H / A_s`` per section, the derivatives'
    common factors (``dH/db_sj = H z^-j / B_s``, ``dH/da_sj = -H z^-j / A_s``)."""
    sections = b.shape[1]
    bins = z1.shape[0]
    for t in range(first, stop):
        for i in range(bins):
            w1 = z1[i]
            w2 = w1 * w1
            total = 1.0 + 0j
            for s in range(sections):
                num = b[t, s, 0] + b[t, s, 1] * w1 + b[t, s, 2] * w2
                den = a[t, s, 0] + a[t, s, 1] * w1 + a[t, s, 2] * w2
                over_b[t, s, i] = _div(1.0 + 0j, num)
                over_a[t, s, i] = _div(1.0 + 0j, den)
                total *= num * over_a[t, s, i]
            h[t, i] = total
            for s in range(sections):
                over_b[t, s, i] *= total
                over_a[t, s, i] *= total


@numba.njit(cache=True, nogil=True)
def _eq_grad_rows(first, stop, grad, over_b, over_a, z1, grad_b, grad_a):
    """``sum(Re(conj(g) dH/db_sj))`` and the same for ``a``, per track (see :func:`_eq_rows`)."""
    sections = over_b.shape[1]
    for t in range(first, stop):
        for s in range(sections):
            for j in range(3):
                grad_b[t, s, j] = 0.0
                grad_a[t, s, j] = 0.0
        for i in range(z1.shape[0]):
            g = np.conj(np.complex128(grad[t, i]))
            w1 = z1[i]
            w2 = w1 * w1
            for s in range(sections):
                gb = g * over_b[t, s, i]
                ga = g * over_a[t, s, i]
                grad_b[t, s, 0] += gb.real
                grad_b[t, s, 1] += (gb * w1).real
                grad_b[t, s, 2] += (gb * w2).real
                grad_a[t, s, 0] -= ga.real
                grad_a[t, s, 1] -= (ga * w1).real
                grad_a[t, s, 2] -= (ga * w2).real


class _BiquadChains(torch.autograd.Function):
    @staticmethod
    def forward(ctx, b, a, z1):
        b_np, a_np = b.detach().numpy(), a.detach().numpy()
        tracks, sections = b_np.shape[:2]
        h = np.empty((tracks, z1.shape[0]), dtype=np.complex64)
        over_b = np.empty((tracks, sections, z1.shape[0]), dtype=np.complex128)
        over_a = np.empty_like(over_b)
        over_rows(_eq_rows, tracks, b_np, a_np, z1, h, over_b, over_a)
        ctx.z1, ctx.over_b, ctx.over_a = z1, over_b, over_a
        return torch.from_numpy(h)

    @staticmethod
    def backward(ctx, grad):
        g = np.ascontiguousarray(grad.detach().numpy())
        tracks, sections = ctx.over_b.shape[:2]
        grad_b = np.empty((tracks, sections, 3))
        grad_a = np.empty((tracks, sections, 3))
        over_rows(_eq_grad_rows, tracks, g, ctx.over_b, ctx.over_a, ctx.z1, grad_b, grad_a)
        return torch.from_numpy(grad_b), torch.from_numpy(grad_a), None


def biquad_chain_responses(b: torch.Tensor, a: torch.Tensor, z1: np.ndarray) -> torch.Tensor:
    """The responses ``(tracks, bins)`` complex64 of biquads in series, one chain per track:
    ``b``, ``a`` ``(tracks, sections, 3)`` float64 tensors (differentiable), ``z1`` the grid's
    ``z^-1`` (complex128 array); tracks run on threads."""
    return _BiquadChains.apply(b.to(torch.float64).contiguous(), a.to(torch.float64).contiguous(), z1)


def biquad_chain_response(b: torch.Tensor, a: torch.Tensor, z1: np.ndarray) -> torch.Tensor:
    """:func:`biquad_chain_responses` for one chain: ``b``, ``a`` ``(sections, 3)`` -> ``(bins,)``."""
    return biquad_chain_responses(b[None], a[None], z1)[0]
