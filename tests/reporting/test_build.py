"""build_report: one self-contained page whose strips show exactly what params.json holds."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mixinvert.audio import read_audio
from mixinvert.console.params_io import read_params
from mixinvert.data.song import list_track_files, load_tracks_and_mix
from mixinvert.metrics.audio import compare_mixes
from mixinvert.reporting import build_report
from tests.reporting.conftest import (
    NASTY,
    Elements,
    assert_self_contained,
    make_inverted,
    strips,
)


@pytest.fixture
def out(inverted, tmp_path):
    """A private copy of the inverted folder (its inputs stay where params.json says)."""
    dst = tmp_path / "out"
    shutil.copytree(inverted, dst)
    return dst


def test_report_is_one_self_contained_file(built):
    text = (built / "report.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert_self_contained(text)
    page = Elements(text)
    assert all(a["src"].startswith("data:image/png;base64,") for a in page.find("img"))
    audio = page.find("audio")
    assert len(audio) == 2 + 3  # reference, recreated, one solo per track
    assert all(a["src"].startswith("data:audio/ogg;base64,") and "controls" in a for a in audio)
    assert sorted(p.name for p in built.iterdir()) == ["mix.wav", "params.json", "report.html"]  # no temp files


def test_every_track_has_a_strip_showing_its_values(built):
    params = read_params(built / "params.json")
    shown = strips((built / "report.html").read_text(encoding="utf-8"))
    assert set(shown) == set(params.track_names)
    for name, row in zip(params.track_names, params.values):
        _, elements = shown[name]
        values = {a["data-param"]: float(a["data-value"]) for a in elements.find("span") if "data-value" in a}
        assert values == params.schema.to_dict(row)  # exact: every setting, no rounding
        assert len(elements.find("img")) == 2 and len(elements.find("audio")) == 1


def test_intervals_and_undetermined_flags_appear_where_params_json_has_them(built):
    params = read_params(built / "params.json")
    shown = strips((built / "report.html").read_text(encoding="utf-8"))
    for name, extra in zip(params.track_names, params.track_extra):
        raw, elements = shown[name]
        intervals = {a["data-param"]: (float(a["data-low"]), float(a["data-high"]))
                     for a in elements.find("span") if "data-low" in a}
        assert intervals == {k: (iv["low"], iv["high"]) for k, iv in extra.get("uncertainty", {}).items()}
        flagged = {a["data-param"] for a in elements.find("span") if "und" in a.get("class", "").split()}
        assert flagged == set(extra.get("undetermined", {}))
        if flagged:
            assert f"{len(flagged)} undetermined" in raw
            for why in extra["undetermined"].values():
                assert why in raw  # the reason is written out, not only in a tooltip
        else:
            assert "undetermined</span>" not in raw
    assert "ratio, attack</b>: the threshold" in shown["bass.wav"][0]  # one reason, its settings grouped


def test_track_names_and_notes_are_escaped(built):
    text = (built / "report.html").read_text(encoding="utf-8")
    assert NASTY not in text and "<b> &" not in text
    assert "a &lt;b&gt; &amp; &quot;c&quot;.wav" in text
    assert "a note about &lt;loading&gt; &amp; such" in text
    names = {a["data-track"] for a in Elements(text).find("section")}
    assert NASTY in names  # the attribute round-trips to the real name


def test_summary_scores_the_recreated_mix_and_the_plain_sum(built):
    params = read_params(built / "params.json")
    text = (built / "report.html").read_text(encoding="utf-8")
    song_dir = built.parent / "song"
    song = load_tracks_and_mix(list_track_files(song_dir / "tracks"), song_dir / "mix.wav")
    scores = compare_mixes(read_audio(built / "mix.wav")[0], song.mix, song.sample_rate)
    plain = compare_mixes(sum(t for t in song.tracks) * np.ones((2, 1), np.float32), song.mix, song.sample_rate)
    assert f'id="mrsd">{scores.mrsd:.3f}<' in text and f'id="mae">{scores.mae:.4f}<' in text
    assert "<td>plain sum</td>" in text and f">{plain.mrsd:.3f}<" in text
    assert f"&times;{scores.mrsd / plain.mrsd:.2f}" in text
    assert scores.mrsd < plain.mrsd  # the test song's estimate is near the truth
    assert "<td>eami+refine</td>" in text and "<td>12.5 s</td>" in text and params.extra["method"] == "eami+refine"
    # the method's own record, readable: floats to 4 significant digits
    assert "<td>twin_steps 105; twin_loss 0.02276; chosen search</td>" in text


def test_scores_are_measured_again_when_the_inputs_are_given(out):
    doc = json.loads((out / "params.json").read_text())
    true = doc["scores"]
    doc["scores"] = {"mae": 9.0, "mrsd": 99.0}  # not what these files give
    (out / "params.json").write_text(json.dumps(doc))
    assert 'id="mrsd">99.000<' in build_report(out).read_text(encoding="utf-8")  # invert's own scores, trusted
    song = Path(doc["inputs"]["tracks_dir"]).parent
    text = build_report(out, tracks_dir=song / "tracks", mix_path=song / "mix.wav").read_text(encoding="utf-8")
    assert f'id="mrsd">{true["mrsd"]:.3f}<' in text


def test_overwrite_refused_unless_asked(out):
    first = build_report(out)
    before = first.read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        build_report(out, overwrite=False)
    assert first.read_bytes() == before
    assert build_report(out, overwrite=True) == first


def test_missing_outputs_and_inputs_are_named_with_the_option_to_pass(out, tmp_path):
    doc = json.loads((out / "params.json").read_text())
    with pytest.raises(FileNotFoundError, match="params.json"):
        build_report(tmp_path / "nowhere")
    # inputs that moved: say so and name --tracks / --mix
    moved = tmp_path / "moved"
    shutil.copytree(Path(doc["inputs"]["tracks_dir"]).parent, moved)
    doc["inputs"] = {"tracks_dir": str(tmp_path / "gone" / "tracks"), "mix": str(tmp_path / "gone" / "mix.wav")}
    (out / "params.json").write_text(json.dumps(doc))
    with pytest.raises(FileNotFoundError, match=r"tracks folder .*gone.*--tracks DIR"):
        build_report(out)
    with pytest.raises(FileNotFoundError, match=r"reference mix .*gone.*--mix FILE"):
        build_report(out, tracks_dir=moved / "tracks")
    assert build_report(out, tracks_dir=moved / "tracks", mix_path=moved / "mix.wav").is_file()
    # no record at all
    del doc["inputs"]
    (out / "params.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match='no "inputs".*--tracks DIR'):
        build_report(out)
    # a track of params.json missing from the folder
    (moved / "tracks" / "keys.wav").unlink()
    with pytest.raises(FileNotFoundError, match="lacks track.*keys.wav.*--tracks"):
        build_report(out, tracks_dir=moved / "tracks", mix_path=moved / "mix.wav")


def test_params_in_another_order_than_the_files_are_matched_by_name(out):
    doc = json.loads((out / "params.json").read_text())
    doc["tracks"] = doc["tracks"][::-1]
    (out / "params.json").write_text(json.dumps(doc))
    shown = strips(build_report(out).read_text(encoding="utf-8"))
    for row in doc["tracks"]:
        values = {a["data-param"]: float(a["data-value"]) for a in shown[row["name"]][1].find("span") if "data-value" in a}
        assert values["gain_db"] == row["gain_db"] and values["pan"] == row["pan"]


def test_players_hold_at_most_max_audio_seconds(out):
    import base64
    import io

    import soundfile as sf

    text = build_report(out, max_audio_seconds=0.5).read_text(encoding="utf-8")
    audio = Elements(text).find("audio")
    for a in audio:
        info = sf.info(io.BytesIO(base64.b64decode(a["src"].split(",", 1)[1])))
        assert info.channels == 2 and info.frames == int(0.5 * info.samplerate)
    assert "the first 0.5 s of 2.0 s" in text


def test_a_report_for_a_real_invert_run(tmp_path):
    from mixinvert.api import invert

    root = make_inverted(tmp_path)
    song = root.parent / "song"
    result = invert(song / "tracks", song / "mix.wav", tmp_path / "inv", method="sum")
    text = build_report(tmp_path / "inv").read_text(encoding="utf-8")
    assert_self_contained(text)
    # console v2 by default (no settings known for these tracks): a strip per track, the bus and the master
    assert set(strips(text)) == set(result.song.track_names) | {"reverb bus", "master"}
    assert "<td>sum</td>" in text and "&times;1.00" in text  # the plain sum is its own scale


def test_a_console_v2_report_draws_every_strip_bus_and_master(tmp_path):
    """A v2 params.json: each track strip shows every v2 setting exactly, effects at their
    off end read "off", the reverb bus and the master get strips of their own, and a
    drifting track is named in the notes."""
    from mixinvert.audio import write_audio
    from mixinvert.console.mixing import render_mix, sum_values
    from mixinvert.console.params_io import MixParams, write_params
    from mixinvert.console.schema import CONSOLE_V2
    from tests.conftest import SR, noise_track, write_song

    rng = np.random.default_rng(2)
    tracks = {"a.wav": noise_track(rng, 1, 1.0), "b.wav": noise_track(rng, 2, 1.0)}
    song = write_song(tmp_path / "song", tracks, noise_track(rng, 2, 1.0))
    values = sum_values(CONSOLE_V2, list(tracks.values()))
    values[0, CONSOLE_V2.index("hpf_cutoff_hz")] = 120.0
    values[0, CONSOLE_V2.index("reverb_send_db")] = -12.0
    shared = CONSOLE_V2.shared.from_dict({**CONSOLE_V2.shared.neutral(), "master_comp_ratio": 3.0,
                                          "master_comp_threshold_db": -20.0})
    drift = {"alignment": {"drifts": True, "drift_ms": 2.5, "reliable": True}}
    params = MixParams(CONSOLE_V2, ("a.wav", "b.wav"), values, SR, shared=shared, track_extra=(drift, {}),
                       extra={"method": "colonel-reiss", "inputs": {"tracks_dir": str(song / "tracks"),
                                                                    "mix": str(song / "mix.wav")}})
    out = tmp_path / "out"
    write_params(out / "params.json", params)
    write_audio(out / "mix.wav", render_mix(list(tracks.values()), SR, params), SR)
    text = build_report(out).read_text(encoding="utf-8")
    assert_self_contained(text)
    shown = strips(text)
    assert set(shown) == {"a.wav", "b.wav", "reverb bus", "master"}
    for i, name in enumerate(("a.wav", "b.wav")):
        raw, elements = shown[name]
        got = {a["data-param"]: float(a["data-value"]) for a in elements.find("span") if "data-value" in a}
        want = CONSOLE_V2.to_dict(values[i])
        shown_off = {n for n in want if n not in got}
        # only settings of switched-off processors are left out (b.wav's high-pass and send)
        assert all(CONSOLE_V2.spec(n).is_off(want[n]) for n in shown_off)
        assert {k: v for k, v in want.items() if k not in shown_off} == got
        assert len(elements.find("audio")) == 1
    assert "High-pass</b> <span" not in shown["a.wav"][0] and "High-pass</b> <span" in shown["b.wav"][0]
    master = {a["data-param"]: float(a["data-value"]) for a in shown["master"][1].find("span") if "data-value" in a}
    assert master["master_comp_ratio"] == 3.0 and "master_limiter_ceiling_db" not in master  # the limiter is off
    assert len(shown["master"][1].find("img")) == 2
    assert "a.wav: its time offset drifts over the song by 2.50 ms" in text
    assert "console v2" in text
