"""Melodic multitracks from music21's corpus rendered with fluidsynth (short excerpts)."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from mixinvert.data.gm_programs import MELODIC_CATEGORIES, ROLES
from mixinvert.data.melodic import (
    DEFAULT_SOUNDFONT, WORKS, Arrangement, NoteEvent, PartSpec, SynthError, SynthUnavailable,
    choose_arrangement, find_soundfont, melodic_multitrack, render_parts,
)

HAVE_SYNTH = shutil.which("fluidsynth") is not None and DEFAULT_SOUNDFONT.is_file()
needs_synth = pytest.mark.skipif(
    not HAVE_SYNTH, reason="needs fluidsynth and FluidR3_GM.sf2: apt-get install fluidsynth fluid-soundfont-gm")
SR = 22050


def _f0(x: np.ndarray, sr: int) -> float:
    """Frequency (Hz) of the strongest spectral peak of a mono signal, 80-2000 Hz."""
    n = x.shape[-1]
    spec = np.abs(np.fft.rfft(x.mean(axis=0) * np.hanning(n), 8 * n))
    f = np.fft.rfftfreq(8 * n, 1 / sr)
    band = (f > 80) & (f < 2000)
    return float(f[band][np.argmax(spec[band])])


def test_missing_soundfont_names_the_packages(tmp_path, monkeypatch):
    with pytest.raises(SynthUnavailable, match="apt-get install fluidsynth fluid-soundfont-gm"):
        find_soundfont(tmp_path / "none.sf2")
    monkeypatch.setenv("MIXINVERT_SOUNDFONT", str(tmp_path / "env.sf2"))
    with pytest.raises(SynthUnavailable, match="env.sf2|fluidsynth executable"):
        find_soundfont()
    with pytest.raises(SynthUnavailable):
        melodic_multitrack(np.random.default_rng(0), 2.0)


def test_missing_fluidsynth_executable(tmp_path, monkeypatch):
    sf2 = tmp_path / "x.sf2"
    sf2.write_bytes(b"RIFF")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SynthUnavailable, match="fluidsynth executable.*apt-get install fluidsynth"):
        find_soundfont(sf2)


@needs_synth
def test_soundfont_lookup_order(tmp_path, monkeypatch):
    mine = tmp_path / "mine.sf2"
    mine.write_bytes(b"RIFF")
    monkeypatch.delenv("MIXINVERT_SOUNDFONT", raising=False)
    assert find_soundfont() == DEFAULT_SOUNDFONT
    monkeypatch.setenv("MIXINVERT_SOUNDFONT", str(mine))
    assert find_soundfont() == mine
    assert find_soundfont(DEFAULT_SOUNDFONT) == DEFAULT_SOUNDFONT


def test_role_tables_use_the_allowed_categories():
    assert set(MELODIC_CATEGORIES) == {"bass", "guitar", "keys", "strings", "winds", "brass",
                                       "vocals", "synth", "other"}
    assert all(i.category in MELODIC_CATEGORIES and 0 <= i.program < 128 for r in ROLES.values() for i in r)


@needs_synth
@pytest.mark.parametrize("seed, max_parts, duration_s", [(1, 4, 3.0), (2, 7, 2.345)])
def test_parts_have_exact_length_energy_and_no_clipping(seed, max_parts, duration_s):
    out = melodic_multitrack(np.random.default_rng(seed), duration_s, max_parts=max_parts, sample_rate=SR)
    assert len(out) == max_parts
    names = [name for name, _, _ in out]
    assert len(set(names)) == len(names)
    for name, category, x in out:
        assert category in MELODIC_CATEGORIES, name
        assert x.dtype == np.float32 and x.ndim == 2 and x.shape[0] in (1, 2), name
        assert x.shape[1] == round(duration_s * SR), name
        assert np.all(np.isfinite(x)), name
        peak = np.max(np.abs(x))
        assert 10 ** (-12.01 / 20) <= peak <= 10 ** (-2.99 / 20), (name, peak)
        assert np.sqrt(np.mean(x ** 2)) > 10 ** (-50 / 20), name  # not a lone click


@needs_synth
def test_same_seed_same_audio_other_seed_differs():
    a = melodic_multitrack(np.random.default_rng(5), 2.0, max_parts=3, sample_rate=SR)
    b = melodic_multitrack(np.random.default_rng(5), 2.0, max_parts=3, sample_rate=SR)
    c = melodic_multitrack(np.random.default_rng(6), 2.0, max_parts=3, sample_rate=SR)
    assert [(n, k) for n, k, _ in a] == [(n, k) for n, k, _ in b]
    assert all(np.array_equal(x, y) for (_, _, x), (_, _, y) in zip(a, b))
    assert not all(x.shape == y.shape and np.array_equal(x, y) for (_, _, x), (_, _, y) in zip(a, c))


def test_arrangement_fills_parts_and_keeps_outer_voices():
    arr = choose_arrangement(np.random.default_rng(3), max_parts=8, duration_s=4.0,
                             work="bach/bwv10.7.mxl")
    assert len(arr.parts) == 8 and arr.work == "bach/bwv10.7.mxl"
    sources = [p.source for p in arr.parts]
    assert sum(s.startswith("part ") and "doubled" not in s for s in sources) == 4  # the voices
    assert sources.count("pad") <= 1 and sum("doubled" in s for s in sources) >= 3
    assert -5 <= arr.transpose <= 6 and 70 <= arr.bpm <= 140
    two = choose_arrangement(np.random.default_rng(3), max_parts=2, duration_s=4.0, work="palestrina/Credo_03_d.krn")
    assert [p.source.split("(")[1] for p in two.parts] == ["top)", "bass)"]
    for p in arr.parts + two.parts:
        assert p.notes and all(0 <= n.start < n.end and n.start < 4.0 for n in p.notes)
        assert all(1 <= n.velocity <= 127 for n in p.notes)


def test_transposition_shifts_every_note():
    kw = dict(max_parts=5, duration_s=3.0, work="monteverdi/madrigal.3.1.mxl")
    base = choose_arrangement(np.random.default_rng(9), transpose=0, **kw)
    up = choose_arrangement(np.random.default_rng(9), transpose=5, **kw)
    assert up.transpose == 5 and [p.name for p in up.parts] == [p.name for p in base.parts]
    for p, q in zip(base.parts, up.parts):
        assert [n.pitch + 5 for n in p.notes] == [n.pitch for n in q.notes]
        assert [n.start for n in p.notes] == [n.start for n in q.notes]


@needs_synth
def test_rendered_pitch_follows_the_notes():
    flute = PartSpec("flute", "winds", 73, False, "test", -6.0, (NoteEvent(0.05, 1.4, 60, 90),))
    arr = Arrangement("test", "test", 0, 120.0, 1.0, 1, 0.0, 1.5, (flute,))
    octave = dataclasses.replace(flute, notes=(NoteEvent(0.05, 1.4, 72, 90),))
    (_, _, low), (_, _, high) = render_parts(dataclasses.replace(arr, parts=(flute, octave)), sample_rate=SR)
    seg = slice(int(0.3 * SR), int(1.3 * SR))
    assert _f0(low[:, seg], SR) == pytest.approx(261.63, rel=0.02)
    assert _f0(high[:, seg], SR) == pytest.approx(523.25, rel=0.02)


@needs_synth
def test_fluidsynth_failure_is_reported(tmp_path):
    bad = tmp_path / "bad.sf2"
    bad.write_text("not a soundfont")
    arr = choose_arrangement(np.random.default_rng(0), max_parts=1, duration_s=1.0, work=WORKS[0].path)
    with pytest.raises(SynthError, match="not a SoundFont"):
        render_parts(arr, sample_rate=SR, soundfont=bad)
