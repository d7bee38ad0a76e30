"""The DDIM sampler of the conditional diffusion baseline, with a dummy model and exact numbers."""

import pytest
import torch

from expodiff.schedulers.ddim import DDIMScheduler
from expodiff.nets.cond_unet import CondUNet, CondUNetConfig  # noqa: F401


def test_timesteps_trailing_spacing():
    s = DDIMScheduler()
    s.set_timesteps(1)
    assert s.timesteps.tolist() == [999]
    s.set_timesteps(4)
    assert s.timesteps.tolist() == [999, 749, 499, 249]
    with pytest.raises(ValueError):
        s.set_timesteps(0)


def test_step_requires_set_timesteps():
    with pytest.raises(RuntimeError, match="set_timesteps"):
        DDIMScheduler().step(torch.zeros(1), 0, torch.zeros(1))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_oracle_noise_model_recovers_x0_exactly(dtype):
    # a model that returns the true noise makes DDIM (η = 0) land on x_0 at every step count:
    # exactly in exact arithmetic, so the tolerance is the rounding bound, not a measured gap.
    # x̂_0 = (x_t − √(1−ᾱ)·ε)/√ᾱ divides a rounding error of about eps·|x_t| by √ᾱ (6.4e-3 at
    # t = 999), a few times over: 8·eps·max|x_t|/√ᾱ_min bounds it (float32: ~4e-4; float64: ~1e-12)
    s = DDIMScheduler()
    g = torch.Generator().manual_seed(0)
    x0 = (torch.rand(1, 4, 8, 8, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64).to(dtype)
    for n in (1, 2, 3, 5, 8, 10):
        s.set_timesteps(n)
        sample = s.add_noise(x0, noise, s.timesteps[:1]).to(dtype)
        bound = 8 * torch.finfo(dtype).eps * float(sample.abs().max()) / float(s.alphas_cumprod[s.timesteps[0]]) ** 0.5
        for i in range(n):
            a = s.alphas_cumprod[int(s.timesteps[i])].to(dtype)
            eps = (sample - a.sqrt() * x0) / (1 - a).sqrt()
            sample = s.step(eps, i, sample).prev_sample
        assert sample.dtype == dtype
        torch.testing.assert_close(sample, x0, atol=bound, rtol=0)


def test_zero_model_scales_sample_by_alpha_ratio():
    s = DDIMScheduler()
    s.set_timesteps(2)
    out = s.step(torch.zeros(1), 0, torch.ones(1))
    a_t, a_prev = s.alphas_cumprod[999].item(), s.alphas_cumprod[499].item()
    assert out.pred_original_sample.item() == pytest.approx(1 / a_t**0.5, rel=1e-6)
    assert out.prev_sample.item() == pytest.approx((a_prev / a_t) ** 0.5, rel=1e-6)


def test_cond_unet_shapes_and_time_dependence():
    net = CondUNet(CondUNetConfig())
    x = torch.rand(2, 8, 32, 32)
    a, b = net(x, torch.tensor([0, 0])), net(x, torch.tensor([500, 500]))
    assert a.shape == (2, 4, 32, 32)
    assert not torch.allclose(a, b)


def test_ddim_variant_trains_and_samples(tmp_path, tiny_data):
    """A DDIM variant trains a few real steps and is sampled at several step counts."""
    from expodiff.checkpoint import load_network
    from expodiff.data.patches import build_patch_store
    from expodiff.data.sid import sid_train_gt_files
    from expodiff.inference import enhance
    from expodiff.methods import MethodSpec
    from expodiff.train import train_variant
    from test_train import CAMERA, TRAINING

    store = build_patch_store(sid_train_gt_files(tiny_data / "SID"), tmp_path / "p", patch_size=16, crop_hw=(32, 32))
    variant = {"name": "unet-pg-ddim", "backbone": "unet", "data": "pg", "method": "ddim", "concat_origin": False}
    final = train_variant(variant, {**TRAINING, "epochs": 1}, store, CAMERA, tmp_path / "run")
    spec = MethodSpec.from_variant(variant)
    net = load_network(final, spec)
    short = torch.rand(4, 20, 28).numpy() * 0.005
    outs = {n: enhance(net, spec, short, 100, 1.0, n, generator=torch.Generator().manual_seed(0)) for n in (1, 3)}
    assert all(len(o) == 1 and o[0].shape == (4, 20, 28) for o in outs.values())
    assert not (outs[1][0] == outs[3][0]).all()
    with pytest.raises(Exception, match="ddim"):
        MethodSpec("naf2", "ddim")
