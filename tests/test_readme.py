"""The README's examples are real: its Python block runs, its commands exist."""

import re
import subprocess
import sys

from mixinvert.cli import build_parser
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
    commands = re.findall(r"^mixinvert (\w+)", README, re.M)
    assert set(commands) == {"render", "invert", "corpus", "evaluate", "demo", "train"}
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(commands) <= set(sub.choices)


def test_python_example_runs(tmp_path, kit_dir, capsys):
    make_corpus(tmp_path / "demo", CorpusConfig("drums", 1, 1.0, 0, str(kit_dir)), jobs=1)
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    code = code.replace('"mixinvert-demo/song_0000"', repr(str(tmp_path / "demo" / "song_0000")))
    exec(compile(code, "README.md", "exec"), {})
    assert "MixScores(mae=0.0, mrsd=0.0)" in capsys.readouterr().out


def test_cli_runs_as_a_program():
    out = subprocess.run([sys.executable, "-m", "mixinvert", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "mixinvert demo --kit" in out.stdout
    out = subprocess.run([sys.executable, "-m", "mixinvert", "render", "nowhere", "--params", "p.json", "--out", "m.wav"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.startswith("mixinvert: error: nowhere: not a folder of tracks")
