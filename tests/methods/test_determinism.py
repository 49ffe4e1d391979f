"""The answer is a function of the input and the seed: the budgeted methods write the same
settings on a quiet machine and on a busy one, with one torch thread or two."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest

from mixinvert.api import invert
from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
from mixinvert.executors import torch_threads
from tests.conftest import SR, noise_track, write_song


@contextmanager
def busy_machine():
    """A CPU-bound process per core beside the test, stopped when it ends."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        yield
    finally:
        for p in burners:
            p.kill()
        for p in burners:
            p.wait()


@pytest.fixture(scope="module")
def song_dir(tmp_path_factory):
    rng = np.random.default_rng(5)
    tracks = [noise_track(rng, 1, 1.5), noise_track(rng, 2, 1.5)]
    truth = np.stack([CONSOLE_V1.from_dict({**NEUTRAL_V1, "gain_db": -7.0, "pan": 0.4, "eq_peak_gain_db": 4.0}),
                      CONSOLE_V1.from_dict({**NEUTRAL_V1, "gain_db": 1.0, "reverb_wet": 0.25})])
    mix = Console(tracks, SR).render(truth)
    return write_song(tmp_path_factory.mktemp("song") / "song", {"a.wav": tracks[0], "b.wav": tracks[1]}, mix)


def _settings(out_dir):
    doc = json.loads((out_dir / "params.json").read_text())
    return doc["tracks"], doc["budget"], doc["method_info"]


# eami+refine at its default budget, and both methods with budgets small enough to end
# their fits (a budget in seconds would have bought fewer steps on the busy machine)
@pytest.mark.parametrize("method, options, stage", [
    ("eami+refine", {}, None),
    ("eami+refine", {"budget": 2.0}, "twin_stopped"),
    ("colonel-reiss", {"budget": 1.0}, "stopped"),
])
def test_the_same_settings_on_a_quiet_and_a_busy_machine_with_one_or_two_threads(song_dir, tmp_path, method,
                                                                                  options, stage):
    with torch_threads(2):
        invert(song_dir / "tracks", song_dir / "mix.wav", tmp_path / "quiet", method=method, seed=3,
               options=options)
    with busy_machine(), torch_threads(1):
        invert(song_dir / "tracks", song_dir / "mix.wav", tmp_path / "busy", method=method, seed=3,
               options=options)
    quiet, quiet_budget, quiet_info = _settings(tmp_path / "quiet")
    busy, busy_budget, busy_info = _settings(tmp_path / "busy")
    assert busy == quiet  # every value, interval and flag, to the last digit written
    assert busy_budget["work_used"] == quiet_budget["work_used"]
    assert quiet_budget["cut_short_by_seconds_cap"] == busy_budget["cut_short_by_seconds_cap"] == []
    if stage is not None:  # the work budget, not a plateau or a step count, ended the fit
        assert quiet_info[stage] == busy_info[stage] == "budget"
