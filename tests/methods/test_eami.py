"""The ``eami`` method: a model file in, settings and a console render out; CLI wiring."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mixinvert.cli import main
from mixinvert.console.params_io import read_params
from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1
from mixinvert.data.song import Song, SongError
from mixinvert.errors import InputError
from mixinvert.methods.registry import best_method, get_method
from mixinvert.models import checkpoint
from mixinvert.models.checkpoint import CheckpointError, model_payload, save_atomic
from mixinvert.models.inverter import Inverter, get_model_config
from mixinvert.models.predict import predict_song
from tests.conftest import SR, make_tiny_corpus, noise_track


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    model = Inverter(get_model_config("small"))
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_atomic(model_payload(model, CONSOLE_V1, {"note": "untrained, for tests"}), path)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_tiny_corpus(tmp_path_factory.mktemp("eami") / "corpus", n_songs=4, seconds=1.0, seed=5)


@pytest.fixture
def song(rng):
    tracks = [noise_track(rng, 1, 0.6), noise_track(rng, 2, 0.6)]
    return Song("s", ("a.wav", "b.wav"), tracks, SR, mix=noise_track(rng, 2, 0.6))


def test_eami_renders_the_network_prediction(song, model_file, rng):
    est = get_method("eami").fn(song, rng=rng, model=model_file, match=False)
    model, schema, _ = checkpoint.load_model(model_file)
    p = predict_song(model, song.tracks, song.mix, song.sample_rate)
    np.testing.assert_allclose(est.params.values, schema.denormalize(p), rtol=1e-6)
    np.testing.assert_allclose(est.mix, Console(song.tracks, SR).render(est.params.values), atol=1e-6)
    assert est.params.track_names == song.track_names
    assert est.info["mix_source"] == "console v1" and est.info["seconds"] > 0
    assert est.info["match"] == "off"


def test_eami_matches_levels_and_wet_to_the_mix_by_default(song, model_file, rng):
    from mixinvert.console.match import match_gain_wet

    raw = get_method("eami").fn(song, rng=rng, model=model_file, match=False)
    est = get_method("eami").fn(song, rng=rng, model=model_file)
    expected = match_gain_wet(song.tracks, SR, raw.params.values, song.mix)
    np.testing.assert_allclose(est.params.values, expected.values, rtol=1e-9)
    np.testing.assert_array_equal(est.mix, expected.mix)
    untouched = [i for i, n in enumerate(CONSOLE_V1.names) if n not in ("gain_db", "comp_threshold_db", "reverb_wet")]
    np.testing.assert_array_equal(est.params.values[:, untouched], raw.params.values[:, untouched])
    rendered = Console(song.tracks, SR).render(est.params.values)  # params.json re-renders to the same mix
    assert np.abs(est.mix - rendered).max() <= 1e-3 * np.abs(rendered).max()
    assert est.info["match"] == "gain and reverb wet, least squares"
    assert est.info["match_residual_db_after"] <= est.info["match_residual_db_before"]
    err = lambda y: float(np.sum((y.astype(np.float64) - song.mix) ** 2))  # noqa: E731
    assert err(est.mix) <= err(raw.mix)


def test_eami_is_independent_of_track_order(song, model_file, rng):
    a = get_method("eami").fn(song, rng=rng, model=model_file)
    swapped = Song("s", song.track_names[::-1], song.tracks[::-1], SR, mix=song.mix)
    b = get_method("eami").fn(swapped, rng=rng, model=model_file)
    np.testing.assert_allclose(a.params.values, b.params.values[::-1], rtol=1e-4, atol=1e-4)


def test_eami_needs_a_mix_and_a_model(song, rng, tmp_path, monkeypatch):
    with pytest.raises(SongError, match="reference mix"):
        get_method("eami").fn(Song("s", song.track_names, song.tracks, SR), rng=rng)
    monkeypatch.setitem(checkpoint.DEFAULT_MODEL_PATHS, "v2", tmp_path / "absent.pt")
    with pytest.raises(CheckpointError, match="mixinvert train"):
        get_method("eami").fn(song, rng=rng, console="v2")
    with pytest.raises(InputError, match="unknown console 'v3'"):
        get_method("eami").fn(song, rng=rng, console="v3")
    with pytest.raises(InputError, match="network for console v1, not v2"):
        get_method("eami").fn(song, rng=rng, console="v2", model=checkpoint.DEFAULT_MODEL_PATH)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="bad.pt"):
        get_method("eami").fn(song, rng=rng, model=bad)


def test_best_method_skips_methods_that_cannot_run(monkeypatch):
    from mixinvert.methods import base, registry

    def set_available(name: str, available: bool) -> None:
        entry = registry.available_methods()[name]
        monkeypatch.setitem(base.REGISTERED, name, base.MethodEntry(
            entry.name, entry.fn, entry.summary, entry.needs_mix, entry.options, lambda: available))

    set_available("eami", False)
    set_available("eami+refine", False)
    with pytest.raises(ValueError, match="model"):
        best_method(options=("model",))  # the only methods that take a model cannot run
    set_available("eami", True)
    assert best_method(options=("model",)) == "eami"
    set_available("eami+refine", True)
    assert best_method(options=("model",)) == "eami+refine"  # more accurate, same model


def test_options_are_checked(corpus, model_file):
    from mixinvert.evaluation import evaluate

    with pytest.raises(ValueError, match="takes no option model"):
        get_method("sum").check_options({"model": model_file})
    with pytest.raises(ValueError, match="applies to none"):
        evaluate(corpus, ["sum"], options={"model": model_file})


def test_cli_invert_and_evaluate_with_a_model(corpus, model_file, tmp_path, capsys):
    song = corpus / "song_0000"
    out = tmp_path / "inv"
    argv = ["invert", str(song / "tracks"), str(song / "mix.wav"), "--method", "eami",
            "--model", str(model_file), "--out", str(out)]
    assert main(argv) == 0
    assert "method eami" in capsys.readouterr().out
    params = read_params(out / "params.json")
    assert params.extra["method"] == "eami" and params.values.shape[1] == 16
    assert params.extra["method_info"]["match"] == "gain and reverb wet, least squares"
    assert main(argv[:-1] + [str(tmp_path / "raw"), "--no-match"]) == 0
    capsys.readouterr()
    assert read_params(tmp_path / "raw" / "params.json").extra["method_info"]["match"] == "off"
    assert main(["invert", str(song / "tracks"), str(song / "mix.wav"), "--method", "sum",
                 "--model", str(model_file), "--out", str(tmp_path / "x")]) == 2
    assert "takes no option model" in capsys.readouterr().err
    md = tmp_path / "r.md"
    assert main(["evaluate", str(corpus), "--methods", "sum,eami", "--model", str(model_file), "--out", str(md)]) == 0
    doc = json.loads(md.with_suffix(".json").read_text())
    assert set(doc["mean"]) == {"sum", "eami"}
    assert "median_gain_db" in doc["mean"]["eami"] and "median_pan" in doc["mean"]["eami"]
    # medians are over tracks: recompute from the per-song lists
    per_track = [v for s in doc["songs"] if s["method"] == "eami" for v in s["track_errors"]["gain_db"]]
    assert doc["mean"]["eami"]["median_gain_db"] == pytest.approx(float(np.median(per_track)))


def test_cli_train_then_invert_with_the_run_model(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", str(corpus), "--out", str(run), "--iterations", "1", "--samples", "1", "--epochs", "1",
            "--excerpt-seconds", "0.5"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "iteration 1/1" in printed
    assert "trained 1 iterations" in printed and str(run / "model.pt") in printed
    # --quiet: nothing but errors; asking again for the same iterations does no work
    assert main(argv + ["--quiet"]) == 0
    assert capsys.readouterr().out == ""
    stored = json.loads((run / "run.json").read_text())
    assert stored["config"]["iterations"] == 1 and stored["config"]["samples_per_song"] == 1
    song = corpus / "song_0001"
    assert main(["invert", str(song / "tracks"), str(song / "mix.wav"), "--method", "eami",
                 "--model", str(run / "model.pt"), "--out", str(tmp_path / "inv")]) == 0
    assert read_params(tmp_path / "inv" / "params.json").extra["method"] == "eami"
    # without --method, --model goes to the best method that takes a model: eami+refine
    assert main(["invert", str(song / "tracks"), str(song / "mix.wav"), "--model", str(run / "model.pt"),
                 "--budget", "15", "--steps", "2", "--out", str(tmp_path / "inv2")]) == 0
    doc = json.loads((tmp_path / "inv2" / "params.json").read_text())
    assert doc["method"] == "eami+refine" and doc["method_info"]["model"] == str(run / "model.pt")
    assert "uncertainty" in doc["tracks"][0] and "uncertainty" in capsys.readouterr().out
    # a changed setting on the same run folder: one line, exit 2
    assert main([*argv, "--sigma-init", "0.2"]) == 2
    assert "sigma_init" in capsys.readouterr().err


def test_cli_train_interrupted_says_how_to_resume(corpus, tmp_path, capsys, monkeypatch):
    import mixinvert.train.essl as essl

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(essl, "train", interrupted)
    assert main(["train", str(corpus), "--out", str(tmp_path / "run"), "--quiet"]) == 130
    assert "run the same command to resume" in capsys.readouterr().err
