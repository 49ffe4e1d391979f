"""The Python API mirrors the command line: ``mixinvert.invert(tracks, mix, method=...)``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import mixinvert
from mixinvert.audio import read_audio
from mixinvert.console.params_io import read_params
from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
from tests.conftest import SR, noise_track, write_song


@pytest.fixture(scope="module")
def song_dir(tmp_path_factory):
    rng = np.random.default_rng(5)
    tracks = {"bass.wav": noise_track(rng, 1, 1.0), "keys.wav": noise_track(rng, 2, 1.0)}
    values = np.stack([
        CONSOLE_V1.from_dict({**NEUTRAL_V1, "gain_db": -4.0, "pan": -0.3}),
        CONSOLE_V1.from_dict({**NEUTRAL_V1, "gain_db": 2.0, "pan": 0.4}),
    ])
    mix = Console(list(tracks.values()), SR).render(values)
    return write_song(tmp_path_factory.mktemp("api") / "song", tracks, mix)


def test_import_is_light_and_names_resolve():
    code = "import sys, mixinvert; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    for name in mixinvert.__all__:
        assert getattr(mixinvert, name) is not None
    assert mixinvert.Result is mixinvert.api.InvertResult
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mixinvert.nope


def test_invert_in_memory_then_save(song_dir, tmp_path):
    result = mixinvert.invert(song_dir / "tracks", song_dir / "mix.wav", method="sum")
    assert isinstance(result, mixinvert.Result)
    assert result.params_path is None and result.mix_path is None
    assert result.params.track_names == ("bass.wav", "keys.wav")
    assert result.params.extra["method"] == "sum"
    assert result.params.extra["inputs"]["tracks"][0].endswith("bass.wav")
    assert result.mix.shape == (2, SR)
    assert list(tmp_path.iterdir()) == []  # nothing written yet
    out = tmp_path / "inv"
    assert result.save(out) is result
    assert sorted(p.name for p in out.iterdir()) == ["mix.wav", "params.json"]
    np.testing.assert_allclose(read_audio(out / "mix.wav")[0], result.mix, atol=1e-7)
    saved = read_params(out / "params.json")
    np.testing.assert_allclose(saved.values, result.params.values)
    assert saved.extra["scores"]["mrsd"] == pytest.approx(result.scores.mrsd)
    with pytest.raises(FileExistsError, match="use --overwrite"):
        result.save(out)
    result.save(out, overwrite=True)


def test_invert_takes_a_list_of_files_and_method_options(song_dir, tmp_path):
    files = [song_dir / "tracks" / "keys.wav"]
    result = mixinvert.invert(files, song_dir / "mix.wav", tmp_path / "one", method="colonel-reiss",
                              options={"steps": 3})
    assert result.params.track_names == ("keys.wav",)
    assert result.params.extra["method_info"]["steps"] <= 3
    assert json.loads((tmp_path / "one" / "params.json").read_text())["inputs"]["tracks"] == [
        str(files[0].resolve())]
    with pytest.raises(ValueError, match="no track files"):
        mixinvert.invert([], song_dir / "mix.wav")
    with pytest.raises(ValueError, match="takes no option"):
        mixinvert.invert(files, song_dir / "mix.wav", method="sum", options={"steps": 3})


def test_outputs_are_checked_before_the_work(song_dir, tmp_path):
    out = tmp_path / "inv"
    out.mkdir()
    (out / "report.html").write_text("mine")
    with pytest.raises(FileExistsError, match="report.html exists"):
        mixinvert.invert(song_dir / "tracks", song_dir / "mix.wav", out, method="sum", report=True)
    assert sorted(p.name for p in out.iterdir()) == ["report.html"]
    assert (out / "report.html").read_text() == "mine"
