"""Behaviour kept through restructuring: every built-in method answers as it did before the
code beneath was rearranged, for the same song, seed and work budget.

``tests/stored/settings.json`` holds each method's settings, written by ``python -m
tests.stored.behaviour --store`` before the restructuring; ``python -m
tests.stored.behaviour`` compares a fresh run with them to the last digit, on the machine
that stored them. Here, on any machine: the closed-form methods must give the same
settings to float rounding; the fits (least squares, the twin's gradient steps, CMA-ES)
follow every rounding of the CPU's kernels (torch's, BLAS's, numba's as compiled for the
machine) into other settings of a flat optimum: Adam takes a full step on the sign of a
gradient that is only rounding, for a setting the audio does not determine (a shelf's
cutoff at 0 dB). So theirs must reproduce the stored settings' quality, the same MRSD
against the song's mix. eami+refine at its default budget is left to the exact check on
the storing machine: its search and final check branch on differences that small (two
compilations of the same kernels gave MRSD 0.024 and 0.046 on this song), and
``tests/methods/test_determinism.py`` holds it to one answer per machine.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1
from mixinvert.data.song import load_tracks_and_mix
from mixinvert.metrics.audio import compare_mixes
from tests.stored.behaviour import RUNS, STORED, make_song, run_key, settings_of

#: Closed-form methods: settings equal to float rounding.
EXACT = {"sum": 1e-9, "random": 1e-9, "eami": 1e-4}
#: Fits: the stored settings' MRSD, to this share of it.
MRSD_RTOL = 0.1


@pytest.fixture(scope="module")
def song_dir(tmp_path_factory):
    return make_song(tmp_path_factory.mktemp("stored") / "song")


def _mrsd(song_dir, settings: dict[str, dict[str, float]]) -> float:
    song = load_tracks_and_mix(sorted((song_dir / "tracks").glob("*.wav")), song_dir / "mix.wav")
    values = np.stack([CONSOLE_V1.from_dict(settings[name]) for name in song.track_names])
    return compare_mixes(Console(song.tracks, song.sample_rate).render(values), song.mix, song.sample_rate).mrsd


#: Every stored run but eami+refine at its default budget (module doc).
PORTABLE = [(m, o) for m, o in RUNS if (m, o) != ("eami+refine", {})]


@pytest.mark.parametrize("method, options", PORTABLE, ids=[run_key(m, o) for m, o in PORTABLE])
def test_each_method_answers_as_before_the_restructuring(song_dir, tmp_path, method, options):
    stored = json.loads(STORED.read_text())[run_key(method, options)]
    got = settings_of(song_dir, tmp_path / "out", method, options)
    assert got.keys() == stored.keys()
    assert all(got[t].keys() == stored[t].keys() for t in stored)
    if method in EXACT:
        for track, values in stored.items():
            names = sorted(values)
            np.testing.assert_allclose([got[track][k] for k in names], [values[k] for k in names],
                                       rtol=EXACT[method], atol=EXACT[method], err_msg=f"{method} {track}: {names}")
    else:
        assert _mrsd(song_dir, got) == pytest.approx(_mrsd(song_dir, stored), rel=MRSD_RTOL)

