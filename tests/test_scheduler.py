"""The exposure step rule, with a dummy model and exact numbers (protocol §5)."""

import random

import numpy as np
import pytest
import torch

from expodiff.physics.noise import DN_SCALE
from expodiff.schedulers.exposure import ExposureScheduler, reexpose


def test_ladder_is_linspace_and_paper_default():
    s = ExposureScheduler()
    s.set_timesteps(3, 100)
    assert s.levels.tolist() == [1.0, 34.0, 67.0, 100.0]
    assert s.num_steps == 3


def test_step_requires_set_timesteps_and_valid_ratio():
    s = ExposureScheduler()
    with pytest.raises(RuntimeError, match="set_timesteps"):
        s.step(torch.zeros(1, 4, 2, 2), 0, torch.zeros(1, 4, 2, 2), 1.0)
    with pytest.raises(ValueError, match="ratio"):
        s.set_timesteps(3, 1)


def test_reexposure_keeps_capture_and_adds_extra_photons():
    # With y equal to the truth, X_{l'} is an unbiased image at level l' whose photons are the
    # capture's plus Poisson((l'-1)·y·S/(r·K)).
    r, K, lvl = 100, 2.0, 34.0
    y = torch.full((1, 4, 200, 200), 0.3)
    x_t = torch.full((1, 4, 200, 200), 0.25)  # a capture darker than y·1 by chance
    x_next = reexpose(y, x_t, lvl, r, K, torch.Generator().manual_seed(0)).double()
    captured = 0.25 * DN_SCALE / (r * K)
    extra_mean = 0.3 * DN_SCALE * (lvl - 1) / (r * K)
    expected_mean = (captured + extra_mean) * r * K / (lvl * DN_SCALE)
    assert x_next.mean().item() == pytest.approx(expected_mean, rel=2e-3)
    extra_var = extra_mean * (r * K / (lvl * DN_SCALE)) ** 2
    assert x_next.var().item() == pytest.approx(extra_var, rel=0.03)


def test_step_with_dummy_model_exact_values():
    s = ExposureScheduler()
    s.set_timesteps(2, 3)  # levels 1, 2, 3
    x_t = torch.full((1, 1, 1, 1), 0.5)
    y = torch.zeros(1, 1, 1, 1)  # no extra photons: X_2 = X_T · 1/2 exactly
    out = s.step(y, 0, x_t, K=1.0)
    assert out.prev_sample.item() == pytest.approx(0.25, abs=1e-7)
    assert out.pred_original_sample is y


def test_training_ladder_like_original():
    rng = random.Random(5)
    for _ in range(200):
        r = rng.randint(20, 300)
        levels = ExposureScheduler.sample_training_levels(r, 3, rng)
        assert levels[0] == 1 and levels[-1] == r
        assert levels == sorted(set(levels))
        assert len(levels) in (3, 4)  # 3 steps, or 2 when the draw hits level 1
    hits = sum(len(ExposureScheduler.sample_training_levels(3, 3, random.Random(i))) for i in range(50))
    assert hits == 50 * 3  # r=3: range(1,3) = {1,2} → always {1,2,3}
    assert np.all(np.diff(ExposureScheduler.sample_training_levels(300, 3, random.Random(1))) > 0)
