"""The training loop's bulk tasks, run by an :class:`~mixinvert.executors.Executor`.

Each is a pure function at module level whose inputs are data (a :class:`SongAudio`, a
network payload, normalized settings), so that a thread of this process or a Ray worker
can run it and the same seed gives the same numbers wherever it runs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mixinvert.console.mixing import make_console
from mixinvert.console.schema import CONSOLE_V1, ParamSchema, get_schema
from mixinvert.dsp.features import log_mel
from mixinvert.metrics.audio import compare_mixes
from mixinvert.models.checkpoint import build_model, model_payload
from mixinvert.models.predict import predict_features, song_features, song_transfer


@dataclass(frozen=True)
class SongAudio:
    """One song's audio as the render tasks take it (put once, named by many tasks).

    tracks : list of np.ndarray [shape=(channels, samples)], float32
    sample_rate : int, Hz
    mix : np.ndarray [shape=(2, samples)] or None, the reference (for scores)
    """

    tracks: list[np.ndarray]
    sample_rate: int
    mix: np.ndarray | None = None


def _render(song: SongAudio, p_normalized: np.ndarray, schema_version: str,
            shared_normalized: np.ndarray | None = None) -> np.ndarray:
    """The song's mix through the console for normalized settings (and, on a console with
    shared settings, normalized shared ones), on this worker's thread."""

    schema = get_schema(schema_version)
    console = make_console(song.tracks, song.sample_rate, schema, workers=1)
    if schema.shared is None:
        return console.render(schema.denormalize(p_normalized))
    if shared_normalized is None:
        raise ValueError(f"console {schema.version} needs its shared settings")
    return console.render(schema.denormalize(p_normalized), schema.shared.denormalize(shared_normalized))


def render_log_mel(song: SongAudio, p_normalized: np.ndarray, schema_version: str = "v1") -> np.ndarray:
    """Render normalized settings through the console; the mix's log-mel features.

    Returns np.ndarray [shape=(2, frames, 80)], float32 (what the network reads), about
    1/200 of the mix's size: :func:`render_pair_features` without transfer spectra.
    """
    return render_pair_features(song, p_normalized, schema_version)[0]


def render_pair_features(
    song: SongAudio, p_normalized: np.ndarray, schema_version: str = "v1", with_transfer: bool = False,
    reverb: bool = False, compressor: bool = False, shared_normalized: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The sampling step's render task: the rendered mix's log-mel features
    ``(2, frames, 80)`` float32 and, ``with_transfer`` (a network with a transfer branch),
    the tracks' transfer spectra into it ``(n_tracks, 3, 80)``, ``(n_tracks, 6, 80)`` with
    the ``reverb`` channels, 2 more with the ``compressor`` ones (else ``None``).
    ``shared_normalized``: the shared settings, for a console that has them."""

    mix = _render(song, p_normalized, schema_version, shared_normalized)
    with torch.no_grad():
        feats = log_mel(mix, song.sample_rate).numpy().astype(np.float32, copy=False)
        transfer = (song_transfer(song.tracks, mix, song.sample_rate, reverb=reverb, compressor=compressor).numpy()
                    if with_transfer else None)
    return feats, transfer


def excerpt_features(song: SongAudio) -> tuple[np.ndarray, np.ndarray]:
    """The network's inputs for one song: ``(n_tracks, 2, N, 80)`` and ``(1, 2, N, 80)``
    log-mel features of its tracks and of ``song.mix``, float32 (the sampling step's
    other task: the driver keeps only the network's forward pass)."""

    if song.mix is None:
        raise ValueError("excerpt_features needs the song's reference mix")
    with torch.no_grad():
        tf, mf = song_features(song.tracks, song.mix, song.sample_rate)
    return tf.numpy(), mf.numpy()


#: Networks rebuilt from a payload, per payload key, in this process (a worker rebuilds a
#: network once per sampling step, not once per task). Small: old keys are dropped.
_NETWORKS: dict[str, Any] = {}
_NETWORKS_LOCK = threading.Lock()


def network_payload(model: Any, key: str, schema: ParamSchema = CONSOLE_V1) -> dict:
    """What :func:`predict_excerpt` needs of a network: its checkpoint payload (config,
    schema, float32 weights) under a ``key`` that names this version of the weights."""
    return {"key": key, "payload": model_payload(model, schema)}


def _network(net: dict) -> Any:
    with _NETWORKS_LOCK:
        model = _NETWORKS.get(net["key"])
        if model is None:
            model, _ = build_model(net["payload"], where="network payload")  # in eval mode
            _NETWORKS.clear()
            _NETWORKS[net["key"]] = model
        return model


def predict_excerpt(song: SongAudio, net: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The sampling step's first task: the network's input features for one song and its
    prediction, ``(track features (n_tracks, 2, N, 80) float32, p_hat (n_tracks, n_params),
    shared_hat (n_shared,) or None for a console without shared settings)``.

    ``net`` is a :func:`network_payload`, put once per step: the forward pass runs where
    the task runs, so the driver does no per-song work of its own.
    """

    tf, mf = excerpt_features(song)
    model = _network(net)
    with torch.no_grad():
        transfer = (song_transfer(song.tracks, song.mix, song.sample_rate, **model.transfer_options)
                    if model.needs_transfer else None)
        out = predict_features(model, torch.from_numpy(tf), torch.from_numpy(mf), transfer=transfer,
                               with_shared=model.fc_shared is not None)
    p_hat, shared_hat = out if isinstance(out, tuple) else (out, None)
    return tf, p_hat, shared_hat


def render_scores(song: SongAudio, p_normalized: np.ndarray, schema_version: str = "v1",
                  shared_normalized: np.ndarray | None = None) -> tuple[float, float]:
    """Render normalized settings (and shared ones, for a console that has them) and score
    the mix against ``song.mix``: ``(MAE, MRSD)``."""

    if song.mix is None:
        raise ValueError("render_scores needs the song's reference mix")
    scores = compare_mixes(_render(song, p_normalized, schema_version, shared_normalized), song.mix, song.sample_rate)
    return scores.mae, scores.mrsd
