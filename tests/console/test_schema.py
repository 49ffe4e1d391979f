import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixinvert.console.schema import (
    CONSOLE_V1,
    NEUTRAL_V1,
    ParamRangeError,
    ParamSpec,
    get_schema,
)

S = CONSOLE_V1


def test_v1_table_matches_spec():
    assert S.version == "v1" and S.size == 16
    assert S.names == (
        "gain_db", "eq_low_shelf_cutoff_hz", "eq_low_shelf_gain_db", "eq_peak_cutoff_hz",
        "eq_peak_gain_db", "eq_peak_q", "eq_high_shelf_cutoff_hz", "eq_high_shelf_gain_db",
        "comp_threshold_db", "comp_ratio", "comp_attack_ms", "comp_release_ms", "pan",
        "reverb_room_size", "reverb_damping", "reverb_wet",
    )
    assert S.spec("eq_peak_cutoff_hz") == ParamSpec("eq_peak_cutoff_hz", "Hz", 100.0, 10000.0, "log", effect="eq",
                                                    label="peak freq", display="hz", neutral=1000.0)
    assert S.spec("gain_db").lo == -24 and S.spec("gain_db").hi == 12
    assert S.spec("comp_ratio").scale == "log"


def test_denormalize_by_hand():
    p = np.zeros(16)
    v = dict(zip(S.names, S.denormalize(p)))
    assert v["gain_db"] == pytest.approx(-6.0)  # midpoint of [-24, 12]
    assert v["eq_peak_cutoff_hz"] == pytest.approx(1000.0)  # geometric mean of 100 and 10k
    assert v["comp_ratio"] == pytest.approx(np.sqrt(20.0))
    lo = dict(zip(S.names, S.denormalize(-np.ones(16))))
    hi = dict(zip(S.names, S.denormalize(np.ones(16))))
    assert lo["comp_attack_ms"] == pytest.approx(0.5) and hi["comp_attack_ms"] == pytest.approx(100)
    assert lo["pan"] == -1 and hi["pan"] == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1, 1), min_size=16, max_size=16))
def test_round_trip(values):
    p = np.array(values)
    np.testing.assert_allclose(S.normalize(S.denormalize(p)), p, atol=1e-9)


def test_out_of_range_names_the_parameter():
    v = S.from_dict(NEUTRAL_V1)
    v[S.index("comp_ratio")] = 0.5
    with pytest.raises(ParamRangeError, match="comp_ratio"):
        S.validate(v)
    with pytest.raises(ParamRangeError, match="pan"):
        S.from_dict({**NEUTRAL_V1, "pan": 1.5})
    with pytest.raises(ParamRangeError, match="reverb_wet"):
        S.from_dict({**NEUTRAL_V1, "reverb_wet": float("nan")})
    with pytest.raises(ParamRangeError, match="missing.*gain_db"):
        S.from_dict({k: v for k, v in NEUTRAL_V1.items() if k != "gain_db"})
    with pytest.raises(ParamRangeError, match="normalized"):
        S.denormalize(np.full(16, 1.2))


def test_not_clamped_silently():
    v = S.from_dict(NEUTRAL_V1)
    v[0] = 12.5
    with pytest.raises(ParamRangeError, match="gain_db"):
        S.normalize(v)


def test_unknown_version():
    assert get_schema("v1") is S
    with pytest.raises(ValueError, match="v9"):
        get_schema("v9")


def test_shape_error():
    with pytest.raises(ValueError, match="16 parameters"):
        S.denormalize(np.zeros(15))


def test_the_schema_says_each_settings_effect_label_and_format():
    assert CONSOLE_V1.effects == {
        "gain": ("gain_db",),
        "eq": ("eq_low_shelf_cutoff_hz", "eq_low_shelf_gain_db", "eq_peak_cutoff_hz", "eq_peak_gain_db", "eq_peak_q",
               "eq_high_shelf_cutoff_hz", "eq_high_shelf_gain_db"),
        "compressor": ("comp_threshold_db", "comp_ratio", "comp_attack_ms", "comp_release_ms"),
        "pan": ("pan",),
        "reverb": ("reverb_room_size", "reverb_damping", "reverb_wet"),
    }
    assert all(spec.label for spec in CONSOLE_V1.specs)
    assert len({spec.label for spec in CONSOLE_V1.specs}) == CONSOLE_V1.size
    f = {name: CONSOLE_V1.spec(name).format for name in CONSOLE_V1.names}
    assert f["gain_db"](3.0) == "+3.0 dB" and f["eq_peak_gain_db"](-2.25) == "-2.2 dB"
    assert f["eq_peak_cutoff_hz"](440.0) == "440 Hz" and f["eq_high_shelf_cutoff_hz"](1250.0) == "1.25 kHz"
    assert f["comp_attack_ms"](2.5) == "2.5 ms" and f["comp_release_ms"](250.0) == "250 ms"
    assert f["comp_ratio"](4.0) == "4.0:1" and f["eq_peak_q"](0.7071) == "0.71"
    assert f["pan"](0.0) == "C" and f["pan"](-0.3) == "L30" and f["pan"](1.0) == "R100"
    assert f["reverb_wet"](0.25) == "25 %"
