"""The EAMI inference network (paper Fig. 3-4): spectrograms of tracks and mix -> settings.

Per track::

    track (2, N, 80) ─► U-Net (6 layers, 3x3) ─► N x 80 ─► pointwise conv ─► N x E ┐
    mix   (2, N, 80) ─► same U-Net ─────────────► N x 80 ─► same conv ───────► N x E ┴► concat N x 2E
      ─► linear to d ─► Conformer x L (h heads x dh dims, conv kernel k) ─► BiLSTM x 2
      ─► mean over time ─► fully connected + tanh ─► 16 normalized parameters in [-1, 1]

Beyond the paper (each a :class:`ModelConfig` switch, all on in ``small``): the tracks'
differences to the mix as extra input maps (``contrast``), attention pooling, a skip
around the U-Net, a statistics branch, and a transfer branch: each track's transfer
spectra into the mix (:mod:`mixinvert.dsp.transfer`, least squares per frequency, where
gain and pan read off nearly directly) through an MLP, joined before the output layer.

Each track is processed with the mix as its only context (the paper's cross-track context,
after Steinmetz et al.'s differentiable mixing console), so a track's output does not
depend on how many other tracks there are or in which order they come. A batch holds any
number of songs with any number of tracks: tracks are stacked along one axis and
``song_index`` says which song's mix each belongs to, so no padding is needed.

The Conformer layer is a port of torchaudio's ``ConformerLayer`` (Gulati et al. 2020;
macaron feed-forwards, multi-head self-attention without relative positions, a depthwise
convolution module); torchaudio has no CPU build for this project's torch, and no other
maintained package ships a plain Conformer layer without pulling a speech toolkit.
The U-Net down- and up-samples frequency only, so N frames in give N frames out for any N.
No layer normalizes a single track's spectrogram on its own: absolute levels carry the
gain information, so the U-Net has no normalization and the inputs get a fixed affine.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mixinvert.dsp.features import N_MELS, log_floor
from mixinvert.dsp.transfer import CHANNEL_GROUPS as TRANSFER_CHANNEL_GROUPS
from mixinvert.dsp.transfer import channel_count, channel_groups
from mixinvert.errors import InputError

#: Fixed input scaling: log-mel values of tracks and mixes sit around -5 +- 3.
FEATURE_OFFSET = 5.0
FEATURE_SCALE = 3.0


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the inference network (stored in every checkpoint)."""

    name: str
    in_channels: int = 2
    n_mels: int = N_MELS
    unet_channels: tuple[int, ...] = (16, 32, 64)  # 3 down + 3 up = 6 U-Net layers
    time_pool: int = 1  # frames merged by the U-Net (1: every 25 ms frame, as in the paper)
    embed_dim: int = 128  # the pointwise conv's output (N x 128)
    conformer_layers: int = 3
    conformer_heads: int = 4
    conformer_head_dim: int = 36
    conformer_kernel: int = 32
    conformer_ff_mult: int = 4
    lstm_layers: int = 2
    lstm_hidden: int = 128
    n_params: int = 16
    #: Settings of the whole console (a schema's ``shared``: console v2's buses and master),
    #: one set per song, read from the mean over the song's tracks of their pooled vectors
    #: (each holds the mix's features too); 0: none (console v1). :func:`for_schema` sets both.
    n_shared: int = 0
    dropout: float = 0.1
    #: Beyond the paper: also give each spectrogram its difference to the mix (mix - own,
    #: per channel; zero for the mix itself), where gain, pan and EQ read off directly.
    contrast: bool = False
    #: How per-frame features become one vector: "mean" (the paper) or "attention"
    #: (learned softmax weights over frames, so frames where a track is audible count most).
    pool: str = "mean"
    #: Maps the U-Net gives per frame and band (the paper: 1, an N x 80 map).
    unet_out_channels: int = 1
    #: Beyond the paper: the U-Net's input channels join its output (a skip around it),
    #: so the layers above see the spectrograms directly from the first step.
    input_skip: bool = False
    #: Beyond the paper: a statistics branch. Per band and channel, the low quantile over
    #: the frames where the track sounds of (mix - track), where the track dominates the
    #: mix and the difference reads as gain + EQ + pan law; plus the track's and the
    #: mix's mean spectra. An MLP of ``stats_hidden`` units joins it to the pooled vector.
    stats_branch: bool = False
    stats_hidden: int = 128
    #: Beyond the paper: a transfer branch. Each track's transfer spectra into the mix
    #: (:mod:`mixinvert.dsp.transfer`: least squares per frequency, 3 x 80 values: left and
    #: right gain per band, the track's band power) through an MLP of ``transfer_hidden``
    #: units, joined to the pooled vector. Gain and pan read off these nearly directly.
    transfer_branch: bool = False
    transfer_hidden: int = 128
    #: With ``transfer_branch``: the branch also reads the three reverb channels of the
    #: transfer spectra (6 x 80 values; ``transfer_features(..., reverb=True)``).
    transfer_reverb: bool = False
    #: With ``transfer_branch``: the branch also reads the two compressor channels (how
    #: each track's gain into the mix falls with its level;
    #: ``transfer_features(..., compressor=True)``), after the reverb ones.
    transfer_compressor: bool = False

    @property
    def transfer_channels(self) -> int:
        """Channels of the transfer spectra the network reads (0 without the branch)."""
        if not self.transfer_branch:
            return 0
        return channel_count(reverb=self.transfer_reverb, compressor=self.transfer_compressor)

    @property
    def model_dim(self) -> int:
        return self.conformer_heads * self.conformer_head_dim

    def to_dict(self) -> dict:
        d = asdict(self)
        d["unet_channels"] = list(self.unet_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        d["unet_channels"] = tuple(d["unet_channels"])
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise InputError(f"unknown model config fields: {sorted(unknown)}")
        return cls(**d)


#: ``paper``: the sizes of the paper (4 heads x 36 dims, kernel 32, 3 Conformer layers,
#: 2 BiLSTM layers). ``small``: the same architecture scaled to train on a 2-core CPU.
MODEL_CONFIGS: dict[str, ModelConfig] = {
    "paper": ModelConfig(name="paper"),
    "small": ModelConfig(
        name="small",
        unet_channels=(8, 16, 32),
        time_pool=4,
        embed_dim=64,
        conformer_layers=2,
        conformer_heads=2,
        conformer_head_dim=32,
        conformer_kernel=15,
        conformer_ff_mult=2,
        lstm_layers=2,
        lstm_hidden=64,
        contrast=True,
        pool="attention",
        unet_out_channels=4,
        input_skip=True,
        stats_branch=True,
        transfer_branch=True,
        transfer_reverb=True,
        transfer_compressor=True,
    ),
}


def for_schema(config: ModelConfig, schema) -> ModelConfig:
    """``config`` with its outputs sized for console ``schema`` (its settings per track and
    its shared settings)."""
    from dataclasses import replace

    return replace(config, n_params=schema.size, n_shared=schema.shared_size)


def get_model_config(name: str) -> ModelConfig:
    try:
        return MODEL_CONFIGS[name]
    except KeyError:
        raise InputError(f"unknown model config {name!r}; choose from {sorted(MODEL_CONFIGS)}") from None


class _ConvLayer(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class UNetEncoder(nn.Module):
    """A U-Net over (time, mel) with ``2 * len(channels)`` 3x3 layers: ``(B, C, N, 80) -> (B, N', 80)``.

    Each down layer halves the mel axis (80 -> 40 -> 20 -> 10); each up layer doubles it
    back and joins the skip connection of its level. With ``time_pool > 1`` the first
    ``log2(time_pool)`` down layers also halve time, and the output keeps that coarser
    rate: ``N' = ceil(N / time_pool)`` (skips are averaged to match). ``time_pool = 1``
    (the paper) keeps every frame.
    """

    def __init__(
        self, in_channels: int, channels: tuple[int, ...], n_mels: int, time_pool: int = 1, out_channels: int = 1
    ) -> None:
        super().__init__()
        if n_mels % (2 ** len(channels)):
            raise ValueError(f"{n_mels} mel bands cannot be halved {len(channels)} times")
        n_time_halvings = max(0, int(time_pool).bit_length() - 1)
        if 2**n_time_halvings != time_pool or n_time_halvings > len(channels):
            raise ValueError(f"time_pool must be a power of 2 up to {2 ** len(channels)}, got {time_pool}")
        self.time_pool = time_pool
        self.time_factors = [2 if i < n_time_halvings else 1 for i in range(len(channels))]
        self.down = nn.ModuleList()
        c_prev = in_channels
        for c in channels:
            self.down.append(_ConvLayer(c_prev, c))
            c_prev = c
        self.up = nn.ModuleList()
        skips = [in_channels, *channels[:-1]]
        for c_skip in reversed(skips):
            c_out = max(c_skip, channels[0])
            self.up.append(_ConvLayer(c_prev + c_skip, c_out))
            c_prev = c_out
        self.out = nn.Conv2d(c_prev, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for layer, tf in zip(self.down, self.time_factors):
            skips.append(x)
            x = F.avg_pool2d(layer(x), kernel_size=(tf, 2), ceil_mode=True)
        for level, layer in zip(reversed(range(len(self.up))), self.up):
            skip = skips.pop()
            factor = math.prod(self.time_factors[level:])  # ceil(ceil(n/a)/b) == ceil(n/(a*b))
            if factor > 1:
                skip = F.avg_pool2d(skip, kernel_size=(factor, 1), ceil_mode=True)
            x = torch.repeat_interleave(x, 2, dim=-1)
            x = layer(torch.cat([x, skip], dim=1))
        return self.out(x)  # (B, out_channels, N', n_mels)


class _FeedForward(nn.Module):
    def __init__(self, d: int, mult: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(d),
            nn.Linear(d, d * mult),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(d * mult, d),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _ConvModule(nn.Module):
    def __init__(self, d: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.pointwise_in = nn.Conv1d(d, 2 * d, 1)
        self.glu = nn.GLU(dim=1)
        # "same" padding by hand: asymmetric for even kernels (the paper's 32)
        self.pad = ((kernel - 1) // 2, kernel // 2)
        self.depthwise = nn.Conv1d(d, d, kernel, groups=d)
        self.group_norm = nn.GroupNorm(1, d)
        self.act = nn.SiLU()
        self.pointwise_out = nn.Conv1d(d, d, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, d)
        y = self.norm(x).transpose(1, 2)
        y = self.glu(self.pointwise_in(y))
        y = self.act(self.group_norm(self.depthwise(F.pad(y, self.pad))))
        y = self.dropout(self.pointwise_out(y))
        return y.transpose(1, 2)


class ConformerLayer(nn.Module):
    """One Conformer layer: FF/2, self-attention, convolution, FF/2, layer norm."""

    def __init__(self, d: int, heads: int, kernel: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.ff1 = _FeedForward(d, ff_mult, dropout)
        self.attn_norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.attn_dropout = nn.Dropout(dropout)
        self.conv = _ConvModule(d, kernel, dropout)
        self.ff2 = _FeedForward(d, ff_mult, dropout)
        self.final_norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, d)
        x = x + 0.5 * self.ff1(x)
        y = self.attn_norm(x)
        y, _ = self.attn(y, y, y, need_weights=False)
        x = x + self.attn_dropout(y)
        x = x + self.conv(x)
        x = x + 0.5 * self.ff2(x)
        return self.final_norm(x)


class Inverter(nn.Module):
    """The inference network; see the module doc. Build it from a :class:`ModelConfig`."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        if c.pool not in ("mean", "attention"):
            raise ValueError(f"unknown pooling {c.pool!r} (mean or attention)")
        unet_in = 2 * c.in_channels if c.contrast else c.in_channels
        self.unet = UNetEncoder(unet_in, tuple(c.unet_channels), c.n_mels, c.time_pool, c.unet_out_channels)
        maps = c.unet_out_channels + (unet_in if c.input_skip else 0)
        self.pointwise = nn.Conv1d(maps * c.n_mels, c.embed_dim, kernel_size=1)
        self.proj = nn.Linear(2 * c.embed_dim, c.model_dim)
        self.conformer = nn.ModuleList(
            ConformerLayer(c.model_dim, c.conformer_heads, c.conformer_kernel, c.conformer_ff_mult, c.dropout)
            for _ in range(c.conformer_layers)
        )
        self.lstm = nn.LSTM(
            c.model_dim,
            c.lstm_hidden,
            num_layers=c.lstm_layers,
            batch_first=True,
            bidirectional=True,
            dropout=c.dropout if c.lstm_layers > 1 else 0.0,
        )
        head_in = 2 * c.lstm_hidden
        self.stats_mlp = None
        if c.stats_branch:
            self.stats_mlp = nn.Sequential(
                nn.Linear(3 * c.in_channels * c.n_mels, c.stats_hidden),
                nn.LeakyReLU(0.1),
                nn.Linear(c.stats_hidden, c.stats_hidden),
                nn.LeakyReLU(0.1),
            )
            head_in += c.stats_hidden
        self.transfer_mlp = None
        if c.transfer_branch:
            self.transfer_mlp = nn.Sequential(
                nn.Linear(c.transfer_channels * c.n_mels, c.transfer_hidden),
                nn.LeakyReLU(0.1),
                nn.Linear(c.transfer_hidden, c.transfer_hidden),
                nn.LeakyReLU(0.1),
            )
            head_in += c.transfer_hidden
        self.fc = nn.Linear(head_in, c.n_params)
        self.fc_shared = nn.Linear(head_in, c.n_shared) if c.n_shared else None
        self.attention = nn.Linear(2 * c.lstm_hidden, 1) if c.pool == "attention" else None

    @property
    def needs_transfer(self) -> bool:
        """Whether :meth:`forward` needs the tracks' transfer spectra."""
        return self.config.transfer_branch

    @property
    def transfer_reverb(self) -> bool:
        """Whether those spectra include the reverb channels (``transfer_features(reverb=...)``)."""
        return self.config.transfer_branch and self.config.transfer_reverb

    @property
    def transfer_options(self) -> dict[str, bool]:
        """The keyword arguments of :func:`mixinvert.dsp.transfer.transfer_features` (and
        :func:`mixinvert.models.predict.song_transfer`) that give this network's spectra."""
        c = self.config
        return {"reverb": c.transfer_branch and c.transfer_reverb,
                "compressor": c.transfer_branch and c.transfer_compressor}

    def start_at(self, p: torch.Tensor | Sequence[float], shared: torch.Tensor | Sequence[float] | None = None, *,
                 limit: float = 0.8) -> "Inverter":
        """Make the untrained network answer about ``p`` (normalized settings, one row) and,
        for a network with shared settings, about ``shared``.

        Sets the output layer's bias to ``atanh(p)`` (``p`` clipped to +-``limit`` so the
        tanh keeps a usable slope) and shrinks its weights, so the first sampling step of
        embodied self-supervised learning explores around ``p`` (e.g. the neutral console,
        a plain sum) instead of around the middle of every range (half-wet reverb, 4.5:1
        compression on every track).
        """
        layers = [(self.fc, p)] + ([(self.fc_shared, shared)] if self.fc_shared is not None else [])
        with torch.no_grad():
            for layer, target in layers:
                if target is None:
                    raise ValueError("this network has shared settings: give where they start too")
                layer.bias.copy_(torch.atanh(torch.as_tensor(target, dtype=torch.float32).clamp(-limit, limit)))
                layer.weight.mul_(0.1)
        return self

    def encode(self, feats: torch.Tensor, contrast: torch.Tensor | None = None) -> torch.Tensor:
        """Spectrograms ``(B, C, N, 80)`` (and their differences to the mix, same shape,
        for ``contrast`` models) -> feature maps ``(B, N', embed_dim)``."""
        x = (feats + FEATURE_OFFSET) / FEATURE_SCALE
        if self.config.contrast:
            if contrast is None:
                raise ValueError("this model needs the spectrograms' differences to the mix")
            x = torch.cat([x, contrast / FEATURE_SCALE], dim=1)
        y = self.unet(x)  # (B, maps, N', 80)
        if self.config.input_skip:
            skip = x
            if self.config.time_pool > 1:
                skip = F.avg_pool2d(skip, kernel_size=(self.config.time_pool, 1), ceil_mode=True)
            y = torch.cat([y, skip], dim=1)
        b, c, n, f = y.shape
        y = y.permute(0, 1, 3, 2).reshape(b, c * f, n)  # channels x bands as 1-D conv channels
        return self.pointwise(y).transpose(1, 2)

    def forward(
        self,
        track_feats: torch.Tensor,
        mix_feats: torch.Tensor,
        song_index: torch.Tensor | None = None,
        transfer: torch.Tensor | None = None,
        with_shared: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Normalized settings for every track (and, ``with_shared``, each song's shared ones).

        Parameters
        ----------
        track_feats : (n_tracks, 2, N, 80) log-mel of every track of every song in the batch
        mix_feats : (n_songs, 2, N, 80) log-mel of each song's mix
        song_index : (n_tracks,) long, which song each track belongs to (default: all song 0)
        transfer : (n_tracks, 3, 80) transfer spectra of every track into its song's mix
            (:func:`mixinvert.dsp.transfer.transfer_features`); needed by models with
            ``transfer_branch`` (:attr:`needs_transfer`), ignored by others

        with_shared : also return each song's shared settings (a network with ``n_shared``)

        Returns
        -------
        (n_tracks, n_params) in [-1, 1]; ``with_shared``: that and (n_songs, n_shared)
        """
        if track_feats.ndim != 4 or mix_feats.ndim != 4:
            raise ValueError("expected track_feats (tracks, 2, frames, mels) and mix_feats (songs, 2, frames, mels)")
        if track_feats.shape[1:] != mix_feats.shape[1:]:
            raise ValueError(f"track and mix features differ in shape: {tuple(track_feats.shape)} vs {tuple(mix_feats.shape)}")
        n_tracks = track_feats.shape[0]
        if song_index is None:
            if mix_feats.shape[0] != 1:
                raise ValueError("song_index is needed when the batch holds more than one song")
            song_index = torch.zeros(n_tracks, dtype=torch.long, device=track_feats.device)
        if self.transfer_mlp is not None:
            expected = (n_tracks, self.config.transfer_channels, self.config.n_mels)
            if transfer is None:
                raise ValueError("this model needs the tracks' transfer spectra (mixinvert.dsp.transfer)")
            if tuple(transfer.shape) != expected:
                raise ValueError(f"transfer spectra must be {expected}, got {tuple(transfer.shape)}")
        contrast = None
        if self.config.contrast:
            contrast = torch.cat([mix_feats[song_index] - track_feats, torch.zeros_like(mix_feats)], dim=0)
        maps = self.encode(torch.cat([track_feats, mix_feats], dim=0), contrast)
        h = torch.cat([maps[:n_tracks], maps[n_tracks:][song_index]], dim=-1)
        h = self.proj(h)
        for layer in self.conformer:
            h = layer(h)
        h, _ = self.lstm(h)
        if self.attention is not None:
            w = torch.softmax(self.attention(h), dim=1)  # (tracks, N', 1)
            pooled = (w * h).sum(dim=1)
        else:
            pooled = h.mean(dim=1)
        if self.stats_mlp is not None:
            stats = contrast_statistics(track_feats, mix_feats[song_index])
            pooled = torch.cat([pooled, self.stats_mlp(stats)], dim=-1)
        if self.transfer_mlp is not None:
            pooled = torch.cat([pooled, self.transfer_mlp(scale_transfer(transfer, **self.transfer_options))], dim=-1)
        p = torch.tanh(self.fc(pooled))
        if not with_shared:
            return p
        if self.fc_shared is None:
            raise ValueError("this network has no shared settings (its console has none)")
        n_songs = mix_feats.shape[0]
        summed = torch.zeros(n_songs, pooled.shape[-1], dtype=pooled.dtype, device=pooled.device)
        summed = summed.index_add(0, song_index, pooled)
        counts = torch.bincount(song_index, minlength=n_songs).clamp(min=1).to(pooled.dtype)
        return p, torch.tanh(self.fc_shared(summed / counts[:, None]))


#: A band of a track "sounds" in a frame when it is this far (natural log) above the floor.
ACTIVE_ABOVE_FLOOR = 3.0
#: Quantile of (mix - track) over the frames where the track sounds.
CONTRAST_QUANTILE = 0.1
#: Value for bands where the track never sounds (a large difference: "not in the mix").
CONTRAST_EMPTY = 10.0


def contrast_statistics(track_feats: torch.Tensor, mix_feats: torch.Tensor) -> torch.Tensor:
    """Per track: low quantile of (mix - track) where the track sounds, track and mix mean spectra.

    Shapes: ``(T, C, N, F)`` each (the mix already repeated per track) -> ``(T, 3 * C * F)``,
    scaled to about unit range. No gradient flows (the features are inputs).
    """
    with torch.no_grad():
        floor = log_floor()
        diff = mix_feats - track_feats
        active = track_feats > floor + ACTIVE_ABOVE_FLOOR
        masked = torch.where(active, diff, torch.full_like(diff, float("nan")))
        q = torch.nanquantile(masked.transpose(2, 3), CONTRAST_QUANTILE, dim=-1)  # (T, C, F)
        q = torch.nan_to_num(q, nan=CONTRAST_EMPTY).clamp(-CONTRAST_EMPTY, CONTRAST_EMPTY)
        t_mean = (track_feats.mean(dim=2) + FEATURE_OFFSET) / FEATURE_SCALE
        m_mean = (mix_feats.mean(dim=2) + FEATURE_OFFSET) / FEATURE_SCALE
        return torch.cat([q.flatten(1) / FEATURE_SCALE, t_mean.flatten(1), m_mean.flatten(1)], dim=1)


def scale_transfer(transfer: torch.Tensor, *, reverb: bool = False, compressor: bool = False) -> torch.Tensor:
    """``(T, C, F)`` transfer spectra (the channel groups of these flags,
    :data:`mixinvert.dsp.transfer.CHANNEL_GROUPS`) to the branch's input ``(T, C * F)``,
    each channel by its affine to about unit range."""
    channels = [c for g in channel_groups(reverb=reverb, compressor=compressor) for c in TRANSFER_CHANNEL_GROUPS[g]]
    if transfer.shape[1] != len(channels):
        raise ValueError(f"transfer spectra with {transfer.shape[1]} channels, expected {len(channels)}")
    offset = torch.tensor([o for _, o, _ in channels], dtype=transfer.dtype)[None, :, None]
    scale = torch.tensor([s for _, _, s in channels], dtype=transfer.dtype)[None, :, None]
    return ((transfer + offset) / scale).flatten(1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "ModelConfig",
    "MODEL_CONFIGS",
    "get_model_config",
    "Inverter",
    "UNetEncoder",
    "ConformerLayer",
    "count_parameters",
]
