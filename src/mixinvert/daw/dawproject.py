"""Export recovered console v1 or v2 settings as a DAWproject session (format version 1.0).

Console v2 (:func:`build_project_v2`) maps onto tracks with an EQ (its high-pass and every
band) and a compressor, post-fader sends to one reverb return (its cuts as an EQ, its
return level as the fader), and a master with its EQ, compressor and limiter; time
offsets are the clips' positions. What DAWproject 1.0 lacks (polarity, drive, width, the
reverb itself) is named in each track's comment and in ``mixinvert-notes.txt``.

A ``.dawproject`` file is a ZIP holding ``project.xml`` (tracks, mixer, devices,
arrangement), ``metadata.xml`` (title, comment) and the audio; schema and reference:
https://github.com/bitwig/dawproject. :func:`export_dawproject` writes one audio track per
input track (its file under ``audio/``, one clip at 0 s spanning the whole file), a
return channel for the reverb and a master channel; ``mixinvert-notes.txt`` in the ZIP
repeats every recovered value and what to set by hand.

How console v1 maps onto a DAW mixer
------------------------------------
Console v1 per track (see :mod:`mixinvert.console.render`), with ``g = 10**(gain_db/20)``
and ``w = reverb_wet``::

    out = 2 (1 - w) P(C_T(E(g x)))  +  w R(P(C_T(E(g x))))

with ``E`` the EQ, ``C_T`` the compressor at threshold ``T``, ``P`` the pan and ``R``
pedalboard's (JUCE's) reverb, whose dry path is scaled by 2. The EQ is linear and JUCE's
compressor is scale invariant (peak envelope, hard knee: ``C_T(g y) = g C_{T/g}(y)``), so
the same output is, exactly::

    out = [g 2 (1 - w)] P(C_{T - gain_db}(E(x)))  +  R(P([g w] C_{T - gain_db}(E(x))))

which is what the session holds:

- EQ device: the three bands as recovered (shelves at Q 0.7071);
- compressor device: threshold ``comp_threshold_db - gain_db`` (dB), ratio, attack and
  release (s);
- pan: ``(pan + 1) / 2`` (DAWproject's normalized pan, 0.5 = centre);
- fader: ``gain_db + 20 log10(2 (1 - w))`` dB (``-inf``, linear 0, when ``w = 1``);
- a pre-fader send to the reverb return of ``g w`` (linear; off when ``w = 0``);
- the return channel: no device; the user puts a reverb on it (see
  :func:`describe_dawproject_limits`).

Pre-fader sends keep the send independent of the fader (no singularity at ``w = 1``).
"""

from __future__ import annotations

import math
import os
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import soundfile as sf

from mixinvert.audio import atomic_output, read_audio, write_audio
from mixinvert.console.eq import SHELF_Q
from mixinvert.console.params_io import MixParams
from mixinvert.errors import InputError, InputMissingError, OutputExistsError

#: DAWproject format version written.
DAWPROJECT_VERSION = "1.0"
#: Folder of the audio inside the container.
AUDIO_FOLDER = "audio"
NOTES_FILE = "mixinvert-notes.txt"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed stamps: the same session gives the same bytes
_KEEP_FORMATS = ("WAV", "WAVEX")
_LOSSLESS_WAV_SUBTYPES = ("PCM_16", "PCM_24", "PCM_U8", "FLOAT", "DOUBLE")

_LIMITS = """\
What a DAW reproduces from a mixinvert DAWproject session, and what not.

Exact in the file: the audio (the original track files; files that are not WAV are
converted losslessly to WAV), clip positions, and every recovered number with console v1's
level structure: the track fader is gain_db + 20*log10(2*(1 - reverb_wet)) dB (console v1's
reverb scales its dry path by 2, so a fully dry track is +6.02 dB), the compressor threshold
is comp_threshold_db - gain_db (console v1 applies its gain before the compressor; moving
the gain to the fader and shifting the threshold by the same amount is exactly equivalent
for its hard-knee peak compressor), pan is written as (pan + 1)/2 (0.5 = centre), and a
pre-fader send of linear level 10**(gain_db/20) * reverb_wet feeds one reverb return.

Not exact, because a DAW processes with its own devices: the EQ (console v1 uses JUCE's
RBJ-cookbook biquads at the track's sample rate, shelves at Q 0.7071 with the frequency at
half the shelf's gain; DAW EQs may define frequency and Q differently and differ near
Nyquist); the compressor (console v1's is JUCE's: hard knee, peak detector, 1/e attack and
release time constants, each stereo channel compressed on its own, no makeup gain; set the
DAW compressor to hard knee, peak detection, no stereo link and no auto makeup where it
can; DAWproject 1.0 stores the ratio in percent, written as 100*(1 - 1/ratio), so 0 % is
1:1 and 4:1 is 75 %; the ratio as r:1 is in the device's comment); the pan law (console
v1 pans mono tracks with the constant-power sin/cos law, -3 dB per side at centre, and
stereo tracks as a balance that raises the remaining side by +3 dB at the extremes; a DAW
pan knob at the same position can differ by up to 3 dB per side); faders above the DAW's
maximum (often +6 dB) are clamped by the DAW.

The reverb must be set by hand: the return channel "Reverb" holds no device. Put a
Freeverb-style reverb on it (pedalboard's Reverb is JUCE's Freeverb), 100 % wet, 0 % dry,
width 100 %, freeze off, with the room size and damping named on the return (the averages
of the tracks' values weighted by their reverb_wet; one return can hold one reverb, so
tracks with other values are approximated; each track's own values are in its channel
comment and in mixinvert-notes.txt in the session). Then set the return's level by ear: a
DAW reverb's output level is not JUCE's, and most DAWs take pre-fader sends before the pan,
where console v1 reverberates the panned signal.
"""


def describe_dawproject_limits() -> str:
    """What a DAW reproduces exactly from an exported session and what not (plain text)."""
    return _LIMITS


# -- the mapping (pure) -----------------------------------------------------------------------
@dataclass(frozen=True)
class ChannelMapping:
    """One track's console v1 settings as DAW mixer values.

    ``fader_db`` may be ``-inf`` (fully wet); ``send_linear`` is 0 when the track has no
    reverb. See the module docstring for the derivation.
    """

    fader_db: float
    pan_normalized: float
    send_linear: float
    comp_threshold_db: float
    comp_ratio: float
    comp_ratio_percent: float
    comp_attack_s: float
    comp_release_s: float

    @property
    def fader_linear(self) -> float:
        return 0.0 if self.fader_db == -math.inf else 10.0 ** (self.fader_db / 20.0)


def channel_mapping(v: Mapping[str, float]) -> ChannelMapping:
    """Console v1 values ``{name: value}`` (physical units) to DAW mixer values."""
    wet = float(v["reverb_wet"])
    dry = 2.0 * (1.0 - wet)
    gain_db = float(v["gain_db"])
    ratio = float(v["comp_ratio"])
    return ChannelMapping(
        fader_db=gain_db + 20.0 * math.log10(dry) if dry > 0.0 else -math.inf,
        pan_normalized=(float(v["pan"]) + 1.0) / 2.0,
        send_linear=10.0 ** (gain_db / 20.0) * wet,
        comp_threshold_db=float(v["comp_threshold_db"]) - gain_db,
        comp_ratio=ratio,
        comp_ratio_percent=100.0 * (1.0 - 1.0 / ratio),
        comp_attack_s=float(v["comp_attack_ms"]) / 1000.0,
        comp_release_s=float(v["comp_release_ms"]) / 1000.0,
    )


def return_reverb(rows: Sequence[Mapping[str, float]]) -> tuple[float, float] | None:
    """Room size and damping for the one return reverb: averages weighted by ``reverb_wet``.

    None when no track sends to the reverb (every ``reverb_wet`` is 0).
    """
    total = sum(float(r["reverb_wet"]) for r in rows)
    if total <= 0.0:
        return None
    room = sum(float(r["reverb_wet"]) * float(r["reverb_room_size"]) for r in rows) / total
    damping = sum(float(r["reverb_wet"]) * float(r["reverb_damping"]) for r in rows) / total
    return room, damping


# -- audio in the container ---------------------------------------------------------------------
@dataclass(frozen=True)
class AudioEntry:
    """One track's audio: where it comes from, where it goes in the ZIP, what it holds."""

    track_name: str
    source: Path
    archive_path: str
    convert: bool
    channels: int
    sample_rate: int
    frames: int
    wav_subtype: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


def _probe_audio(track_names: Sequence[str], files: Sequence[Path]) -> list[AudioEntry]:
    entries, used = [], set()
    for name, path in zip(track_names, files):
        try:
            info = sf.info(str(path))
        except Exception as err:  # soundfile raises LibsndfileError, RuntimeError, TypeError
            raise InputError(f"{path}: not a readable audio file ({err})") from None
        if info.frames <= 0:
            raise InputError(f"{path}: the file holds no samples")
        keep = info.format in _KEEP_FORMATS
        stem = path.name if keep else f"{path.stem}.wav"
        archive, k = f"{AUDIO_FOLDER}/{stem}", 1
        while archive.lower() in used:  # e.g. a.flac and a.wav both becoming a.wav
            archive, k = f"{AUDIO_FOLDER}/{Path(stem).stem}-{k}.wav", k + 1
        used.add(archive.lower())
        subtype = info.subtype if info.subtype in _LOSSLESS_WAV_SUBTYPES else "FLOAT"
        entries.append(AudioEntry(name, path, archive, not keep, int(info.channels), int(info.samplerate),
                                  int(info.frames), subtype))
    return entries


# -- XML (pure) -------------------------------------------------------------------------------------
def _num(x: float) -> str:
    return repr(float(x))


class _Ids:
    def __init__(self) -> None:
        self._n = 0

    def __call__(self) -> str:
        self._n += 1
        return f"id{self._n}"


def _real(parent: ET.Element, tag: str, ids: _Ids, value: float, unit: str, **attrs: str) -> ET.Element:
    return ET.SubElement(parent, tag, {"id": ids(), "unit": unit, "value": _num(value), **attrs})


def _bool(parent: ET.Element, tag: str, ids: _Ids, value: bool, **attrs: str) -> ET.Element:
    return ET.SubElement(parent, tag, {"id": ids(), "value": "true" if value else "false", **attrs})


def _equalizer(parent: ET.Element, ids: _Ids, v: Mapping[str, float]) -> None:
    eq = ET.SubElement(parent, "Equalizer", {"id": ids(), "name": "EQ", "deviceName": "EQ", "deviceRole": "audioFX",
                                             "comment": "mixinvert console v1 EQ (pedalboard/JUCE RBJ biquads)"})
    _bool(eq, "Enabled", ids, True)
    bands = (
        ("lowShelf", v["eq_low_shelf_cutoff_hz"], v["eq_low_shelf_gain_db"], SHELF_Q),
        ("bell", v["eq_peak_cutoff_hz"], v["eq_peak_gain_db"], v["eq_peak_q"]),
        ("highShelf", v["eq_high_shelf_cutoff_hz"], v["eq_high_shelf_gain_db"], SHELF_Q),
    )
    for order, (kind, freq_hz, gain_db, q) in enumerate(bands):
        band = ET.SubElement(eq, "Band", {"type": kind, "order": str(order)})
        _real(band, "Freq", ids, freq_hz, "hertz")
        _real(band, "Gain", ids, gain_db, "decibel")
        _real(band, "Q", ids, q, "linear")
        _bool(band, "Enabled", ids, True)


def _compressor(parent: ET.Element, ids: _Ids, v: Mapping[str, float], m: ChannelMapping) -> None:
    comment = (f"mixinvert console v1 compressor (JUCE: hard knee, peak detector, no makeup): ratio "
               f"{m.comp_ratio:.3g}:1 (DAWproject percent = 100*(1 - 1/ratio)); threshold "
               f"{v['comp_threshold_db']:.2f} dB recovered, {m.comp_threshold_db:.2f} dB here because the track "
               f"gain {v['gain_db']:+.2f} dB sits on the fader")
    comp = ET.SubElement(parent, "Compressor", {"id": ids(), "name": "Compressor", "deviceName": "Compressor",
                                                "deviceRole": "audioFX", "comment": comment})
    _bool(comp, "Enabled", ids, True)
    _real(comp, "Attack", ids, m.comp_attack_s, "seconds")
    _bool(comp, "AutoMakeup", ids, False)
    _real(comp, "Ratio", ids, m.comp_ratio_percent, "percent", min="0.0", max="100.0")
    _real(comp, "Release", ids, m.comp_release_s, "seconds")
    _real(comp, "Threshold", ids, m.comp_threshold_db, "decibel")


def _track_comment(v: Mapping[str, float], m: ChannelMapping) -> str:
    fader = "-inf" if m.fader_db == -math.inf else f"{m.fader_db:+.2f}"
    return (f"mixinvert console v1: gain {v['gain_db']:+.2f} dB, pan {v['pan']:+.3f}, reverb wet "
            f"{v['reverb_wet']:.3f} room_size {v['reverb_room_size']:.3f} damping {v['reverb_damping']:.3f}. "
            f"Fader {fader} dB = gain + 20*log10(2*(1 - wet)); pre-fader send to Reverb = "
            f"{m.send_linear:.4g} (linear) = 10**(gain/20) * wet.")


def display_names(track_names: Sequence[str]) -> list[str]:
    """DAW track names: the file name without its suffix, or the whole name if that clashes."""
    stems = [Path(n).stem or n for n in track_names]
    return [s if stems.count(s) == 1 else n for s, n in zip(stems, track_names)]


def _skeleton(ids: _Ids, application_version: str) -> tuple[ET.Element, ET.Element, ET.Element, ET.Element]:
    """A session's project, its transport, its (empty) structure, and the master track and
    channel (not yet in the structure: it comes last)."""
    project = ET.Element("Project", {"version": DAWPROJECT_VERSION})
    ET.SubElement(project, "Application", {"name": "mixinvert", "version": application_version})
    transport = ET.SubElement(project, "Transport")
    _real(transport, "Tempo", ids, 120.0, "bpm", name="Tempo")
    ET.SubElement(transport, "TimeSignature", {"id": ids(), "numerator": "4", "denominator": "4"})
    structure = ET.SubElement(project, "Structure")
    master_track = ET.Element("Track", {"id": ids(), "name": "Master", "loaded": "true"})
    master = ET.SubElement(master_track, "Channel", {"id": ids(), "name": "Master", "role": "master",
                                                     "audioChannels": "2", "solo": "false"})
    return project, structure, master_track, master


def _bus_controls(channel: ET.Element, ids: _Ids, volume: float) -> None:
    """A return's or the master's mute (off), pan (centre) and level."""
    _bool(channel, "Mute", ids, False)
    _real(channel, "Pan", ids, 0.5, "normalized", min="0.0", max="1.0")
    _real(channel, "Volume", ids, volume, "linear", min="0.0")


def build_project(params: MixParams, entries: Sequence[AudioEntry], *, application_version: str) -> ET.Element:
    """The ``project.xml`` tree for ``params`` and the tracks' audio ``entries`` (same order)."""
    rows = [params.schema.to_dict(r) for r in params.values]
    ids = _Ids()
    project, structure, master_track, master = _skeleton(ids, application_version)
    reverb = return_reverb(rows)
    if reverb is None:
        label, comment = "Reverb", "No track sends to this return (every reverb_wet is 0)."
    else:
        label = f"Reverb (room {reverb[0]:.2f}, damping {reverb[1]:.2f})"
        comment = (f"Add a Freeverb-style reverb here (pedalboard/JUCE Reverb): 100 % wet, 0 % dry, width 100 %, "
                   f"room size {reverb[0]:.3f}, damping {reverb[1]:.3f} (averages weighted by each track's "
                   f"reverb_wet; per-track values are in the tracks' comments). Set this return's level by ear.")
    return_track = ET.Element("Track", {"id": ids(), "name": label, "contentType": "audio", "loaded": "true",
                                        "comment": comment})
    ret = ET.SubElement(return_track, "Channel", {"id": ids(), "name": label, "role": "effect", "audioChannels": "2",
                                                  "solo": "false", "destination": master.get("id"),
                                                  "comment": comment})

    arrangement = ET.Element("Arrangement", {"id": ids()})
    lanes = ET.SubElement(arrangement, "Lanes", {"id": ids(), "timeUnit": "seconds"})
    for name, label_i, v, entry in zip(params.track_names, display_names(params.track_names), rows, entries):
        m = channel_mapping(v)
        comment = _track_comment(v, m)
        track = ET.SubElement(structure, "Track", {"id": ids(), "name": label_i, "contentType": "audio",
                                                   "loaded": "true", "comment": comment})
        channel = ET.SubElement(track, "Channel", {"id": ids(), "name": label_i, "role": "regular",
                                                   "audioChannels": str(entry.channels), "solo": "false",
                                                   "destination": master.get("id"), "comment": comment})
        devices = ET.SubElement(channel, "Devices")
        _equalizer(devices, ids, v)
        _compressor(devices, ids, v, m)
        _bool(channel, "Mute", ids, False)
        _real(channel, "Pan", ids, m.pan_normalized, "normalized", min="0.0", max="1.0")
        sends = ET.SubElement(channel, "Sends")
        send = ET.SubElement(sends, "Send", {"id": ids(), "name": "Reverb", "type": "pre",
                                             "destination": ret.get("id")})
        _bool(send, "Enable", ids, m.send_linear > 0.0)
        _real(send, "Volume", ids, m.send_linear, "linear", min="0.0")
        _real(channel, "Volume", ids, m.fader_linear, "linear", min="0.0")

        track_lanes = ET.SubElement(lanes, "Lanes", {"id": ids(), "track": track.get("id")})
        clips = ET.SubElement(track_lanes, "Clips", {"id": ids()})
        clip = ET.SubElement(clips, "Clip", {"name": name, "time": "0.0", "duration": _num(entry.duration_s),
                                             "playStart": "0.0", "contentTimeUnit": "seconds"})
        audio = ET.SubElement(clip, "Audio", {"id": ids(), "timeUnit": "seconds", "duration": _num(entry.duration_s),
                                              "channels": str(entry.channels), "sampleRate": str(entry.sample_rate)})
        ET.SubElement(audio, "File", {"path": entry.archive_path})

    for track, channel in ((return_track, ret), (master_track, master)):  # at 0 dB, centred
        _bus_controls(channel, ids, 1.0)
        structure.append(track)
    project.append(arrangement)
    return project


# -- console v2 ------------------------------------------------------------------------------------
_V2_LIMITS = """\
What a DAW reproduces from a mixinvert DAWproject session of console v2, and what not.

Exact in the file: the audio, every recovered number, and each track's time offset as the
position of its clip (a track later in the mix starts later; one earlier starts at 0 s
with the clip's play start moved into the file). Faders are fader_db (console v2 has no
doubled dry path), the compressor threshold is comp_threshold_db as recovered (v2's
compressor sits before the fader), pan is (pan + 1)/2, and the sends are post-fader
(console v2 sends after the fader and the pan) with linear level 10**(reverb_send_db/20).
The reverb return holds the bus's low and high cut as an EQ and its return level as its
fader; the master holds its EQ, compressor and limiter (ceiling as the threshold, no
makeup) and the master gain as its fader.

Not in DAWproject 1.0, set by hand (each track's comment says what): polarity (flip the
phase of tracks marked "polarity inverted"), drive (console v2's is tanh(x * 10**(drive_db/20))
before the high-pass: a clean saturator at that drive, its output level left as it is),
a stereo track's width, and the reverb itself (put a Freeverb-style reverb on the return,
100 % wet, 0 % dry, with the room size, damping and width named on it; pedalboard's Reverb
is JUCE's Freeverb).

Not exact, because a DAW processes with its own devices: the EQ (JUCE's RBJ biquads; the
high-pass is two first-order sections at one cutoff, 12 dB per octave and -6 dB at the
cutoff, written as a high-pass band of Q 0.5), the compressors and the limiter (JUCE's:
hard knee, peak detector, no makeup; a look-ahead brick-wall limiter on the master), and
the pan law (constant power for mono tracks, a balance for stereo ones).
"""


def _eq_bands(parent: ET.Element, ids: _Ids, name: str, comment: str,
              bands: Sequence[tuple[str, float, float | None, float]]) -> None:
    eq = ET.SubElement(parent, "Equalizer", {"id": ids(), "name": name, "deviceName": name,
                                             "deviceRole": "audioFX", "comment": comment})
    _bool(eq, "Enabled", ids, True)
    for order, (kind, freq_hz, gain_db, q) in enumerate(bands):
        band = ET.SubElement(eq, "Band", {"type": kind, "order": str(order)})
        _real(band, "Freq", ids, freq_hz, "hertz")
        if gain_db is not None:
            _real(band, "Gain", ids, gain_db, "decibel")
        _real(band, "Q", ids, q, "linear")
        _bool(band, "Enabled", ids, True)


def _v2_comp(parent: ET.Element, ids: _Ids, name: str, threshold_db: float, ratio: float, attack_ms: float,
             release_ms: float) -> None:
    comp = ET.SubElement(parent, "Compressor", {
        "id": ids(), "name": name, "deviceName": name, "deviceRole": "audioFX",
        "comment": f"mixinvert console v2 compressor (JUCE: hard knee, peak detector, no makeup): ratio "
                   f"{ratio:.3g}:1 (DAWproject percent = 100*(1 - 1/ratio))"})
    _bool(comp, "Enabled", ids, True)
    _real(comp, "Attack", ids, attack_ms / 1000.0, "seconds")
    _bool(comp, "AutoMakeup", ids, False)
    _real(comp, "Ratio", ids, 100.0 * (1.0 - 1.0 / ratio), "percent", min="0.0", max="100.0")
    _real(comp, "Release", ids, release_ms / 1000.0, "seconds")
    _real(comp, "Threshold", ids, threshold_db, "decibel")


def _v2_track_bands(v: Mapping[str, float], params: MixParams) -> list[tuple[str, float, float | None, float]]:
    schema = params.schema
    bands: list[tuple[str, float, float | None, float]] = []
    if not schema.spec("hpf_cutoff_hz").is_off(v["hpf_cutoff_hz"]):
        bands.append(("highPass", v["hpf_cutoff_hz"], None, 0.5))
    bands.append(("lowShelf", v["eq_low_shelf_cutoff_hz"], v["eq_low_shelf_gain_db"], SHELF_Q))
    bells = sorted(n[len("eq_bell"):-len("_gain_db")] for n in schema.names
                   if n.startswith("eq_bell") and n.endswith("_gain_db"))
    for b in bells:
        bands.append(("bell", v[f"eq_bell{b}_cutoff_hz"], v[f"eq_bell{b}_gain_db"], v[f"eq_bell{b}_q"]))
    bands.append(("highShelf", v["eq_high_shelf_cutoff_hz"], v["eq_high_shelf_gain_db"], SHELF_Q))
    return bands


def _v2_by_hand(v: Mapping[str, float], params: MixParams, channels: int) -> list[str]:
    """What a track needs set by hand in a DAW (not in DAWproject 1.0)."""
    out = []
    if v["polarity"] < 0:
        out.append("polarity inverted: flip this channel's phase")
    if not params.schema.spec("drive_db").is_off(v["drive_db"]):
        out.append(f"drive {v['drive_db']:.1f} dB: a tanh saturator first in the chain")
    if channels == 2 and abs(v["width"] - 1.0) > 1e-9:
        out.append(f"stereo width {100 * v['width']:.0f} %")
    return out


def build_project_v2(params: MixParams, entries: Sequence[AudioEntry], *, application_version: str) -> ET.Element:
    """The ``project.xml`` tree of a console v2 session (see ``_V2_LIMITS`` for the mapping)."""
    schema, shared = params.schema, params.schema.shared
    rows = [schema.to_dict(r) for r in params.values]
    sv = shared.to_dict(params.shared)
    ids = _Ids()
    project, structure, master_track, master = _skeleton(ids, application_version)
    devices = ET.SubElement(master, "Devices")
    _eq_bands(devices, ids, "Master EQ", "mixinvert console v2 master EQ (pedalboard/JUCE RBJ biquads)", [
        ("lowShelf", sv["master_eq_low_shelf_cutoff_hz"], sv["master_eq_low_shelf_gain_db"], SHELF_Q),
        ("bell", sv["master_eq_bell_cutoff_hz"], sv["master_eq_bell_gain_db"], sv["master_eq_bell_q"]),
        ("highShelf", sv["master_eq_high_shelf_cutoff_hz"], sv["master_eq_high_shelf_gain_db"], SHELF_Q)])
    _v2_comp(devices, ids, "Master compressor", sv["master_comp_threshold_db"], sv["master_comp_ratio"],
             sv["master_comp_attack_ms"], sv["master_comp_release_ms"])
    if not shared.spec("master_limiter_ceiling_db").is_off(sv["master_limiter_ceiling_db"]):
        lim = ET.SubElement(devices, "Limiter", {
            "id": ids(), "name": "Limiter", "deviceName": "Limiter", "deviceRole": "audioFX",
            "comment": "mixinvert console v2 limiter: look-ahead brick-wall, ceiling = threshold, no makeup"})
        _bool(lim, "Enabled", ids, True)
        _real(lim, "Release", ids, sv["master_limiter_release_ms"] / 1000.0, "seconds")
        _real(lim, "Threshold", ids, sv["master_limiter_ceiling_db"], "decibel")

    reverb_comment = (f"Put a Freeverb-style reverb first on this return (pedalboard/JUCE Reverb), 100 % wet, 0 % "
                      f"dry: room size {sv['reverb_room_size']:.3f}, damping {sv['reverb_damping']:.3f}, width "
                      f"{sv['reverb_width']:.3f}. Its low and high cut are the EQ here; its return level the fader.")
    return_track = ET.Element("Track", {"id": ids(), "name": "Reverb", "contentType": "audio", "loaded": "true",
                                        "comment": reverb_comment})
    ret = ET.SubElement(return_track, "Channel", {"id": ids(), "name": "Reverb", "role": "effect", "audioChannels": "2",
                                                  "solo": "false", "destination": master.get("id"),
                                                  "comment": reverb_comment})
    cuts = [(kind, sv[name], None, 0.5) for kind, name in (("highPass", "reverb_hpf_hz"), ("lowPass", "reverb_lpf_hz"))
            if not shared.spec(name).is_off(sv[name])]
    if cuts:
        _eq_bands(ET.SubElement(ret, "Devices"), ids, "Reverb cuts",
                  "the reverb bus's low and high cut (12 dB per octave each)", cuts)

    arrangement = ET.Element("Arrangement", {"id": ids()})
    lanes = ET.SubElement(arrangement, "Lanes", {"id": ids(), "timeUnit": "seconds"})
    for name, label_i, v, entry in zip(params.track_names, display_names(params.track_names), rows, entries):
        by_hand = _v2_by_hand(v, params, entry.channels)
        comment = (f"mixinvert console v2: time offset {v['offset_ms']:+.3f} ms (the clip's position)"
                   + ("; set by hand: " + "; ".join(by_hand) if by_hand else ""))
        track = ET.SubElement(structure, "Track", {"id": ids(), "name": label_i, "contentType": "audio",
                                                   "loaded": "true", "comment": comment})
        channel = ET.SubElement(track, "Channel", {"id": ids(), "name": label_i, "role": "regular",
                                                   "audioChannels": str(entry.channels), "solo": "false",
                                                   "destination": master.get("id"), "comment": comment})
        devices = ET.SubElement(channel, "Devices")
        _eq_bands(devices, ids, "EQ", "mixinvert console v2 high-pass and EQ (pedalboard/JUCE)",
                  _v2_track_bands(v, params))
        _v2_comp(devices, ids, "Compressor", v["comp_threshold_db"], v["comp_ratio"], v["comp_attack_ms"],
                 v["comp_release_ms"])
        _bool(channel, "Mute", ids, False)
        _real(channel, "Pan", ids, (v["pan"] + 1.0) / 2.0, "normalized", min="0.0", max="1.0")
        send_on = not schema.spec("reverb_send_db").is_off(v["reverb_send_db"])
        sends = ET.SubElement(channel, "Sends")
        send = ET.SubElement(sends, "Send", {"id": ids(), "name": "Reverb", "type": "post",
                                             "destination": ret.get("id")})
        _bool(send, "Enable", ids, send_on)
        _real(send, "Volume", ids, 10.0 ** (v["reverb_send_db"] / 20.0) if send_on else 0.0, "linear", min="0.0")
        _real(channel, "Volume", ids, 10.0 ** (v["fader_db"] / 20.0), "linear", min="0.0")

        offset_s = v["offset_ms"] / 1000.0  # later in the mix: the clip starts later; earlier: it starts inside the file
        start, skip = max(0.0, offset_s), max(0.0, -offset_s)
        track_lanes = ET.SubElement(lanes, "Lanes", {"id": ids(), "track": track.get("id")})
        clips = ET.SubElement(track_lanes, "Clips", {"id": ids()})
        clip = ET.SubElement(clips, "Clip", {"name": name, "time": _num(start), "duration": _num(entry.duration_s - skip),
                                             "playStart": _num(skip), "contentTimeUnit": "seconds"})
        audio = ET.SubElement(clip, "Audio", {"id": ids(), "timeUnit": "seconds", "duration": _num(entry.duration_s),
                                              "channels": str(entry.channels), "sampleRate": str(entry.sample_rate)})
        ET.SubElement(audio, "File", {"path": entry.archive_path})

    for track, channel, level_db in ((return_track, ret, sv["reverb_return_db"]),
                                     (master_track, master, sv["master_gain_db"])):
        _bus_controls(channel, ids, 10.0 ** (level_db / 20.0))
        structure.append(track)
    project.append(arrangement)
    return project


def _notes_v2(params: MixParams, entries: Sequence[AudioEntry], title: str, method: str, sample_rate: int) -> str:
    schema, shared = params.schema, params.schema.shared
    lines = [f"{title}: DAWproject session (console v2) written by mixinvert (method: {method}).", "",
             f"Project sample rate: {sample_rate} Hz (set your DAW to it).", ""]
    lines.append("Reverb bus and master: " + ", ".join(f"{k} {x:.4g}" for k, x in shared.to_dict(params.shared).items()))
    lines.append("")
    for name, row, entry in zip(params.track_names, params.values, entries):
        v = schema.to_dict(row)
        lines.append(f"{name} -> {entry.archive_path}" + (" (converted to WAV)" if entry.convert else ""))
        by_hand = _v2_by_hand(v, params, entry.channels)
        if by_hand:
            lines.append("  set by hand: " + "; ".join(by_hand))
        lines.append("  recovered: " + ", ".join(f"{k} {x:.4g}" for k, x in v.items()))
        if entry.sample_rate != sample_rate:
            lines.append(f"  file at {entry.sample_rate} Hz; the DAW resamples it to the project rate")
    return "\n".join(lines) + "\n\n" + _V2_LIMITS


def build_metadata(title: str, comment: str) -> ET.Element:
    """The ``metadata.xml`` tree."""
    meta = ET.Element("MetaData")
    ET.SubElement(meta, "Title").text = title
    ET.SubElement(meta, "Comment").text = comment
    return meta


def _xml_bytes(root: ET.Element) -> bytes:
    tree = ET.ElementTree(root)
    ET.indent(tree)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _notes(params: MixParams, entries: Sequence[AudioEntry], title: str, method: str, sample_rate: int) -> str:
    rows = [params.schema.to_dict(r) for r in params.values]
    lines = [f"{title}: DAWproject session written by mixinvert (method: {method}).", "",
             f"Project sample rate: {sample_rate} Hz (set your DAW to it).", ""]
    reverb = return_reverb(rows)
    if reverb is None:
        lines.append("Reverb return: no track uses reverb (every reverb_wet is 0).")
    else:
        lines.append(f"Reverb return: room size {reverb[0]:.3f}, damping {reverb[1]:.3f}, width 100 %, 100 % wet, "
                     "0 % dry (averages weighted by reverb_wet).")
    lines.append("")
    for name, v, entry in zip(params.track_names, rows, entries):
        lines.append(f"{name} -> {entry.archive_path}" + (" (converted to WAV)" if entry.convert else ""))
        lines.append("  " + _track_comment(v, channel_mapping(v)))
        lines.append("  recovered: " + ", ".join(f"{k} {x:.4g}" for k, x in v.items()))
        if entry.sample_rate != sample_rate:
            lines.append(f"  file at {entry.sample_rate} Hz; the DAW resamples it to the project rate")
    return "\n".join(lines) + "\n\n" + _LIMITS


# -- files ------------------------------------------------------------------------------------------
def _check_paths(params: MixParams, track_files: Sequence[str | os.PathLike], out_path: Path) -> list[Path]:
    files = [Path(f) for f in track_files]
    if len(files) != len(params.track_names):
        raise InputError(f"{len(files)} track file(s) for {len(params.track_names)} tracks in the settings "
                         f"({', '.join(params.track_names)})")
    wrong = [f"{n!r} <- {f}" for n, f in zip(params.track_names, files) if f.name != n]
    if wrong:
        raise InputError("track files do not match the settings' track names (a track's name is its file name, "
                         f"in the same order): {'; '.join(wrong)}")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise InputMissingError(f"{missing[0]}: no such track file")
    target = out_path.resolve()
    for f in files:
        if f.resolve() == target or (out_path.exists() and os.path.samefile(f, out_path)):
            raise InputError(f"{out_path}: refusing to write the session over its input {f}")
    if out_path.suffix.lower() != ".dawproject":
        raise InputError(f"{out_path}: a DAWproject file must end in .dawproject")
    if out_path.is_dir():
        raise IsADirectoryError(f"{out_path} is a folder; give a file name ending in .dawproject")
    return files


def _zip_info(name: str, compress: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _audio_sources(entries: Sequence[AudioEntry], scratch: Path) -> Iterator[tuple[AudioEntry, Path]]:
    """Each entry with the file to store: the original, or a lossless WAV made in ``scratch``."""
    for k, entry in enumerate(entries):
        if not entry.convert:
            yield entry, entry.source
            continue
        x, sr = read_audio(entry.source)
        wav = write_audio(scratch / f"{k}.wav", x, sr, subtype=entry.wav_subtype)
        yield entry, wav
        wav.unlink()


def export_dawproject(
    params: MixParams,
    track_files: Sequence[str | os.PathLike],
    out_path: str | os.PathLike,
    *,
    overwrite: bool = False,
    title: str | None = None,
) -> Path:
    """Write the settings ``params`` and the tracks' audio as a DAWproject session.

    Parameters
    ----------
    params : console v1 or v2 settings (physical units), one row per track
    track_files : the audio file of each of ``params.track_names``, same order; each file's
        name must equal its track's name (as in a song's ``tracks/`` folder)
    out_path : the ``.dawproject`` file to write
    overwrite : replace an existing ``out_path`` (never one of the inputs)
    title : the session's title (default: ``params.extra["song"]`` or the file's stem)

    Returns
    -------
    Path : ``out_path``, written atomically (a temporary file beside it, then a rename).

    Raises
    ------
    ValueError : names that do not match the files, a console other than v1 or v2, an
        unreadable track, or ``out_path`` equal to an input
    FileExistsError : ``out_path`` exists and ``overwrite`` is false
    """
    out_path = Path(out_path)
    if params.schema.version not in ("v1", "v2"):
        raise InputError(f"DAWproject export maps consoles v1 and v2, not {params.schema.version}")
    v2 = params.schema.version == "v2"
    files = _check_paths(params, track_files, out_path)
    if out_path.exists() and not overwrite:
        raise OutputExistsError(f"{out_path} exists; refusing to overwrite it (use --overwrite, or overwrite=True)")
    entries = _probe_audio(params.track_names, files)
    from mixinvert import __version__

    title = title or str(params.extra.get("song") or out_path.stem)
    method = str(params.extra.get("method") or "unknown")
    sample_rate = int(params.sample_rate or entries[0].sample_rate)
    build = build_project_v2 if v2 else build_project
    project = build(params, entries, application_version=__version__)
    chain = ("console v2: polarity, time offset, drive, high-pass, EQ, compressor, fader, pan, sends; reverb bus; "
             "master EQ, compressor, limiter" if v2 else "console v1: gain, EQ, compressor, pan, reverb")
    comment = (f"Mix settings recovered by mixinvert {__version__} (mixing inversion, {chain}) with method {method}; "
               f"{len(entries)} track(s) at {sample_rate} Hz. The reverb return needs a reverb set by hand: see "
               f"{NOTES_FILE}.")
    metadata = build_metadata(title, comment)
    notes = (_notes_v2 if v2 else _notes)(params, entries, title, method, sample_rate)

    with atomic_output(out_path) as tmp, zipfile.ZipFile(tmp, "w") as zf, \
            tempfile.TemporaryDirectory(prefix="mixinvert-dawproject-") as scratch:
        zf.writestr(_zip_info("project.xml", True), _xml_bytes(project))
        zf.writestr(_zip_info("metadata.xml", True), _xml_bytes(metadata))
        zf.writestr(_zip_info(NOTES_FILE, True), notes.encode("utf-8"))
        for entry, source in _audio_sources(entries, Path(scratch)):
            with open(source, "rb") as src, zf.open(_zip_info(entry.archive_path, False), "w",
                                                     force_zip64=True) as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
    return out_path
