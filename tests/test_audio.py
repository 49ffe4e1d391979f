import os
import stat
import time

import numpy as np
import pytest

from mixinvert.audio import AudioError, read_audio, write_audio, write_text_atomic
from tests.conftest import SR, noise_track


def test_write_is_reproducible_and_exact(tmp_path, rng):
    x = noise_track(rng, 2, 0.2)
    a = write_audio(tmp_path / "a.wav", x, SR)
    time.sleep(1.1)  # libsndfile's PEAK chunk would stamp a different second
    b = write_audio(tmp_path / "b.wav", x, SR)
    assert a.read_bytes() == b.read_bytes()
    y, sr = read_audio(a)
    assert sr == SR
    np.testing.assert_array_equal(y, x)


def test_write_refuses_overwrite_and_nan(tmp_path, rng):
    x = noise_track(rng, 1, 0.1)
    path = write_audio(tmp_path / "a.wav", x, SR)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        write_audio(path, 2 * x, SR)
    bad = x.copy()
    bad[0, 3] = np.inf
    with pytest.raises(AudioError, match="NaN or infinite"):
        write_audio(path, bad, SR, overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]  # no temporary left behind


def test_atomic_writes_get_the_usual_permissions(tmp_path, rng):
    """Not mkstemp's owner-only 0600: what open() would give under the current umask."""
    old = os.umask(0o022)
    try:
        wav = write_audio(tmp_path / "a.wav", noise_track(rng, 1, 0.05), SR)
        txt = write_text_atomic(tmp_path / "a.txt", "hello")
        os.umask(0o077)
        private = write_text_atomic(tmp_path / "b.txt", "hello")
    finally:
        os.umask(old)
    assert stat.S_IMODE(wav.stat().st_mode) == 0o644
    assert stat.S_IMODE(txt.stat().st_mode) == 0o644
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_read_errors(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("hello")
    with pytest.raises(AudioError, match="text.wav: not a readable audio file"):
        read_audio(tmp_path / "text.wav")
