"""Tests of model files (save, load, checks) and of running the network on a song."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mixinvert.console.schema import CONSOLE_V1
from mixinvert.data.song import resample
from mixinvert.dsp.features import LOG_FLOOR, N_MELS, num_frames, stereo_log_mel
from mixinvert.models import checkpoint as ckpt
from mixinvert.models.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    CheckpointError,
    build_model,
    load_model,
    model_payload,
    read_checkpoint,
    save_atomic,
)
from mixinvert.models.inverter import MODEL_CONFIGS, Inverter
from mixinvert.models.predict import FEATURE_SAMPLE_RATE, predict_features, predict_song, song_features, song_transfer
from tests.conftest import SR, noise_track

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_model(name: str = "small", seed: int = 0) -> Inverter:
    torch.manual_seed(seed)
    return Inverter(MODEL_CONFIGS[name]).eval()


def inputs(n_tracks: int = 3, frames: int = 23, seed: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    return torch.randn(n_tracks, 2, frames, N_MELS) * 2 - 5, torch.randn(1, 2, frames, N_MELS) * 2 - 5


def transfer_for(tracks: torch.Tensor) -> torch.Tensor | None:
    """Made-up transfer spectra ``(T, 8, 80)`` for :func:`inputs` (fixed by the tracks)."""
    level = tracks.mean(dim=2)
    return torch.cat([level / 3.0, level.mean(dim=1, keepdim=True), level / 2.0 - 4.0, level[:, :1] / 2.0 - 5.0,
                      level[:, :1] / 20.0, level[:, :1] / 4.0], dim=1)


def predictions(model: Inverter, seed: int = 7) -> torch.Tensor:
    tracks, mix = inputs(seed=seed)
    with torch.no_grad():
        return model.eval()(tracks, mix, transfer=transfer_for(tracks))


META = {"iterations": 12, "songs": ["a", "b"], "loss": 0.125, "config": "small", "nested": {"ok": True, "none": None}}


# -- save and load ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS))
def test_save_then_load_gives_the_same_model(tmp_path, name):
    model = make_model(name, seed=3)
    path = save_atomic(model_payload(model, CONSOLE_V1, META), tmp_path / "model.pt")
    assert path == tmp_path / "model.pt" and path.is_file()
    loaded, schema, meta = load_model(path)
    assert loaded is not model
    assert loaded.config == model.config
    assert not loaded.training  # ready for inference
    assert schema is CONSOLE_V1 or schema.names == CONSOLE_V1.names
    assert meta == META
    torch.testing.assert_close(predictions(loaded), predictions(model), atol=0, rtol=0)
    # every weight came back, not only enough of them to pass one input
    ref = model.state_dict()
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v, ref[k], atol=0, rtol=0)


def test_load_model_accepts_str_paths_and_caches(tmp_path):
    path = save_atomic(model_payload(make_model(), CONSOLE_V1, {"n": 1}), tmp_path / "m.pt")
    a = load_model(path)
    b = load_model(str(path))
    assert a[0] is b[0]  # cached: the same network object for the same unchanged file


def test_reloading_after_the_file_changes_gives_the_new_model(tmp_path):
    path = tmp_path / "m.pt"
    first, second = make_model(seed=1), make_model(seed=2)
    save_atomic(model_payload(first, CONSOLE_V1, {"which": "first"}), path)
    net1, _, meta1 = load_model(path)
    save_atomic(model_payload(second, CONSOLE_V1, {"which": "second one"}), path)
    net2, _, meta2 = load_model(path)
    assert (meta1["which"], meta2["which"]) == ("first", "second one")
    torch.testing.assert_close(predictions(net1), predictions(first), atol=0, rtol=0)
    torch.testing.assert_close(predictions(net2), predictions(second), atol=0, rtol=0)
    assert not torch.allclose(predictions(net1), predictions(net2))


def test_model_payload_contents():
    model = make_model()
    payload = model_payload(model, CONSOLE_V1)
    assert payload["format"] == FORMAT and payload["format_version"] == FORMAT_VERSION
    assert payload["kind"] == "model"
    assert payload["model_config"] == model.config.to_dict()
    assert payload["schema"] == {"version": CONSOLE_V1.version, "names": list(CONSOLE_V1.names)}
    assert payload["meta"] == {}
    # the weights are copies: training on afterwards does not change a saved payload
    key = "fc.weight"
    before = payload["state_dict"][key].clone()
    with torch.no_grad():
        model.fc.weight.add_(1.0)
    torch.testing.assert_close(payload["state_dict"][key], before, atol=0, rtol=0)
    assert all(v.device.type == "cpu" for v in payload["state_dict"].values())


def test_model_payload_meta_is_copied():
    meta = {"a": 1}
    payload = model_payload(make_model(), CONSOLE_V1, meta)
    meta["a"] = 2
    assert payload["meta"] == {"a": 1}


# -- save_atomic ------------------------------------------------------------------------


def test_save_atomic_leaves_no_temp_files_and_replaces(tmp_path):
    path = tmp_path / "model.pt"
    save_atomic({"x": torch.zeros(3)}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    save_atomic({"x": torch.ones(5), "y": 2}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    obj = torch.load(path, weights_only=True)
    assert set(obj) == {"x", "y"}
    torch.testing.assert_close(obj["x"], torch.ones(5))


def test_save_atomic_failure_keeps_the_old_file_and_cleans_up(tmp_path):
    path = tmp_path / "model.pt"
    save_atomic({"x": torch.zeros(3)}, path)
    good = path.read_bytes()
    with pytest.raises(Exception):
        save_atomic({"x": lambda: None}, path)  # lambdas cannot be pickled
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


# -- damaged and foreign files ----------------------------------------------------------


def _assert_names_file(exc: pytest.ExceptionInfo, path) -> None:
    msg = str(exc.value)
    assert str(path) in msg or str(path.resolve()) in msg, msg


def test_missing_file(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError) as exc:
        read_checkpoint(path)
    _assert_names_file(exc, path)
    with pytest.raises(CheckpointError) as exc:
        load_model(path)
    _assert_names_file(exc, path)


def test_directory_is_not_a_model_file(tmp_path):
    with pytest.raises(CheckpointError) as exc:
        read_checkpoint(tmp_path)
    _assert_names_file(exc, tmp_path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", bytes(range(256)) * 8])
def test_garbage_bytes(tmp_path, content):
    path = tmp_path / "junk.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as exc:
        read_checkpoint(path)
    _assert_names_file(exc, path)


def test_random_bytes(tmp_path, rng):
    path = tmp_path / "random.pt"
    path.write_bytes(rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError) as exc:
        read_checkpoint(path)
    _assert_names_file(exc, path)
    assert isinstance(exc.value, ValueError)  # CheckpointError is a ValueError


@pytest.mark.parametrize(
    "obj",
    [
        {"model_config": {}, "schema": {}, "state_dict": {}},  # no format tag
        {"format": "something-else", "format_version": 1},
        [1, 2, 3],
        torch.zeros(3),
    ],
)
def test_torch_file_without_format_tag(tmp_path, obj):
    path = tmp_path / "foreign.pt"
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match="format tag") as exc:
        read_checkpoint(path)
    _assert_names_file(exc, path)


@pytest.mark.parametrize("version", [0, 2, FORMAT_VERSION + 1, None, "1"])
def test_wrong_format_version(tmp_path, version):
    payload = model_payload(make_model(), CONSOLE_V1)
    payload["format_version"] = version
    path = tmp_path / "v.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="version") as exc:
        read_checkpoint(path)
    _assert_names_file(exc, path)


def test_format_version_missing(tmp_path):
    payload = model_payload(make_model(), CONSOLE_V1)
    del payload["format_version"]
    path = tmp_path / "v.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


@pytest.mark.parametrize("key", ["model_config", "schema", "state_dict"])
def test_missing_section(tmp_path, key):
    payload = model_payload(make_model(), CONSOLE_V1)
    del payload[key]
    path = tmp_path / "part.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=key) as exc:
        read_checkpoint(path)
    _assert_names_file(exc, path)


def test_weights_that_do_not_fit_the_config(tmp_path):
    payload = model_payload(make_model("small"), CONSOLE_V1)
    payload["model_config"] = MODEL_CONFIGS["paper"].to_dict()
    path = tmp_path / "mismatch.pt"
    save_atomic(payload, path)
    read_checkpoint(path)  # the file itself is well formed ...
    with pytest.raises(CheckpointError, match="weights") as exc:  # ... but cannot be built
        load_model(path)
    _assert_names_file(exc, path)


def test_weights_missing_a_tensor(tmp_path):
    payload = model_payload(make_model("small"), CONSOLE_V1)
    del payload["state_dict"]["fc.bias"]
    path = tmp_path / "partial.pt"
    save_atomic(payload, path)
    with pytest.raises(CheckpointError) as exc:
        load_model(path)
    _assert_names_file(exc, path)


def test_schema_names_differ(tmp_path):
    payload = model_payload(make_model(), CONSOLE_V1)
    names = list(CONSOLE_V1.names)
    names[0], names[1] = names[1], names[0]  # same names, another order
    payload["schema"]["names"] = names
    path = tmp_path / "names.pt"
    save_atomic(payload, path)
    with pytest.raises(CheckpointError, match="names") as exc:
        load_model(path)
    _assert_names_file(exc, path)
    with pytest.raises(CheckpointError):
        build_model(payload)


def test_unknown_console_version(tmp_path):
    payload = model_payload(make_model(), CONSOLE_V1)
    payload["schema"]["version"] = "v99"
    path = tmp_path / "console.pt"
    save_atomic(payload, path)
    with pytest.raises(CheckpointError) as exc:
        load_model(path)
    _assert_names_file(exc, path)


def test_bad_model_config(tmp_path):
    payload = model_payload(make_model(), CONSOLE_V1)
    payload["model_config"]["mystery_knob"] = 3
    with pytest.raises(CheckpointError, match="mystery_knob"):
        build_model(payload, where="here")


def test_model_output_count_must_match_the_console():
    import dataclasses

    config = dataclasses.replace(MODEL_CONFIGS["small"], n_params=CONSOLE_V1.size - 1)
    torch.manual_seed(0)
    payload = model_payload(Inverter(config), CONSOLE_V1)
    with pytest.raises(CheckpointError, match="predicts"):
        build_model(payload)


def test_build_model_on_a_good_payload():
    model = make_model()
    built, schema = build_model(model_payload(model, CONSOLE_V1))
    assert schema.names == CONSOLE_V1.names
    torch.testing.assert_close(predictions(built), predictions(model), atol=0, rtol=0)


def test_default_model_missing_points_to_training(tmp_path, monkeypatch):
    missing = tmp_path / "eami_default.pt"
    monkeypatch.setitem(ckpt.DEFAULT_MODEL_PATHS, "v1", missing)
    with pytest.raises(CheckpointError, match="mixinvert train") as exc:
        load_model(None)
    _assert_names_file(exc, missing)
    with pytest.raises(CheckpointError, match="mixinvert train"):
        load_model()


def test_default_model_is_used_when_present(tmp_path, monkeypatch):
    path = save_atomic(model_payload(make_model(seed=5), CONSOLE_V1, {"default": True}), tmp_path / "d.pt")
    monkeypatch.setitem(ckpt.DEFAULT_MODEL_PATHS, "v1", path)
    net, _, meta = load_model()
    assert meta == {"default": True}
    torch.testing.assert_close(predictions(net), predictions(make_model(seed=5)), atol=0, rtol=0)


# -- running the network on a song -------------------------------------------------------


@pytest.fixture
def song(rng):
    tracks = [noise_track(rng, 1, 1.0), noise_track(rng, 2, 1.0)]
    mix = (0.7 * tracks[0] + 0.5 * tracks[1]).astype(np.float32)  # mono broadcasts to (2, n)
    assert mix.shape == (2, SR)
    return tracks, mix


@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS))
def test_predict_song_shape_and_range(song, name):
    tracks, mix = song
    out = predict_song(make_model(name), tracks, mix, SR)
    assert isinstance(out, np.ndarray)
    assert out.shape == (2, CONSOLE_V1.size)
    assert out.dtype == np.float64
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
    assert not np.allclose(out[0], out[1])  # a mono and a stereo track: different answers


def test_predict_song_is_the_network_on_the_song_features(song):
    tracks, mix = song
    model = make_model()
    track_feats, mix_feats = song_features(tracks, mix, SR)
    frames = num_frames(SR, SR)
    assert track_feats.shape == (2, 2, frames, N_MELS)
    assert mix_feats.shape == (1, 2, frames, N_MELS)
    torch.testing.assert_close(track_feats[0, 0], track_feats[0, 1], atol=0, rtol=0)  # mono -> L = R
    torch.testing.assert_close(track_feats[1], stereo_log_mel(tracks[1], SR), atol=0, rtol=0)
    transfer = song_transfer(tracks, mix, SR, **model.transfer_options)
    assert transfer.shape == (2, model.config.transfer_channels, N_MELS)
    with torch.no_grad():
        direct = model(track_feats, mix_feats, transfer=transfer).numpy()
    np.testing.assert_allclose(predict_song(model, tracks, mix, SR), direct, atol=1e-6)


def test_predict_song_depends_on_the_mix(song):
    tracks, mix = song
    model = make_model()
    a = predict_song(model, tracks, mix, SR)
    b = predict_song(model, tracks, 0.1 * mix, SR)
    assert np.abs(a - b).max() > 1e-4


@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS))
def test_chunking(song, name):
    tracks, mix = song
    model = make_model(name)
    frames = num_frames(SR, SR)
    whole = predict_song(model, tracks, mix, SR)
    chunked = predict_song(model, tracks, mix, SR, max_frames=10)
    assert chunked.shape == whole.shape == (2, 16)
    assert np.abs(chunked).max() <= 1.0
    # a stationary signal gives about the same answer from pieces of it as from all of it
    assert np.abs(chunked - whole).max() < 0.1
    assert np.corrcoef(chunked.ravel(), whole.ravel())[0, 1] > 0.8
    # one chunk that holds every frame is exactly the unchunked call
    np.testing.assert_array_equal(predict_song(model, tracks, mix, SR, max_frames=frames), whole)
    np.testing.assert_array_equal(predict_song(model, tracks, mix, SR, max_frames=10 * frames), whole)


def test_chunks_are_averaged_by_length():
    model = make_model("paper")
    tracks, mix = inputs(n_tracks=2, frames=40, seed=11)
    halves = predict_features(model, tracks, mix, max_frames=20)
    first = predict_features(model, tracks[:, :, :20], mix[:, :, :20])
    second = predict_features(model, tracks[:, :, 20:], mix[:, :, 20:])
    np.testing.assert_allclose(halves, (first + second) / 2, atol=1e-6)
    assert np.abs(halves - predict_features(model, tracks, mix)).max() > 1e-6  # chunking did happen


def test_predict_features_restores_training_mode_and_needs_no_grad():
    model = make_model()
    tracks, mix = inputs(seed=12)
    tr = transfer_for(tracks)
    model.train()
    a = predict_features(model, tracks, mix, transfer=tr)
    assert model.training
    b = predict_features(model, tracks, mix, transfer=tr)
    np.testing.assert_array_equal(a, b)  # run in eval mode: no dropout
    model.eval()
    np.testing.assert_array_equal(predict_features(model, tracks, mix, transfer=tr), a)
    assert not model.training


def test_low_sample_rate_song_is_resampled_for_features(rng):
    sr = 22050
    tracks = [noise_track(rng, 1, 1.0, sr), noise_track(rng, 2, 1.0, sr)]
    mix = (tracks[0] + tracks[1]).astype(np.float32)
    model = make_model()
    out = predict_song(model, tracks, mix, sr)
    assert out.shape == (2, 16)
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0

    track_feats, mix_feats = song_features(tracks, mix, sr)
    frames = num_frames(2 * tracks[0].shape[-1], FEATURE_SAMPLE_RATE)  # 1 s at the feature rate
    assert track_feats.shape == (2, 2, frames, N_MELS)
    assert mix_feats.shape == (1, 2, frames, N_MELS)
    # the features are those of the resampled audio
    up = resample(tracks[1], sr, FEATURE_SAMPLE_RATE)  # the loader's resampler
    torch.testing.assert_close(track_feats[1], stereo_log_mel(up, FEATURE_SAMPLE_RATE), atol=1e-5, rtol=1e-5)
    # nothing above the old Nyquist frequency: the top bands sit near the floor,
    # while the low bands hold the noise
    top = track_feats[..., -5:].mean().item()
    low = track_feats[..., 5:40].mean().item()
    assert top < math.log(LOG_FLOOR) + 3.0 < low
    # the inputs were not modified by the resampling
    assert tracks[0].shape == (1, sr) and tracks[1].shape == (2, sr)


def test_high_sample_rate_song_is_not_resampled(rng):
    sr = 48000
    tracks = [noise_track(rng, 1, 0.5, sr)]
    mix = np.repeat(tracks[0], 2, axis=0)
    track_feats, mix_feats = song_features(tracks, mix, sr)
    assert track_feats.shape == (1, 2, num_frames(sr // 2, sr), N_MELS)
    torch.testing.assert_close(mix_feats[0], track_feats[0], atol=0, rtol=0)  # same audio, same features
    assert predict_song(make_model(), tracks, mix, sr).shape == (1, 16)
