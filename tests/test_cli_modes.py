"""The command line for scripts: quiet and JSON-lines modes, exit codes, one-line errors, --debug."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from mixinvert import api
from mixinvert.cli import METHOD_NAMES, build_parser, main
from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
from mixinvert.methods.registry import PREFERENCE
from mixinvert.progress import current_mode, progress_bar, progress_iter, progress_mode
from tests.conftest import SR, noise_track, write_song


@pytest.fixture(scope="module")
def song_dir(tmp_path_factory):
    rng = np.random.default_rng(8)
    tracks = {"a.wav": noise_track(rng, 1, 1.0), "b.wav": noise_track(rng, 1, 1.0)}
    values = np.stack([CONSOLE_V1.from_dict({**NEUTRAL_V1, "gain_db": g}) for g in (-3.0, 3.0)])
    return write_song(tmp_path_factory.mktemp("modes") / "song", tracks, Console(list(tracks.values()), SR).render(values))


def _invert_args(song_dir, out, *extra):
    return ["invert", str(song_dir / "tracks"), str(song_dir / "mix.wav"), "--out", str(out), "--no-report", *extra]


def test_quiet_prints_nothing_before_or_after_the_command(song_dir, tmp_path, capsys):
    assert main(["--quiet", *_invert_args(song_dir, tmp_path / "a", "--method", "sum")]) == 0
    assert capsys.readouterr() == ("", "")
    assert main([*_invert_args(song_dir, tmp_path / "b", "--method", "sum"), "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    assert (tmp_path / "b" / "params.json").is_file()
    assert main(_invert_args(song_dir, tmp_path / "c", "--method", "sum")) == 0
    assert "MRSD" in capsys.readouterr().out


def test_json_lines_progress_and_result(song_dir, tmp_path, capsys):
    out = tmp_path / "j"
    assert main(["--json", *_invert_args(song_dir, out, "--method", "colonel-reiss", "--steps", "4", "--console",
                                         "v1")]) == 0
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines()]  # every line is JSON
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "result" and "progress" in kinds
    progress = [e for e in events if e["event"] == "progress"]
    assert progress[0]["task"].startswith("colonel-reiss") and progress[-1]["done"] >= 1
    result = events[-1]
    assert result["command"] == "invert" and result["method"] == "colonel-reiss"
    assert result["params"] == str(out / "params.json")
    assert [t["name"] for t in result["tracks"]] == ["a.wav", "b.wav"]
    assert set(result["tracks"][0]) == {"name", *CONSOLE_V1.names}
    assert result["scores"]["mrsd"] >= 0


def test_json_error_event_and_exit_code(song_dir, tmp_path, capsys):
    assert main(["--json", "invert", str(tmp_path / "nowhere"), str(song_dir / "mix.wav"), "--out",
                 str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    event = json.loads(captured.out.splitlines()[-1])
    assert event == {"event": "error", "message": f"{tmp_path / 'nowhere'}: not a folder of tracks", "exit_code": 2}
    assert captured.err.count("\n") == 1 and captured.err.startswith("mixinvert: error: ")


def test_errors_are_one_line_unless_debug(song_dir, tmp_path, capsys):
    args = ["render", str(song_dir / "tracks"), "--params", str(tmp_path / "missing.json"), "--out", str(tmp_path / "m.wav")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.json" in err and "Traceback" not in err
    assert main([*args, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("mixinvert: error: ")


@pytest.mark.parametrize("bug", [ZeroDivisionError("division by zero"), ValueError("shapes (2, 3) and (4,) differ")])
def test_internal_errors_exit_1_with_a_pointer_to_debug(song_dir, tmp_path, capsys, monkeypatch, bug):
    # a ValueError that is not a MixinvertError is a bug too, not the user's input
    def broken(*args, **kwargs):
        raise bug

    monkeypatch.setattr(api, "invert", broken)
    assert main(_invert_args(song_dir, tmp_path / "x")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"internal error: {type(bug).__name__}: {bug}" in err and "--debug" in err
    assert main([*_invert_args(song_dir, tmp_path / "x"), "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_every_command_and_option_is_documented():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == {"render", "corpus", "evaluate", "train", "adapt", "average-models", "invert", "report",
                                "export", "demo"}
    for name, p in sub.choices.items():
        assert p.description, name
        for action in p._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
        text = p.format_help()
        assert "--json" in text and "--debug" in text
        # each command's help ends with examples of it, taken from the top-level list
        assert f"examples:\n  mixinvert {name} " in text or f"examples:\n  mixinvert --json {name} " in text, name
        # metavars say what goes there, not the option's name again
        assert "--max-tracks MAX_TRACKS" not in text and "--seed SEED" not in text, name
    assert set(METHOD_NAMES.split(", ")) == set(PREFERENCE)


def test_report_switch_is_on_by_default():
    parser = build_parser()
    base = ["invert", "t", "m.wav", "--out", "o"]
    assert parser.parse_args(base).report is True
    assert parser.parse_args(base + ["--report"]).report is True
    assert parser.parse_args(base + ["--no-report"]).report is False
    assert parser.parse_args(["demo", "--no-report"]).report is False


def test_progress_modes(capsys):
    assert current_mode() == "auto"
    with progress_mode("json"):
        with progress_bar(3, "work", "song") as bar:
            for _ in range(3):
                bar.update(1)
            bar.set_postfix_str("distance 0.5")
        assert list(progress_iter(range(2), 2, "loop")) == [0, 1]
        with progress_bar(5, "hidden", enabled=False) as bar:
            bar.update(5)
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    work = [e for e in events if e["task"] == "work"]
    assert work[0]["done"] == 0 and work[-1] == {"event": "progress", "task": "work", "done": 3, "total": 3,
                                                 "unit": "song", "status": "distance 0.5"}
    assert [e for e in events if e["task"] == "loop"][-1]["done"] == 2
    assert not [e for e in events if e["task"] == "hidden"]
    with progress_mode("off"):
        with progress_bar(2, "silent") as bar:
            bar.update(2)
            assert bar.n == 2
    assert capsys.readouterr() == ("", "")
    assert current_mode() == "auto"
    with pytest.raises(ValueError, match="unknown progress mode"):
        with progress_mode("loud"):
            pass
