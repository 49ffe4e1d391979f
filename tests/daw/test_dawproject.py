"""DAWproject export: schema-valid files whose values follow console v1 exactly."""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixinvert.console.params_io import MixParams
from mixinvert.console.render import render_track
from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
from mixinvert.daw.dawproject import channel_mapping, describe_dawproject_limits, export_dawproject
from tests.conftest import SHARED

XSD_DIR = SHARED / "reference" / "dawproject"
SR = 8000

#: Hand-picked settings: (file name, channels, subtype, overrides of NEUTRAL_V1).
TRACKS = (
    ("bass.wav", 1, "PCM_24", dict(gain_db=3.0, pan=-1.0, reverb_wet=0.5, reverb_room_size=0.8, reverb_damping=0.1,
                                   comp_threshold_db=-20.0, comp_ratio=4.0, comp_attack_ms=5.0,
                                   comp_release_ms=250.0, eq_low_shelf_cutoff_hz=80.0, eq_low_shelf_gain_db=4.5,
                                   eq_peak_cutoff_hz=2500.0, eq_peak_gain_db=-3.0, eq_peak_q=2.0,
                                   eq_high_shelf_cutoff_hz=8000.0, eq_high_shelf_gain_db=-6.0)),
    ("keys.wav", 2, "FLOAT", dict(pan=0.0, reverb_wet=0.0)),
    ("vox.flac", 2, "PCM_16", dict(gain_db=-6.0, pan=1.0, reverb_wet=0.25, reverb_room_size=0.2,
                                   reverb_damping=0.7, comp_ratio=2.0)),
)


def _params(names=None, extra=None) -> MixParams:
    rows = [CONSOLE_V1.from_dict({**NEUTRAL_V1, **over}) for *_, over in TRACKS]
    names = names or tuple(n for n, *_ in TRACKS)
    return MixParams(CONSOLE_V1, names, np.stack(rows), SR, extra or {"method": "eami+refine", "song": "Tiny Song"})


@pytest.fixture
def session(tmp_path) -> tuple[list[Path], dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    folder = tmp_path / "tracks"
    folder.mkdir()
    files, audio = [], {}
    for i, (name, channels, subtype, _) in enumerate(TRACKS):
        x = np.clip(rng.standard_normal((SR // 4 + 100 * i, channels)) * 0.2, -1, 1)
        sf.write(folder / name, x, SR, subtype=subtype)
        audio[name], _ = sf.read(folder / name, always_2d=True)
        files.append(folder / name)
    return files, audio


def _read(path: Path) -> tuple[zipfile.ZipFile, ET.Element, ET.Element]:
    zf = zipfile.ZipFile(path)
    return zf, ET.fromstring(zf.read("project.xml")), ET.fromstring(zf.read("metadata.xml"))


def _channel(project: ET.Element, track_name: str) -> ET.Element:
    tracks = [t for t in project.iter("Track") if t.get("name") == track_name]
    assert len(tracks) == 1, f"one track named {track_name!r}"
    return tracks[0].find("Channel")


def _value(node: ET.Element | None) -> float:
    assert node is not None
    return float(node.get("value"))


def test_files_are_valid_against_the_dawproject_schemas(tmp_path, session):
    xmlschema = pytest.importorskip("xmlschema")
    if not (XSD_DIR / "Project.xsd").is_file() or not (XSD_DIR / "MetaData.xsd").is_file():
        pytest.skip(f"DAWproject schemas not found in {XSD_DIR} (the shared reference folder beside the repo)")
    files, _ = session
    out = export_dawproject(_params(), files, tmp_path / "out" / "s.dawproject")
    zf, _, _ = _read(out)
    xmlschema.XMLSchema(str(XSD_DIR / "Project.xsd")).validate(io.BytesIO(zf.read("project.xml")))
    xmlschema.XMLSchema(str(XSD_DIR / "MetaData.xsd")).validate(io.BytesIO(zf.read("metadata.xml")))


def test_structure_names_metadata_and_routing(tmp_path, session):
    files, _ = session
    zf, project, meta = _read(export_dawproject(_params(), files, tmp_path / "s.dawproject"))
    assert project.get("version") == "1.0" and project.find("Application").get("name") == "mixinvert"
    structure = project.find("Structure")
    names = [t.get("name") for t in structure.findall("Track")]
    assert names[:3] == ["bass", "keys", "vox"]
    roles = [t.find("Channel").get("role") for t in structure.findall("Track")]
    assert roles == ["regular", "regular", "regular", "effect", "master"]
    master_id = structure.findall("Track")[-1].find("Channel").get("id")
    return_id = structure.findall("Track")[-2].find("Channel").get("id")
    for name in ("bass", "keys", "vox"):
        channel = _channel(project, name)
        assert channel.get("destination") == master_id
        assert channel.find("Sends/Send").get("destination") == return_id
    assert [int(_channel(project, n).get("audioChannels")) for n in ("bass", "keys", "vox")] == [1, 2, 2]
    # the return names the reverb to set: room and damping weighted by reverb_wet (0.5, 0, 0.25)
    label = structure.findall("Track")[-2].get("name")
    assert "room 0.60" in label and "damping 0.30" in label  # (0.5*0.8 + 0.25*0.2)/0.75, (0.05 + 0.175)/0.75
    assert meta.findtext("Title") == "Tiny Song"
    assert "mixinvert" in meta.findtext("Comment") and "eami+refine" in meta.findtext("Comment")
    notes = zf.read("mixinvert-notes.txt").decode()
    assert "room size 0.600" in notes and describe_dawproject_limits() in notes


def test_levels_pan_eq_and_compressor_follow_console_v1(tmp_path, session):
    files, _ = session
    _, project, _ = _read(export_dawproject(_params(), files, tmp_path / "s.dawproject"))
    bass, keys, vox = (_channel(project, n) for n in ("bass", "keys", "vox"))
    # fader = gain_db + 20 log10(2 (1 - wet)): +3 dB + 0 dB; 0 dB + 6.02 dB (x2); -6 dB + 20 log10(1.5)
    assert _value(bass.find("Volume")) == pytest.approx(10 ** (3 / 20), rel=1e-12)
    assert _value(keys.find("Volume")) == pytest.approx(2.0, rel=1e-12)
    assert _value(vox.find("Volume")) == pytest.approx(10 ** (-6 / 20) * 1.5, rel=1e-12)
    assert {c.find("Volume").get("unit") for c in (bass, keys, vox)} == {"linear"}
    # pan -1, 0, 1 -> normalized 0, 0.5, 1
    assert [_value(c.find("Pan")) for c in (bass, keys, vox)] == [0.0, 0.5, 1.0]
    assert bass.find("Pan").get("unit") == "normalized"
    # pre-fader send = 10**(gain/20) * wet; wet 0 -> send off at 0
    send = bass.find("Sends/Send")
    assert send.get("type") == "pre" and send.find("Enable").get("value") == "true"
    assert _value(send.find("Volume")) == pytest.approx(10 ** (3 / 20) * 0.5, rel=1e-12)
    off = keys.find("Sends/Send")
    assert off.find("Enable").get("value") == "false" and _value(off.find("Volume")) == 0.0
    assert _value(vox.find("Sends/Send/Volume")) == pytest.approx(10 ** (-6 / 20) * 0.25, rel=1e-12)

    bands = bass.findall("Devices/Equalizer/Band")
    assert [b.get("type") for b in bands] == ["lowShelf", "bell", "highShelf"]
    assert [_value(b.find("Freq")) for b in bands] == pytest.approx([80.0, 2500.0, 8000.0])
    assert [_value(b.find("Gain")) for b in bands] == pytest.approx([4.5, -3.0, -6.0])
    assert [_value(b.find("Q")) for b in bands] == pytest.approx([0.7071, 2.0, 0.7071])
    assert [b.find("Freq").get("unit") for b in bands] == ["hertz"] * 3
    assert [b.find("Gain").get("unit") for b in bands] == ["decibel"] * 3

    comp = bass.find("Devices/Compressor")
    assert _value(comp.find("Threshold")) == pytest.approx(-23.0)  # -20 dB - gain 3 dB (gain is on the fader)
    assert comp.find("Threshold").get("unit") == "decibel"
    assert _value(comp.find("Ratio")) == pytest.approx(75.0) and comp.find("Ratio").get("unit") == "percent"
    assert "4:1" in comp.get("comment")
    assert _value(comp.find("Attack")) == pytest.approx(0.005) and comp.find("Attack").get("unit") == "seconds"
    assert _value(comp.find("Release")) == pytest.approx(0.25) and comp.find("Release").get("unit") == "seconds"
    assert comp.find("AutoMakeup").get("value") == "false"
    assert _value(vox.find("Devices/Compressor/Ratio")) == pytest.approx(50.0)  # 2:1


def test_fader_and_shifted_threshold_reproduce_console_v1(rng):
    """The mapping's claim: gain on the fader, threshold - gain, equals console v1 (dry path)."""
    x = (rng.standard_normal((1, SR // 2)) * 0.3).astype(np.float32)
    v = {**NEUTRAL_V1, "gain_db": 6.0, "comp_threshold_db": -18.0, "comp_ratio": 6.0, "comp_attack_ms": 2.0,
         "eq_peak_gain_db": 5.0, "pan": 0.3}
    m = channel_mapping(v)
    daw = {**v, "gain_db": 0.0, "comp_threshold_db": m.comp_threshold_db}  # what the DAW channel runs
    y_console = render_track(x, SR, CONSOLE_V1.from_dict(v))
    y_daw = render_track(x, SR, CONSOLE_V1.from_dict(daw)) / 2.0 * m.fader_linear  # /2: the x2 of a dry reverb
    assert np.max(np.abs(y_console)) > 0.1
    np.testing.assert_allclose(y_daw, y_console, rtol=1e-4, atol=1e-6)
    unshifted = render_track(x, SR, CONSOLE_V1.from_dict({**daw, "comp_threshold_db": -18.0})) / 2 * m.fader_linear
    assert np.max(np.abs(unshifted - y_console)) > 1e-2  # the shift matters


def test_audio_is_stored_and_reads_back_identical(tmp_path, session):
    files, audio = session
    zf, project, _ = _read(export_dawproject(_params(), files, tmp_path / "s.dawproject"))
    clips = list(project.iter("Clip"))
    assert [c.get("name") for c in clips] == ["bass.wav", "keys.wav", "vox.flac"]
    for clip in clips:
        name = clip.get("name")
        node = clip.find("Audio")
        path = node.find("File").get("path")
        assert path in zf.namelist() and path.startswith("audio/")
        data = zf.read(path)
        back, sr = sf.read(io.BytesIO(data), always_2d=True)
        assert sf.info(io.BytesIO(data)).format == "WAV"
        np.testing.assert_array_equal(back, audio[name])
        assert sr == SR and int(node.get("sampleRate")) == SR and int(node.get("channels")) == back.shape[1]
        assert float(node.get("duration")) == pytest.approx(len(back) / SR)
        assert float(clip.get("time")) == 0.0 and float(clip.get("duration")) == pytest.approx(len(back) / SR)
        if name.endswith(".wav"):
            assert data == Path(files[0].parent / name).read_bytes()  # WAV kept byte for byte
    assert "audio/vox.wav" in zf.namelist()  # the FLAC, converted
    assert sf.info(io.BytesIO(zf.read("audio/vox.wav"))).subtype == "PCM_16"
    timelines = project.find("Arrangement/Lanes")
    assert timelines.get("timeUnit") == "seconds"


def test_refuses_to_overwrite_unless_asked(tmp_path, session):
    files, _ = session
    out = tmp_path / "s.dawproject"
    out.write_bytes(b"user's file")
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_dawproject(_params(), files, out)
    assert out.read_bytes() == b"user's file"
    export_dawproject(_params(), files, out, overwrite=True, title="Again")
    _, _, meta = _read(out)
    assert meta.findtext("Title") == "Again"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.dawproject", "tracks"]  # no temporary files left


def test_refuses_an_input_as_output(tmp_path, session):
    files, _ = session
    with pytest.raises(ValueError, match="input"):
        export_dawproject(_params(), files, files[1], overwrite=True)
    assert files[1].stat().st_size > 0


@pytest.mark.parametrize("names, message", [
    (("bass.wav", "vox.flac", "keys.wav"), "do not match"),
    (("bass.wav", "keys.wav", "vox.wav"), "do not match"),
])
def test_track_names_must_match_files(tmp_path, session, names, message):
    files, _ = session
    with pytest.raises(ValueError, match=message):
        export_dawproject(_params(names), files, tmp_path / "s.dawproject")
    with pytest.raises(ValueError, match="2 track file"):
        export_dawproject(_params(), files[:2], tmp_path / "s.dawproject")
    assert not (tmp_path / "s.dawproject").exists()


def test_fully_wet_track_has_a_silent_fader():
    m = channel_mapping({**NEUTRAL_V1, "reverb_wet": 1.0, "gain_db": -6.0})
    assert m.fader_db == -math.inf and m.fader_linear == 0.0
    assert m.send_linear == pytest.approx(10 ** (-6 / 20))


def _params_v2() -> MixParams:
    from mixinvert.console.schema import CONSOLE_V2

    base = CONSOLE_V2.neutral()
    rows = [
        {**base, "polarity": -1.0, "offset_ms": 2.5, "hpf_cutoff_hz": 80.0, "eq_bell2_gain_db": 4.0,
         "comp_ratio": 3.0, "comp_threshold_db": -18.0, "fader_db": -2.0, "pan": -0.5, "reverb_send_db": -12.0,
         "drive_db": 6.0},
        {**base, "offset_ms": -1.0, "width": 0.5},
        {**base, "fader_db": 3.0},
    ]
    shared = CONSOLE_V2.shared.from_dict({**CONSOLE_V2.shared.neutral(), "reverb_room_size": 0.7,
                                          "reverb_hpf_hz": 200.0, "reverb_return_db": -6.0,
                                          "master_limiter_ceiling_db": -1.0, "master_gain_db": 2.0})
    return MixParams(CONSOLE_V2, tuple(n for n, *_ in TRACKS), np.stack([CONSOLE_V2.from_dict(r) for r in rows]), SR,
                     {"method": "colonel-reiss", "song": "Tiny Song"}, shared=shared)


def test_console_v2_session_is_valid_and_holds_its_settings(tmp_path, session):
    files, _ = session
    out = export_dawproject(_params_v2(), files, tmp_path / "v2.dawproject")
    zf, project, meta = _read(out)
    xmlschema = pytest.importorskip("xmlschema")
    if (XSD_DIR / "Project.xsd").is_file():
        xmlschema.XMLSchema(str(XSD_DIR / "Project.xsd")).validate(io.BytesIO(zf.read("project.xml")))
        xmlschema.XMLSchema(str(XSD_DIR / "MetaData.xsd")).validate(io.BytesIO(zf.read("metadata.xml")))
    bass = _channel(project, "bass")
    bands = bass.find("Devices/Equalizer").findall("Band")
    assert [b.get("type") for b in bands] == ["highPass", "lowShelf", "bell", "bell", "bell", "bell", "highShelf"]
    assert _value(bands[0].find("Freq")) == pytest.approx(80.0) and _value(bands[3].find("Gain")) == 4.0
    assert _value(bass.find("Devices/Compressor/Threshold")) == -18.0  # before the fader: as recovered
    assert _value(bass.find("Volume")) == pytest.approx(10 ** (-2 / 20))
    send = bass.find("Sends/Send")
    assert send.get("type") == "post" and _value(send.find("Volume")) == pytest.approx(10 ** (-12 / 20))
    assert _channel(project, "keys").find("Sends/Send/Enable").get("value") == "false"
    # time offsets are the clips' positions: later starts later, earlier starts inside its file
    clips = {c.get("name"): c for c in project.iter("Clip")}
    assert float(clips["bass.wav"].get("time")) == pytest.approx(0.0025)
    assert float(clips["keys.wav"].get("time")) == 0.0 and float(clips["keys.wav"].get("playStart")) == pytest.approx(0.001)
    # the return: the bus's low cut, its level; the master: EQ, compressor, limiter, gain
    structure = project.find("Structure").findall("Track")
    ret, master = structure[-2].find("Channel"), structure[-1].find("Channel")
    assert ret.get("role") == "effect" and "room size 0.700" in ret.get("comment")
    assert [b.get("type") for b in ret.find("Devices/Equalizer").findall("Band")] == ["highPass"]
    assert _value(ret.find("Volume")) == pytest.approx(10 ** (-6 / 20))
    assert [d.tag for d in master.find("Devices")] == ["Equalizer", "Compressor", "Limiter"]
    assert _value(master.find("Devices/Limiter/Threshold")) == -1.0
    assert _value(master.find("Volume")) == pytest.approx(10 ** (2 / 20))
    # what the format lacks is said, per track
    notes = zf.read("mixinvert-notes.txt").decode()
    assert "polarity inverted" in notes and "drive 6.0 dB" in notes and "stereo width 50 %" in notes
    assert "polarity inverted" in bass.get("comment")
