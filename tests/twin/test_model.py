"""The differentiable twin of console v1 against the real (pedalboard) console, stage by stage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mixinvert.console.render import Console, render_track
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
from mixinvert.twin import model as twin
from tests.conftest import SR, noise_track

pytestmark = pytest.mark.usefixtures("one_torch_thread")

S = CONSOLE_V1
NEUTRAL = np.array([NEUTRAL_V1[n] for n in S.names], dtype=np.float64)

#: Each processor group and the bound on the twin's relative RMS error (dB) against the
#: real console. Gain and pan are a multiply (float32 rounding only); the compressor and
#: reverb are exact in float64 and measure near -90 dB at worst; the EQ's error is
#: pedalboard's own float32 biquads at low cutoffs (about -56 dB at worst, seen against
#: a float64 lfilter), so its bound, and the whole chain's, is looser.
GROUPS = {
    "gain": (["gain_db"], -100.0),
    "eq": (
        [
            "eq_low_shelf_cutoff_hz", "eq_low_shelf_gain_db", "eq_peak_cutoff_hz", "eq_peak_gain_db",
            "eq_peak_q", "eq_high_shelf_cutoff_hz", "eq_high_shelf_gain_db",
        ],
        -50.0,
    ),
    "compressor": (["comp_threshold_db", "comp_ratio", "comp_attack_ms", "comp_release_ms"], -70.0),
    "pan": (["pan"], -100.0),
    "reverb": (["reverb_room_size", "reverb_damping", "reverb_wet"], -70.0),
    "all": (list(S.names), -50.0),
}
SECONDS = 0.5
#: Seconds of reverb tail on the twin's FFT grid. The grid is circular: reverb tail past
#: it wraps onto the start of the output, so the grid must outlast the reverb's decay.
#: 5 s (a 2**18 grid for these signals) is enough for room sizes up to 0.85 (feedback
#: 0.94); larger rooms decay for many seconds and would need a grid too slow for a unit
#: test, so the draws stop there.
TAIL = 5.0
MAX_ROOM = 0.85
#: Groups without reverb render fully dry: any tail will do, a short one is fast.
DRY_TAIL = 0.1


def rel_err_db(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(20.0 * np.log10(np.sqrt(np.mean((ours - ref) ** 2)) / np.sqrt(np.mean(ref**2))))


def group_values(rng: np.random.Generator, names: list[str]) -> np.ndarray:
    """Random physical values for ``names``, the other parameters neutral."""
    v = NEUTRAL.copy()
    drawn = S.denormalize(rng.uniform(-1.0, 1.0, S.size))
    for name in names:
        v[S.index(name)] = drawn[S.index(name)]
    if "comp_ratio" in names:  # make sure the compressor acts: threshold well inside the signal's range
        v[S.index("comp_threshold_db")] = min(v[S.index("comp_threshold_db")], -25.0)
        v[S.index("comp_ratio")] = max(v[S.index("comp_ratio")], 2.0)
    if "reverb_wet" in names:
        v[S.index("reverb_wet")] = max(v[S.index("reverb_wet")], 0.1)
        v[S.index("reverb_room_size")] = min(v[S.index("reverb_room_size")], MAX_ROOM)
    return v


def twin_track(x: np.ndarray, values: np.ndarray, **kw) -> np.ndarray:
    return twin.render_track(torch.from_numpy(x), SR, torch.tensor(values), **kw).detach().numpy()


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("group", list(GROUPS))
def test_stage_matches_console(group, channels):
    names, bound_db = GROUPS[group]
    rng = np.random.default_rng(100 + 10 * list(GROUPS).index(group) + channels)
    for _ in range(3):
        x = noise_track(rng, channels, SECONDS)
        values = group_values(rng, names)
        ref = render_track(x, SR, values)
        ours = twin_track(x, values, tail_seconds=TAIL if "reverb_wet" in names else DRY_TAIL)
        assert ours.shape == ref.shape == (2, x.shape[-1])
        assert ours.dtype == np.float32
        err = rel_err_db(ours, ref)
        assert err < bound_db, f"{group}, {channels} ch: {err:.1f} dB with {S.to_dict(values)}"
        # the stage is not the identity: the comparison means something
        assert rel_err_db(render_track(x, SR, NEUTRAL), ref) > bound_db + 10.0 or group == "pan"


def test_pan_moves_the_image():
    x = noise_track(np.random.default_rng(3), 1, 0.1)
    for p in (-1.0, -0.3, 0.6, 1.0):
        v = NEUTRAL.copy()
        v[S.index("pan")] = p
        ours = twin_track(x, v)
        theta = (p + 1.0) * math.pi / 4.0
        # fully dry reverb doubles the signal (pedalboard's dry scale)
        np.testing.assert_allclose(ours[0], 2 * math.cos(theta) * x[0], atol=1e-6)
        np.testing.assert_allclose(ours[1], 2 * math.sin(theta) * x[0], atol=1e-6)


def test_short_signal_long_reverb():
    rng = np.random.default_rng(11)
    x = noise_track(rng, 1, 0.05)
    v = NEUTRAL.copy()
    v[S.index("reverb_room_size")] = MAX_ROOM
    v[S.index("reverb_damping")] = 0.1
    v[S.index("reverb_wet")] = 0.8
    ref = render_track(x, SR, v)
    assert rel_err_db(twin_track(x, v, tail_seconds=TAIL), ref) < -70.0


def test_render_matches_console_mix():
    rng = np.random.default_rng(21)
    tracks = [noise_track(rng, 1, SECONDS), noise_track(rng, 2, SECONDS), noise_track(rng, 1, SECONDS)]
    p = rng.uniform(-0.8, 0.8, size=(3, S.size))
    p[2, S.index("reverb_wet")] = -1.0  # one fully dry track (the console's dry shortcut)
    values = S.denormalize(p)
    values[:, S.index("reverb_room_size")] = np.minimum(values[:, S.index("reverb_room_size")], MAX_ROOM)
    ref = Console(tracks, SR, workers=1).render(values)
    ours = twin.render(twin.as_tensor_tracks(tracks), SR, torch.tensor(values), tail_seconds=TAIL)
    assert ours.shape == ref.shape == (2, tracks[0].shape[-1])
    assert rel_err_db(ours.numpy(), ref) < -50.0
    # the mix is the sum of the tracks' contributions
    parts = sum(twin_track(t, v, tail_seconds=TAIL) for t, v in zip(tracks, values))
    np.testing.assert_allclose(ours.numpy(), parts, atol=1e-6)


def test_prepared_tracks_give_the_per_track_gradients():
    rng = np.random.default_rng(5)
    tracks = twin.as_tensor_tracks([noise_track(rng, 1, 0.3), noise_track(rng, 2, 0.3)])
    p = torch.tensor(rng.uniform(-0.8, 0.8, size=(2, S.size)))
    grads = []
    for render in (lambda v: twin.PreparedTracks(tracks, SR, tail_seconds=0.2).render(v),
                   lambda v: sum(twin.render_track(x, SR, row, tail_seconds=0.2) for x, row in zip(tracks, v))):
        q = p.clone().requires_grad_(True)
        (render(twin.denormalize(q)) ** 2).sum().backward()
        grads.append(q.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-4 * grads[1].abs().max().item())
    with pytest.raises(ValueError, match="same length"):
        twin.PreparedTracks([torch.zeros(1, 10), torch.zeros(1, 11)], SR)


def test_render_rejects_mismatched_parameters():
    tracks = twin.as_tensor_tracks([np.zeros((1, 100), np.float32)] * 2)
    with pytest.raises(ValueError):
        twin.render(tracks, SR, torch.tensor(np.stack([NEUTRAL] * 3)))
    with pytest.raises(ValueError):
        twin.render(tracks, SR, torch.tensor(NEUTRAL))


def test_render_track_rejects_bad_channels():
    with pytest.raises(ValueError):
        twin.render_track(torch.zeros(3, 100), SR, torch.tensor(NEUTRAL))
    with pytest.raises(ValueError):
        twin.render_track(torch.zeros(100), SR, torch.tensor(NEUTRAL))


def test_as_tensor_tracks():
    arrays = [np.ones((1, 5), dtype=np.float64), np.zeros((2, 5), dtype=np.float32)]
    tensors = twin.as_tensor_tracks(arrays)
    assert [t.dtype for t in tensors] == [torch.float32, torch.float32]
    assert [tuple(t.shape) for t in tensors] == [(1, 5), (2, 5)]
    np.testing.assert_array_equal(tensors[0].numpy(), arrays[0])


def test_fft_size():
    assert twin.fft_size(1000, 24) == 1024
    assert twin.fft_size(1000, 25) == 1152  # 2^7 x 3^2
    assert twin.fft_size(0, 0) == 2
    assert twin.fft_size(110250, 8192) == 120000  # 2^6 x 3 x 5^4, not 131072
    for n, tail in [(22050, 8192), (44100, 88200), (7, 1), (110250, 17640), (66150, 8192)]:
        size = twin.fft_size(n, tail)
        assert n + tail <= size < 2 * (n + tail)
        q = size
        for f in (2, 3, 5):
            while q % f == 0:
                q //= f
        assert q == 1  # 2, 3 and 5 only
        assert size <= 1024 or size % 64 == 0


# -- denormalize ---------------------------------------------------------------------------------


def test_denormalize_matches_schema():
    rng = np.random.default_rng(31)
    p = rng.uniform(-1.0, 1.0, size=(20, S.size))
    p[0] = -1.0
    p[1] = 1.0
    p[2] = 0.0
    np.testing.assert_allclose(twin.denormalize(torch.tensor(p)).numpy(), S.denormalize(p), rtol=1e-12, atol=1e-12)


def test_denormalize_is_differentiable():
    rng = np.random.default_rng(32)
    p = torch.tensor(rng.uniform(-0.9, 0.9, size=(2, S.size)), requires_grad=True)
    twin.denormalize(p).sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()
    assert (p.grad > 0).all()  # every parameter increases with p
    assert torch.autograd.gradcheck(twin.denormalize, (p.detach().clone().requires_grad_(),))
    # at the ends of the range too (log parameters at p = -1 and 1)
    ends = torch.tensor(np.stack([-np.ones(S.size), np.ones(S.size)]), requires_grad=True)
    twin.denormalize(ends).sum().backward()
    assert torch.isfinite(ends.grad).all()


# -- gradients ----------------------------------------------------------------------------------


def projection_loss(y: torch.Tensor, seed: int) -> torch.Tensor:
    """A random linear functional of the output: no parameter has a zero gradient by symmetry."""
    w = torch.from_numpy(np.random.default_rng(seed).standard_normal(tuple(y.shape)).astype(np.float32))
    return (y * w).sum() + (y**2).sum()


@pytest.mark.parametrize("channels", [1, 2])
def test_gradients_reach_parameters(channels):
    rng = np.random.default_rng(41 + channels)
    x = torch.from_numpy(noise_track(rng, channels, 0.2))
    v = S.denormalize(rng.uniform(-0.7, 0.7, S.size))
    v[S.index("comp_threshold_db")] = -25.0
    v[S.index("comp_ratio")] = 3.0
    v[S.index("reverb_wet")] = 0.4
    values = torch.tensor(v, requires_grad=True)
    y = twin.render_track(x, SR, values, tail_seconds=1.0)
    projection_loss(y, 0).backward()
    grad = values.grad
    assert grad is not None and torch.isfinite(grad).all()
    for name in [
        "gain_db", "eq_low_shelf_gain_db", "eq_peak_gain_db", "eq_peak_cutoff_hz", "eq_high_shelf_gain_db",
        "comp_threshold_db", "comp_ratio", "comp_attack_ms", "comp_release_ms", "pan",
        "reverb_room_size", "reverb_damping", "reverb_wet",
    ]:
        assert float(grad[S.index(name)]) != 0.0, name


def test_gain_gradient_matches_finite_difference():
    rng = np.random.default_rng(51)
    x = torch.from_numpy(noise_track(rng, 1, 0.1))
    v = S.denormalize(rng.uniform(-0.7, 0.7, S.size))
    v[S.index("reverb_wet")] = 0.3
    idx = S.index("gain_db")

    def loss(vals: torch.Tensor) -> torch.Tensor:
        return projection_loss(twin.render_track(x, SR, vals, tail_seconds=0.5), 1).to(torch.float64)

    values = torch.tensor(v, requires_grad=True)
    loss(values).backward()
    h = 1e-2
    up, down = v.copy(), v.copy()
    up[idx] += h
    down[idx] -= h
    fd = (float(loss(torch.tensor(up))) - float(loss(torch.tensor(down)))) / (2 * h)
    assert float(values.grad[idx]) == pytest.approx(fd, rel=1e-2)


def compressor_threshold_grad(x: np.ndarray, threshold_db: float, ratio: float) -> tuple[float, float]:
    v = NEUTRAL.copy()
    v[S.index("comp_threshold_db")] = threshold_db
    v[S.index("comp_ratio")] = ratio
    values = torch.tensor(v, requires_grad=True)
    y = twin.render_track(torch.from_numpy(x), SR, values)
    projection_loss(y, 2).backward()
    return float(values.grad[S.index("comp_threshold_db")]), float(values.grad[S.index("comp_ratio")])


def test_compressor_threshold_gradient():
    x = noise_track(np.random.default_rng(61), 1, 0.2, level=0.05)
    peak_db = 20 * np.log10(np.abs(x).max())
    assert -20.0 < peak_db < -6.0
    # the signal crosses the threshold: the threshold moves the output
    g_thr, g_ratio = compressor_threshold_grad(x, threshold_db=peak_db - 10.0, ratio=4.0)
    assert math.isfinite(g_thr) and g_thr != 0.0
    assert math.isfinite(g_ratio) and g_ratio != 0.0
    # the threshold is above the peak: the compressor does nothing and its gradient is 0
    g_thr, g_ratio = compressor_threshold_grad(x, threshold_db=-3.0, ratio=4.0)
    assert g_thr == 0.0 and g_ratio == 0.0


# -- reverb response ----------------------------------------------------------------------------


def test_reverb_response_shape_spread_and_dc():
    n_fft = 1 << 14
    for room, damping in [(0.2, 0.8), (0.9, 0.1)]:
        h = twin.reverb_response(
            torch.tensor(room, dtype=torch.float64), torch.tensor(damping, dtype=torch.float64), SR, n_fft
        )
        assert tuple(h.shape) == (2, n_fft // 2 + 1)
        assert h.dtype == torch.complex64
        assert torch.isfinite(h.real).all() and torch.isfinite(h.imag).all()
        # stereo spread: the right channel's delays are 23 samples longer
        diff = (h[0] - h[1]).abs()
        assert float(diff.max()) > 0.1 * float(h[0].abs().max())
        # at DC (z = r, the wrap guard's radius) every comb is r^-N (1 - d/r) / (1 - d/r - f (1 - d) r^-N)
        # and every allpass r^-M / (1 - r^-M / 2) - 1 (at r = 1: 1 / (1 - f) and 1)
        feedback, damp = 0.28 * room + 0.7, 0.4 * damping
        r = np.exp(twin.WRAP_GUARD_NEPERS / n_fft)
        for ch, spread in enumerate((0, twin.STEREO_SPREAD)):
            combs = sum(r ** -(t + spread) * (1 - damp / r) / (1 - damp / r - feedback * (1 - damp) * r ** -(t + spread))
                        for t in twin.COMB_TUNINGS)
            chain = np.prod([r ** -(t + spread) / (1 - 0.5 * r ** -(t + spread)) - 1 for t in twin.ALLPASS_TUNINGS])
            np.testing.assert_allclose(h[ch, 0].real.item(), combs * chain, rtol=1e-4)
            assert abs(h[ch, 0].imag.item()) < 1e-4 * abs(combs * chain)


def test_reverb_response_impulse_matches_time_domain_freeverb():
    """The closed form against Freeverb's difference equations run on an impulse (left channel)."""
    room, damping = 0.6, 0.3
    n = 4000  # samples simulated
    n_fft = 1 << 17  # long enough that the tail on the grid has died out
    feedback, damp = 0.28 * room + 0.7, 0.4 * damping
    impulse = np.zeros(n)
    impulse[0] = 1.0
    out = np.zeros(n)
    for delay in twin.COMB_TUNINGS:  # y[n] = x[n - N] + f * lp[n - N], lp[n] = (1 - d) y[n] + d lp[n - 1]
        buf = np.zeros(n)
        lp = np.zeros(n)
        for i in range(n):
            if i >= delay:
                buf[i] = impulse[i - delay] + feedback * lp[i - delay]
            lp[i] = (1 - damp) * buf[i] + damp * (lp[i - 1] if i else 0.0)
        out += buf
    for delay in twin.ALLPASS_TUNINGS:  # H = z^-M / (1 - z^-M / 2) - 1
        w = np.zeros(n)
        for i in range(delay, n):
            w[i] = out[i - delay] + 0.5 * w[i - delay]
        out = w - out
    h = twin.reverb_response(torch.tensor(room), torch.tensor(damping), SR, n_fft)
    # the response is taken on |z| = r (the wrap guard): its inverse FFT is h[t] r^-t
    ir = torch.fft.irfft(h[0].to(torch.complex128), n_fft).numpy()[:n]
    ir = ir * np.exp(twin.WRAP_GUARD_NEPERS / n_fft * np.arange(n))
    assert np.abs(out).max() > 0.1
    np.testing.assert_allclose(ir, out, atol=1e-5 * np.abs(out).max())


@pytest.mark.parametrize("seconds, tail_seconds, bound_db", [(0.05, 2.0, -33.0), (2.5, 0.4, -40.0)])
def test_reverb_tail_longer_than_the_grid_stays_close(seconds, tail_seconds, bound_db):
    """Room size 1 rings for about 10 s, far past the FFT grid: the wrap guard keeps the
    part that wraps around small (without it: +1.5 dB and -20 dB error). The grid is the
    smallest fast length past signal + tail (2.1 s here: 92 160 points; -33.7 dB)."""
    rng = np.random.default_rng(7)
    x = noise_track(rng, 1, seconds, level=0.3)
    row = dict(NEUTRAL_V1, reverb_room_size=1.0, reverb_damping=0.0, reverb_wet=1.0)
    values = np.array([row[n] for n in CONSOLE_V1.names])
    ref = render_track(x, SR, values)
    out = twin.render_track(torch.from_numpy(x), SR, torch.tensor(values), tail_seconds=tail_seconds).numpy()
    err_db = 20 * np.log10(np.sqrt(np.mean((out - ref) ** 2) / np.mean(ref ** 2)))
    assert err_db < bound_db
