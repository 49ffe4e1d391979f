"""The synthetic engineer: deterministic, in range, and shaped like MixologyDB's mixes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixinvert.console.schema import CONSOLE_V1
from mixinvert.data import engineer
from mixinvert.data.engineer import CATEGORIES, prior_figures, sample_settings, side_hint

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "derive_engineer_prior.py"
SHIPPED = REPO / "src" / "mixinvert" / "data" / "engineer_prior.json"
MIXOLOGY = REPO.parent / "shared" / "data" / "mixologydb" / "final-track-data.json"
IDX = {n: i for i, n in enumerate(CONSOLE_V1.names)}
DRUMS_AND_BAND = ["kick", "snare", "hihat", "tom", "tom", "overhead", "overhead", "room",
                  "bass", "guitar", "guitar", "keys", "synth", "strings", "vocals", "other"]


def _prior() -> dict:
    return json.loads(SHIPPED.read_text())


def _draw(category: str, n: int, seed: int = 7) -> np.ndarray:
    """``n`` tracks of one category in one call (the first of an anchored one dropped)."""
    out = sample_settings(np.random.default_rng(seed), [category] * (n + 1))
    return out[1:]


def test_same_seed_same_settings_and_other_seed_differs() -> None:
    a = sample_settings(np.random.default_rng(3), DRUMS_AND_BAND)
    b = sample_settings(np.random.default_rng(3), DRUMS_AND_BAND)
    c = sample_settings(np.random.default_rng(4), DRUMS_AND_BAND)
    assert a.shape == (len(DRUMS_AND_BAND), 16) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_every_value_in_range_over_many_songs() -> None:
    rng = np.random.default_rng(11)
    lo, hi = CONSOLE_V1.lo, CONSOLE_V1.hi
    for _ in range(300):
        cats = list(rng.choice(CATEGORIES, size=int(rng.integers(1, 17))))
        p = sample_settings(rng, cats)
        assert np.all(np.isfinite(p)) and np.all(p >= lo) and np.all(p <= hi)
        CONSOLE_V1.validate(p)   # raises on anything out of range


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1),
       cats=st.lists(st.sampled_from(CATEGORIES), min_size=0, max_size=16))
def test_any_seed_and_categories_stay_in_range(seed: int, cats: list[str]) -> None:
    p = sample_settings(np.random.default_rng(seed), cats)
    assert p.shape == (len(cats), 16)
    assert np.all(p >= CONSOLE_V1.lo) and np.all(p <= CONSOLE_V1.hi)


def test_kick_pan_is_centred_far_more_often_than_uniform() -> None:
    pans = _draw("kick", 3000)[:, IDX["pan"]]
    centred = np.mean(np.abs(pans) <= 0.05)
    # uniform pans over [-1, 1] would give 0.05; MixologyDB kicks are centred 97 % of the time
    assert centred == pytest.approx(_prior()["categories"]["kick"]["pan"]["p_centre"], abs=0.03)
    assert centred > 0.9
    guitars = _draw("guitar", 3000)[:, IDX["pan"]]
    assert np.mean(np.abs(guitars) <= 0.05) < 0.4   # guitars are spread


def test_anchors_are_centred_and_pairs_are_mirrored() -> None:
    for seed in range(50):
        p = sample_settings(np.random.default_rng(seed),
                            ["kick", "bass", "vocals", "overhead", "overhead", "room", "room"])
        pan = p[:, IDX["pan"]]
        assert np.all(pan[:3] == 0.0)
        for a, b in ((3, 4), (5, 6)):
            assert pan[a] != 0 and pan[a] == pytest.approx(-pan[b])


def test_names_choose_the_side() -> None:
    for seed in range(30):
        rng = np.random.default_rng(seed)
        p = sample_settings(rng, ["overhead", "overhead", "room", "room"],
                            names=["overhead_R.wav", "overhead_L.wav", "Room L", "Room R"])
        pan = p[:, IDX["pan"]]
        assert pan[0] > 0 > pan[1] and pan[2] < 0 < pan[3]
    assert [side_hint(s) for s in ("OH L", "room_R", "left gtr", "Guitar", "L R")] == [-1, 1, -1, 0, 0]


def test_median_gain_follows_the_prior_by_category() -> None:
    cats = _prior()["categories"]
    med = {c: float(np.median(_draw(c, 2000)[:, IDX["gain_db"]])) for c in ("hihat", "vocals", "room")}
    for c, m in med.items():
        assert m == pytest.approx(cats[c]["gain_rel_db"]["mean"], abs=0.6)
    assert med["hihat"] < med["vocals"] - 6.0   # hi-hats sit well below lead vocals


@pytest.mark.parametrize("category", ["kick", "bass", "guitar", "keys", "strings"])
def test_processor_usage_rates_match_the_prior(category: str) -> None:
    e = _prior()["categories"][category]
    p = _draw(category, 4000, seed=5)
    comp = (p[:, IDX["comp_ratio"]] > 1.0) | (p[:, IDX["comp_threshold_db"]] < 0.0)
    assert comp.mean() == pytest.approx(e["comp"]["p_used"], abs=0.03)
    assert (p[:, IDX["reverb_wet"]] > 0).mean() == pytest.approx(e["reverb"]["p_used"], abs=0.03)
    assert (p[:, IDX["eq_peak_gain_db"]] != 0).mean() == pytest.approx(e["peak"]["p_used"], abs=0.03)
    # unused processors are neutral
    assert np.all(p[~comp, IDX["comp_ratio"]] == 1.0)
    assert np.all(p[~comp, IDX["comp_threshold_db"]] == 0.0)


def test_bass_is_compressed_more_and_reverbed_less_than_keys() -> None:
    bass, keys = _draw("bass", 2000), _draw("keys", 2000)
    assert (bass[:, IDX["comp_ratio"]] > 1).mean() > (keys[:, IDX["comp_ratio"]] > 1).mean() + 0.3
    assert (bass[:, IDX["reverb_wet"]] > 0).mean() < (keys[:, IDX["reverb_wet"]] > 0).mean() - 0.4


def test_unknown_category_and_bad_arguments_are_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"'drumz'.*known: kick, snare"):
        sample_settings(rng, ["kick", "drumz"])
    with pytest.raises(TypeError):
        sample_settings(rng, "kick")
    with pytest.raises(ValueError, match="names"):
        sample_settings(rng, ["kick"], names=["a", "b"])


def test_prior_figures_and_module_docstring_agree() -> None:
    fig = prior_figures()
    assert fig["source"]["n_mixes"] == 90 and fig["source"]["n_rows_used"] == 2345
    assert sum(fig[c]["n_rows"] for c in CATEGORIES) + fig["vocals_backing"]["n_rows"] == 2345
    fig["kick"]["n_rows"] = -1   # a copy: editing it leaves the stored figures alone
    assert prior_figures()["kick"]["n_rows"] == 160
    rows = re.findall(r"^(\w+)\s+([+-]\d+\.\d)\s+(0\.\d+)\s+(0\.\d+)\s+(0\.\d+)\s+(\d\.\d)\s+(0\.\d+)$",
                      engineer.__doc__, flags=re.M)
    assert len(rows) == 11
    for c, gain, centre, peak, comp, ratio, rev in rows:
        f = prior_figures()[c]
        assert float(gain) == pytest.approx(f["gain_rel_db_mean"], abs=0.051)
        for doc, key in ((centre, "p_pan_centre"), (peak, "p_peak"), (comp, "p_comp"),
                         (rev, "p_reverb")):
            assert float(doc) == pytest.approx(f[key], abs=0.0051), (c, key)
        assert float(ratio) == pytest.approx(f["comp_ratio_median"], abs=0.051)


def test_shipped_prior_is_what_the_script_derives(tmp_path: Path) -> None:
    if not MIXOLOGY.is_file():
        pytest.skip(f"MixologyDB not found at {MIXOLOGY} (the shared data folder beside the repo)")
    out = tmp_path / "prior.json"
    subprocess.run([sys.executable, str(SCRIPT), str(MIXOLOGY), "--out", str(out)],
                   check=True, capture_output=True, timeout=120)
    assert out.read_text() == SHIPPED.read_text()


def test_v2_engineer_builds_on_the_v1_draws():
    from mixinvert.console.schema import CONSOLE_V2
    from mixinvert.data.engineer import master_settings, sample_settings_v2

    cats = ["kick", "snare", "bass", "guitar", "vocals", "overhead", "overhead"]
    names = ["kick", "snare", "bass", "gtr", "vox", "oh_L", "oh_R"]
    v1 = sample_settings(np.random.default_rng(3), cats, names=names)
    values, shared = sample_settings_v2(np.random.default_rng(3), cats, names=names, channels=[1] * 6 + [2])
    CONSOLE_V2.validate(values)
    CONSOLE_V2.shared.validate(shared)
    # the v1 engineer's pan, compressor and peak carry over (same generator calls first)
    np.testing.assert_array_equal(values[:, CONSOLE_V2.index("pan")], v1[:, CONSOLE_V1.index("pan")])
    np.testing.assert_array_equal(values[:, CONSOLE_V2.index("comp_ratio")], v1[:, CONSOLE_V1.index("comp_ratio")])
    # and the same level structure: fader - gain is the unity difference of the two consoles
    diff = values[:, CONSOLE_V2.index("fader_db")] - v1[:, CONSOLE_V1.index("gain_db")]
    np.testing.assert_allclose(diff[:6], 20 * np.log10(2.0), atol=1e-9)  # mono: +3.01 - (-3.01)
    # the master chain is drawn against the mix: a limiter's ceiling under the mix's peak
    pre = np.random.default_rng(0).standard_normal((2, 44100)) * 0.1
    for seed in range(20):
        m = dict(zip(CONSOLE_V2.shared.names, master_settings(np.random.default_rng(seed), shared, pre)))
        if m["master_limiter_ceiling_db"] < 0:
            assert m["master_limiter_ceiling_db"] < 20 * np.log10(np.abs(pre).max())
            break
    else:
        raise AssertionError("no limiter in 20 draws")
