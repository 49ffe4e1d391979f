"""Plot functions return PNGs and leave no global matplotlib state; audio goes in as Ogg Vorbis."""

import base64
import io

import numpy as np
import pytest
import soundfile as sf

from mixinvert.reporting import plots
from mixinvert.reporting.media import audio_data_uri, ogg_vorbis_bytes, png_data_uri

PNG = b"\x89PNG\r\n\x1a\n"


def _size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _open_figures() -> int:
    from matplotlib._pylab_helpers import Gcf

    return len(Gcf.get_all_fig_managers())


def test_plots_give_pngs_of_the_asked_size_and_leave_no_figures_open():
    before = _open_figures()
    freqs = np.geomspace(20, 20000, 64)
    eq = plots.eq_curve_png(freqs, np.zeros(64), width_in=2.0, height_in=1.5)
    assert eq.startswith(PNG) and _size(eq) == (200, 150)
    x = np.linspace(-60, 0, 61)
    comp = plots.compressor_curve_png(x, np.minimum(x, -20 + (x + 20) / 4), -20.0)
    assert comp.startswith(PNG)
    t, f = np.linspace(0, 1, 20), np.linspace(0, 22050, 33)
    spec = plots.spectrograms_png([("a", t, f, np.full((33, 20), -50.0)), ("b", t, f, np.full((33, 20), -60.0))],
                                  vmin_db=-90, vmax_db=0)
    assert spec.startswith(PNG)
    bars = plots.grouped_bars_png(["s1", "s2"], {"sum": [2.0, 3.0], "eami": [0.5, float("nan")]}, ylabel="MRSD")
    assert bars.startswith(PNG)
    assert _open_figures() == before


def test_plots_refuse_mismatched_data():
    with pytest.raises(ValueError, match="equal 1-D"):
        plots.eq_curve_png(np.ones(4), np.ones(5))
    with pytest.raises(ValueError, match="vmin_db"):
        plots.spectrograms_png([("a", np.ones(2), np.ones(2), np.ones((2, 2)))], vmin_db=0, vmax_db=-1)
    with pytest.raises(ValueError, match="2 groups"):
        plots.grouped_bars_png(["a", "b"], {"m": [1.0]}, ylabel="x")


def test_ogg_vorbis_round_trip_keeps_channels_length_and_waveform():
    sr = 44100
    t = np.arange(sr) / sr
    x = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)
    data = ogg_vorbis_bytes(x, sr)
    y, sr_read = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    assert sr_read == sr and y.shape == (sr, 2)
    for ch in range(2):
        assert np.corrcoef(x[ch, 2000:-2000], y[2000:-2000, ch])[0, 1] > 0.99
    assert len(data) < x.nbytes / 8  # far smaller than float PCM


def test_long_audio_encodes_in_blocks_without_crashing():
    # libsndfile's Vorbis encoder crashes on one write of more than about a minute
    x = np.zeros((2, 44100 * 75), dtype=np.float32)
    assert sf.info(io.BytesIO(ogg_vorbis_bytes(x, 44100))).frames == x.shape[1]


def test_data_uris():
    uri = audio_data_uri(np.zeros((1, 4410), dtype=np.float32), 44100)
    assert uri.startswith("data:audio/ogg;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]).startswith(b"OggS")
    assert png_data_uri(PNG + b"rest").startswith("data:image/png;base64,")
    with pytest.raises(ValueError, match="PNG"):
        png_data_uri(b"GIF89a")
