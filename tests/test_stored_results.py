"""Behaviour kept through restructuring: every built-in method gives the settings stored in
``tests/stored/settings.json`` (written by ``python -m tests.stored.behaviour --store``
before the code beneath was rearranged) for the same song, seed and work budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.stored.behaviour import RUNS, STORED, make_song, run_key, settings_of

# Closed-form methods agree to float rounding; the fits (hundreds of gradient steps, CMA-ES
# rankings) carry another CPU's rounding further, but stay far within any change of
# behaviour, which moves a setting by whole units.
TOLERANCE = {"sum": 1e-9, "random": 1e-9, "barchiesi-reiss": 1e-5, "eami": 1e-4}
FIT_TOLERANCE = 2e-3


@pytest.fixture(scope="module")
def song_dir(tmp_path_factory):
    return make_song(tmp_path_factory.mktemp("stored") / "song")


@pytest.mark.parametrize("method, options", RUNS, ids=[run_key(m, o) for m, o in RUNS])
def test_settings_match_those_stored_before_the_restructuring(song_dir, tmp_path, method, options):
    stored = json.loads(STORED.read_text())[run_key(method, options)]
    got = settings_of(song_dir, tmp_path / "out", method, options)
    assert got.keys() == stored.keys()
    tol = TOLERANCE.get(method, FIT_TOLERANCE)
    for track, values in stored.items():
        assert got[track].keys() == values.keys()
        names = sorted(values)
        np.testing.assert_allclose([got[track][k] for k in names], [values[k] for k in names], rtol=tol, atol=tol,
                                   err_msg=f"{method} {options} {track}: {names}")
