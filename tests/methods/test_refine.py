"""``eami+refine``: the network's start, the twin, CMA-ES on the real console, uncertainty."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from mixinvert.api import invert
from mixinvert.console.params_io import read_params
from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
from mixinvert.data.song import Song, SongError
from mixinvert.dsp.excerpts import Excerpt
from mixinvert.methods.refine import EFFECTS, RefineConfig, free_mask, refine
from mixinvert.methods.refine.cma_search import CmaConfig, cma_search
from mixinvert.methods.refine.objective import ExcerptObjective
from mixinvert.methods.refine.pipeline import _alive, neutral_normalized
from mixinvert.methods.refine.uncertainty import uncertainty_rows
from mixinvert.methods.registry import best_method, get_method
from mixinvert.twin.fit import TwinFitConfig
from tests.conftest import SR, noise_track, write_song

S = CONSOLE_V1


def _row(**kw):
    return S.from_dict({**NEUTRAL_V1, **kw})


@pytest.fixture(scope="module")
def song():
    rng = np.random.default_rng(11)
    tracks = [noise_track(rng, 1, 2.0), noise_track(rng, 1, 2.0), noise_track(rng, 2, 2.0)]
    truth = np.stack([
        _row(gain_db=-9.0, pan=-0.6, eq_high_shelf_gain_db=-6.0),
        _row(gain_db=2.0, pan=0.5, reverb_wet=0.2),
        _row(gain_db=-4.0, eq_peak_gain_db=5.0, comp_threshold_db=-25.0, comp_ratio=3.0),
    ])
    mix = Console(tracks, SR).render(truth)
    from mixinvert.console.params_io import MixParams

    names = ("a.wav", "b.wav", "c.wav")
    return Song("s", names, tracks, SR, mix, MixParams(S, names, truth, SR))


FAST = RefineConfig(
    budget=60.0,
    twin=TwinFitConfig(steps=6, eval_every=3, patience=3),
    twin_excerpts=2, twin_excerpt_seconds=0.5, search_excerpts=2, search_excerpt_seconds=0.5, preroll_seconds=0.2,
    search=CmaConfig(rounds=1, generations=3, popsize=4),
)


# -- cma_search --------------------------------------------------------------------------------

def _objective(song, values):
    return ExcerptObjective(song.tracks, song.mix, SR, [Excerpt(0, 0, SR)], values, workers=2)


def test_cma_search_improves_one_track_and_leaves_the_rest(song):
    truth = song.params.values
    start = truth.copy()
    start[0, S.index("gain_db")] = -3.0  # 6 dB too loud
    p0 = S.normalize(start)
    free = np.zeros_like(p0, dtype=bool)
    free[0, S.index("gain_db")] = free[0, S.index("pan")] = True
    obj = _objective(song, start)
    config = CmaConfig(rounds=2, generations=10, popsize=6, sigma=0.2)
    res = cma_search(obj, p0, free, config, seed=3)
    assert res.loss < res.start_loss * 0.5 and res.stopped == "rounds"
    np.testing.assert_array_equal(res.p[~free], p0[~free])
    assert abs(S.denormalize(res.p)[0, 0] - truth[0, 0]) < 2.0
    assert obj.loss() == pytest.approx(res.loss)  # the objective holds the result
    assert [b[1] for b in res.blocks] == [0, 0] and res.evaluations > 0
    assert all(after <= before for _, _, before, after, _ in res.blocks)
    assert res.stds[0] is not None and res.stds[0].shape == (2,) and res.stds[1] is None
    again = cma_search(_objective(song, start), p0, free, config, seed=3)
    np.testing.assert_array_equal(res.p, again.p)


def test_cma_search_respects_the_work_budget_the_cap_and_single_settings(song):
    from mixinvert.work import WorkMeter, excerpt_evaluation_units

    start = song.params.values.copy()
    start[1, S.index("pan")] = 0.0
    p0 = S.normalize(start)
    free = np.ones_like(p0, dtype=bool)
    per_eval = excerpt_evaluation_units([Excerpt(0, 0, SR)], SR)
    config = CmaConfig(rounds=1, generations=50, popsize=4, min_improvement=0.0)
    # three generations of four candidates, and the block's update, and no more
    meter = WorkMeter(15.5 * per_eval)
    res = cma_search(_objective(song, start), p0, free, config, meter=meter)
    assert res.stopped == "budget" and res.evaluations == 12
    assert meter.used <= meter.units and meter.used == pytest.approx(13 * per_eval)
    res = cma_search(_objective(song, start), p0, free, config, meter=WorkMeter(per_eval))
    assert res.stopped == "budget" and res.evaluations == 0
    np.testing.assert_array_equal(res.p, p0)
    capped = WorkMeter(seconds_cap=1e-9)
    res = cma_search(_objective(song, start), p0, free, config, meter=capped)
    assert res.stopped == "seconds cap" and res.evaluations == 0 and capped.cut_short == ["search"]
    only_pan = np.zeros_like(p0, dtype=bool)
    only_pan[1, S.index("pan")] = True  # one dimension: cma needs two, a dummy is added
    res = cma_search(_objective(song, start), p0, only_pan, CmaConfig(rounds=1, generations=8, sigma=0.3), seed=0)
    assert res.loss < res.start_loss
    assert abs(S.denormalize(res.p)[1, S.index("pan")] - 0.5) < 0.2


@pytest.mark.parametrize("kwargs", [{"rounds": -1}, {"generations": 0}, {"popsize": 1}, {"sigma": 0.0}])
def test_cma_config_validation(kwargs):
    with pytest.raises(ValueError):
        CmaConfig(**kwargs)


# -- refine ----------------------------------------------------------------------------------------

def test_refine_is_never_worse_than_its_start_and_reports_why(song, one_torch_thread):
    stages = []
    # without the matched network start, which these few steps do not beat on this song
    res = refine(song, replace(FAST, match_network=False), seed=1, progress=lambda stage, d: stages.append(stage))
    assert set(res.candidates) == {res.starts.best, "twin", "search"}
    assert res.candidates[res.chosen] == min(res.candidates.values())
    assert res.candidates[res.chosen] < 0.8 * res.candidates[res.starts.best]  # clearly better than its start
    assert stages[0] == "start" and stages[-1] == "check" and "twin" in stages and "search" in stages
    assert res.p.shape == (3, S.size) and np.abs(res.p).max() <= 1.0
    assert res.intervals.low.shape == (3, S.size) and np.isfinite(res.intervals.low).all()
    assert len(res.undetermined) == 3
    # track 0 is not compressed in the mix: its compressor's settings are flagged (by a rule or as flat)
    assert {"comp_attack_ms", "comp_release_ms"} <= set(res.undetermined[0])
    assert res.twin.steps > 0 and res.search.evaluations > 0 and res.reserve_units > 0
    assert set(res.seconds) == {"start", "twin", "search", "check", "uncertainty"}
    # params.json's method_info is the typed result in plain values
    info = res.info
    assert info["twin_steps"] == res.twin.steps and info["search_evaluations"] == res.search.evaluations
    assert info["start_loss_sum"] == res.starts.losses["sum"] and info["twin_from"] == res.starts.twin_from
    assert info["chosen"] == res.chosen and info[f"mrsd_{res.chosen}"] == res.candidates[res.chosen]
    budget = res.budget
    assert budget["work_units"] == 60.0 and 0 < budget["work_used"] <= 60.0 and budget["seconds_cap"] is None
    assert budget["cut_short_by_seconds_cap"] == []
    again = refine(song, replace(FAST, match_network=False), seed=1)
    np.testing.assert_array_equal(res.p, again.p)  # a function of the song, the settings and the seed
    assert again.budget["work_used"] == budget["work_used"]
    # with it (the default) the twin and the search are the same, and the better start can only help
    matched = refine(song, FAST, seed=1)
    assert matched.starts.best == "eami+match"
    assert matched.candidates[matched.chosen] <= res.candidates[res.chosen] * 1.05


def test_a_budget_too_small_for_the_stages_keeps_the_start_and_the_rules(song, one_torch_thread):
    res = refine(song, replace(FAST, budget=0.01), seed=1)
    assert res.uncertainty.startswith("rules only")
    assert res.twin is None and res.search.evaluations == 0 and "twin_steps" not in res.info
    assert np.isnan(res.intervals.low).all() and np.isnan(res.intervals.high).all()
    assert "comp_attack_ms" in res.undetermined[0]  # the rules still ran
    # the stages the budget skipped left the start as it was
    assert len(set(res.candidates.values())) == 1
    np.testing.assert_array_equal(res.p, res.starts.settings[res.starts.best])
    rows = uncertainty_rows(S.denormalize(res.p), res.intervals, res.undetermined)
    assert all(row["uncertainty"] == {} for row in rows)


def test_refine_can_also_start_from_least_squares(song, one_torch_thread):
    config = RefineConfig(**{**FAST.__dict__, "use_least_squares": True, "search": CmaConfig(rounds=0),
                             "twin": TwinFitConfig(steps=0)})
    res = refine(song, config, seed=0)
    losses = res.starts.losses
    assert set(losses) == {"sum", "eami", "eami+match", "barchiesi-reiss", "barchiesi-reiss+eami-reverb"}
    assert res.starts.best == min(losses, key=losses.get)


def test_refine_restricted_to_some_effects_keeps_the_rest_neutral(song, one_torch_thread):
    config = RefineConfig(**{**FAST.__dict__, "effects": ("gain", "pan"), "use_network": False,
                             "use_least_squares": False})
    res = refine(song, config, seed=0)
    values = S.denormalize(res.p)
    fixed = ~free_mask(("gain", "pan"))
    neutral = S.from_dict(NEUTRAL_V1)
    np.testing.assert_allclose(values[:, fixed], np.broadcast_to(neutral, values.shape)[:, fixed], atol=1e-9)
    assert res.starts.best == "sum" and set(res.starts.losses) == {"sum"}
    assert np.isnan(res.intervals.low[:, fixed]).all()
    assert free_mask(("gain",)).sum() == 1 and free_mask(tuple(EFFECTS)).all()


def test_the_fit_comes_first_when_the_uncertainty_would_take_too_much_of_the_budget(song, one_torch_thread):
    from mixinvert.methods.refine.uncertainty import undetermined_settings

    # any uncertainty is too much: not reserved for, not measured; the rules still flag
    res = refine(song, replace(FAST, uncertainty_max_share=0.0), seed=1)
    assert "too much of the budget" in res.uncertainty
    assert np.isnan(res.intervals.low).all() and np.isnan(res.intervals.high).all()
    assert res.undetermined == undetermined_settings(song.tracks, SR, S.denormalize(res.p))
    assert res.twin.steps > 0
    # the same budget with the default share measures it
    res = refine(song, FAST, seed=1)
    assert res.uncertainty == "measured" and np.isfinite(res.intervals.low).all()
    with pytest.raises(ValueError, match="uncertainty_max_share"):
        RefineConfig(uncertainty_max_share=1.5)


def test_the_twin_starts_from_the_sum_or_an_optional_partial_start(song, monkeypatch, one_torch_thread):
    from mixinvert.methods.colonel_reiss import start_point
    from mixinvert.methods.refine import pipeline as refine_module
    from mixinvert.models.checkpoint import load_model
    from mixinvert.models.predict import predict_song

    begun = []
    real = refine_module.fit_twin
    monkeypatch.setattr(refine_module, "fit_twin", lambda tracks, mix, sr, p, *a, **k: begun.append(p) or real(
        tracks, mix, sr, p, *a, **k))

    # default: the network's estimate is a start for the check only; the twin starts where
    # colonel-reiss's does (every setting neutral, the compressor at 1.05:1 from -20 dB)
    res = refine(song, FAST, seed=1)
    losses = res.starts.losses
    assert set(losses) == {"sum", "eami", "eami+match"} and res.starts.twin_from == "sum"
    assert res.starts.best == min(losses, key=losses.get)  # the check's candidate: the best start of all
    np.testing.assert_allclose(begun[0], start_point(song), atol=1e-12)
    # the matched estimate differs from the network's in level and reverb wet only
    assert losses["eami+match"] != losses["eami"]
    res = refine(song, replace(FAST, match_network=False), seed=1)
    assert "eami+match" not in res.starts.losses

    # a partial start: the network's gain, pan and reverb on a flat EQ and an idle compressor
    begun.clear()
    res = refine(song, replace(FAST, network_effects=("gain", "pan", "reverb")), seed=1)
    losses = res.starts.losses
    assert set(losses) == {"sum", "eami", "eami+match", "eami-partial"}
    assert res.starts.twin_from == min(("sum", "eami-partial"), key=losses.get)
    partial = res.starts.settings["eami-partial"]
    net, _, _ = load_model(None)
    estimate = predict_song(net, song.tracks, song.mix, SR)
    taken = free_mask(("gain", "pan", "reverb"))
    np.testing.assert_allclose(partial[:, taken], estimate[:, taken], atol=1e-6)  # float32, other thread counts
    np.testing.assert_allclose(partial[:, ~taken], neutral_normalized(song)[:, ~taken], atol=1e-12)  # flat EQ, 1:1
    # the twin began from the start chosen for it, kept where the twin has gradients
    np.testing.assert_allclose(begun[0], _alive(res.starts.settings[res.starts.twin_from], free_mask(FAST.effects),
                                                song), atol=1e-12)

    # the network's settings are all the twin fits: the whole estimate may start it
    res = refine(song, replace(FAST, effects=("gain", "pan"), network_effects=("gain", "pan")), seed=1)
    losses = res.starts.losses
    assert set(losses) == {"sum", "eami", "eami+match"} and res.starts.twin_from == min(losses, key=losses.get)


def test_refine_config_and_input_errors(song):
    with pytest.raises(ValueError, match="network_effects"):
        RefineConfig(network_effects=("gain", "delay"))
    with pytest.raises(ValueError, match="effects"):
        RefineConfig(effects=("gain", "chorus"))
    with pytest.raises(ValueError, match="effects"):
        RefineConfig(effects=())
    with pytest.raises(ValueError, match="budget"):
        RefineConfig(budget_seconds=0)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="budget must be a positive number of work units"):
            RefineConfig(budget=bad)
    with pytest.raises(ValueError, match="twin_share"):
        RefineConfig(twin_share=1.5)
    no_mix = Song("n", song.track_names, song.tracks, SR)
    with pytest.raises(SongError, match="reference mix"):
        refine(no_mix, FAST)
    short = Song("t", song.track_names, [t[:, :1000] for t in song.tracks], SR, song.mix[:, :1000])
    with pytest.raises(SongError, match="too short"):
        refine(short, FAST)


def test_the_method_writes_uncertainty_into_params_json(song, tmp_path, one_torch_thread):
    assert best_method(options=("budget", "model")) == "eami+refine"
    assert set(get_method("eami+refine").options) == {"model", "budget", "budget_seconds", "steps", "console",
                                                      "network"}
    d = write_song(tmp_path / "song", dict(zip(song.track_names, song.tracks)), song.mix)
    res = invert(d / "tracks", d / "mix.wav", tmp_path / "out", method="eami+refine", seed=4,
                 options={"budget": 20.0, "steps": 4, "console": "v1"})
    doc = json.loads(res.params_path.read_text())
    # what it takes to repeat the run: the seed and the budget, given and used
    assert doc["seed"] == 4 and doc["budget"]["work_units"] == 20.0 and 0 < doc["budget"]["work_used"] <= 20.0
    assert doc["budget"]["seconds_cap"] is None and doc["budget"]["seconds"] > 0
    info = doc["method_info"]
    candidates = {k[len("mrsd_"):]: v for k, v in info.items() if k.startswith("mrsd_")}
    assert doc["method"] == "eami+refine" and set(candidates) == {info["start"], "twin", "search"}
    assert candidates[info["chosen"]] == min(candidates.values())
    row = doc["tracks"][0]
    assert set(S.names) <= set(row)  # the values keep the v1 format
    gain = row["uncertainty"]["gain_db"]
    assert gain["low"] <= row["gain_db"] <= gain["high"]
    assert isinstance(row["undetermined"], dict)
    # mix.wav is the console rendering of the written settings
    np.testing.assert_array_equal(res.estimate.mix, Console(song.tracks, SR).render(res.estimate.params.values))
    back = read_params(res.params_path)
    np.testing.assert_allclose(back.values, res.estimate.params.values)
    assert back.track_extra[0]["uncertainty"]["gain_db"] == gain
    assert res.scores.mrsd <= doc["method_info"][f"mrsd_{doc['method_info']['start']}"] + 1e-3


def test_refine_handles_a_silent_track(song, one_torch_thread):
    tracks = [*song.tracks[:2], np.zeros_like(song.tracks[2])]
    mix = Console(tracks, SR).render(song.params.values)
    quiet = Song("q", song.track_names, tracks, SR, mix)
    res = refine(quiet, FAST, seed=0)
    assert np.isfinite(res.p).all() and np.isfinite(res.mix).all()
    assert set(res.undetermined[2]) == set(S.names) and "silent" in res.undetermined[2]["pan"]
    assert res.candidates[res.chosen] <= res.candidates[res.starts.best]


def test_long_songs_are_checked_on_excerpts_and_rendered_whole(song):
    """Past long_song_seconds, the network and the check hear excerpts; the mix is whole."""
    config = replace(FAST, long_song_seconds=1.0, check_excerpts=2, check_excerpt_seconds=0.4)  # the song is 2 s
    result = refine(song, config, seed=0)
    assert re.fullmatch(r"[2-4] excerpts, \d+ s", result.heard)  # the loudest 2, up to 2 for unheard tracks
    assert result.mix.shape == song.mix.shape
    expected = Console(song.tracks, SR).render(CONSOLE_V1.denormalize(result.p))
    np.testing.assert_array_equal(result.mix, expected)
    assert set(result.candidates) == {result.starts.best, "twin", "search"}
    short = refine(song, FAST, seed=0)
    assert short.heard == "whole song"
    with pytest.raises(ValueError, match="check_excerpts"):
        replace(FAST, check_excerpts=0)


def test_the_uncertainty_measures_the_loudest_tracks_the_work_left_pays_for(song, one_torch_thread):
    from mixinvert.methods.refine.pipeline import _Run, _single_excerpt_units, _uncertainty
    from mixinvert.methods.refine.uncertainty import uncertainty_evaluations, undetermined_settings
    from mixinvert.work import PRICES, WorkMeter, excerpt_evaluation_units

    p = S.normalize(song.params.values)
    run = _Run.begin(song, FAST, 0, None, None)
    rules = undetermined_settings(song.tracks, SR, song.params.values)
    single = _single_excerpt_units(run.search_excerpts, SR)
    cost = [uncertainty_evaluations(p[i:i + 1], np.ones((1, S.size), bool), rules[i:i + 1]) * single
            for i in range(song.num_tracks)]
    loudest = int(np.argmax([np.mean(np.square(t)) for t in song.tracks]))
    fixed = (PRICES.rules * song.num_tracks * song.num_samples / SR
             + excerpt_evaluation_units(run.search_excerpts, SR, tracks=song.num_tracks))
    # room for the loudest track's measurement and no other
    run.meter = WorkMeter(fixed + cost[loudest] + 0.5 * min(c for i, c in enumerate(cost) if i != loudest))
    intervals, flags, status = _uncertainty(run, p, None, measure=True)
    assert status.startswith(f"measured for 1 of {song.num_tracks} tracks")
    measured = np.isfinite(intervals.low).any(axis=1)
    assert measured[loudest] and measured.sum() == 1
    assert run.meter.used <= run.meter.units
    # with the work for all of them, all are measured
    run.meter = WorkMeter(fixed + sum(cost) + 1e-9)
    intervals, flags, status = _uncertainty(run, p, None, measure=True)
    assert status == "measured" and np.isfinite(intervals.low).any(axis=1).all()
