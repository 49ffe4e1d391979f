"""The cached distances to a fixed reference equal the metric's own formulas."""

from __future__ import annotations

import numpy as np
import pytest

from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
from mixinvert.metrics.audio import compare_mixes, mrsd
from mixinvert.metrics.reference import LoudnessNormalizedReference, ReferenceSpectra
from tests.conftest import SR, noise_track


@pytest.fixture(scope="module")
def mix():
    rng = np.random.default_rng(3)
    tracks = [noise_track(rng, 1, 2.0), noise_track(rng, 2, 2.0)]
    values = np.stack([CONSOLE_V1.from_dict({**NEUTRAL_V1, "gain_db": -6.0, "pan": -0.5}),
                       CONSOLE_V1.from_dict({**NEUTRAL_V1, "reverb_wet": 0.2})])
    return Console(tracks, SR).render(values)


def _estimate(mix):
    rng = np.random.default_rng(0)
    return mix * 0.8 + rng.standard_normal(mix.shape).astype(np.float32) * 0.01


def test_reference_spectra_distance_is_the_metric(mix):
    estimate = _estimate(mix)
    ref = ReferenceSpectra(mix)
    assert ref.distance(estimate) == pytest.approx(mrsd(estimate, mix), rel=1e-4)
    assert ref.distance(mix) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="expected"):
        ref.distance(estimate[:, :-1])
    with pytest.raises(ValueError, match="stereo"):
        ReferenceSpectra(mix[:1])


def test_loudness_normalized_reference_is_compare_mixes(mix):
    estimate = _estimate(mix)
    ref = LoudnessNormalizedReference(mix, SR)
    # the level difference is normalized away, as compare_mixes does
    assert ref.mrsd(estimate) == pytest.approx(compare_mixes(estimate, mix, SR).mrsd, rel=1e-4)
    assert ref.mrsd(mix * 0.5) == pytest.approx(0.0, abs=1e-5)
