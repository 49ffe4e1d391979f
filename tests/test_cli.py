"""The command line end to end, on a small generated drums corpus."""

import json
import shutil

import numpy as np
import pytest

from mixinvert.audio import read_audio
from mixinvert.cli import main
from mixinvert.console.params_io import read_params
from mixinvert.models.checkpoint import DEFAULT_MODEL_PATHS


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, kit_dir_module):
    out = tmp_path_factory.mktemp("cli") / "corpus"
    assert main(["corpus", str(out), "--preset", "drums", "--songs", "3", "--seconds", "1.5",
                 "--seed", "2", "--kit", str(kit_dir_module), "--jobs", "1"]) == 0
    return out


@pytest.fixture(scope="module")
def kit_dir_module():
    from tests.conftest import KIT_DIR

    if not KIT_DIR.is_dir():
        pytest.skip(f"drum kit not found at {KIT_DIR}")
    return KIT_DIR


def test_evaluate_writes_table_and_json(corpus, tmp_path, capsys):
    out = tmp_path / "results.md"
    assert main(["evaluate", str(corpus), "--methods", "sum,random", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| sum |" in printed and "| random |" in printed and "MRSD" in printed
    doc = json.loads(out.with_suffix(".json").read_text())
    assert set(doc["mean"]) == {"sum", "random"} and len(doc["songs"]) == 6
    # a plain sum is closer to an engineer's mix than random settings (the paper's Table 1)
    assert doc["mean"]["sum"]["mrsd"] < doc["mean"]["random"]["mrsd"]
    assert doc["mean"]["sum"]["normalized_mae"] < doc["mean"]["random"]["normalized_mae"]
    assert main(["evaluate", str(corpus), "--methods", "sum", "--out", str(out)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert main(["evaluate", str(corpus), "--methods", "sum", "--split", "test"]) == 0
    assert "1 songs" in capsys.readouterr().out


def test_invert_then_render_round_trip(corpus, tmp_path, capsys):
    song = corpus / "song_0000"
    out = tmp_path / "inv"
    assert main(["invert", str(song / "tracks"), str(song / "mix.wav"), "--method", "random", "--out", str(out)]) == 0
    assert "MRSD" in capsys.readouterr().out
    params = read_params(out / "params.json")
    assert params.extra["method"] == "random" and params.track_names[1] == "kick.wav"
    assert main(["render", str(song / "tracks"), "--params", str(out / "params.json"), "--out", str(tmp_path / "re.wav")]) == 0
    a, _ = read_audio(out / "mix.wav")
    b, _ = read_audio(tmp_path / "re.wav")
    np.testing.assert_allclose(a, b, atol=1e-6)
    # the true settings re-render the reference mix
    assert main(["render", str(song / "tracks"), "--params", str(song / "params.json"), "--out", str(tmp_path / "true.wav")]) == 0
    np.testing.assert_allclose(read_audio(tmp_path / "true.wav")[0], read_audio(song / "mix.wav")[0], atol=1e-6)


def test_outputs_never_overwrite_inputs_or_existing_files(corpus, tmp_path, capsys):
    song = tmp_path / "song"
    shutil.copytree(corpus / "song_0001", song)
    before = (song / "mix.wav").read_bytes()
    assert main(["invert", str(song / "tracks"), str(song / "mix.wav"), "--out", str(song), "--overwrite"]) == 2
    assert "one of the inputs" in capsys.readouterr().err
    assert main(["invert", str(song / "tracks"), str(song / "mix.wav"), "--method", "sum", "--out", str(song)]) == 2
    assert "params.json exists; refusing to overwrite" in capsys.readouterr().err
    assert (song / "mix.wav").read_bytes() == before
    assert main(["render", str(song / "tracks"), "--params", str(song / "params.json"), "--out", str(song / "mix.wav")]) == 2
    assert (song / "mix.wav").read_bytes() == before


def test_clear_errors(corpus, tmp_path, capsys):
    song = corpus / "song_0000"
    mono = tmp_path / "mono.wav"
    import soundfile as sf

    x, sr = read_audio(song / "mix.wav")
    sf.write(mono, x[0], sr)
    assert main(["invert", str(song / "tracks"), str(mono), "--console", "v1", "--out", str(tmp_path / "o")]) == 2
    assert "a mono mix needs console v2 (--console v2)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    params = json.loads((song / "params.json").read_text())
    params["tracks"][0]["name"] = "cowbell.wav"
    (tmp_path / "p.json").write_text(json.dumps(params))
    assert main(["render", str(song / "tracks"), "--params", str(tmp_path / "p.json"), "--out", str(tmp_path / "m.wav")]) == 2
    err = capsys.readouterr().err
    assert "cowbell.wav" in err and "hi-hat.wav" in err
    assert main(["invert", str(song / "tracks"), str(song / "mix.wav"), "--method", "magic", "--out", str(tmp_path / "o")]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "not a dataset folder" in capsys.readouterr().err


def test_demo(tmp_path, kit_dir_module, capsys):
    if shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth is not installed (scripts/setup.sh installs it)")
    out = tmp_path / "demo"
    # eami keeps the test fast; the default (eami+refine) takes about a minute
    assert main(["demo", "--out", str(out), "--kit", str(kit_dir_module), "--seconds", "3", "--method", "eami"]) == 0
    printed = capsys.readouterr().out
    assert "MRSD" in printed and str(out / "inverted" / "params.json") in printed
    assert (out / "song_0000" / "mix.wav").is_file() and (out / "inverted" / "mix.wav").is_file()
    assert main(["demo", "--out", str(out), "--kit", str(kit_dir_module), "--seconds", "3",
                 "--method", "eami"]) == 0  # re-runnable


def test_invert_and_render_on_console_v2(corpus, tmp_path, capsys):
    song = corpus / "song_0000"
    out = tmp_path / "inv2"
    assert main(["invert", str(song / "tracks"), str(song / "mix.wav"), "--method", "barchiesi-reiss",
                 "--console", "v2", "--out", str(out), "--export-dawproject"]) == 0
    assert (out / "session.dawproject").is_file()
    capsys.readouterr()
    html = (out / "report.html").read_text()
    for drawn in ("High-pass", "bell 4 freq", "reverb bus", "master", "Send", "console v2"):
        assert drawn in html, drawn
    params = read_params(out / "params.json")
    assert params.schema.version == "v2" and params.shared is not None
    # params.json v2 re-renders the console mix it was written with
    assert main(["render", str(song / "tracks"), "--params", str(out / "params.json"),
                 "--out", str(tmp_path / "re2.wav")]) == 0
    np.testing.assert_allclose(read_audio(tmp_path / "re2.wav")[0], read_audio(out / "mix_console.wav")[0], atol=1e-6)
    # a model of the other console is refused before any work, with a one-line reason
    target = tmp_path / "refused"
    assert main(["invert", str(song / "tracks"), str(song / "mix.wav"), "--method", "eami", "--console", "v2",
                 "--model", str(DEFAULT_MODEL_PATHS["v1"]), "--out", str(target)]) == 2
    assert "network for console v1, not v2" in capsys.readouterr().err and not target.exists()
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0 and (out / "report.html").is_file()


def test_evaluate_on_console_v2(corpus, tmp_path, capsys):
    out = tmp_path / "v2.md"
    assert main(["evaluate", str(corpus), "--methods", "sum,barchiesi-reiss", "--console", "v2",
                 "--out", str(out)]) == 0
    doc = json.loads(out.with_suffix(".json").read_text())
    assert {"sum", "barchiesi-reiss:console"} <= set(doc["mean"])
    # the corpus's truth is console v1: a v2 estimate has no parameter errors against it
    assert "normalized_mae" not in doc["mean"]["sum"] or doc["mean"]["sum"]["normalized_mae"] is None
    assert main(["evaluate", str(corpus), "--methods", "sum,eami", "--console", "v2", "--model",
                 str(DEFAULT_MODEL_PATHS["v1"])]) == 2
    assert "network for console v1, not v2" in capsys.readouterr().err
