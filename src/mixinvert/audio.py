"""Audio file I/O: the only module that reads or writes sound files.

Arrays are float32 ``(channels, samples)``. Writes are atomic (a temporary file in the
same folder, then a rename) and refuse to replace an existing file unless asked, so an
interrupted run never leaves a half-written file and never clobbers the user's audio.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from mixinvert.errors import InputError, OutputExistsError

#: File suffixes accepted as tracks.
AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".ogg")


class AudioError(InputError):
    """An audio file that cannot be used, with the file named in the message."""


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a sound file as float32 ``(channels, samples)`` and its sample rate.

    Raises :class:`AudioError` naming the file if it is missing, unreadable, empty, or
    holds NaN/Inf samples.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        data, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises LibsndfileError, RuntimeError, TypeError
        raise AudioError(f"{path}: not a readable audio file ({err})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no samples")
    x = np.ascontiguousarray(data.T)
    if not np.isfinite(x).all():
        n_bad = int((~np.isfinite(x)).sum())
        raise AudioError(f"{path}: {n_bad} sample(s) are NaN or infinite")
    return x, int(sample_rate)


def write_audio(
    path: str | os.PathLike,
    x: np.ndarray,
    sample_rate: int,
    *,
    overwrite: bool = False,
    subtype: str = "FLOAT",
) -> Path:
    """Write ``x`` (``(channels, samples)``) atomically; 32-bit float WAV by default.

    Float WAV keeps a mix that peaks above 0 dBFS intact (no clipping). Refuses to
    replace an existing file unless ``overwrite`` is true.
    """
    path = Path(path)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected (channels, samples), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise AudioError(f"{path}: refusing to write NaN or infinite samples")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; refusing to overwrite it")
    with atomic_output(path, path.suffix) as tmp, \
            sf.SoundFile(tmp, "w", int(sample_rate), x.shape[0], subtype=subtype) as fh:
        _no_peak_chunk(fh)
        fh.write(x.T)
    return path


@contextlib.contextmanager
def atomic_output(path: Path, suffix: str = ".tmp") -> Iterator[str]:
    """Write to the temporary file this yields, beside ``path``; it replaces ``path`` when
    the block ends without an error and is deleted otherwise (Ctrl-C included).

    ``mkstemp`` makes files readable by their owner only; this one gets the permissions a
    plain ``open(path, "w")`` would give (0666 less the umask), so outputs are not private.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_SFC_SET_ADD_PEAK_CHUNK = 0x1050


def _no_peak_chunk(fh: sf.SoundFile) -> None:
    """Leave out libsndfile's PEAK chunk, which stamps float WAVs with the current time.

    Without it, the same audio always gives the same bytes (reproducible corpora and
    checksums). soundfile has no public switch for this libsndfile command, so this uses
    its private handle and does nothing if that ever changes.
    """
    try:
        from soundfile import _ffi, _snd  # type: ignore[attr-defined]

        _snd.sf_command(fh._file, _SFC_SET_ADD_PEAK_CHUNK, _ffi.NULL, 0)  # type: ignore[attr-defined]
    except (ImportError, AttributeError):
        pass


def write_text_atomic(path: str | os.PathLike, text: str, *, overwrite: bool = False) -> Path:
    """Write a text file atomically; refuse to replace an existing one unless asked."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; refusing to overwrite it")
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


class Tracks:
    """Mixin for holders of ``tracks``, ``(channels, samples)`` arrays of one length: their
    count and length."""

    @property
    def num_tracks(self) -> int:
        return len(self.tracks)  # type: ignore[attr-defined]

    @property
    def num_samples(self) -> int:
        return int(self.tracks[0].shape[-1])  # type: ignore[attr-defined]
