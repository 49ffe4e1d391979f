"""A small inverted song for the report tests: tracks, a reference mix, and an ``invert``-style
output folder (params.json with intervals and undetermined flags, mix.wav)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from mixinvert.audio import write_audio
from mixinvert.console.params_io import MixParams, write_params
from mixinvert.console.render import Console
from mixinvert.console.schema import CONSOLE_V1
from mixinvert.metrics.audio import compare_mixes
from tests.conftest import SR, noise_track, write_song

#: A track name that needs escaping in HTML text and attributes.
NASTY = 'a <b> & "c".wav'
SECONDS = 2.0


def make_inverted(root: Path, *, seconds: float = SECONDS, n_tracks: int = 3, seed: int = 7) -> Path:
    """``root/song`` (tracks, mix.wav) and ``root/out`` (params.json, mix.wav) as ``invert`` leaves them.

    The estimate is the truth nudged in normalized units; track 0 carries intervals, track 1
    an "undetermined" flag, as eami+refine writes them.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    names = [NASTY, "bass.wav", "keys.wav", "pad.wav"][:n_tracks]
    tracks = {}
    for k, name in enumerate(names):
        tone = 0.3 * np.sin(2 * np.pi * (110.0 * 2 ** (2 * k)) * t) * (np.sin(2 * np.pi * (1 + k) * t) > 0)
        x = (tone + noise_track(rng, 1, seconds, level=0.03)[0]).astype(np.float32)[None]
        tracks[name] = np.concatenate([x, np.roll(x, 50, axis=1)]) if k == 1 else x  # one stereo track
    truth = CONSOLE_V1.denormalize(rng.uniform(-0.6, 0.6, size=(n_tracks, CONSOLE_V1.size)))
    reference = Console(list(tracks.values()), SR).render(truth)
    song = write_song(root / "song", tracks, reference)
    estimate = CONSOLE_V1.denormalize(np.clip(CONSOLE_V1.normalize(truth) + rng.normal(0, 0.05, truth.shape), -1, 1))
    order = sorted(names)  # list_track_files order
    estimate = estimate[[names.index(n) for n in order]]
    details = [{} for _ in order]
    details[order.index(NASTY)] = {
        "uncertainty": {"gain_db": {"low": float(estimate[order.index(NASTY), 0]) - 1.5,
                                    "high": float(estimate[order.index(NASTY), 0]) + 0.5, "std_normalized": 0.03},
                        "pan": {"low": -0.2, "high": 0.1, "std_normalized": 0.07}},
        "undetermined": {},
    }
    details[order.index("bass.wav")] = {
        "uncertainty": {},
        "undetermined": {"comp_ratio": "the threshold (-3.0 dB) is never reached: the track peaks at -9.0 dB after gain and EQ",
                         "comp_attack_ms": "the threshold (-3.0 dB) is never reached: the track peaks at -9.0 dB after gain and EQ",
                         "reverb_damping": "the reverb is almost dry (1.0 % wet)"},
    }
    out = root / "out"
    mix = Console([tracks[n] for n in order], SR).render(estimate)
    write_audio(out / "mix.wav", mix, SR)
    scores = compare_mixes(mix, reference, SR)  # what invert records
    extra = {"method": "eami+refine", "seed": 0, "seconds": 12.5, "scores": {"mae": scores.mae, "mrsd": scores.mrsd},
             "mix_wav": "console v1", "notes": ["a note about <loading> & such"],
             "method_info": {"twin_steps": 105, "twin_loss": 0.02275569550693035, "chosen": "search"},
             "inputs": {"tracks_dir": str((song / "tracks").resolve()), "mix": str((song / "mix.wav").resolve())}}
    write_params(out / "params.json", MixParams(CONSOLE_V1, tuple(order), estimate, SR, extra, tuple(details)))
    return out


@pytest.fixture(scope="session")
def inverted(tmp_path_factory) -> Path:
    """An inversion output folder (no report yet); tests copy it before changing it."""
    return make_inverted(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """A folder with a report.html built by ``build_report`` (shared: do not modify)."""
    from mixinvert.reporting import build_report

    root = tmp_path_factory.mktemp("built")
    src = make_inverted(root)
    build_report(src)
    assert json.loads((src / "params.json").read_text())["method"] == "eami+refine"
    return src


def small_results() -> "Results":  # noqa: F821 (imported below, as the tests need it)
    """Two songs, two methods, with parameter errors: what ``evaluate`` returns, by hand."""
    from mixinvert.evaluation import Results, SongResult

    errors = {"gain_db": 1.0, "pan": 0.1, "normalized_mae": 0.2}
    return Results("corpus <test> & co", "test", ["sum", "eami"], [
        SongResult("song_0000", "sum", 0.20, 3.0, 0.01, errors),
        SongResult("song_0000", "eami", 0.05, 0.9, 1.50, {k: v / 2 for k, v in errors.items()}, interval_hits=(3, 4)),
        SongResult("song_0001", "sum", 0.30, 4.0, 0.02, errors),
        SongResult("song_0001", "eami", 0.07, 1.1, 1.70, {k: v / 2 for k, v in errors.items()}, interval_hits=(3, 4)),
    ])


class Elements(HTMLParser):
    """Every start tag of a page as ``(tag, {attr: value})``, attribute values unescaped."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


def strips(text: str) -> dict[str, tuple[str, Elements]]:
    """``{track name: (raw html of its strip, its elements)}``."""
    out = {}
    for chunk in text.split('<section class="strip"')[1:]:
        chunk = '<section class="strip"' + chunk.split("</section>")[0]
        elements = Elements(chunk)
        out[elements.tags[0][1]["data-track"]] = (chunk, elements)
    return out


def assert_self_contained(text: str) -> None:
    """No fetch can leave the file: every src/href is a data: URI or a fragment, no scripts
    or style sheets from elsewhere, no CSS url() outside data:."""
    page = Elements(text)
    for tag, attrs in page.tags:
        for key in ("src", "href", "srcset", "poster", "data", "action"):
            if key in attrs:
                assert attrs[key].startswith(("data:", "#")), f"<{tag} {key}={attrs[key][:60]!r}>"
        assert not (tag == "script" and "src" in attrs)
        assert tag not in ("link", "iframe", "object", "embed", "base")
    assert "http://" not in text and "https://" not in text
    assert "@import" not in text
    assert not re.search(r"url\((?!\s*['\"]?data:)", text)
