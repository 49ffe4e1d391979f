"""The real console scored on excerpts, one track at a time (``methods.refine.objective``)."""

from __future__ import annotations

import numpy as np
import pytest

from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
from mixinvert.dsp.excerpts import Excerpt
from mixinvert.methods.refine.objective import ExcerptObjective
from mixinvert.metrics.audio import mrsd
from tests.conftest import SR, noise_track


def _values(rows):
    return np.stack([CONSOLE_V1.from_dict({**NEUTRAL_V1, **r}) for r in rows])


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(3)
    tracks = [noise_track(rng, 1, 2.0), noise_track(rng, 2, 2.0), noise_track(rng, 1, 2.0)]
    truth = _values([{"gain_db": -6.0, "pan": -0.5}, {"gain_db": 0.0, "reverb_wet": 0.2},
                     {"gain_db": 3.0, "eq_peak_gain_db": 6.0, "comp_threshold_db": -20.0, "comp_ratio": 4.0}])
    mix = Console(tracks, SR).render(truth)
    excerpts = [Excerpt(0, 4410, 30000), Excerpt(40000, 50000, 80000)]
    return tracks, mix, truth, excerpts


def test_objective_scores_excerpts_of_the_console_mix(setup):
    tracks, mix, truth, excerpts = setup
    exact = ExcerptObjective(tracks, mix, SR, excerpts, truth, workers=1)
    # the true settings reproduce the mix: exactly on an excerpt rendered from the song's start,
    # nearly on one with a short pre-roll (the reverb's and compressor's state before it is missing)
    assert exact.loss_on([0]) == pytest.approx(0.0, abs=1e-4)
    assert exact.loss_on([1]) < 0.05
    neutral = _values([{}, {}, {}])
    off = ExcerptObjective(tracks, mix, SR, excerpts, neutral, workers=1)
    # the loss of an excerpt equals the metric on that excerpt of a whole-song render (pre-roll settles state)
    whole = Console(tracks, SR).render(neutral)
    e = excerpts[1]
    assert off.loss_on([1]) == pytest.approx(mrsd(whole[:, e.start:e.stop], mix[:, e.start:e.stop]), rel=1e-3)
    assert off.loss() > 1.0


def test_track_loss_set_track_and_pool_agree(setup):
    tracks, mix, truth, excerpts = setup
    start = truth.copy()
    start[0, CONSOLE_V1.index("gain_db")] = 6.0
    obj = ExcerptObjective(tracks, mix, SR, excerpts, start, workers=2)
    before = obj.loss()
    assert obj.track_loss(0, start[0]) == pytest.approx(before, rel=1e-6)
    assert obj.track_loss(0, truth[0]) < before * 0.01
    candidates = [truth[0], start[0], truth[0] + np.eye(CONSOLE_V1.size)[CONSOLE_V1.index("pan")] * 0.5]
    pooled = obj.track_losses(0, candidates)
    assert pooled == [obj.track_loss(0, c) for c in candidates]
    obj.set_track(0, truth[0])
    fresh = ExcerptObjective(tracks, mix, SR, excerpts, truth, workers=1)
    assert obj.loss() == pytest.approx(fresh.loss(), abs=1e-6)
    np.testing.assert_array_equal(obj.values, truth)
    with pytest.raises(ValueError, match="gain_db"):
        obj.track_loss(0, truth[0] + 100.0)


def test_energy_shares_and_loudest_excerpt(setup):
    tracks, mix, truth, excerpts = setup
    quiet = truth.copy()
    quiet[2, CONSOLE_V1.index("gain_db")] = -24.0
    obj = ExcerptObjective(tracks, mix, SR, excerpts, quiet, workers=1)
    share = obj.track_energy()
    assert share.sum() == pytest.approx(1.0) and share[2] < share[0] and share[2] < share[1]
    # the loudest excerpt of each track, from its own console rendering of the whole song
    for i in range(3):
        whole = Console([tracks[i]], SR).render(quiet[i:i + 1])
        energy = [float(np.sum(np.square(whole[:, e.start:e.stop], dtype=np.float64))) for e in excerpts]
        assert obj.loudest_excerpt(i) == int(np.argmax(energy))


def test_objective_refuses_bad_shapes(setup):
    tracks, mix, truth, excerpts = setup
    with pytest.raises(ValueError, match="excerpt"):
        ExcerptObjective(tracks, mix, SR, [], truth)
    with pytest.raises(ValueError, match="values must be"):
        ExcerptObjective(tracks, mix, SR, excerpts, truth[:2])


def test_on_console_v2_the_objective_runs_the_bus_and_master_over_the_summed_strips():
    from mixinvert.console.mixing import sum_values
    from mixinvert.console.render_v2 import ConsoleV2
    from mixinvert.console.schema import CONSOLE_V2

    rng = np.random.default_rng(5)
    tracks = [noise_track(rng, 1, 2.0), noise_track(rng, 2, 2.0)]
    ix, shared_schema = CONSOLE_V2.index, CONSOLE_V2.shared
    values = sum_values(CONSOLE_V2, tracks)
    values[0, ix("reverb_send_db")], values[1, ix("eq_bell1_gain_db")] = -12.0, 5.0
    shared = shared_schema.from_dict({**shared_schema.neutral(), "master_comp_threshold_db": -20.0,
                                      "master_comp_ratio": 3.0})
    console = ConsoleV2(tracks, SR)
    mix = console.render(values, shared)
    excerpts = [Excerpt(0, 4410, 30000), Excerpt(40000, 50000, 80000)]
    with pytest.raises(ValueError, match="shared"):
        ExcerptObjective(tracks, mix, SR, excerpts, values, schema=CONSOLE_V2)
    obj = ExcerptObjective(tracks, mix, SR, excerpts, values, schema=CONSOLE_V2, shared=shared, workers=1)
    assert obj.loss_on([0]) == pytest.approx(0.0, abs=1e-4)  # from the song's start: the same render
    # a candidate for one track, and shared settings, scored as a whole render of that excerpt scores
    other, other_shared = values.copy(), shared.copy()
    other[1, ix("fader_db")] = -6.0
    other_shared[shared_schema.index("master_gain_db")] = 4.0
    e = excerpts[1]
    for score, (v, s) in ((lambda: obj.track_loss(1, other[1], [1]), (other, shared)),
                          (lambda: obj.shared_loss(other_shared, [1]), (values, other_shared))):
        whole = ConsoleV2([t[:, e.render_start:e.stop] for t in tracks], SR).render(v, s)[:, e.preroll:]
        assert score() == pytest.approx(mrsd(whole, mix[:, e.start:e.stop]), rel=1e-4)
    assert obj.shared_losses([other_shared, shared]) == [obj.shared_loss(other_shared), obj.shared_loss(shared)]
    obj.set_shared(other_shared)
    assert obj.loss() == pytest.approx(obj.shared_loss(other_shared), rel=1e-9)
    with pytest.raises(ValueError, match="no shared settings"):
        ExcerptObjective(tracks, mix, SR, excerpts, np.zeros((2, CONSOLE_V1.size)) + _values([{}])[0],
                         workers=1).shared_loss(shared)
