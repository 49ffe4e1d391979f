"""Audio and images as ``data:`` URIs, so that report.html is one self-contained file.

Audio is Ogg Vorbis (libsndfile through soundfile), stereo, at the song's sample rate
(above 48 kHz it is resampled to 48 kHz: nothing a listener compares by ear is lost).

Size trade-off: the audio is nearly all of a report. Vorbis at ``compression_level``
0.5 (about 160 kbit/s for dense stereo material, ~20 KiB/s) keeps the two mixes
transparent enough to compare by ear; the track solos use 0.7 (about 110 kbit/s,
~14 KiB/s), which is plenty to hear what each channel strip does. Base64 adds a third.
So a report of dense material weighs up to about ``(2 x 27 + n_tracks x 19) KiB`` per
second of audio; tracks that rest part of the time compress further (measured by
``bench/bench_report.py`` on 15 synthetic tracks: about 12 kB per clip-second, 12 MB for
a 60 s song). A 16-track, 4-minute song could reach ~80 MB, which is why
:func:`mixinvert.reporting.build_report` embeds at most ``max_audio_seconds`` of each clip.
WAV would be ~10x larger; Opus would be ~30 % smaller but only runs at 48 kHz (a
resampling step for 44.1 kHz songs).
"""

from __future__ import annotations

import base64
import io

import numpy as np
import soundfile as sf

#: Vorbis ``compression_level`` (0: best quality, largest; 1: smallest) for mixes and solos.
MIX_COMPRESSION = 0.5
SOLO_COMPRESSION = 0.7
#: Highest sample rate embedded, Hz.
MAX_AUDIO_RATE = 48000
_BLOCK = 32768


def ogg_vorbis_bytes(x: np.ndarray, sample_rate: int, *, compression_level: float = MIX_COMPRESSION) -> bytes:
    """``x`` ``(channels, samples)`` encoded as an Ogg Vorbis file, in memory.

    Samples are clipped to [-1, 1] (Vorbis is a lossy float codec; clipping here keeps a
    hot mix from wrapping in decoders). Above :data:`MAX_AUDIO_RATE` the audio is resampled.
    """
    from mixinvert.data.song import resample

    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    channels, samples = x.shape
    if channels not in (1, 2):
        raise ValueError(f"expected mono or stereo (channels, samples), got shape {x.shape}")
    if samples == 0:
        raise ValueError("cannot encode an empty signal")
    if sample_rate > MAX_AUDIO_RATE:
        x, sample_rate = resample(x, sample_rate, MAX_AUDIO_RATE), MAX_AUDIO_RATE
    frames = np.clip(x, -1.0, 1.0).T
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", int(sample_rate), channels, format="OGG", subtype="VORBIS",
                      compression_level=float(compression_level)) as fh:
        # in blocks: libsndfile 1.2's Vorbis encoder crashes (SIGSEGV) on one write of
        # more than about a minute of stereo audio
        for start in range(0, samples, _BLOCK):
            fh.write(frames[start:start + _BLOCK])
    return buf.getvalue()


def data_uri(payload: bytes, mime: str) -> str:
    """``data:<mime>;base64,...`` for ``payload``."""
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def audio_data_uri(x: np.ndarray, sample_rate: int, *, compression_level: float = MIX_COMPRESSION) -> str:
    """``x`` ``(channels, samples)`` as an ``audio/ogg`` data URI (see the module doc for sizes)."""
    return data_uri(ogg_vorbis_bytes(x, sample_rate, compression_level=compression_level), "audio/ogg")


def png_data_uri(png: bytes) -> str:
    """PNG bytes as an ``image/png`` data URI."""
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not PNG data")
    return data_uri(png, "image/png")
