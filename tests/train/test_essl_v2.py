"""A network for console v2: its shared head, the sampling step and a training run on v2,
and the methods that use such a model (eami, eami+refine)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mixinvert.console.mixing import render_mix
from mixinvert.console.params_io import MixParams, write_params
from mixinvert.console.render_v2 import ConsoleV2
from mixinvert.console.schema import CONSOLE_V1, CONSOLE_V2
from mixinvert.data.dataset import SPLITS_FILE, split_names
from mixinvert.data.song import load_song
from mixinvert.dsp.features import log_mel
from mixinvert.errors import InputError
from mixinvert.methods.run import run_method
from mixinvert.models.checkpoint import DEFAULT_MODEL_PATH, load_model
from mixinvert.models.inverter import Inverter, for_schema, get_model_config
from mixinvert.train.config import TrainConfig, TrainError, start_settings
from mixinvert.train.essl import train
from mixinvert.train.sampling import sampling_step
from mixinvert.train.songs import load_split
from tests.conftest import SR, noise_track, write_song

SHARED = CONSOLE_V2.shared
TINY_V2 = dict(iterations=2, samples_per_song=2, epochs=1, excerpt_seconds=0.5, valid_songs=2, console="v2",
               prior_samples=1)


@pytest.fixture(scope="module")
def corpus_v2(tmp_path_factory):
    """Six short songs mixed through console v2 with known settings, tracks and shared."""
    root = tmp_path_factory.mktemp("corpus_v2")
    rng = np.random.default_rng(5)
    names = []
    for i in range(6):
        tracks = {f"t{k}.wav": noise_track(rng, int(rng.integers(1, 3)), 1.0) for k in range(int(rng.integers(1, 4)))}
        values = CONSOLE_V2.denormalize(rng.uniform(-0.5, 0.5, size=(len(tracks), CONSOLE_V2.size)))
        values[:, CONSOLE_V2.index("offset_ms")] = 0.0
        shared = SHARED.from_dict(SHARED.neutral())
        shared[SHARED.index("reverb_return_db")] = float(rng.uniform(-20, -6))
        mix = ConsoleV2(list(tracks.values()), SR).render(values, shared)
        song_dir = write_song(root / f"song_{i:04d}", tracks, mix)
        write_params(song_dir / "params.json", MixParams(CONSOLE_V2, tuple(tracks), values, SR, shared=shared))
        names.append(song_dir.name)
    (root / SPLITS_FILE).write_text(json.dumps(split_names(names, 0)))
    return root


def test_the_shared_head_answers_once_per_song_whatever_the_track_order():
    torch.manual_seed(0)
    net = Inverter(for_schema(get_model_config("small"), CONSOLE_V2)).eval()
    assert net.config.n_params == CONSOLE_V2.size and net.config.n_shared == SHARED.size
    net.start_at(*start_settings(CONSOLE_V2))
    tf, mf = torch.randn(3, 2, 40, 80) - 5, torch.randn(2, 2, 40, 80) - 5
    si = torch.tensor([0, 1, 1])
    transfer = torch.randn(3, net.config.transfer_channels, 80)
    with torch.no_grad():
        p, ps = net(tf, mf, si, transfer=transfer, with_shared=True)
        p2, ps2 = net(tf[[0, 2, 1]], mf, si, transfer=transfer[[0, 2, 1]], with_shared=True)
        assert torch.equal(net(tf, mf, si, transfer=transfer), p)
    assert p.shape == (3, CONSOLE_V2.size) and ps.shape == (2, SHARED.size)
    torch.testing.assert_close(ps2, ps)  # the mean over a song's tracks does not depend on their order
    torch.testing.assert_close(p2, p[[0, 2, 1]])
    with pytest.raises(ValueError, match="no shared settings"):
        Inverter(get_model_config("small"))(tf, mf, si, transfer=transfer, with_shared=True)
    with pytest.raises(ValueError, match="shared settings: give"):
        net.start_at(start_settings(CONSOLE_V2)[0])


def test_sampling_on_v2_pairs_each_render_with_its_shared_settings(corpus_v2):
    songs = load_split([corpus_v2], "train", schema=CONSOLE_V2)
    assert all(s.truth is not None and s.truth.shape[1] == CONSOLE_V2.size for s in songs)
    # excerpts as long as the songs: every pair renders a whole song
    config = TrainConfig(sampling="random", samples_per_song=2, prior_samples=1, excerpt_seconds=1.0, console="v2")
    torch.manual_seed(0)
    net = Inverter(for_schema(get_model_config("small"), CONSOLE_V2))
    data = sampling_step(net, songs, config, 0, workers=1)
    assert len(data) == 3 * len(songs) and len(data.pair_shared) == len(data)
    assert all(ps.shape == (SHARED.size,) for ps in data.pair_shared)
    assert all(p.shape[1] == CONSOLE_V2.size for p in data.pair_p)
    # a pair's features are those of its settings rendered through console v2; the prior
    # pairs (every third) carry the engineer's bus, not a uniform draw
    # (to the float32 rounding of the stored settings; without its shared settings the
    # render is far off)
    for k in (0, 2):
        song = songs[data.pair_song[k]]
        values = CONSOLE_V2.denormalize(data.pair_p[k].double().numpy())
        console = ConsoleV2(song.tracks, SR)
        mix = console.render(values, SHARED.denormalize(data.pair_shared[k].double().numpy()))
        np.testing.assert_allclose(data.pair_mix[k].numpy(), log_mel(mix, SR).numpy(), atol=2e-2)
        if k == 0:  # a uniform draw of the master chain: far from the neutral one
            other = log_mel(console.render(values, SHARED.from_dict(SHARED.neutral())), SR).numpy()
            assert np.abs(data.pair_mix[k].numpy() - other).max() > 0.2
    neutral_master = SHARED.normalize(SHARED.from_dict(SHARED.neutral()))[SHARED.index("master_gain_db")]
    assert data.pair_shared[2][SHARED.index("master_gain_db")].item() == pytest.approx(neutral_master, abs=1e-6)


def test_train_on_v2_writes_a_v2_model_that_eami_and_eami_refine_use(corpus_v2, tmp_path):
    run = tmp_path / "run"
    result = train(corpus_v2, run, TrainConfig(**TINY_V2), workers=2, progress=False, log=lambda s: None)
    assert [h["iteration"] for h in result.history] == [1, 2]
    assert all(np.isfinite(h["valid_mrsd"]) and np.isfinite(h["valid_param_mae"]) for h in result.history)
    model, schema, _ = load_model(run / "model.pt")
    assert schema is CONSOLE_V2 and model.config.n_shared == SHARED.size
    assert json.loads((run / "run.json").read_text())["schema"] == "v2"
    song = load_song(corpus_v2 / "song_0000", require_mix=True)
    est = run_method(song, "eami", rng=np.random.default_rng(0), options={"model": run / "model.pt"}).estimate
    assert est.params.schema is CONSOLE_V2 and est.params.shared is not None
    np.testing.assert_allclose(est.mix, render_mix(song.tracks, SR, est.params), atol=1e-6)
    # eami+refine takes the model's console by default, and its answer as a start
    r = run_method(song, "eami+refine", rng=np.random.default_rng(0),
                   options={"model": run / "model.pt", "budget": 6.0, "steps": 2})
    assert r.estimate.params.schema is CONSOLE_V2 and "start_loss_eami" in r.estimate.info
    # a v1 model does not continue a v2 run, nor the other way round
    with pytest.raises(TrainError, match="a model for console v1, this run trains console v2"):
        train(corpus_v2, tmp_path / "other", TrainConfig(**TINY_V2), init=DEFAULT_MODEL_PATH, progress=False,
              log=lambda s: None)
    with pytest.raises(InputError, match="network for console v2, not v1"):
        run_method(song, "eami+refine", rng=np.random.default_rng(0),
                   options={"model": run / "model.pt", "console": "v1"})
    assert load_model(DEFAULT_MODEL_PATH)[1] is CONSOLE_V1


def test_train_refuses_a_yardstick_song_wherever_its_name_shows(corpus_v2, tmp_path):
    import shutil

    corpus = tmp_path / "corpus"
    shutil.copytree(corpus_v2, corpus)
    first = sorted(json.loads((corpus / SPLITS_FILE).read_text())["train"])[0]
    track = next((corpus / first / "tracks").iterdir())
    track.rename(track.with_name("MusicDelta_Zeppelin_RAW_01_01.wav"))
    with pytest.raises(TrainError, match="yardstick song MusicDelta_Zeppelin .*never trained on"):
        train(corpus, tmp_path / "run", TrainConfig(**TINY_V2), progress=False, log=lambda s: None)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_adapt_trains_on_songs_without_settings_and_records_them(corpus_v2, tmp_path):
    import shutil

    from mixinvert.cli import main

    base = tmp_path / "base"
    train(corpus_v2, base, TrainConfig(**TINY_V2), workers=2, progress=False, log=lambda s: None, keep_models=True)
    # averaging v2 networks gives a v2 model file
    kept = sorted((base / "models").glob("iteration_*.pt"))
    assert main(["average-models", *map(str, kept), "--out", str(tmp_path / "avg.pt"), "-q"]) == 0
    assert load_model(tmp_path / "avg.pt")[1] is CONSOLE_V2
    songs = tmp_path / "mine"
    for i, name in enumerate(("song_0000", "musicdelta_reggae")):
        shutil.copytree(corpus_v2 / f"song_{i:04d}", songs / name)
        (songs / name / "params.json").unlink()  # no settings: only tracks and mix
    with pytest.raises(TrainError, match="starts from a trained model"):
        train(songs, tmp_path / "x", TrainConfig(**{**TINY_V2, "adapt": True}), progress=False, log=lambda s: None)
    out = tmp_path / "adapted"
    assert main(["adapt", str(songs), "--model", str(base / "model.pt"), "--out", str(out), "--iterations", "2",
                 "--samples", "2", "--excerpt-seconds", "0.5", "--workers", "2", "--device", "cpu", "-q"]) == 0
    _, schema, meta = load_model(out / "model.pt")
    assert schema is CONSOLE_V2
    assert meta["adapted_on"] == ["mine/musicdelta_reggae", "mine/song_0000"]
    history = list(torch.load(out / "checkpoint.pt", weights_only=False)["history"])
    assert len(history) == 2 and all(np.isfinite(h["valid_mrsd"]) for h in history)
    assert all(np.isnan(h["valid_param_mae"]) for h in history)  # nothing to compare settings with
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["adapt"] and run["init"]["sha256"]


def test_init_encoder_carries_the_v1_encoder_into_a_v2_network(tmp_path):
    from mixinvert.train.surgery import encoder_from

    config = TrainConfig(**TINY_V2)
    net, info = encoder_from(DEFAULT_MODEL_PATH, config)
    v1 = load_model(DEFAULT_MODEL_PATH)[0]
    assert net.config.n_params == CONSOLE_V2.size and net.config.n_shared == SHARED.size and info["encoder_only"]
    ours, theirs = net.state_dict(), v1.state_dict()
    body = [k for k in theirs if not k.startswith(("fc.", "fc_shared."))]
    assert body and all(torch.equal(ours[k], theirs[k]) for k in body)
    p, ps = start_settings(CONSOLE_V2)
    torch.testing.assert_close(net.fc.bias, torch.atanh(torch.as_tensor(p, dtype=torch.float32).clamp(-0.8, 0.8)))
    torch.testing.assert_close(net.fc_shared.bias,
                               torch.atanh(torch.as_tensor(ps, dtype=torch.float32).clamp(-0.8, 0.8)))
    with pytest.raises(TrainError, match="not both"):
        train(tmp_path, tmp_path / "run", config, init=DEFAULT_MODEL_PATH, init_encoder=DEFAULT_MODEL_PATH,
              progress=False, log=lambda s: None)
