"""PMN training data: dark-shading maps from real dark frames, shot-noise augmentation, training."""

import numpy as np
import pytest
import torch
from fractions import Fraction

from expodiff.data.pmn import DarkShading, fit_dark_shading, sample_sna_strength, shot_noise_augment
from expodiff.io.raw import write_dng


def _darks(folder, shading, isos, n=3, seed=0):
    """Dark frames whose mean is a known per-pixel shading line in ISO, plus noise."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for iso in isos:
        for j in range(n):
            dn = 512 + shading(iso) + rng.normal(0, 0.5, shading(iso).shape)
            write_dng(folder / f"dark_{iso:05d}_{j}.dng", np.rint(dn).astype(np.uint16), iso=iso,
                      exposure_time=Fraction(1, 100))


def test_dark_shading_recovers_a_linear_pattern(tmp_path):
    rng = np.random.default_rng(1)
    k, b = rng.uniform(0, 0.004, (64, 96)), rng.uniform(2, 6, (64, 96))
    _darks(tmp_path / "dark", lambda iso: k * iso + b, [100, 400, 800, 1600, 3200, 6400], n=6)
    maps = DarkShading(fit_dark_shading(tmp_path / "dark", tmp_path / "ds.npz"))
    assert maps.shape == (4, 32, 48)
    truth = k * 3200 + b
    packed_truth = np.stack([truth[0::2, 0::2], truth[0::2, 1::2], truth[1::2, 1::2], truth[1::2, 0::2]])
    assert np.abs(maps(3200) - packed_truth).mean() < 0.35  # rounding + noise of 6 frames
    assert maps.centre(3200, 8, 8).shape == (4, 8, 8)
    corrected = maps.correct_packed(np.full((4, 32, 48), 0.5, np.float32), 3200)
    assert corrected.mean() == pytest.approx(0.5 - packed_truth.mean() / (16383 - 512), abs=1e-4)


def test_sna_adds_only_shot_noise_of_the_extra_light():
    rng = np.random.default_rng(0)
    s = np.full((4, 1, 1), 15871.0, np.float32)
    clean = np.full((4, 64, 64), 0.4, np.float32)
    short_dn = clean * s / 100  # a noise-free short frame
    a = np.array([0.5, 0.5, 0.5, 0.5])
    x, y = shot_noise_augment(short_dn, clean, 100, 1600, s, a, rng)
    np.testing.assert_allclose(y, 0.6, rtol=1e-6)
    mean_dn = x.mean() * s[0, 0, 0] / 100
    assert mean_dn == pytest.approx(1.5 * short_dn.mean(), rel=0.01)  # brighter by a
    K = 0.0009563 * 1600
    assert (x * s / 100).var() == pytest.approx(K * 0.5 * short_dn.mean(), rel=0.1)


def test_sna_schedule_bounds():
    rng = np.random.default_rng(0)
    for ratio in (100, 250, 300):
        a = np.array([sample_sna_strength(ratio, 0.5, rng) for _ in range(2000)])
        u = ratio / 200 - 1
        assert (a >= 0).all() and (a <= (1 if ratio == 100 else 4 * u) + 1e-9).all()
        none = (a == 0).all(axis=1).mean()
        skipped = 0.25 + 0.75 * (0.75 if ratio == 100 else 0.2)  # no augmentation drawn
        assert skipped - 0.03 < none < skipped + 0.08  # plus draws clipped to a = 0
        assert (a[:, 1] == a[:, 3]).all()  # both greens share a_G


def test_pmn_training_runs_on_pairs_with_dark_shading(tiny_data, tmp_path):
    from expodiff.data.pairs import build_pair_store
    from expodiff.data.sid import sid_train_pairs
    from expodiff.train import train_variant
    from test_train import CAMERA, TRAINING

    store = build_pair_store(sid_train_pairs(tiny_data / "SID"), tmp_path / "pairs")
    ds = fit_dark_shading(tiny_data / "calibration" / "SonyA7S2" / "dark", tmp_path / "ds.npz")
    variant = {"name": "unet-pmn-ours", "backbone": "unet", "data": "pmn", "method": "ours", "concat_origin": True}
    final = train_variant(variant, {**TRAINING, "epochs": 1}, store, CAMERA, tmp_path / "run", patch_size=16,
                          dark_shading=ds)
    assert torch.load(final, weights_only=True)["iterations"] > 0
