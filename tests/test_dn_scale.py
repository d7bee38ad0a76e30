"""The noise model's DN scale S comes from the camera (issue 15): noise synthesis, re-exposure,
the training batch and inference all count DN on the camera's ``dn_scale``, and the Sony
default (no ``sensor`` block: 15583) is the original's, bit for bit."""

import json
import random

import numpy as np
import pytest
import torch

from expodiff.cli import main
from expodiff.data.sources import TrainBatch, make_source
from expodiff.inference import enhance
from expodiff.methods import MethodSpec, get_method
from expodiff.physics.camera import ORIGINAL_DN_SCALE, dn_scale, load_camera_params, validate_camera_params
from expodiff.physics.noise import DN_SCALE, NoiseParams, add_noise, sample_noise_params
from expodiff.schedulers.exposure import ExposureScheduler, reexpose
from test_feed import TRAINING, write_store

SONY = load_camera_params("SonyA7S2")
S12 = 4095.0 - 256.0  # a 12-bit camera: white 4095, black 256
CAMERA12 = validate_camera_params({**SONY, "sensor": {
    "make": "Made", "model": "Twelve", "cfa": "RGGB", "black_level": [256.0] * 4, "white_level": 4095,
    "bit_depth": 12, "dn_scale": S12}}, "12-bit camera")  # fmt: skip


def _pg(clean, K, ratio, seed, **kw):
    """P+g with σ_g = 0: X_T = K·Poisson(y·S/(r·K))·r/S (clipping at 0 is a no-op)."""
    params = NoiseParams.of(clean.shape[0], K=K, sigma_g=0.0, ratio=ratio)
    return add_noise("P+g", clean, params, torch.Generator().manual_seed(seed), **kw)


def _poisson_var_se(lam, n):
    """Standard error of the sample variance of n Poisson(λ) counts: sqrt((μ4 − σ⁴)/n) with
    μ4 = λ(1 + 3λ), σ⁴ = λ²."""
    return np.sqrt(lam * (1 + 2 * lam) / n)


def test_scale_defaults_are_the_original():
    assert DN_SCALE == ORIGINAL_DN_SCALE == 15583
    assert dn_scale(SONY) == 15583.0 and dn_scale(CAMERA12) == S12
    assert TrainBatch(*[torch.zeros(1)] * 4).dn_scale == ORIGINAL_DN_SCALE  # spelled out in data.sources


@pytest.mark.parametrize("S", [ORIGINAL_DN_SCALE, S12])
def test_pg_variance_is_k_r_y_over_s(S):
    # X_T = c·N, c = K·r/S, N ~ Poisson(λ), λ = y·S/(r·K): Var X_T = c²λ = K·r·y/S. Clipping at 1
    # needs N ≥ λ/y = 4λ, a ≤ 1e-6 tail at these λ (19.5, 4.8): far inside the bound.
    y, K, r = 0.25, 2.0, 100.0
    clean = torch.full((1, 4, 256, 256), y)
    x = _pg(clean, K, r, seed=0, dn_scale=S).double()
    n, lam, c = x.numel(), y * S / (r * K), K * r / S
    assert abs(x.var().item() - K * r * y / S) < 5 * c**2 * _poisson_var_se(lam, n)
    assert abs(x.mean().item() - y) < 5 * c * np.sqrt(lam / n)  # unbiased on any scale


def test_sony_default_is_bit_identical_and_other_scale_gives_predicted_ratio():
    y, K, r = 0.25, 2.0, 100.0
    clean = torch.full((1, 4, 256, 256), y)
    default = _pg(clean, K, r, seed=1)
    for given in (15583, 15583.0, dn_scale(SONY)):
        assert torch.equal(default, _pg(clean, K, r, seed=1, dn_scale=given))
    eld = lambda **kw: add_noise("eld", clean[..., :64, :64], sample_noise_params(  # noqa: E731
        "eld", SONY, 1, generator=torch.Generator().manual_seed(2)), torch.Generator().manual_seed(3), **kw)
    assert torch.equal(eld(), eld(dn_scale=dn_scale(SONY)))
    # Var ∝ 1/S: Var(S12)/Var(15583) = 15583/S12, within the two estimates' combined error
    other = _pg(clean, K, r, seed=4, dn_scale=S12).double()
    n = clean.numel()
    rel = [_poisson_var_se(lam, n) / lam for lam in (y * ORIGINAL_DN_SCALE / (r * K), y * S12 / (r * K))]
    ratio = other.var().item() / default.double().var().item()
    assert abs(ratio / (ORIGINAL_DN_SCALE / S12) - 1) < 5 * np.hypot(*rel)


@pytest.mark.parametrize("S", [ORIGINAL_DN_SCALE, S12])
def test_reexpose_extra_photons_follow_s(S):
    # X_l' = (X_T·S/(r·K) + N)·r·K/(l'·S), N ~ Poisson(y·S·(l'−1)/(r·K)): N recovered from X_l'
    # is a whole count on scale S, with mean and variance λ.
    y, x_t, r, K, lvl = 0.3, 0.25, 100, 2.0, 34.0
    shape = (1, 4, 200, 200)
    out = reexpose(torch.full(shape, y, dtype=torch.float64), torch.full(shape, x_t, dtype=torch.float64), lvl, r, K,
                   torch.Generator().manual_seed(0), dn_scale=S)  # fmt: skip
    photons = out * lvl * S / (r * K) - x_t * S / (r * K)
    assert (photons - photons.round()).abs().max().item() < 1e-6
    n, lam = photons.numel(), y * S * (lvl - 1) / (r * K)
    assert abs(photons.mean().item() - lam) < 5 * np.sqrt(lam / n)
    assert abs(photons.var().item() - lam) < 5 * _poisson_var_se(lam, n)


def test_scheduler_step_passes_the_scale():
    y, x_t = torch.full((1, 4, 8, 8), 0.3), torch.full((1, 4, 8, 8), 0.25)
    s = ExposureScheduler()
    s.set_timesteps(3, 100)
    step = lambda **kw: s.step(y, 0, x_t, 2.0, torch.Generator().manual_seed(5), **kw).prev_sample  # noqa: E731
    ladder = reexpose(y, x_t, s.level(1), 100, 2.0, torch.Generator().manual_seed(5), dn_scale=S12)
    assert torch.equal(step(dn_scale=S12), ladder)
    assert torch.equal(step(), step(dn_scale=dn_scale(SONY)))
    assert not torch.equal(step(), ladder)


def test_synthetic_source_noises_on_the_cameras_scale(tmp_path):
    store = write_store(tmp_path / "p", np.random.default_rng(0).integers(512, 16383, (3, 4, 16, 16)))
    training = {**TRAINING, "noise_order": "augment-first"}  # the loaded clean patches are noised as they are
    for camera, S in ((SONY, ORIGINAL_DN_SCALE), (CAMERA12, S12)):
        source = make_source("pg", store, camera, training, None)
        loaded = source.load([0, 1, 2], np.random.default_rng(1))
        batch = source.finish(loaded, torch.Generator().manual_seed(2))
        g = torch.Generator().manual_seed(2)  # the source's draws, in its order: parameters, then noise
        params = sample_noise_params("pg", camera, 3, K_range=TRAINING["K_range"], ratio_range=TRAINING["ratio_range"],
                                     generator=g)  # fmt: skip
        assert batch.dn_scale == S
        assert torch.equal(batch.x_t, add_noise("pg", loaded["clean"], params, g, dn_scale=S))


def test_ours_loss_reexposes_on_the_batchs_scale(one_thread):
    torch.manual_seed(0)
    spec = MethodSpec("unet", "ours")
    net, method = spec.build(), get_method("ours")
    clean = torch.rand(1, 4, 16, 16) * 0.8 + 0.1
    x_t = (clean + 0.02 * torch.randn(clean.shape)).clamp(0, 1)
    training = {"diffusion_steps": 3, "oracle_correction": True}
    extra = method.extra_parameters(spec, training)

    def loss(**kw):
        batch = TrainBatch(clean, x_t, torch.tensor([100.0]), torch.tensor([2.0]), **kw)
        return method.loss(net, spec, batch, extra=extra, training=training,
                           generator=torch.Generator().manual_seed(1), rng=random.Random(2)).item()  # fmt: skip

    assert loss() == loss(dn_scale=dn_scale(SONY))
    assert loss() != loss(dn_scale=S12)


@pytest.mark.parametrize("method", ["ours", "baseline"])
def test_enhance_uses_the_scale_where_the_method_reexposes(method, one_thread):
    torch.manual_seed(0)
    spec = MethodSpec("unet", method)
    net = spec.build().eval()  # untrained: the step rule, not the weights, is under test
    x_short = np.random.default_rng(0).uniform(0.0005, 0.008, (4, 24, 24)).astype(np.float32)
    run = lambda **kw: enhance(net, spec, x_short, 100, 2.0, 2, generator=torch.Generator().manual_seed(3), **kw)  # noqa: E731
    default = run()
    for given in (15583, dn_scale(SONY)):
        assert all(np.array_equal(a, b) for a, b in zip(default, run(dn_scale=given)))
    other = run(dn_scale=S12)
    if method == "ours":  # the first evaluation sees X_T only; the second an image re-exposed on S
        assert np.array_equal(default[0], other[0]) and not np.array_equal(default[1], other[1])
    else:  # one feed-forward pass: no photons counted
        assert all(np.array_equal(a, b) for a, b in zip(default, other))


def test_noise_command_uses_the_cameras_scale(tmp_path):
    clean = np.full((4, 32, 32), 0.25, dtype=np.float32)
    np.save(tmp_path / "clean.npy", clean)
    (tmp_path / "twelve.json").write_text(json.dumps(CAMERA12))
    for name, camera, S in (("SonyA7S2", SONY, ORIGINAL_DN_SCALE), (str(tmp_path / "twelve.json"), CAMERA12, S12)):
        out = tmp_path / f"{S}.npy"
        assert main(["noise", "--model", "P+g", "--input", str(tmp_path / "clean.npy"), "--ratio", "100", "--K", "2",
                     "--sigma-g", "0", "--camera", name, "--seed", "7", "--output", str(out)]) == 0  # fmt: skip
        g = torch.Generator().manual_seed(7)  # the command's draws: parameters, then noise
        params = sample_noise_params("P+g", camera, 1, generator=g, K=2.0)
        params = params.with_values(ratio=100.0, sigma_g=0.0)
        expected = add_noise("P+g", torch.from_numpy(clean)[None], params, g, dn_scale=S)[0].numpy()
        assert np.array_equal(np.load(out), expected)
