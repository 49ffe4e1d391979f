"""The README's examples are real: its Python block runs, its commands exist."""

import json
import re
import shlex
import subprocess
import sys

from mixinvert.cli import build_parser, main
from mixinvert.data.corpus import CorpusConfig, make_corpus
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_quick_start_commands_and_ci_agree():
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    assert blocks[0].strip() == "bash scripts/setup.sh && .venv/bin/mixinvert demo --kit ../shared/data/muldjordkit"
    test_command = blocks[1].strip()
    assert test_command in (REPO / ".ci" / "run").read_text()


def test_every_documented_command_parses():
    parser = build_parser()
    commands = re.findall(r"^mixinvert (\w[\w-]*)", README, re.M)
    assert set(commands) == {"render", "invert", "corpus", "evaluate", "demo", "train", "adapt", "average-models",
                             "report", "export"}
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(commands) <= set(sub.choices)


def test_python_examples_run(tmp_path, kit_dir, capsys, monkeypatch):
    make_corpus(tmp_path / "mixinvert-demo", CorpusConfig("drums", 1, 1.0, 0, str(kit_dir)), jobs=1)
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) == 2
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.startswith("barchiesi-reiss ") and "MixScores(mae=0.0, mrsd=0.0)" in out
    for name in ("params.json", "mix.wav", "report.html", "session.dawproject"):
        assert (tmp_path / "inverted" / name).is_file()
    assert (tmp_path / "remix.wav").is_file()


def test_cli_runs_as_a_program():
    out = subprocess.run([sys.executable, "-m", "mixinvert", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "mixinvert demo --kit" in out.stdout
    out = subprocess.run([sys.executable, "-m", "mixinvert", "render", "nowhere", "--params", "p.json", "--out", "m.wav"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.startswith("mixinvert: error: nowhere: not a folder of tracks")


def test_walk_through_runs(tmp_path, kit_dir, monkeypatch, capsys):
    block = re.search(r"### A walk-through.*?```sh\n(.*?)```", README, re.S).group(1)
    lines = [line for line in block.splitlines() if line.strip()]
    assert len(lines) >= 8
    monkeypatch.chdir(tmp_path)
    for line in lines:
        argv = shlex.split(line.replace("../shared/data/muldjordkit", str(kit_dir)))
        assert argv[0] == "mixinvert"
        assert main(argv[1:]) == 0, line
    out = capsys.readouterr().out
    assert json.loads(out.splitlines()[-1])["event"] == "result"  # the last line ran with --json
    for path in ("inverted/params.json", "inverted/report.html", "session.dawproject", "remix.wav",
                 "results.md", "results.json", "results.html", "runs/tiny/model.pt", "inverted-1/params.json"):
        assert (tmp_path / path).is_file(), path


def test_dawproject_limits_quoted_verbatim():
    """The README quotes describe_dawproject_limits() (also in every session's notes)."""
    from mixinvert.daw import describe_dawproject_limits

    quoted = "\n".join(line[2:] if line.startswith("> ") else "" for line in README.splitlines()
                       if line.startswith(">"))
    body = describe_dawproject_limits().strip().split("\n", 2)[2].strip()
    assert body and body in quoted
