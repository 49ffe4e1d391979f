"""The differentiable twin of console v2 against the real (pedalboard) console v2, stage by stage."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from mixinvert.console.mixing import sum_values
from mixinvert.console.render_v2 import ConsoleV2
from mixinvert.console.schema import CONSOLE_V2
from mixinvert.twin import model_v2

pytestmark = pytest.mark.usefixtures("one_torch_thread")

S, SH = CONSOLE_V2, CONSOLE_V2.shared
SR = 44100
#: Each group of effects (per track, shared) drawn at random with the others neutral, and
#: the bound on the twin's relative RMS error (dB) against the real console. The time
#: offset's error is the two grids' different handling of a fractional shift's far tails;
#: the EQ's is pedalboard's float32 biquads (as console v1's twin).
GROUPS = {
    "fader and pan": (("fader", "pan"), (), -100.0),
    "polarity and time offset": (("polarity", "time"), (), -50.0),
    "drive": (("drive",), (), -100.0),
    "high-pass": (("hpf",), (), -90.0),
    "eq": (("eq",), (), -50.0),
    "compressor": (("compressor",), (), -70.0),
    "reverb bus": (("sends",), ("reverb bus",), -70.0),
    "master eq": ((), ("master eq",), -50.0),
    "master compressor": ((), ("master compressor", "master gain"), -70.0),
    "whole chain but drive": (("polarity", "time", "hpf", "eq", "compressor", "fader", "pan", "sends"),
                              ("reverb bus", "master eq", "master compressor", "master gain"), -40.0),
}


def _tracks(rng: np.random.Generator, seconds: float = 1.0) -> list[np.ndarray]:
    n = int(seconds * SR)
    env = np.repeat(rng.uniform(0.05, 1.0, n // 2205 + 1), 2205)[:n]
    return [(rng.standard_normal((c, n)) * env * 0.3).astype(np.float32) for c in (1, 2, 1)]


def _draw(rng, tracks, track_effects, shared_effects) -> tuple[np.ndarray, np.ndarray]:
    p = S.normalize(sum_values(S, tracks))
    for name in (n for e in track_effects for n in S.effects[e]):
        p[:, S.index(name)] = rng.uniform(-0.9, 0.9, len(tracks))
    ps = SH.normalize(SH.from_dict(SH.neutral()))
    for name in (n for e in shared_effects for n in SH.effects[e]):
        ps[SH.index(name)] = rng.uniform(-0.9, 0.9)
    return S.denormalize(p), SH.denormalize(ps)


@pytest.mark.parametrize("group", list(GROUPS))
def test_twin_matches_the_console(group):
    track_effects, shared_effects, bound_db = GROUPS[group]
    rng = np.random.default_rng(zlib.crc32(group.encode()))
    worst = -np.inf
    for _ in range(3):
        tracks = _tracks(rng)
        values, shared = _draw(rng, tracks, track_effects, shared_effects)
        real = ConsoleV2(tracks, SR).render(values, shared)
        est = model_v2.render([torch.from_numpy(t) for t in tracks], SR, *model_v2.np_settings(values, shared),
                              tail_seconds=6.0).numpy()
        err = np.sqrt(np.mean((est - real) ** 2)) / (np.sqrt(np.mean(real ** 2)) + 1e-12)
        worst = max(worst, 20 * np.log10(err + 1e-12))
    assert worst < bound_db, f"{group}: {worst:.1f} dB"


def test_gradients_reach_every_fitted_setting(rng):
    tracks = _tracks(rng, 0.5)
    values, shared = _draw(rng, tracks, ("hpf", "eq", "compressor", "fader", "pan", "sends", "drive"),
                           ("reverb bus", "master eq", "master compressor", "master gain"))
    v = torch.tensor(values, requires_grad=True)
    s = torch.tensor(shared, requires_grad=True)
    out = model_v2.render([torch.from_numpy(t) for t in tracks], SR, v, s, tail_seconds=0.5)
    (out ** 2).sum().backward()
    assert torch.isfinite(v.grad).all() and torch.isfinite(s.grad).all()
    fitted = [S.index(n) for n in S.names if S.spec(n).effect not in ("polarity", "time")]
    # (width acts on the stereo track only; one is enough for a gradient)
    has_grad = (v.grad[:, fitted] != 0).any(dim=0)
    missing = [S.names[i] for i, ok in zip(fitted, has_grad) if not ok]
    assert missing == [], missing
    shared_missing = [SH.names[i] for i in range(SH.size) if s.grad[i] == 0
                      and SH.specs[i].effect != "master limiter"]
    assert shared_missing == [], shared_missing


def test_a_cached_shift_is_reused_only_for_the_same_offsets(rng):
    tracks = [torch.from_numpy(t) for t in _tracks(rng, 0.3)]
    prepared = model_v2.PreparedTracksV2(tracks, SR, tail_seconds=0.2)
    values, shared = (torch.tensor(x) for x in _draw(rng, [t.numpy() for t in tracks], ("time",), ()))
    a = prepared.render(values, shared)
    moved = values.clone()
    moved[:, S.index("offset_ms")] += 1.0
    b = prepared.render(moved, shared)
    fresh = model_v2.PreparedTracksV2(tracks, SR, tail_seconds=0.2).render(moved, shared)
    assert not torch.equal(a, b) and torch.equal(b, fresh)
