import numpy as np
import pytest
import torch

from mixinvert.console.schema import CONSOLE_V1, NEUTRAL_V1
from mixinvert.dsp.loudness import integrated_loudness, loudness_normalize
from mixinvert.metrics.audio import MRSD_RESOLUTIONS, compare_mixes, mae, mrsd, stft_distance
from mixinvert.metrics.params import param_errors
from tests.conftest import SR, noise_track

S = CONSOLE_V1


def test_mae_by_hand():
    y = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    r = np.array([[1.0, 1.0, 1.0], [1.0, -1.0, 0.5]])
    # per sample |yL-rL| + |yR-rR|: (0+1), (1+1), (2+0.5) -> mean 5.5/3
    assert mae(y, r) == pytest.approx(5.5 / 3)


def test_identical_signals_score_zero(rng):
    x = noise_track(rng, 2, 1.0)
    scores = compare_mixes(x, x, SR)
    assert scores.mae == 0.0 and scores.mrsd == 0.0


def test_loudness_normalization_makes_scale_irrelevant(rng):
    x = noise_track(rng, 2, 1.0)
    scores = compare_mixes(0.1 * x, x, SR)
    assert scores.mae == pytest.approx(0.0, abs=1e-7) and scores.mrsd == pytest.approx(0.0, abs=1e-6)
    y, gain_db = loudness_normalize(x, SR)
    assert integrated_loudness(y, SR) == pytest.approx(-23.0, abs=1e-6)
    assert gain_db == pytest.approx(-23.0 - integrated_loudness(x, SR))


def test_spectral_convergence_by_hand(rng):
    # y = 0.5 r: sc = ||R - 0.5R|| / ||R|| = 0.5, lm = |log 0.5| = ln 2 (away from the floor)
    r = noise_track(rng, 2, 1.0)
    d = stft_distance(0.5 * r, r, 1024, 120, 600)
    assert d == pytest.approx(2 * 0.5 + 2 * np.log(2), rel=1e-6)


def test_mrsd_matches_auraloss(rng):
    import auraloss

    y, r = noise_track(rng, 2, 1.0), noise_track(rng, 2, 1.0)
    loss = auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=[f for f, _, _ in MRSD_RESOLUTIONS], hop_sizes=[h for _, h, _ in MRSD_RESOLUTIONS],
        win_lengths=[w for _, _, w in MRSD_RESOLUTIONS], window="hann_window",
        w_sc=1.0, w_log_mag=1.0, w_lin_mag=0.0, w_phs=0.0, eps=1e-14,
    )
    ours = mrsd(y, r)
    theirs = sum(
        float(loss(torch.from_numpy(y[c][None, None].astype(np.float64)), torch.from_numpy(r[c][None, None].astype(np.float64))))
        for c in range(2)
    )
    assert ours == pytest.approx(theirs, rel=1e-5)
    assert ours > 1.0


def test_silent_estimate_is_defined(rng):
    r = noise_track(rng, 2, 1.0)
    scores = compare_mixes(np.zeros_like(r), r, SR)
    assert np.isfinite(scores.mae) and scores.mae > 0 and np.isfinite(scores.mrsd)


def test_shape_errors(rng):
    with pytest.raises(ValueError, match="differ in shape"):
        mae(np.zeros((2, 10)), np.zeros((2, 11)))
    with pytest.raises(ValueError, match="stereo"):
        mae(np.zeros((1, 10)), np.zeros((1, 10)))
    with pytest.raises(ValueError, match="0.4 s"):
        compare_mixes(np.zeros((2, 100)), np.zeros((2, 100)), SR)


def test_param_errors_units():
    truth = S.from_dict(NEUTRAL_V1)[None]
    est = truth.copy()
    est[0, S.index("eq_peak_cutoff_hz")] = 2000.0  # one octave above 1000
    est[0, S.index("gain_db")] += 3.0
    est[0, S.index("pan")] = 0.25
    errs = param_errors(est, truth)
    assert errs["eq_peak_cutoff_hz"] == pytest.approx(1.0)
    assert errs["gain_db"] == pytest.approx(3.0)
    assert errs["pan"] == pytest.approx(0.25)
    assert errs["comp_ratio"] == 0.0
    expected = np.abs(S.normalize(est) - S.normalize(truth)).mean()
    assert errs["normalized_mae"] == pytest.approx(expected) and expected > 0


def test_interval_hits_count_true_values_inside_leaving_out_undetermined():
    from mixinvert.evaluation import interval_hits

    truth = np.stack([CONSOLE_V1.from_dict({**NEUTRAL_V1, "gain_db": -3.0, "pan": 0.5})])
    details = [{"uncertainty": {"gain_db": {"low": -4.0, "high": -2.0}, "pan": {"low": 0.0, "high": 0.2},
                                "reverb_wet": {"low": 0.5, "high": 0.6}},
                "undetermined": {"reverb_wet": "dry"}}]
    assert interval_hits(details, truth) == (1, 2)  # gain inside, pan outside, wet left out
    assert interval_hits([], truth) is None and interval_hits([{}], truth) is None


def test_results_report_interval_coverage_only_for_methods_with_intervals():
    from mixinvert.evaluation import Results, SongResult

    errors = {"normalized_mae": 0.1}
    r = Results("d", "test", ["eami+refine", "sum"])
    r.rows += [SongResult("s1", "eami+refine", 0.01, 0.2, 5.0, errors, None, (3, 4)),
               SongResult("s2", "eami+refine", 0.01, 0.2, 5.0, errors, None, (1, 4)),
               SongResult("s1", "sum", 0.05, 3.0, 0.1, errors, None, None)]
    assert r.mean("eami+refine")["interval_coverage"] == pytest.approx(0.5)
    assert "interval_coverage" not in r.mean("sum")
    md = r.to_markdown()
    assert "true value in interval" in md and "| 50 % |" in md
    sum_row = next(line for line in md.splitlines() if line.startswith("| sum |"))
    assert "| - |" in sum_row


def _stft_distance_whole(estimate, reference, n_fft, hop, win):
    """The definition, on whole STFTs at once (what the blockwise sums must reproduce)."""
    from mixinvert.metrics.audio import stft_magnitude

    Y, R = stft_magnitude(estimate, n_fft, hop, win), stft_magnitude(reference, n_fft, hop, win)
    return sum(np.linalg.norm(R[c] - Y[c]) / np.linalg.norm(R[c])
               + np.mean(np.abs(np.log(np.maximum(R[c], 1e-7)) - np.log(np.maximum(Y[c], 1e-7)))) for c in range(2))


def test_blockwise_metrics_equal_the_whole_signal_definition(monkeypatch):
    """Long mixes are scored block by block (bounded memory); the numbers do not change."""
    import mixinvert.metrics.audio as audio

    rng = np.random.default_rng(3)
    n = 44100 * 2 + 123  # not a multiple of any hop or block
    r = rng.standard_normal((2, n)) * np.linspace(0.1, 1, n)
    y = 0.7 * r + 0.05 * rng.standard_normal((2, n))
    want = [_stft_distance_whole(y, r, *res) for res in MRSD_RESOLUTIONS]
    want_mae = float(np.abs(y - r).sum(axis=0).mean())
    monkeypatch.setattr(audio, "BLOCK_VALUES", 97 * 512)  # 97 frames of 512, 24 of 2048
    monkeypatch.setattr(audio, "BLOCK_SAMPLES", 1000)
    got = [stft_distance(y, r, *res) for res in MRSD_RESOLUTIONS]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert mae(y, r) == pytest.approx(want_mae, rel=1e-12)
    # the blocks really are blocks: several per resolution, frames in order, none lost
    blocks = list(audio._stft_magnitude_blocks(r, 512, 50, 240))
    assert len(blocks) > 10 and sum(b.shape[-1] for b in blocks) == 1 + n // 50
    np.testing.assert_allclose(np.concatenate(blocks, axis=-1), audio.stft_magnitude(r, 512, 50, 240), atol=1e-9)
