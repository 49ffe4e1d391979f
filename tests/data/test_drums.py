"""Tests for mixinvert.data.drums against the real MuldjordKit subset (skipped if absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixinvert.data import drums as D

KIT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "muldjordkit"
GROOVE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "groove" / "groove_1_funk-groove1_138.mid"
SR = 44100


@pytest.fixture(scope="module")
def kit() -> D.DrumKit:
    if not (KIT / "Samples").is_dir():
        pytest.skip(f"MuldjordKit subset not found at {KIT.resolve()}")
    return D.load_kit(KIT)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_kit_layers_and_broken_layer_left_out(kit: D.DrumKit) -> None:
    assert kit.mic_names == ("kick", "snare", "hi-hat", "tom_1", "tom_2", "tom_3", "overhead_L", "overhead_R")
    assert {m.category for m in kit.mics} == {"kick", "snare", "hihat", "tom", "overhead"}
    assert len(kit.layers["kick"]) == 5
    assert len(kit.layers["hihat_open"]) == 4  # v1 of the subset is a 6-sample stub
    assert any("HihatOpen" in n for n in kit.notes)
    assert D.load_kit(KIT) is kit  # cached per process


@pytest.mark.parametrize("duration", [0.5, 2.3456, 3.0])
def test_output_lengths_exact(kit: D.DrumKit, duration: float) -> None:
    hits = [D.Hit(-0.1, "crash", 90), D.Hit(0.2, "snare", 100), D.Hit(duration - 0.01, "ride", 80)]
    out = D.render_drums(kit, hits, duration, rng=np.random.default_rng(0))
    assert list(out) == list(kit.mic_names)
    for x in out.values():
        assert x.dtype == np.float32 and x.shape == (round(duration * SR),)
    assert np.abs(out["overhead_L"][:100]).max() > 0  # the crash before 0 s rings into the start


def test_render_deterministic_and_seed_dependent(kit: D.DrumKit) -> None:
    def song(seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        return D.render_drums(kit, D.generate_pattern(rng, 6.0), 6.0, rng=rng)

    a, b, c = song(7), song(7), song(8)
    assert all(np.array_equal(a[m], b[m]) for m in a)
    assert not np.allclose(a["overhead_L"], c["overhead_L"])


def test_single_kick_bleeds_into_every_mic(kit: D.DrumKit) -> None:
    out = D.render_drums(kit, [D.Hit(1.0, "kick", 110)], 2.0, rng=np.random.default_rng(0))
    k = out["kick"]
    assert np.all(out["overhead_L"][:SR] == 0) and np.all(k[:SR] == 0)
    onset = int(np.argmax(np.abs(k) > 0.1 * np.abs(k).max()))
    assert abs(onset / SR - 1.0) < 0.005
    for mic in ("snare", "overhead_L", "overhead_R"):
        assert _rms(out[mic]) > 1e-5, f"no bleed of the kick on {mic}"
    assert _rms(k) > 5 * max(_rms(x) for m, x in out.items() if m != "kick")


def test_louder_velocity_is_louder(kit: D.DrumKit) -> None:
    for seed in range(5):
        soft, loud = (D.render_drums(kit, [D.Hit(0.1, "snare", v)], 1.0, rng=np.random.default_rng(seed))
                      for v in (30, 120))
        assert _rms(loud["snare"]) > 1.5 * _rms(soft["snare"])
        assert _rms(loud["overhead_R"]) > _rms(soft["overhead_R"])


def test_closed_hat_chokes_open_hat(kit: D.DrumKit) -> None:
    open_only = [D.Hit(0.5, "hihat_open", 110)]
    choked = open_only + [D.Hit(0.6, "hihat_closed", 60)]
    a, b = (D.render_drums(kit, h, 2.0, rng=np.random.default_rng(1))["hi-hat"] for h in (open_only, choked))
    tail = slice(int(1.1 * SR), int(1.5 * SR))
    assert _rms(a[tail]) > 1e-4 and _rms(b[tail]) < 0.01 * _rms(a[tail])


def test_unknown_instrument_or_mic_rejected(kit: D.DrumKit) -> None:
    with pytest.raises(ValueError, match="cowbell"):
        D.render_drums(kit, [D.Hit(0.1, "cowbell", 100)], 1.0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="room_L"):
        D.render_drums(kit, [], 1.0, rng=np.random.default_rng(0), mics=["room_L"])


def test_midi_groove_loads_plausibly() -> None:
    if not GROOVE.is_file():
        pytest.skip(f"groove MIDI not found at {GROOVE.resolve()}")
    hits = D.performance_from_midi(GROOVE)
    assert 300 <= len(hits) <= 410
    assert {"kick", "snare", "hihat_closed", "ride", "crash"} <= {h.instrument for h in hits}
    times = np.array([h.time_s for h in hits])
    assert np.all(np.diff(times) >= 0) and times[0] >= 0 and times[-1] <= 27.9
    assert all(1 <= h.velocity <= 127 for h in hits)


def test_midi_tempo_scale_and_window() -> None:
    if not GROOVE.is_file():
        pytest.skip(f"groove MIDI not found at {GROOVE.resolve()}")
    base = D.performance_from_midi(GROOVE)
    fast = D.performance_from_midi(GROOVE, tempo_scale=1.25)
    assert len(fast) == len(base)
    np.testing.assert_allclose([h.time_s for h in fast], [h.time_s / 1.25 for h in base])
    win = D.performance_from_midi(GROOVE, start_s=5.0, duration_s=10.0)
    assert len(win) == sum(5.0 <= h.time_s < 15.0 for h in base) > 50
    assert all(0.0 <= h.time_s < 10.0 for h in win)


@pytest.mark.parametrize("style", ["rock", "funk", "halftime", "shuffle"])
def test_generated_patterns(style: str) -> None:
    a = D.generate_pattern(np.random.default_rng(3), 20.0, style=style)
    assert a == D.generate_pattern(np.random.default_rng(3), 20.0, style=style)
    assert a != D.generate_pattern(np.random.default_rng(4), 20.0, style=style)
    assert all(0.0 <= h.time_s < 20.0 and 1 <= h.velocity <= 127 for h in a)
    insts = {h.instrument for h in a}
    assert {"kick", "snare", "crash"} <= insts and insts & {"hihat_closed", "ride"}
    assert max(h.velocity for h in a) - min(h.velocity for h in a) > 30  # accents, ghosts
    bpm120 = D.generate_pattern(np.random.default_rng(3), 20.0, style=style, bpm=120.0)
    kicks = sum(h.instrument == "kick" for h in bpm120)
    assert 10 <= kicks <= 120


def test_drum_multitrack(kit: D.DrumKit) -> None:
    tracks = D.drum_multitrack(KIT, np.random.default_rng(2), 4.0)
    assert [(n, c) for n, c, _ in tracks] == [(m.name, m.category) for m in D.ENST_MICS]
    assert all(x.shape == (4 * SR,) and _rms(x) > 0 for _, _, x in tracks)
    if GROOVE.is_file():
        midi = D.drum_multitrack(KIT, np.random.default_rng(2), 5.0, source="midi", midi_path=GROOVE)
        assert all(x.shape == (5 * SR,) for _, _, x in midi) and _rms(midi[0][2]) > 0
    with pytest.raises(ValueError, match="midi_path"):
        D.drum_multitrack(KIT, np.random.default_rng(2), 1.0, source="midi")


def _fake_kit(root: Path, rate: int = 22050) -> None:
    for folder in D.INSTRUMENTS.values():
        d = root / "Samples" / folder
        d.mkdir(parents=True)
        for mic in D.ENST_MICS:
            sf.write(d / f"v1-{folder}-{mic.kit_mic}.flac", np.full(rate // 10, 0.1), rate)


def test_fake_kit_resampled(tmp_path: Path) -> None:
    _fake_kit(tmp_path)
    k = D.load_kit(tmp_path)
    assert k.layers["snare"][0].shape == (8, SR // 10)


def test_fake_kit_missing_file_is_named(tmp_path: Path) -> None:
    _fake_kit(tmp_path)
    (tmp_path / "Samples" / "Snare" / "v1-Snare-OHR.flac").unlink()
    with pytest.raises(D.KitError, match="v1-Snare-OHR.flac"):
        D.load_kit(tmp_path)


def test_fake_kit_missing_folder_is_named(tmp_path: Path) -> None:
    _fake_kit(tmp_path)
    for f in (tmp_path / "Samples" / "Tom2").iterdir():
        f.unlink()
    (tmp_path / "Samples" / "Tom2").rmdir()
    with pytest.raises(D.KitError, match="Tom2"):
        D.load_kit(tmp_path)
    with pytest.raises(D.KitError, match="KdrumR"):
        D.load_kit(tmp_path / "nowhere")
