"""JUCE's peak ballistics filter (the level detector of pedalboard's ``Compressor``), differentiable.

pedalboard's ``Compressor`` is ``juce::dsp::Compressor``: a peak envelope follower with
separate attack and release, then a static gain curve::

    a[n] = |x[n]|
    c[n] = c_attack if a[n] > y[n-1] else c_release       (y[-1] = 0)
    y[n] = a[n] + c[n] * (y[n-1] - a[n])
    c    = exp(-2 pi 1000 / (time_ms * sample_rate))

(matches pedalboard to float precision, tested). The recursion is sequential, so it runs
in numba, forward and backward, behind a :class:`torch.autograd.Function`: gradients
flow to the input level ``a`` and to both coefficients; the attack/release choice itself
is piecewise constant (as in torchcomp, whose install needs a C++ build of torchlpc and
which smooths the gain rather than the level, so it is not JUCE's compressor).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from mixinvert.twin.responses import over_rows


def time_constant(time_ms: torch.Tensor | float, sample_rate: float) -> torch.Tensor:
    """JUCE's one-pole coefficient ``exp(-2 pi 1000 / (time_ms * sample_rate))``."""
    time_ms = torch.as_tensor(time_ms, dtype=torch.float64)
    return torch.exp(-2.0 * math.pi * 1000.0 / (time_ms * float(sample_rate)))


@numba.njit(cache=True)
def _forward(a: np.ndarray, c_attack: np.ndarray, c_release: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, n = a.shape
    y = np.empty((rows, n), dtype=np.float64)
    attack = np.zeros((rows, n), dtype=np.bool_)
    for r in range(rows):
        prev = 0.0
        ca = c_attack[r]
        cr = c_release[r]
        for i in range(n):
            x = a[r, i]
            if x > prev:
                c = ca
                attack[r, i] = True
            else:
                c = cr
            prev = x + c * (prev - x)
            y[r, i] = prev
    return y, attack


@numba.njit(cache=True)
def _backward(
    grad_y: np.ndarray, a: np.ndarray, y: np.ndarray, attack: np.ndarray, c_attack: np.ndarray, c_release: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, n = a.shape
    grad_a = np.empty((rows, n), dtype=np.float64)
    grad_ca = np.zeros(rows, dtype=np.float64)
    grad_cr = np.zeros(rows, dtype=np.float64)
    for r in range(rows):
        ca = c_attack[r]
        cr = c_release[r]
        g = 0.0  # dL/dy[i], accumulated from the end
        c_next = 0.0
        for i in range(n - 1, -1, -1):
            g = grad_y[r, i] + c_next * g
            c = ca if attack[r, i] else cr
            grad_a[r, i] = g * (1.0 - c)
            prev = y[r, i - 1] if i > 0 else 0.0
            if attack[r, i]:
                grad_ca[r] += g * (prev - a[r, i])
            else:
                grad_cr[r] += g * (prev - a[r, i])
            c_next = c
    return grad_a, grad_ca, grad_cr


class _Ballistics(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: torch.Tensor, c_attack: torch.Tensor, c_release: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        a_np = a.detach().to(torch.float64).cpu().numpy()
        ca = c_attack.detach().to(torch.float64).cpu().numpy()
        cr = c_release.detach().to(torch.float64).cpu().numpy()
        y, attack = _forward(a_np, ca, cr)
        ctx.save_for_backward(a, c_attack, c_release)
        ctx.numpy = (a_np, y, attack, ca, cr)
        return torch.from_numpy(y).to(dtype=a.dtype, device=a.device)

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):  # type: ignore[override]
        a, c_attack, c_release = ctx.saved_tensors
        a_np, y, attack, ca, cr = ctx.numpy
        ga, gca, gcr = _backward(grad_y.detach().to(torch.float64).cpu().numpy(), a_np, y, attack, ca, cr)
        return (
            torch.from_numpy(ga).to(dtype=a.dtype, device=a.device),
            torch.from_numpy(gca).to(dtype=c_attack.dtype, device=c_attack.device),
            torch.from_numpy(gcr).to(dtype=c_release.dtype, device=c_release.device),
        )


def peak_envelope_numpy(level: np.ndarray, c_attack: float, c_release: float) -> np.ndarray:
    """The same recursion on a numpy ``level`` ``(rows, samples)`` with one pair of
    coefficients, float64 out, no autograd (for fitting compressors without gradients)."""
    level = np.ascontiguousarray(level, dtype=np.float64)
    rows = level.shape[0]
    y, _ = _forward(level, np.full(rows, float(c_attack)), np.full(rows, float(c_release)))
    return y


def peak_envelope(level: torch.Tensor, c_attack: torch.Tensor, c_release: torch.Tensor) -> torch.Tensor:
    """The ballistics recursion over the last axis of ``level`` (non-negative, ``|x|``).

    Parameters
    ----------
    level : torch.Tensor [shape=(rows, samples)], ``|x|``
    c_attack, c_release : torch.Tensor [shape=(rows,)], coefficients from :func:`time_constant`

    Returns
    -------
    torch.Tensor [shape=(rows, samples)], same dtype as ``level``
    """
    if level.ndim != 2:
        raise ValueError(f"expected (rows, samples), got {tuple(level.shape)}")
    rows = level.shape[0]
    c_attack = torch.as_tensor(c_attack, dtype=torch.float64).expand(rows).contiguous()
    c_release = torch.as_tensor(c_release, dtype=torch.float64).expand(rows).contiguous()
    return _Ballistics.apply(level, c_attack, c_release)


# -- the whole compressor, fused -------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _compress_rows(first, stop, x, threshold, exponent, c_attack, c_release, out, env, attack):
    """Rows ``first:stop`` of ``x * g`` with ``g = (env / threshold) ** exponent`` above the
    threshold (1 below), ``env`` the ballistics of ``|x|`` per row, each row with its own
    settings; also ``env`` and the attack flags (written into ``out``, ``env``, ``attack``)."""
    n = x.shape[1]
    for r in range(first, stop):
        prev = 0.0
        ca, cr, thr, e = c_attack[r], c_release[r], threshold[r], exponent[r]
        for i in range(n):
            a = abs(np.float64(x[r, i]))
            if a > prev:
                c = ca
                attack[r, i] = True
            else:
                c = cr
                attack[r, i] = False
            prev = a + c * (prev - a)
            env[r, i] = prev
            over = prev / thr
            g = math.exp(e * math.log(over)) if over > 1.0 else 1.0
            out[r, i] = np.float32(x[r, i] * g)


@numba.njit(cache=True, nogil=True)
def _compress_grad_rows(first, stop, grad_out, x, env, attack, threshold, exponent, c_attack, c_release,
                        grad_x, grad_threshold, grad_exponent, grad_ca, grad_cr):
    """Gradients of :func:`_compress_rows` with respect to ``x`` and each row's threshold
    (linear), exponent and both coefficients, in one pass from the end per row (the
    ballistics' adjoint recursion)."""
    n = x.shape[1]
    for r in range(first, stop):
        ca, cr, thr, ex = c_attack[r], c_release[r], threshold[r], exponent[r]
        g_thr = 0.0
        g_ex = 0.0
        g_ca = 0.0
        g_cr = 0.0
        carried = 0.0  # dL/denv[i] arriving through env[i + 1]
        c_next = 0.0
        for i in range(n - 1, -1, -1):
            xi = np.float64(x[r, i])
            go = np.float64(grad_out[r, i])
            e = env[r, i]
            over = e / thr
            grad_env = 0.0
            if over > 1.0:
                log_over = math.log(over)
                g = math.exp(ex * log_over)
                d = go * xi * g  # dL/dlog(g)
                grad_env = d * ex / e
                g_thr -= d * ex / thr
                g_ex += d * log_over
            else:
                g = 1.0
            total = grad_env + c_next * carried  # dL/denv[i]
            c = ca if attack[r, i] else cr
            prev = env[r, i - 1] if i > 0 else 0.0
            if attack[r, i]:
                g_ca += total * (prev - abs(xi))
            else:
                g_cr += total * (prev - abs(xi))
            sign = 1.0 if xi > 0.0 else (-1.0 if xi < 0.0 else 0.0)
            grad_x[r, i] = np.float32(go * g + total * (1.0 - c) * sign)
            carried = total
            c_next = c
        grad_threshold[r] = g_thr
        grad_exponent[r] = g_ex
        grad_ca[r] = g_ca
        grad_cr[r] = g_cr


class _Compress(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, threshold, exponent, c_attack, c_release):  # type: ignore[override]
        x_np = np.ascontiguousarray(x.detach().numpy(), dtype=np.float32)
        settings = tuple(np.ascontiguousarray(v.detach().numpy(), dtype=np.float64)
                         for v in (threshold, exponent, c_attack, c_release))
        rows, n = x_np.shape
        out = np.empty((rows, n), dtype=np.float32)
        env = np.empty((rows, n), dtype=np.float64)
        attack = np.empty((rows, n), dtype=np.bool_)
        over_rows(_compress_rows, rows, x_np, *settings, out, env, attack)
        ctx.numpy = (x_np, env, attack, settings)
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        x_np, env, attack, settings = ctx.numpy
        g = np.ascontiguousarray(grad_out.detach().numpy(), dtype=np.float32)
        rows = x_np.shape[0]
        grad_x = np.empty_like(x_np)
        grads = [np.empty(rows) for _ in range(4)]
        over_rows(_compress_grad_rows, rows, g, x_np, env, attack, *settings, grad_x, *grads)
        return (torch.from_numpy(grad_x), *(torch.from_numpy(v) for v in grads))


def compress(x: torch.Tensor, threshold: torch.Tensor, exponent: torch.Tensor, c_attack: torch.Tensor,
             c_release: torch.Tensor) -> torch.Tensor:
    """``juce::dsp::Compressor`` on every row of ``x`` ``(rows, samples)`` float32 (CPU), in one
    numba loop forward and one backward: the ballistics of ``|x|`` (:func:`peak_envelope`) and
    the gain ``(env / threshold) ** exponent`` above the threshold, ``exponent = 1 / ratio - 1``.
    ``threshold`` (linear), ``exponent`` and the coefficients are float64 tensors, 0-dim (one
    setting for every row) or ``(rows,)`` (a compressor per row: the tracks of a mix), all
    differentiable; rows run on threads. Equal to the same written as torch operations
    (``twin.compressor`` before this existed; the tests keep that version) to float
    precision, with the same gradients. It saves the torch version's conversions and
    stored intermediates, but its power is scalar code per sample, which costs more than
    the torch version on tracks compressed nearly everywhere; samples under the threshold
    skip the power (BENCHMARKS.md, "Differentiable twin: cost of a fitting step")."""
    if x.ndim != 2 or x.dtype != torch.float32:
        raise ValueError(f"expected float32 (rows, samples), got {x.dtype} {tuple(x.shape)}")
    rows = x.shape[0]
    settings = []
    for v in (threshold, exponent, c_attack, c_release):
        v = torch.as_tensor(v, dtype=torch.float64)
        if v.ndim == 0:
            v = v.expand(rows)
        if tuple(v.shape) != (rows,):
            raise ValueError(f"compressor settings must be 0-dim or ({rows},), got {tuple(v.shape)}")
        settings.append(v)
    return _Compress.apply(x, *settings)
