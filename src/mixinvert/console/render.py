"""Console v1: the paper's per-track chain on pedalboard's built-in processors.

Per track, in order (EAMI section 3.1, Fig. 1)::

    gain -> EQ (low shelf, peak, high shelf) -> compressor -> pan -> reverb (wet/dry) -> sum

=========== ==========================================================================
stage       pedalboard
=========== ==========================================================================
gain        ``Gain(gain_db)``
EQ          ``LowShelfFilter(eq_low_shelf_cutoff_hz, eq_low_shelf_gain_db, q=SHELF_Q)``,
            ``PeakFilter(eq_peak_cutoff_hz, eq_peak_gain_db, eq_peak_q)``,
            ``HighShelfFilter(eq_high_shelf_cutoff_hz, eq_high_shelf_gain_db, q=SHELF_Q)``
compressor  ``Compressor(comp_threshold_db, comp_ratio, comp_attack_ms, comp_release_ms)``
pan         constant power, ``theta = (pan + 1) * pi / 4``; mono ``x -> (cos theta x,
            sin theta x)``; a stereo track runs the chain per channel, then
            ``L *= sqrt(2) cos theta``, ``R *= sqrt(2) sin theta``
reverb      ``Reverb(room_size, damping, wet_level=reverb_wet, dry_level=1 - reverb_wet,
            width=1.0)`` on the stereo signal
=========== ==========================================================================

Everything runs in float32 at the tracks' sample rate, output length = input length,
with processor state reset on every render (a render depends only on its inputs).

Note on levels: pedalboard's ``Reverb`` (JUCE's) scales its dry path by 2, so a fully dry
reverb (``reverb_wet = 0``) is a +6.02 dB gain. That is part of console v1 as specified;
:func:`render_track` uses the identity ``Reverb(wet=0, dry=1)(x) == 2 x`` (bit-exact,
tested) to skip the reverb when it is fully dry.

Speed: a mix is the sum of per-track contributions (:meth:`Console.contributions`), so
callers that change one track can re-render only that track. pedalboard releases the GIL
while it processes, so :meth:`Console.render_many` renders many parameter sets for the
same tracks on a thread pool, without copying audio between processes.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Mapping, Sequence

import numpy as np
import pedalboard as pb

from mixinvert.audio import Tracks
from mixinvert.console.eq import EQ_SECTIONS, section_q
from mixinvert.console.schema import CONSOLE_V1, ParamSchema

#: The gain that makes a neutral console v1 strip pass a track at its level, by the track's
#: channels: it cancels the constant-power pan law at centre (mono: cos(pi/4) on each side)
#: and the fully dry reverb's x2, so that neutral settings at these gains are a plain sum.
UNITY_GAIN_DB = {1: 20.0 * math.log10(math.sqrt(0.5)), 2: 20.0 * math.log10(0.5)}
#: pedalboard's processor for each kind of EQ section (:data:`~mixinvert.console.eq.EQ_SECTIONS`).
_EQ_PROCESSORS = {"low_shelf": pb.LowShelfFilter, "peak": pb.PeakFilter, "high_shelf": pb.HighShelfFilter}
#: Samples per block of :meth:`Console.render` (about 12 s at 44.1 kHz).
RENDER_BLOCK = 1 << 19


def gain_eq_processors(v: Mapping[str, float]) -> list:
    """Console v1's gain and three EQ sections for settings ``{name: value}``, as pedalboard
    processors: everything before the compressor (what its detector sees)."""
    return [pb.Gain(gain_db=v["gain_db"])] + [
        _EQ_PROCESSORS[kind](cutoff_frequency_hz=v[cutoff], gain_db=v[gain], q=section_q(v, q))
        for kind, gain, cutoff, q in EQ_SECTIONS
    ]


def _chain_v1(values: np.ndarray, names: Sequence[str]) -> tuple[pb.Pedalboard, float, pb.Reverb | None]:
    v = dict(zip(names, (float(x) for x in values)))
    board = pb.Pedalboard(
        [
            *gain_eq_processors(v),
            pb.Compressor(
                threshold_db=v["comp_threshold_db"],
                ratio=v["comp_ratio"],
                attack_ms=v["comp_attack_ms"],
                release_ms=v["comp_release_ms"],
            ),
        ]
    )
    wet = v["reverb_wet"]
    reverb = None
    if wet > 0.0:
        reverb = pb.Reverb(
            room_size=v["reverb_room_size"],
            damping=v["reverb_damping"],
            wet_level=wet,
            dry_level=1.0 - wet,
            width=1.0,
        )
    return board, v["pan"], reverb


def render_track(
    x: np.ndarray, sample_rate: int, values: np.ndarray, *, schema: ParamSchema = CONSOLE_V1
) -> np.ndarray:
    """One track's stereo contribution to the mix.

    Parameters
    ----------
    x : np.ndarray [shape=(channels, samples)], channels 1 or 2, float32
    sample_rate : int, Hz
    values : np.ndarray [shape=(16,)], physical units (validated against ``schema``)

    Returns
    -------
    np.ndarray [shape=(2, samples)], float32
    """
    channels, _ = x.shape
    if channels not in (1, 2):
        raise ValueError(f"a track must be mono or stereo, got {channels} channels")
    if schema.version != "v1":
        raise ValueError(f"render_track implements console v1, not {schema.version}")
    values = schema.validate(np.asarray(values, dtype=np.float64).reshape(schema.size))
    return render_validated(x, sample_rate, values, schema.names)


class ChannelStrip:
    """One track's chain for validated ``values``: its pedalboard processors up to the pan
    (``board``), the pan law's gains into the stereo bus (``gains``, ``(2, 1)``) and the
    reverb (None when fully dry); stateful across the blocks of one render."""

    def __init__(self, channels: int, values: np.ndarray, names: Sequence[str]) -> None:
        self.board, pan, self.reverb = _chain_v1(values, names)
        theta = (pan + 1.0) * math.pi / 4.0
        if channels == 1:
            self.gains = np.array([[math.cos(theta)], [math.sin(theta)]], dtype=np.float32)
        else:
            self.gains = np.array([[math.sqrt(2.0) * math.cos(theta)], [math.sqrt(2.0) * math.sin(theta)]],
                                  dtype=np.float32)

    def process(self, x: np.ndarray, sample_rate: int, first: bool) -> np.ndarray:
        """The next block's stereo contribution; ``first`` resets the processors' state."""
        y = self.board(np.ascontiguousarray(x, dtype=np.float32), sample_rate, reset=first)
        stereo = y * self.gains  # (1|2, n) * (2, 1) -> (2, n)
        if self.reverb is None:
            return stereo * np.float32(2.0)  # Reverb(wet=0, dry=1) is exactly x2 (see module doc)
        return self.reverb(stereo, sample_rate, reset=first)


def render_validated(x: np.ndarray, sample_rate: int, values: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """:func:`render_track` for ``values`` already validated (a search's inner loop)."""
    return ChannelStrip(x.shape[0], values, names).process(x, sample_rate, True)


class Console(Tracks):
    """A console loaded with one song's tracks, for rendering many parameter sets.

    The audio is converted once (float32, contiguous) and shared by every render.

    Parameters
    ----------
    tracks : sequence of np.ndarray [shape=(channels, samples)], one length for all
    sample_rate : int, Hz
    schema : ParamSchema, the console version (v1)
    workers : int or None, threads for :meth:`render_many` (default: all cores)
    """

    def __init__(
        self,
        tracks: Sequence[np.ndarray],
        sample_rate: int,
        *,
        schema: ParamSchema = CONSOLE_V1,
        workers: int | None = None,
    ) -> None:
        if not tracks:
            raise ValueError("a console needs at least one track")
        lengths = {t.shape[-1] for t in tracks}
        if len(lengths) != 1:
            raise ValueError(f"tracks must share one length, got {sorted(lengths)}")
        self.tracks = [np.ascontiguousarray(t, dtype=np.float32) for t in tracks]
        for t in self.tracks:
            if t.ndim != 2 or t.shape[0] not in (1, 2):
                raise ValueError(f"a track must be (1 or 2, samples), got shape {t.shape}")
        if schema.version != "v1":
            raise ValueError(f"Console implements console v1, not {schema.version}")
        self.sample_rate = int(sample_rate)
        self.schema = schema
        self.workers = workers or os.cpu_count() or 1

    def validate(self, values: np.ndarray) -> np.ndarray:
        """Physical ``values`` ``(n_tracks, n_params)`` for this console's tracks, validated."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] != self.num_tracks:
            raise ValueError(
                f"expected parameters of shape ({self.num_tracks}, {self.schema.size}), got {values.shape}"
            )
        return self.schema.validate(values)

    def render_track(self, index: int, values: np.ndarray) -> np.ndarray:
        """Track ``index``'s stereo contribution ``(2, samples)`` for physical ``values``."""
        return render_track(self.tracks[index], self.sample_rate, values, schema=self.schema)

    def contributions(self, values: np.ndarray) -> np.ndarray:
        """Every track's contribution, ``(n_tracks, 2, samples)``; physical ``values``."""
        values = self.validate(values)
        return np.stack([self.render_track(i, v) for i, v in enumerate(values)])

    def render(self, values: np.ndarray, *, workers: int | None = None) -> np.ndarray:
        """The stereo mix ``(2, samples)`` for physical ``values`` ``(n_tracks, 16)``.

        The song is rendered in blocks of :data:`RENDER_BLOCK` samples, every track's
        processors keeping their state from one block to the next, so memory holds the
        mix and a block per track however long the song is; the result is bit-identical
        to rendering each track whole (tested). With more than one worker (default: the
        console's ``workers``), the tracks of a block render on a thread pool and are
        added in track order: bit-identical to a single-threaded render.
        """
        values = self.validate(values)
        mix = np.zeros((2, self.num_samples), dtype=np.float32)
        n_workers = max(1, min(workers or self.workers, self.num_tracks))
        strips = [ChannelStrip(t.shape[0], v, self.schema.names) for t, v in zip(self.tracks, values)]
        pool = ThreadPoolExecutor(max_workers=n_workers) if n_workers > 1 else None
        try:
            for a in range(0, self.num_samples, RENDER_BLOCK):
                b = min(self.num_samples, a + RENDER_BLOCK)

                def _one(i: int, a: int = a, b: int = b) -> np.ndarray:
                    return strips[i].process(self.tracks[i][:, a:b], self.sample_rate, a == 0)

                order = range(self.num_tracks)
                parts = pool.map(_one, order) if pool is not None else map(_one, order)
                for contribution in parts:
                    mix[:, a:b] += contribution
        finally:
            if pool is not None:
                pool.shutdown()
        return mix

    def render_normalized(self, p: np.ndarray) -> np.ndarray:
        """The mix for normalized parameters ``p`` in [-1, 1], ``(n_tracks, 16)``."""
        return self.render(self.schema.denormalize(p))

    def render_many(
        self,
        values_batch: np.ndarray,
        *,
        workers: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Mixes for a batch of physical parameter sets, on a thread pool.

        Parameters
        ----------
        values_batch : np.ndarray [shape=(batch, n_tracks, 16)], physical units
        workers : threads (default: the console's ``workers``)
        progress : called with 1 after each finished mix (e.g. a tqdm ``update``)

        Returns
        -------
        np.ndarray [shape=(batch, 2, samples)], float32, in the order of the batch
        """
        values_batch = np.asarray(values_batch, dtype=np.float64)
        if values_batch.ndim != 3:
            raise ValueError(f"expected (batch, n_tracks, {self.schema.size}), got {values_batch.shape}")
        checked = [self.validate(v) for v in values_batch]  # fail before any work starts
        out = np.empty((len(checked), 2, self.num_samples), dtype=np.float32)
        total = workers or self.workers
        n_workers = max(1, min(total, len(checked)))
        inner = max(1, total // n_workers)  # threads left over go to tracks within a mix

        def _one(b: int) -> None:
            out[b] = self.render(checked[b], workers=inner)
            if progress is not None:
                progress(1)

        if n_workers == 1:
            for b in range(len(checked)):
                _one(b)
        else:
            with ThreadPoolExecutor(max_workers=n_workers) as pool:
                list(pool.map(_one, range(len(checked))))
        return out
