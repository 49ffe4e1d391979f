"""Tests of the EAMI inference network (shapes, paper sizes, order invariance, batching)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from mixinvert.dsp.features import N_MELS
from mixinvert.models.inverter import (
    MODEL_CONFIGS,
    ConformerLayer,
    Inverter,
    ModelConfig,
    UNetEncoder,
    count_parameters,
    get_model_config,
)

CONFIG_NAMES = sorted(MODEL_CONFIGS)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class AutoTransfer(Inverter):
    """An :class:`Inverter` that makes up transfer spectra from the track features when a
    test gives none (a deterministic function of each track's own features, so permuting
    or regrouping tracks permutes them alike)."""

    def forward(self, tracks, mix, song_index=None, transfer=None):
        if transfer is None and self.needs_transfer:
            transfer = transfer_like(tracks, self.config.transfer_channels)
        return super().forward(tracks, mix, song_index, transfer)


def transfer_like(tracks: torch.Tensor, channels: int = 8) -> torch.Tensor:
    """``(T, channels, 80)`` transfer-spectrum-like values from track features ``(T, 2, N, 80)``
    (3 channels, 6 with the reverb channels, 8 with the compressor ones too)."""
    level = tracks.mean(dim=2)  # (T, 2, 80)
    out = torch.cat([level[:, :2] / 3.0, level.mean(dim=1, keepdim=True) * 2.0], dim=1)
    if channels > 3:
        out = torch.cat([out] + [level[:, :1] / 2.0 - 4.0 - i for i in range(channels - 3)], dim=1)
    return out


_MODELS: dict[str, Inverter] = {}


def eval_model(name: str) -> Inverter:
    """One seeded model per config, in eval mode, shared by the read-only tests."""
    if name not in _MODELS:
        torch.manual_seed(0)
        _MODELS[name] = AutoTransfer(MODEL_CONFIGS[name])
    return _MODELS[name].eval()


def feats(n: int, frames: int, seed: int) -> torch.Tensor:
    """Log-mel-like features ``(n, 2, frames, 80)`` around -5 with structure over time and bands."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, frames, N_MELS, generator=g) * 2.0 - 5.0
    return x + torch.linspace(-2, 2, N_MELS)  # a spectral tilt, like real audio


# -- shapes and range -------------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIG_NAMES)
@pytest.mark.parametrize("n_tracks,frames", [(1, 37), (2, 40), (5, 81), (16, 37), (16, 81)])
def test_output_shape_and_range(name, n_tracks, frames):
    model = eval_model(name)
    with torch.no_grad():
        out = model(feats(n_tracks, frames, 1), feats(1, frames, 2))
    assert out.shape == (n_tracks, 16)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert float(out.abs().max()) <= 1.0
    # different tracks get different answers (the track is used, not only the mix)
    if n_tracks > 1:
        assert not torch.allclose(out[0], out[1])


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_output_saturates_inside_minus_one_one(name):
    # extreme inputs drive the tanh to its limits but never beyond them
    model = eval_model(name)
    with torch.no_grad():
        out = model(feats(2, 13, 3) * 50.0, feats(1, 13, 4) * 50.0)
    assert torch.isfinite(out).all()
    assert float(out.abs().max()) <= 1.0


@pytest.mark.parametrize("name", CONFIG_NAMES)
@pytest.mark.parametrize("frames", [1, 2, 3, 5])
def test_very_short_inputs(name, frames):
    with torch.no_grad():
        out = eval_model(name)(feats(2, frames, 5), feats(1, frames, 6))
    assert out.shape == (2, 16) and torch.isfinite(out).all()


def test_get_model_config():
    assert get_model_config("paper") is MODEL_CONFIGS["paper"]
    assert get_model_config("small") is MODEL_CONFIGS["small"]
    with pytest.raises(ValueError, match="unknown model config"):
        get_model_config("huge")


# -- the paper's sizes, on the built modules --------------------------------------------


def test_paper_config_sizes_on_built_modules():
    model = eval_model("paper")
    c = model.config
    assert c.name == "paper"

    # U-Net: 6 layers of 3x3 convolutions, 3 down and 3 up, then a 1x1 to one map
    convs = [m for m in model.unet.modules() if isinstance(m, nn.Conv2d)]
    conv3 = [m for m in convs if m.kernel_size == (3, 3)]
    assert len(conv3) == 6
    assert len(model.unet.down) == 3 and len(model.unet.up) == 3
    assert all(layer.conv.kernel_size == (3, 3) for layer in [*model.unet.down, *model.unet.up])
    assert model.unet.down[0].conv.in_channels == 2  # L and R spectrograms
    assert model.unet.out.kernel_size == (1, 1) and model.unet.out.out_channels == 1
    assert model.unet.time_pool == 1  # every 25 ms frame is kept

    # pointwise conv from the 80 mel bands to 128
    assert isinstance(model.pointwise, nn.Conv1d)
    assert model.pointwise.kernel_size == (1,)
    assert model.pointwise.in_channels == 80 and model.pointwise.out_channels == 128
    # track and mix maps concatenated (2 x 128) and projected to the model dim 4 x 36 = 144
    assert model.proj.in_features == 256 and model.proj.out_features == 144

    # 3 Conformer layers, 4 heads of 36 dims, depthwise conv kernel 32
    assert len(model.conformer) == 3
    for layer in model.conformer:
        assert isinstance(layer, ConformerLayer)
        assert layer.attn.embed_dim == 144
        assert layer.attn.num_heads == 4
        assert layer.attn.head_dim == 36
        dw = layer.conv.depthwise
        assert dw.kernel_size == (32,)
        assert dw.groups == 144 and dw.in_channels == 144 and dw.out_channels == 144

    # 2 bidirectional LSTM layers, then 16 outputs
    assert isinstance(model.lstm, nn.LSTM)
    assert model.lstm.num_layers == 2 and model.lstm.bidirectional
    assert model.lstm.input_size == 144
    assert model.fc.in_features == 2 * model.lstm.hidden_size
    assert model.fc.out_features == 16


def test_paper_config_values():
    c = MODEL_CONFIGS["paper"]
    assert len(c.unet_channels) == 3
    assert c.embed_dim == 128
    assert c.conformer_layers == 3
    assert (c.conformer_heads, c.conformer_head_dim, c.model_dim) == (4, 36, 144)
    assert c.conformer_kernel == 32
    assert c.lstm_layers == 2
    assert c.n_params == 16 and c.n_mels == 80 and c.in_channels == 2 and c.time_pool == 1


def test_small_config_is_smaller_but_same_interface():
    small, paper = eval_model("small"), eval_model("paper")
    assert count_parameters(small) < count_parameters(paper)
    assert count_parameters(paper) == sum(p.numel() for p in paper.parameters()) > 0
    assert small.config.n_params == paper.config.n_params == 16
    assert small.config.model_dim == small.conformer[0].attn.embed_dim


# -- order invariance and batching ------------------------------------------------------


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_permuting_tracks_permutes_outputs(name):
    model = eval_model(name)
    tracks, mix = feats(5, 41, 10), feats(1, 41, 11)
    perm = torch.tensor([3, 0, 4, 2, 1])
    with torch.no_grad():
        out = model(tracks, mix)
        out_perm = model(tracks[perm], mix)
    torch.testing.assert_close(out_perm, out[perm], atol=1e-5, rtol=0)
    assert not torch.allclose(out_perm, out, atol=1e-4)  # the permutation is not trivial


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_track_output_independent_of_other_tracks(name):
    model = eval_model(name)
    tracks, mix = feats(4, 33, 12), feats(1, 33, 13)
    others = feats(3, 33, 14)
    with torch.no_grad():
        together = model(tracks, mix)
        for i in range(4):
            alone = model(tracks[i : i + 1], mix)
            torch.testing.assert_close(alone[0], together[i], atol=1e-5, rtol=0)
        # and with a different set of companions
        mixed_in = model(torch.cat([others[:2], tracks[1:2], others[2:]]), mix)
    torch.testing.assert_close(mixed_in[2], together[1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_batch_of_songs_equals_each_song_alone(name):
    model = eval_model(name)
    frames = 29
    tracks_a, mix_a = feats(2, frames, 20), feats(1, frames, 21)
    tracks_b, mix_b = feats(3, frames, 22), feats(1, frames, 23)
    with torch.no_grad():
        alone_a = model(tracks_a, mix_a)
        alone_b = model(tracks_b, mix_b)
        # songs interleaved in the batch, song_index tells which mix goes with which track
        tracks = torch.cat([tracks_b[:1], tracks_a[:1], tracks_b[1:], tracks_a[1:]])
        index = torch.tensor([1, 0, 1, 1, 0])
        batched = model(tracks, torch.cat([mix_a, mix_b]), index)
    torch.testing.assert_close(batched[[1, 4]], alone_a, atol=1e-5, rtol=0)
    torch.testing.assert_close(batched[[0, 2, 3]], alone_b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_explicit_song_index_zero_equals_default(name):
    model = eval_model(name)
    tracks, mix = feats(3, 21, 30), feats(1, 21, 31)
    with torch.no_grad():
        a = model(tracks, mix)
        b = model(tracks, mix, torch.zeros(3, dtype=torch.long))
    torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_output_depends_on_the_mix(name):
    model = eval_model(name)
    tracks = feats(2, 37, 40)
    with torch.no_grad():
        a = model(tracks, feats(1, 37, 41))
        b = model(tracks, feats(1, 37, 42))
        louder = model(tracks, feats(1, 37, 41) + 2.0)  # the same mix, 2 nepers louder
    assert (a - b).abs().max() > 1e-4
    assert (a - louder).abs().max() > 1e-4


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_output_depends_on_track_level(name):
    # no per-track normalization: a louder track gives a different answer
    model = eval_model(name)
    tracks, mix = feats(1, 37, 43), feats(1, 37, 44)
    with torch.no_grad():
        a = model(tracks, mix)
        b = model(tracks + 2.0, mix)
    assert (a - b).abs().max() > 1e-4


def test_eval_mode_is_deterministic_and_train_mode_uses_dropout():
    torch.manual_seed(0)
    model = AutoTransfer(MODEL_CONFIGS["small"])
    tracks, mix = feats(2, 25, 50), feats(1, 25, 51)
    model.eval()
    with torch.no_grad():
        a, b = model(tracks, mix), model(tracks, mix)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    model.train()
    with torch.no_grad():
        c, d = model(tracks, mix), model(tracks, mix)
    assert not torch.allclose(c, d)


# -- errors -----------------------------------------------------------------------------


def test_song_index_required_for_several_songs():
    model = eval_model("small")
    with pytest.raises(ValueError, match="song_index"):
        model(feats(3, 17, 60), feats(2, 17, 61))


@pytest.mark.parametrize(
    "track_shape,mix_shape",
    [
        ((2, 2, 17, 80), (1, 2, 18, 80)),  # frames differ
        ((2, 2, 17, 80), (1, 1, 17, 80)),  # channels differ
        ((2, 1, 17, 80), (1, 2, 17, 80)),
        ((2, 2, 17, 80), (1, 2, 17, 64)),  # mel bands differ
        ((2, 17, 80), (1, 2, 17, 80)),  # track features lack the channel axis
        ((2, 2, 17, 80), (2, 17, 80)),  # mix features lack the song axis
        ((2, 2, 17, 80, 1), (1, 2, 17, 80)),
    ],
)
def test_mismatched_shapes_raise(track_shape, mix_shape):
    model = eval_model("small")
    with pytest.raises(ValueError):
        model(torch.zeros(track_shape), torch.zeros(mix_shape))


# -- the U-Net on its own ---------------------------------------------------------------


@pytest.mark.parametrize("frames", [1, 7, 8, 9, 37, 81])
@pytest.mark.parametrize("time_pool", [1, 2, 4, 8])
def test_unet_time_pooling_gives_ceil_frames(frames, time_pool):
    torch.manual_seed(0)
    unet = UNetEncoder(2, (4, 8, 8), 80, time_pool=time_pool)
    with torch.no_grad():
        out = unet(torch.randn(3, 2, frames, 80))
    assert out.shape == (3, 1, math.ceil(frames / time_pool), 80)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("time_pool", [0, 3, 5, 6, 16])
def test_unet_rejects_bad_time_pool(time_pool):
    with pytest.raises(ValueError, match="time_pool"):
        UNetEncoder(2, (4, 8, 8), 80, time_pool=time_pool)


def test_unet_rejects_mel_count_not_divisible():
    with pytest.raises(ValueError, match="mel"):
        UNetEncoder(2, (4, 8, 8), 84)  # 84 / 8 is not whole


def test_unet_frames_are_local_in_time():
    # without time pooling, a change in the last frames leaves early frames untouched
    # (3x3 convs reach only a few frames); the U-Net never mixes a whole song together
    torch.manual_seed(0)
    unet = UNetEncoder(2, (4, 8, 8), 80, time_pool=1).eval()
    x = torch.randn(1, 2, 40, 80)
    y = x.clone()
    y[:, :, 30:] += 1.0
    with torch.no_grad():
        a, b = unet(x), unet(y)
    torch.testing.assert_close(a[:, :, :20], b[:, :, :20], atol=1e-6, rtol=0)
    assert not torch.allclose(a[:, :, 30:], b[:, :, 30:])


def test_small_model_frames_follow_time_pool():
    model = eval_model("small")
    assert model.config.time_pool == 4
    with torch.no_grad():
        maps = model.encode(feats(2, 37, 70), contrast=feats(2, 37, 71))
    assert maps.shape == (2, math.ceil(37 / 4), model.config.embed_dim)
    with pytest.raises(ValueError, match="differences to the mix"):
        model.encode(feats(2, 37, 70))
    with torch.no_grad():
        maps = eval_model("paper").encode(feats(2, 37, 70))
    assert maps.shape == (2, 37, 128)


# -- config round trip ------------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_config_dict_round_trip(name):
    c = MODEL_CONFIGS[name]
    d = c.to_dict()
    assert isinstance(d["unet_channels"], list)
    assert d["name"] == name
    back = ModelConfig.from_dict(d)
    assert back == c
    assert isinstance(back.unet_channels, tuple)
    assert back.model_dim == c.model_dim
    # the input dict is not modified
    assert isinstance(d["unet_channels"], list)


def test_config_round_trip_of_custom_values():
    c = dataclasses.replace(MODEL_CONFIGS["small"], name="custom", unet_channels=(4, 8, 8, 16), dropout=0.0)
    assert ModelConfig.from_dict(c.to_dict()) == c


def test_config_from_dict_rejects_unknown_keys():
    d = MODEL_CONFIGS["paper"].to_dict()
    d["attention_window"] = 7
    with pytest.raises(ValueError, match="attention_window"):
        ModelConfig.from_dict(d)


def test_config_from_dict_fills_defaults():
    c = ModelConfig.from_dict({"name": "x", "unet_channels": [16, 32, 64]})
    assert c == dataclasses.replace(MODEL_CONFIGS["paper"], name="x")


# -- training ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_gradient_reaches_every_parameter(name):
    torch.manual_seed(1)
    model = AutoTransfer(MODEL_CONFIGS[name]).train()
    frames = 12
    tracks = torch.cat([feats(2, frames, 80), feats(1, frames, 81)])
    index = torch.tensor([0, 0, 1])
    out = model(tracks, torch.cat([feats(1, frames, 82), feats(1, frames, 83)]), index)
    target = torch.linspace(-0.5, 0.5, 16).expand(3, 16)
    loss = (out - target).pow(2).mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    zero = [n for n, p in model.named_parameters() if p.requires_grad and not p.grad.abs().sum() > 0]
    assert zero == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_a_few_steps_of_training_reduce_the_loss():
    torch.manual_seed(2)
    config = dataclasses.replace(MODEL_CONFIGS["small"], dropout=0.0)
    model = AutoTransfer(config).train()
    tracks, mix = feats(3, 16, 90), feats(1, 16, 91)
    target = torch.tensor([[0.5] * 16, [-0.5] * 16, [0.0] * 16])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = (model(tracks, mix) - target).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# -- beyond the paper: contrast statistics, starting point ---------------------------------


def test_contrast_statistics_read_the_level_difference_where_the_track_sounds():
    from mixinvert.models.inverter import CONTRAST_EMPTY, FEATURE_OFFSET, FEATURE_SCALE, contrast_statistics

    g = torch.Generator().manual_seed(0)
    track = torch.randn(3, 2, 50, N_MELS, generator=g) - 4.0  # well above the floor (-11.5)
    track[:, :, :, 70:] = math.log(1e-5)  # top bands silent: "never sounds"
    mix = track + torch.tensor([0.5, 1.5, -2.0]).view(3, 1, 1, 1)
    mix[:, :, :, 70:] = -3.0
    stats = contrast_statistics(track, mix).view(3, 3, 2, N_MELS)
    q = stats[:, 0] * FEATURE_SCALE
    torch.testing.assert_close(q[..., :70], torch.tensor([0.5, 1.5, -2.0]).view(3, 1, 1).expand(3, 2, 70))
    torch.testing.assert_close(q[..., 70:], torch.full((3, 2, 10), CONTRAST_EMPTY))
    torch.testing.assert_close(stats[:, 1] * FEATURE_SCALE - FEATURE_OFFSET, track.mean(dim=2))
    # the low quantile ignores a few frames where other tracks cover this one
    covered = mix.clone()
    covered[:, :, :3] += 6.0
    torch.testing.assert_close(contrast_statistics(track, covered)[:, : 2 * N_MELS],
                               contrast_statistics(track, mix)[:, : 2 * N_MELS])


def test_start_at_sets_the_untrained_answer():
    torch.manual_seed(0)
    model = AutoTransfer(get_model_config("small")).eval()
    target = torch.linspace(-0.9, 0.9, 16)
    model.start_at(target)
    with torch.no_grad():
        out = model(feats(3, 40, 1), feats(1, 40, 2))
    expected = target.clamp(-0.8, 0.8)
    assert (out - expected).abs().max() < 0.1


# -- beyond the paper: the transfer branch -----------------------------------------------


def test_small_model_needs_transfer_spectra_of_the_right_shape():
    torch.manual_seed(0)
    model = Inverter(get_model_config("small")).eval()
    assert model.needs_transfer and not Inverter(get_model_config("paper")).needs_transfer
    tracks, mix = feats(3, 21, 1), feats(1, 21, 2)
    with pytest.raises(ValueError, match="transfer spectra"):
        model(tracks, mix)
    with pytest.raises(ValueError, match=r"transfer spectra must be \(3, 8, 80\)"):
        model(tracks, mix, transfer=torch.zeros(2, 8, N_MELS))
    with pytest.raises(ValueError, match=r"transfer spectra must be \(3, 8, 80\)"):
        model(tracks, mix, transfer=torch.zeros(3, 6, N_MELS))  # without the compressor channels
    with torch.no_grad():
        a = model(tracks, mix, transfer=transfer_like(tracks, 8))
        b = model(tracks, mix, transfer=transfer_like(tracks, 8) + 1.0)  # 1 neper more of each track
        c = model(tracks, mix, transfer=transfer_like(tracks, 8) + torch.tensor([0.0] * 3 + [2.0] * 3 + [0.0] * 2)[:, None])
    assert a.shape == (3, 16) and (a - b).abs().max() > 1e-4
    assert (a - c).abs().max() > 1e-4  # the reverb channels are read


def test_a_network_without_the_extra_channels_reads_three():
    from dataclasses import replace

    torch.manual_seed(0)
    model = Inverter(replace(get_model_config("small"), transfer_reverb=False, transfer_compressor=False)).eval()
    assert model.needs_transfer and not model.transfer_reverb and model.config.transfer_channels == 3
    tracks, mix = feats(2, 21, 1), feats(1, 21, 2)
    with torch.no_grad():
        assert model(tracks, mix, transfer=transfer_like(tracks, 3)).shape == (2, 16)
    with pytest.raises(ValueError, match=r"transfer spectra must be \(2, 3, 80\)"):
        model(tracks, mix, transfer=transfer_like(tracks, 6))


def test_a_network_with_the_compressor_channels_reads_them():
    from dataclasses import replace

    from mixinvert.models.inverter import scale_transfer

    torch.manual_seed(0)
    for reverb, channels in ((True, 8), (False, 5)):
        config = replace(get_model_config("small"), transfer_reverb=reverb, transfer_compressor=True)
        model = Inverter(config).eval()
        assert config.transfer_channels == channels
        assert model.transfer_options == {"reverb": reverb, "compressor": True}
        tracks, mix = feats(2, 21, 1), feats(1, 21, 2)
        base = transfer_like(tracks, channels)
        bump = torch.zeros(channels, 1)
        bump[-2] = -1.0  # the loudest frames pulled down
        with torch.no_grad():
            a, b = model(tracks, mix, transfer=base), model(tracks, mix, transfer=base + bump)
        assert a.shape == (2, 16) and (a - b).abs().max() > 1e-4
        with pytest.raises(ValueError, match=rf"transfer spectra must be \(2, {channels}, 80\)"):
            model(tracks, mix, transfer=transfer_like(tracks, channels - 2))
    with pytest.raises(ValueError, match="8 channels, expected 6"):
        scale_transfer(torch.zeros(1, 8, N_MELS), reverb=True)


def test_models_without_the_branch_ignore_transfer_spectra():
    model = eval_model("paper")
    tracks, mix = feats(2, 17, 3), feats(1, 17, 4)
    with torch.no_grad():
        torch.testing.assert_close(model(tracks, mix), Inverter.forward(model, tracks, mix, transfer=torch.ones(2, 3, 80)),
                                   atol=0, rtol=0)
