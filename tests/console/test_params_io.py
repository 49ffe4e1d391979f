import json

import numpy as np
import pytest

from mixinvert.console.params_io import MixParams, ParamsFileError, read_params, write_params
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1

S = CONSOLE_V1


def _doc(**over):
    doc = {"sample_rate": 44100, "console": "v1", "tracks": [{"name": "a.wav", **NEUTRAL_V1}]}
    doc.update(over)
    return doc


def test_round_trip(tmp_path, rng):
    values = S.denormalize(rng.uniform(-1, 1, (3, 16)))
    params = MixParams(S, ("a.wav", "b.flac", "c.wav"), values, 48000, {"method": "random"})
    path = write_params(tmp_path / "params.json", params)
    back = read_params(path)
    assert back.track_names == params.track_names and back.sample_rate == 48000
    np.testing.assert_allclose(back.values, values, rtol=1e-12)
    doc = json.loads(path.read_text())
    assert doc["console"] == "v1" and doc["method"] == "random"
    assert list(doc["tracks"][0])[:3] == ["name", "gain_db", "eq_low_shelf_cutoff_hz"]


def test_refuses_to_overwrite(tmp_path):
    params = MixParams(S, ("a.wav",), S.from_dict(NEUTRAL_V1)[None])
    write_params(tmp_path / "p.json", params)
    before = (tmp_path / "p.json").read_text()
    with pytest.raises(FileExistsError):
        write_params(tmp_path / "p.json", params)
    assert (tmp_path / "p.json").read_text() == before


@pytest.mark.parametrize(
    "doc, message",
    [
        (_doc(console="v9"), "unknown console version"),
        (_doc(console="v2"), "missing parameter"),
        ({"tracks": []}, "console"),
        (_doc(tracks=[]), "non-empty"),
        (_doc(tracks=[{"name": "a.wav", **{**NEUTRAL_V1, "pan": 2.0}}]), "pan"),
        (_doc(tracks=[{"name": "a.wav", **{**NEUTRAL_V1, "gain_db": "loud"}}]), "gain_db must be a number"),
        (_doc(tracks=[{"name": "a.wav", **NEUTRAL_V1}, {"name": "a.wav", **NEUTRAL_V1}]), "unique"),
        (_doc(sample_rate=-1), "sample_rate"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, doc, message):
    path = tmp_path / "params.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ParamsFileError, match=message) as err:
        read_params(path)
    assert str(path) in str(err.value)


def test_not_json(tmp_path):
    (tmp_path / "params.json").write_text("{nope")
    with pytest.raises(ParamsFileError, match="not valid JSON"):
        read_params(tmp_path / "params.json")


def test_reordered(rng):
    values = S.denormalize(rng.uniform(-1, 1, (2, 16)))
    params = MixParams(S, ("a.wav", "b.wav"), values)
    np.testing.assert_array_equal(params.reordered(["b.wav", "a.wav"]).values, values[::-1])
    with pytest.raises(ParamsFileError, match="c.wav"):
        params.reordered(["a.wav", "c.wav"])


def test_track_extra_round_trips_beside_the_values(tmp_path):
    values = np.stack([CONSOLE_V1.from_dict(NEUTRAL_V1)] * 2)
    extra = ({"uncertainty": {"gain_db": {"low": -1.0, "high": 1.0}}}, {"undetermined": {"pan": "silent"}})
    params = MixParams(CONSOLE_V1, ("a.wav", "b.wav"), values, 44100, {"method": "x"}, extra)
    path = write_params(tmp_path / "p.json", params)
    doc = json.loads(path.read_text())
    assert doc["tracks"][0]["uncertainty"] == extra[0]["uncertainty"] and doc["tracks"][0]["gain_db"] == 0.0
    back = read_params(path)
    assert back.track_extra == extra and back.extra == {"method": "x"}
    swapped = back.reordered(["b.wav", "a.wav"])
    assert swapped.track_extra == (extra[1], extra[0])
    plain = MixParams(CONSOLE_V1, ("a.wav",), values[:1])
    assert read_params(write_params(tmp_path / "q.json", plain)).track_extra == ()
    with pytest.raises(ValueError, match="track_extra"):
        MixParams(CONSOLE_V1, ("a.wav", "b.wav"), values, track_extra=({},))
