"""Fitting the differentiable twin of console v1 to a reference mix, by gradient descent.

:func:`fit_twin` is the fit that ``colonel-reiss`` runs on its own and ``eami+refine``
runs as its second stage:

- Variables are ``z`` with normalized settings ``p = tanh(z)``, so every step stays in
  range. The caller gives the start (colonel-reiss: the plain sum, with the compressor's
  threshold at mid range and its ratio just above 1, and the reverb just above dry: at
  exactly ratio 1 or zero wet the gradients of the other compressor and reverb settings
  are zero).
- Steps cycle over a few loud excerpts of the song (:func:`~mixinvert.dsp.excerpts.choose_excerpts`),
  each rendered with pre-roll; every ``eval_every`` steps the loss over all excerpts is
  measured and the best settings so far are kept.
- It stops after ``steps``, after ``patience`` evaluations without a relative improvement
  of ``min_improvement``, or when its work budget runs out (a
  :class:`~mixinvert.work.WorkMeter`: steps and evaluations priced in work units),
  whichever comes first: the result depends only on the song, the settings and the budget.
  A wall-clock cap on the meter may cut it short too (then it depends on the machine).

The loss is auraloss's multi-resolution STFT loss against the fixed reference
(:class:`ReferenceLoss`, its gradient written out).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from mixinvert.console.schema import CONSOLE_V1, ParamSchema
from mixinvert.data.song import Song, SongError
from mixinvert.dsp.excerpts import Excerpt, choose_excerpts
from mixinvert.errors import InputError
from mixinvert.executors import torch_threads
from mixinvert.twin import model as twin
from mixinvert.work import FIT_THREADS, PRICES, Prices, WorkMeter, prices_for, span_seconds

log = logging.getLogger(__name__)

#: Normalized values are kept this far inside [-1, 1] so that ``atanh`` stays finite.
P_LIMIT = 0.97
#: The compressor's threshold at the start, normalized (mid range: -20 dB).
START_THRESHOLD_P = 0.0
#: Shortest song the loss can score (its largest STFT, 2048 points, reflect-pads 1024).
MIN_SAMPLES = 2048


@dataclass(frozen=True)
class TwinFitConfig:
    """Settings of :func:`fit_twin` (defaults: the ``colonel-reiss`` method's)."""

    steps: int = 200
    learning_rate: float = 0.06
    excerpts: int = 4
    excerpt_seconds: float = 2.0
    preroll_seconds: float = 0.5
    tail_seconds: float = 0.4
    eval_every: int = 20
    patience: int = 3
    min_improvement: float = 0.01
    #: Weight of a penalty on the EQ's gains (a smooth L1 of their normalized values, summed
    #: over tracks and bands) added to the loss: among settings that sound nearly the same
    #: (a track's gain up and every band down), the fit prefers the flatter EQ. 0 (the
    #: published method) fits the loss alone.
    eq_flat_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise InputError("steps must be at least 0")
        if self.eval_every < 1 or self.patience < 1 or self.excerpts < 1:
            raise InputError("eval_every, patience and excerpts must be at least 1")
        if not self.eq_flat_weight >= 0:  # NaN too
            raise InputError("eq_flat_weight must be at least 0")


@dataclass
class TwinFit:
    """The outcome of :func:`fit_twin`: the best normalized settings and how it got there."""

    p: np.ndarray
    loss: float
    start_loss: float
    steps: int
    seconds: float
    stopped: str
    history: list[tuple[int, float]] = field(default_factory=list)
    #: The best normalized shared settings (console v2's buses and master), or None for v1.
    shared_p: np.ndarray | None = None


#: The EQ's gains, which :attr:`TwinFitConfig.eq_flat_weight` pulls towards 0 dB, and the
#: width (normalized units) under which that penalty is quadratic (smooth for Adam at 0).
EQ_GAINS = ("eq_low_shelf_gain_db", "eq_peak_gain_db", "eq_high_shelf_gain_db")
EQ_FLAT_EPS = 0.02


def _mrstft_loss() -> torch.nn.Module:
    from auraloss.freq import MultiResolutionSTFTLoss

    # auraloss's defaults are the paper's MRSD resolutions (1024/120/600, 2048/240/1200, 512/50/240)
    return MultiResolutionSTFTLoss()


class ReferenceLoss:
    """auraloss's multi-resolution STFT loss (:func:`_mrstft_loss`: spectral convergence plus
    log-magnitude L1 at the paper's three resolutions) against one fixed ``reference``
    ``(1, channels, samples)``, with the reference's magnitudes computed once.

    auraloss recomputes the reference's STFT on every call and takes the phase of both
    signals (unused by this loss), and autograd runs the STFT's backward op by op (a
    transposed copy and an overlap-add per resolution): together more than half of a
    fitting step. Here the frames are transformed once, and the gradient is written out
    in the same pass (:class:`_FusedLoss`): the magnitudes' gradient, the real FFT's
    adjoint (an inverse real FFT with the interior bins halved), the window, an
    overlap-add (``fold``) and the reflect padding's adjoint. auraloss's STFT settings and
    windows are used as they are; value and gradient equal auraloss's to float precision
    (tested).
    """

    def __init__(self, reference: torch.Tensor) -> None:
        self._plans = []
        reference = reference.detach().reshape(-1, reference.shape[-1])
        for f in _mrstft_loss().stft_losses:
            left = (f.fft_size - f.win_length) // 2  # torch.stft centres a shorter window
            window = torch.zeros(f.fft_size, dtype=torch.float32)
            window[left:left + f.win_length] = f.window
            plan = (f.fft_size, f.hop_size, window, float(f.eps), float(f.w_sc), float(f.w_log_mag))
            mag = self._magnitude(plan, reference)[0]
            self._plans.append((plan, mag, torch.linalg.norm(mag), torch.log(mag)))

    @staticmethod
    def _magnitude(plan: tuple, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``|STFT|`` ``(rows, frames, bins)`` of ``x`` ``(rows, samples)`` as torch.stft frames it
        (centred, reflect padding), with the spectrum and the power."""
        n_fft, hop, window, eps = plan[:4]
        pad = n_fft // 2
        padded = torch.nn.functional.pad(x[:, None, :], (pad, pad), mode="reflect")[:, 0]
        spectrum = torch.fft.rfft(padded.unfold(-1, n_fft, hop) * window, dim=-1)
        power = spectrum.real ** 2 + spectrum.imag ** 2
        return torch.sqrt(torch.clamp(power, min=eps)), spectrum, power

    @staticmethod
    def _adjoint(plan: tuple, grad: torch.Tensor, num_samples: int) -> torch.Tensor:
        """The gradient ``(rows, samples)`` of the signal from the gradient ``grad`` of its
        spectrum ``(rows, frames, bins)`` (PyTorch's convention: ``dL/dRe + i dL/dIm``)."""
        n_fft, hop, window = plan[:3]
        pad = n_fft // 2
        grad = grad.clone()
        grad[..., 1:n_fft // 2] *= 0.5  # irfft counts the interior bins twice
        frames = torch.fft.irfft(grad, n_fft, dim=-1) * (n_fft * window)  # (rows, frames, n_fft)
        rows, padded = frames.shape[0], num_samples + 2 * pad
        summed = torch.nn.functional.fold(frames.transpose(1, 2), output_size=(1, padded),
                                          kernel_size=(1, n_fft), stride=(1, hop)).reshape(rows, padded)
        out = summed[:, pad:pad + num_samples].clone()
        out[:, 1:pad + 1] += summed[:, :pad].flip(-1)  # the reflect padding's adjoint
        out[:, num_samples - 1 - pad:num_samples - 1] += summed[:, pad + num_samples:].flip(-1)
        return out

    def value_and_grad(self, x: torch.Tensor, with_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The loss (0-dim) of ``x`` ``(..., samples)`` and, if ``with_grad``, its gradient
        (same shape as ``x``)."""
        rows = x.detach().reshape(-1, x.shape[-1])
        total = rows.new_zeros((), dtype=torch.float64)
        grad = torch.zeros_like(rows) if with_grad else None
        for plan, y_mag, y_norm, y_log in self._plans:
            w_sc, w_log_mag = plan[4], plan[5]
            x_mag, spectrum, power = self._magnitude(plan, rows)
            diff = x_mag - y_mag
            diff_norm = torch.linalg.norm(diff)
            log_diff = torch.log(x_mag) - y_log
            total = total + w_sc * diff_norm / y_norm + w_log_mag * log_diff.abs().mean()
            if with_grad:
                d_mag = w_log_mag * torch.sign(log_diff) / (log_diff.numel() * x_mag)
                if diff_norm > 0:
                    d_mag = d_mag + (w_sc / float(diff_norm * y_norm)) * diff
                d_spectrum = torch.where(power > plan[3], d_mag / x_mag, 0.0) * spectrum
                grad += self._adjoint(plan, d_spectrum, rows.shape[-1])
        n = len(self._plans)
        return (total / n).to(x.dtype), (grad / n).reshape(x.shape) if with_grad else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return _FusedLoss.apply(x, self)
        return self.value_and_grad(x, with_grad=False)[0]


class _FusedLoss(torch.autograd.Function):
    """:class:`ReferenceLoss` with the gradient computed in the forward pass."""

    @staticmethod
    def forward(ctx, x, loss):  # type: ignore[override]
        value, grad = loss.value_and_grad(x)
        ctx.save_for_backward(grad)
        return value

    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return grad * grad_output.to(grad.dtype), None


def fit_twin(
    tracks: Sequence[np.ndarray],
    mix: np.ndarray,
    sample_rate: int,
    p_start: np.ndarray,
    config: TwinFitConfig = TwinFitConfig(),
    *,
    progress: Callable[[int, float], None] | None = None,
    free: np.ndarray | None = None,
    excerpts: Sequence[Excerpt] | None = None,
    meter: WorkMeter | None = None,
    schema: ParamSchema = CONSOLE_V1,
    shared_start: np.ndarray | None = None,
    free_shared: np.ndarray | None = None,
) -> TwinFit:
    """Fit normalized settings ``(n_tracks, schema.size)`` so that the twin's mix matches ``mix``.

    For a console with shared settings (v2: ``schema.shared``), ``shared_start`` are their
    normalized start values and ``free_shared`` (boolean, default none) marks those to
    fit, the same way as ``free`` for the tracks'; the result's ``shared_p`` holds them.

    ``progress(step, best_loss)`` is called after every evaluation. ``free`` (boolean,
    broadcastable to ``(n_tracks, 16)``; default all) marks the settings to fit; the others
    stay exactly at ``p_start`` (the fitted ones start from it clipped to
    ``[-P_LIMIT, P_LIMIT]``). ``excerpts`` replaces the default choice (the loudest windows of
    the mix, ``config.excerpts`` of ``config.excerpt_seconds``). Returns the best settings seen (the start included), never worse
    on the excerpt loss than ``p_start`` clipped to ``[-P_LIMIT, P_LIMIT]``. With
    ``config.eq_flat_weight`` the loss (``TwinFit.loss``, ``start_loss``, ``history``)
    includes the EQ penalty. ``meter`` is charged for every step and evaluation
    (:func:`twin_step_units`, :func:`twin_evaluation_units`); the fit stops, after one last
    evaluation, before a step it could not pay for with that evaluation (``stopped``
    ``"budget"``), or when the meter's wall-clock cap has passed (``"seconds cap"``). Torch
    runs with :data:`~mixinvert.work.FIT_THREADS` threads, on any machine.
    """
    with torch_threads(FIT_THREADS):
        return _fit_twin(tracks, mix, sample_rate, p_start, config, progress, free, excerpts, meter, schema,
                         shared_start, free_shared)


def _fit_twin(tracks: Sequence[np.ndarray], mix: np.ndarray, sample_rate: int, p_start: np.ndarray,
              config: TwinFitConfig, progress: Callable[[int, float], None] | None, free: np.ndarray | None,
              excerpts: Sequence[Excerpt] | None, meter: WorkMeter | None, schema: ParamSchema = CONSOLE_V1,
              shared_start: np.ndarray | None = None, free_shared: np.ndarray | None = None) -> TwinFit:
    t_start = time.perf_counter()
    p_given = np.asarray(p_start, dtype=np.float64)
    if p_given.shape != (len(tracks), schema.size):
        raise ValueError(f"p_start must be ({len(tracks)}, {schema.size}), got {p_given.shape}")
    if excerpts is None:
        excerpts = choose_excerpts(mix, sample_rate, count=config.excerpts, seconds=config.excerpt_seconds,
                                   preroll_seconds=config.preroll_seconds)
    excerpts = list(excerpts)
    audio = twin.as_tensor_tracks(tracks)
    references = [ReferenceLoss(torch.from_numpy(np.ascontiguousarray(mix[None, :, e.start:e.stop], dtype=np.float32)))
                  for e in excerpts]
    # the variables: the tracks' settings, and on a console with shared settings those too
    starts, frees = [p_given], [free]
    if schema.shared is None:
        prepared = [twin.PreparedTracks([t[:, e.render_start:e.stop] for t in audio], sample_rate,
                                        tail_seconds=config.tail_seconds) for e in excerpts]

        def render(index: int, p: torch.Tensor) -> torch.Tensor:
            return prepared[index].render(twin.denormalize(p))
    else:
        from mixinvert.twin import model_v2

        shared_schema = schema.shared
        s_given = (np.asarray(shared_start, dtype=np.float64) if shared_start is not None
                   else shared_schema.normalize(shared_schema.from_dict(shared_schema.neutral())))
        if s_given.shape != (shared_schema.size,):
            raise ValueError(f"shared_start must be ({shared_schema.size},), got {s_given.shape}")
        starts.append(s_given)
        frees.append(np.zeros(s_given.shape, dtype=bool) if free_shared is None else free_shared)
        prepared_v2 = [model_v2.PreparedTracksV2([t[:, e.render_start:e.stop] for t in audio], sample_rate,
                                                 schema=schema, tail_seconds=config.tail_seconds) for e in excerpts]

        moving = [schema.index("offset_ms"), schema.index("polarity")]
        fixed_offsets = not np.broadcast_to(
            np.asarray(True if free is None else free, dtype=bool), p_given.shape)[:, moving].any()

        def render(index: int, p: torch.Tensor, ps: torch.Tensor) -> torch.Tensor:  # type: ignore[misc]
            return prepared_v2[index].render(twin.denormalize(p, schema), twin.denormalize(ps, shared_schema),
                                             fixed_offsets=fixed_offsets)

    zs = [torch.tensor(np.arctanh(np.clip(x, -P_LIMIT, P_LIMIT)), requires_grad=True) for x in starts]
    masks = [torch.ones(x.shape, dtype=torch.bool) if f is None else torch.from_numpy(
        np.broadcast_to(np.asarray(f, dtype=bool), x.shape).copy()) for x, f in zip(starts, frees)]
    fixed = [torch.tensor(x) for x in starts]  # settings not fitted keep their exact values (e.g. ratio 1:1)
    optimizer = torch.optim.Adam(zs, lr=config.learning_rate)

    def settings() -> list[torch.Tensor]:
        return [torch.where(m, torch.tanh(z), f) for m, z, f in zip(masks, zs, fixed)]

    eq_gains = [CONSOLE_V1.index(n) for n in EQ_GAINS] if schema.shared is None else []

    def excerpt_loss(index: int, ps: list[torch.Tensor]) -> torch.Tensor:
        out = render(index, *ps)
        loss = references[index](out[None, :, excerpts[index].preroll:])
        if config.eq_flat_weight and eq_gains:
            g = ps[0][:, eq_gains]
            loss = loss + config.eq_flat_weight * (torch.sqrt(g * g + EQ_FLAT_EPS ** 2) - EQ_FLAT_EPS).sum()
        return loss

    def evaluate(ps: list[torch.Tensor]) -> float:
        with torch.no_grad():
            return float(np.mean([excerpt_loss(i, ps).item() for i in range(len(excerpts))]))

    prices = prices_for(schema.version)
    step_units = [twin_step_units(len(tracks), [e], sample_rate, config.tail_seconds, prices) for e in excerpts]
    eval_units = twin_evaluation_units(len(tracks), excerpts, sample_rate, config.tail_seconds, prices)
    meter = meter if meter is not None else WorkMeter()

    def affordable(step: int) -> bool:  # step ``step`` and the evaluation that may close the fit
        return meter.can_afford(step_units[(step - 1) % len(excerpts)] + eval_units)

    best_p = [x.detach().clone() for x in settings()]
    best = start_loss = evaluate(best_p)
    meter.charge(eval_units)
    history = [(0, best)]
    stale, step, stopped = 0, 0, "steps"
    if config.steps > 0 and not affordable(1):
        stopped = "budget"
    for step in range(1, config.steps + 1 if stopped == "steps" else 1):
        optimizer.zero_grad()
        loss = excerpt_loss((step - 1) % len(excerpts), settings())
        meter.charge(step_units[(step - 1) % len(excerpts)])
        if not torch.isfinite(loss):
            stopped = "non-finite loss"
            break
        loss.backward()
        optimizer.step()
        out_of_work = step < config.steps and not affordable(step + 1)
        out_of_time = meter.time_is_up("twin")
        if step % config.eval_every == 0 or step == config.steps or out_of_work or out_of_time:
            p_now = [x.detach().clone() for x in settings()]
            current = evaluate(p_now)
            meter.charge(eval_units)
            history.append((step, current))
            if current < best * (1.0 - config.min_improvement):
                stale = 0
            else:
                stale += 1
            if current < best:
                best, best_p = current, p_now
            if progress is not None:
                progress(step, best)
            if out_of_time:
                stopped = "seconds cap"
                break
            if out_of_work:
                stopped = "budget"
                break
            if stale >= config.patience:
                stopped = "plateau"
                break
    return TwinFit(
        p=best_p[0].numpy().astype(np.float64), loss=best, start_loss=start_loss, steps=step,
        seconds=time.perf_counter() - t_start, stopped=stopped, history=history,
        shared_p=best_p[1].numpy().astype(np.float64) if len(best_p) > 1 else None,
    )


def _twin_track_seconds(tracks: int, excerpts: Sequence[Excerpt], sample_rate: int, tail_seconds: float) -> float:
    """Track-seconds the twin renders on ``excerpts`` (pre-roll and reverb tail included)."""
    return tracks * sum(s + tail_seconds for s in span_seconds(excerpts, sample_rate))


def twin_step_units(tracks: int, excerpts: Sequence[Excerpt], sample_rate: int, tail_seconds: float,
                    prices: Prices = PRICES) -> float:
    """Work units of twin steps on ``excerpts`` (one step each) for ``tracks`` tracks."""
    return prices.twin_step * _twin_track_seconds(tracks, excerpts, sample_rate, tail_seconds)


def twin_evaluation_units(tracks: int, excerpts: Sequence[Excerpt], sample_rate: int, tail_seconds: float,
                          prices: Prices = PRICES) -> float:
    """Work units of one evaluation of the twin's loss over ``excerpts``."""
    return prices.twin_eval * _twin_track_seconds(tracks, excerpts, sample_rate, tail_seconds)


def check_fittable(song: Song, method: str) -> None:
    """A :class:`SongError` if ``song`` has no reference mix or is too short for the loss."""
    if song.mix is None:
        raise SongError(f"{song.name}: {method} needs the reference mix")
    if song.num_samples < MIN_SAMPLES:
        raise SongError(f"{song.name}: {song.num_samples / song.sample_rate:.3f} s is too short for {method} "
                        f"(its loss needs at least {MIN_SAMPLES} samples)")
