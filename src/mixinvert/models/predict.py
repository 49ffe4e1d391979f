"""Run the inference network on a song: features, forward pass, normalized settings."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from mixinvert.data.song import resample
from mixinvert.dsp.features import MIN_SAMPLE_RATE, stereo_log_mel
from mixinvert.dsp.transfer import transfer_features
from mixinvert.models.inverter import Inverter

#: The rate features are computed at when a song's own rate is too low for 20 kHz bands.
FEATURE_SAMPLE_RATE = 44100
#: Longest stretch of frames given to the network at once (60 s); longer songs are cut
#: into chunks of about equal length and the per-chunk answers averaged.
MAX_FRAMES = 2400


def _feature_audio(
    tracks: Sequence[np.ndarray], mix: np.ndarray, sample_rate: int
) -> tuple[Sequence[np.ndarray], np.ndarray, int]:
    """The audio at a rate whose Nyquist frequency covers the top band (resampled if not)."""
    if sample_rate < MIN_SAMPLE_RATE:
        tracks = [resample(t, sample_rate, FEATURE_SAMPLE_RATE) for t in tracks]
        mix = resample(mix, sample_rate, FEATURE_SAMPLE_RATE)
        sample_rate = FEATURE_SAMPLE_RATE
    return tracks, mix, sample_rate


def song_transfer(
    tracks: Sequence[np.ndarray], mix: np.ndarray, sample_rate: int, *, reverb: bool = False,
    compressor: bool = False,
) -> torch.Tensor:
    """``(n_tracks, 3, 80)`` transfer spectra of the tracks into the mix, 3 more channels with
    ``reverb`` and 2 more with ``compressor`` (:func:`mixinvert.dsp.transfer.transfer_features`),
    at the features' sample rate."""
    tracks, mix, sample_rate = _feature_audio(tracks, mix, sample_rate)
    return torch.from_numpy(transfer_features(tracks, mix, sample_rate, reverb=reverb, compressor=compressor))


def song_features(
    tracks: Sequence[np.ndarray], mix: np.ndarray, sample_rate: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n_tracks, 2, N, 80)`` and ``(1, 2, N, 80)`` log-mel features of tracks and mix."""
    tracks, mix, sample_rate = _feature_audio(tracks, mix, sample_rate)
    track_feats = torch.stack([stereo_log_mel(t, sample_rate) for t in tracks])
    mix_feats = stereo_log_mel(mix, sample_rate).unsqueeze(0)
    return track_feats, mix_feats


@torch.no_grad()
def predict_features(
    model: Inverter,
    track_feats: torch.Tensor,
    mix_feats: torch.Tensor,
    *,
    transfer: torch.Tensor | None = None,
    max_frames: int = MAX_FRAMES,
    with_shared: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Normalized settings ``(n_tracks, n_params)`` for one song's features (chunked if long);
    ``with_shared``, also the song's shared settings ``(n_shared,)`` (a network for a console
    with shared settings).

    ``transfer``: the song's :func:`song_transfer`, for models that need it (the whole
    song's, given with every chunk).
    """
    was_training = model.training
    model.eval()
    try:
        n = track_feats.shape[-2]
        n_chunks = max(1, -(-n // max_frames))
        bounds = np.linspace(0, n, n_chunks + 1).round().astype(int)
        outs, shared = [], []
        weights = []
        device = next(model.parameters()).device  # the features are CPU tensors; the model may be on a GPU
        tr = transfer.to(device) if transfer is not None else None  # the whole song's, for every chunk
        for a, b in zip(bounds[:-1], bounds[1:]):
            out = model(track_feats[:, :, a:b].to(device), mix_feats[:, :, a:b].to(device), transfer=tr,
                        with_shared=with_shared)
            if with_shared:
                out, ps = out
                shared.append(ps[0].cpu())
            outs.append(out.cpu())
            weights.append(b - a)
        w = torch.tensor(weights, dtype=torch.float32)
        w = w / w.sum()
        p = (torch.stack(outs) * w[:, None, None]).sum(0)
    finally:
        model.train(was_training)
    if with_shared:
        return p.numpy().astype(np.float64), (torch.stack(shared) * w[:, None]).sum(0).numpy().astype(np.float64)
    return p.numpy().astype(np.float64)


def predict_song(
    model: Inverter, tracks: Sequence[np.ndarray], mix: np.ndarray, sample_rate: int, *, max_frames: int = MAX_FRAMES,
    with_shared: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Normalized settings ``(n_tracks, n_params)`` in [-1, 1] for raw ``tracks`` and their
    ``mix`` (``with_shared``: and the shared ones, :func:`predict_features`)."""
    tracks, mix, sample_rate = _feature_audio(tracks, mix, sample_rate)
    track_feats, mix_feats = song_features(tracks, mix, sample_rate)
    transfer = song_transfer(tracks, mix, sample_rate, **model.transfer_options) if model.needs_transfer else None
    return predict_features(model, track_feats, mix_feats, transfer=transfer, max_frames=max_frames,
                            with_shared=with_shared)
