"""Extra mixes (``mix_console.wav``) and the per-song methods' options in invert, evaluate and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mixinvert import api
from mixinvert.audio import read_audio
from mixinvert.cli import main
from mixinvert.console.mixing import render_mix
from mixinvert.console.params_io import read_params
from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
from mixinvert.evaluation import evaluate
from mixinvert.methods.base import EXTRA_MIX_NAMES
from mixinvert.methods.registry import best_method
from mixinvert.metrics.audio import compare_mixes
from tests.conftest import SR, make_tiny_corpus, noise_track, write_song


@pytest.fixture(scope="module")
def song_dir(tmp_path_factory):
    """A 1.5 s song folder: two noise tracks (mono, stereo) mixed with gains, pans and EQ."""
    rng = np.random.default_rng(21)
    tracks = {"a.wav": noise_track(rng, 1, 1.5), "b.wav": noise_track(rng, 2, 1.5)}
    values = np.stack([
        CONSOLE_V1.from_dict({**NEUTRAL_V1, "gain_db": -8.0, "pan": -0.6, "eq_low_shelf_gain_db": 6.0}),
        CONSOLE_V1.from_dict({**NEUTRAL_V1, "gain_db": 1.0, "pan": 0.5, "eq_high_shelf_gain_db": -6.0}),
    ])
    mix = Console(list(tracks.values()), SR).render(values)
    return write_song(tmp_path_factory.mktemp("extra") / "song", tracks, mix)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_tiny_corpus(tmp_path_factory.mktemp("extra") / "corpus", n_songs=3, seconds=1.0, seed=3)


def _invert(song_dir, out, **kwargs):
    return api.invert(song_dir / "tracks", song_dir / "mix.wav", out, **kwargs)


def test_invert_writes_the_console_mix_too(song_dir, tmp_path):
    out = tmp_path / "inv"
    result = _invert(song_dir, out, method="barchiesi-reiss")
    assert result.method == "barchiesi-reiss"
    assert sorted(p.name for p in out.iterdir()) == ["mix.wav", "mix_console.wav", "params.json"]
    params = read_params(out / "params.json")
    assert params.extra["method"] == "barchiesi-reiss"
    assert params.extra["mix_wav"] == "direct FIR rendering"
    other = params.extra["other_mixes"]
    assert set(other) == {"mix_console.wav"}
    assert other["mix_console.wav"]["source"] == EXTRA_MIX_NAMES["console"]
    reference, _ = read_audio(song_dir / "mix.wav")
    mix, _ = read_audio(out / "mix.wav")
    console_mix, _ = read_audio(out / "mix_console.wav")
    # mix.wav is the direct rendering, mix_console.wav the console rendering of params.json
    np.testing.assert_allclose(mix, result.estimate.mix, atol=1e-7)
    tracks = [read_audio(song_dir / "tracks" / n)[0] for n in params.track_names]
    np.testing.assert_allclose(console_mix, render_mix(tracks, SR, params), atol=1e-5)
    # the scores in params.json are those of the files beside it
    scores = compare_mixes(console_mix, reference, SR)
    assert other["mix_console.wav"]["mrsd"] == pytest.approx(scores.mrsd, rel=1e-4)
    assert other["mix_console.wav"]["mae"] == pytest.approx(scores.mae, rel=1e-3, abs=1e-7)
    assert params.extra["scores"]["mrsd"] == pytest.approx(compare_mixes(mix, reference, SR).mrsd, rel=1e-4)
    assert result.params_extra["other_mixes"] == other


def test_invert_refuses_an_existing_console_mix_before_writing(song_dir, tmp_path):
    out = tmp_path / "inv"
    out.mkdir()
    (out / "mix_console.wav").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="mix_console.wav"):
        _invert(song_dir, out, method="barchiesi-reiss")
    assert sorted(p.name for p in out.iterdir()) == ["mix_console.wav"]
    assert (out / "mix_console.wav").read_bytes() == b"mine"
    _invert(song_dir, out, method="barchiesi-reiss", overwrite=True)
    assert (out / "mix_console.wav").read_bytes() != b"mine"
    assert (out / "params.json").is_file() and (out / "mix.wav").is_file()


def test_methods_without_extra_mixes_write_none(song_dir, tmp_path):
    out = tmp_path / "inv"
    _invert(song_dir, out, method="sum")
    assert sorted(p.name for p in out.iterdir()) == ["mix.wav", "params.json"]
    params = read_params(out / "params.json")
    # no settings known for these tracks: the default console, v2
    assert params.extra["mix_wav"] == "console v2" and "other_mixes" not in params.extra


def test_evaluate_limit_and_console_rows(corpus):
    results = evaluate(corpus, ["sum", "barchiesi-reiss"], limit=2)
    assert {r.song for r in results.rows} == {"song_0000", "song_0001"}
    assert results.methods == ["sum", "barchiesi-reiss", "barchiesi-reiss:console"]
    assert len(results.rows) == 6
    for method in results.methods:
        assert results.mean(method)["songs"] == 2
    by_key = {(r.song, r.method): r for r in results.rows}
    for song in ("song_0000", "song_0001"):
        direct, console = by_key[(song, "barchiesi-reiss")], by_key[(song, "barchiesi-reiss:console")]
        # one set of settings, two renderings of it
        assert console.param_errors == direct.param_errors and console.param_errors is not None
        assert console.mrsd != direct.mrsd
    doc = results.to_json()
    assert set(doc["mean"]) == {"sum", "barchiesi-reiss", "barchiesi-reiss:console"}
    assert "| barchiesi-reiss:console |" in results.to_markdown()
    assert "(2 songs)" in results.to_markdown()


@pytest.mark.parametrize("limit", [0, -1])
def test_evaluate_rejects_a_limit_below_one(corpus, limit):
    with pytest.raises(ValueError, match="limit"):
        evaluate(corpus, ["sum"], limit=limit)


def test_evaluate_limit_larger_than_the_dataset(corpus):
    results = evaluate(corpus, ["sum"], limit=100)
    assert len({r.song for r in results.rows}) == 3


def test_cli_evaluate_options_and_limit(corpus, tmp_path, capsys):
    assert main(["evaluate", str(corpus), "--methods", "sum", "--steps", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mixinvert: error:") and "steps" in err
    assert main(["evaluate", str(corpus), "--methods", "sum", "--budget-seconds", "3"]) == 2
    assert "budget_seconds" in capsys.readouterr().err
    assert main(["evaluate", str(corpus), "--methods", "sum", "--limit", "0"]) == 2
    assert "limit" in capsys.readouterr().err
    md = tmp_path / "r.md"
    assert main(["evaluate", str(corpus), "--methods", "sum,barchiesi-reiss", "--limit", "1", "--out", str(md)]) == 0
    doc = json.loads(md.with_suffix(".json").read_text())
    assert {s["song"] for s in doc["songs"]} == {"song_0000"}
    assert set(doc["mean"]) == {"sum", "barchiesi-reiss", "barchiesi-reiss:console"}


def test_cli_invert_with_steps(song_dir, tmp_path, capsys, one_torch_thread):
    out = tmp_path / "inv"
    argv = ["invert", str(song_dir / "tracks"), str(song_dir / "mix.wav"), "--method", "colonel-reiss",
            "--steps", "4", "--out", str(out)]
    assert main(argv) == 0
    assert "method colonel-reiss" in capsys.readouterr().out
    params = read_params(out / "params.json")
    assert params.extra["method"] == "colonel-reiss" and params.extra["mix_wav"] == "console v2"
    assert 1 <= params.extra["method_info"]["steps"] <= 4
    assert not (out / "mix_console.wav").exists()
    # a method that takes no --steps: one line, exit 2, nothing written
    assert main([*argv[:4], "sum", "--steps", "4", "--out", str(tmp_path / "x")]) == 2
    assert "takes no option steps" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_invert_prints_the_other_mixes(song_dir, tmp_path, capsys):
    out = tmp_path / "inv"
    assert main(["invert", str(song_dir / "tracks"), str(song_dir / "mix.wav"), "--method", "barchiesi-reiss",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "also mix_console.wav" in printed and "direct FIR rendering" in printed
    assert main(["invert", str(song_dir / "tracks"), str(song_dir / "mix.wav"), "--method", "barchiesi-reiss",
                 "--out", str(out)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err


def test_auto_picks_a_method_that_takes_the_options(song_dir, tmp_path, monkeypatch, one_torch_thread):
    from mixinvert.methods import base, registry

    # whatever the ranking: put eami (options: model) first and make it available, as with a
    # shipped model, so that "auto" without options would pick it and the options must decide
    entry = registry.available_methods()["eami"]
    monkeypatch.setitem(base.REGISTERED, "eami", base.MethodEntry(
        entry.name, entry.fn, entry.summary, entry.needs_mix, entry.options, lambda: True))
    monkeypatch.setattr(registry, "PREFERENCE", ("eami", "barchiesi-reiss", "colonel-reiss", "sum", "random"))
    assert best_method() == "eami"
    assert best_method(options=("model",)) == "eami"
    assert best_method(options=("steps",)) == "colonel-reiss"
    assert best_method(options=("steps", "budget", "budget_seconds")) == "colonel-reiss"
    with pytest.raises(ValueError, match="no available method"):
        best_method(options=("steps", "model"))
    result = _invert(song_dir, tmp_path / "inv", method="auto", options={"steps": 3})
    assert result.method == "colonel-reiss"
    assert read_params(tmp_path / "inv" / "params.json").extra["method"] == "colonel-reiss"
    assert result.estimate.info["steps"] <= 3
