"""The conditional DDIM baseline: ε-prediction on [x_t, X_T], sampled with DDIM (η = 0).

Images live in [−1, 1] inside the diffusion. The schedule is ``expodiff.schedulers.ddim``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from expodiff.errors import ConfigError
from expodiff.methods.base import Method, Style
from expodiff.physics.camera import ORIGINAL_DN_SCALE
from expodiff.schedulers.ddim import DDIMScheduler


def ddim_loss(net, batch, scheduler: DDIMScheduler, generator) -> torch.Tensor:
    """ε-prediction loss of the conditional diffusion baseline at a random time step."""
    x0 = 2 * batch.clean - 1
    # drawn on the batch's device (with a generator there: a CPU generator on the CPU, as before)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device)
    t = torch.randint(0, scheduler.num_train_timesteps, (x0.shape[0],), generator=generator, device=x0.device)
    net_in = torch.cat([scheduler.add_noise(x0, noise, t), 2 * batch.x_t - 1], dim=1)
    return F.mse_loss(net(net_in, t), noise)


@torch.no_grad()
def ddim_sample(net: nn.Module, x_t: torch.Tensor, n_steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """From pure noise to a clean image in ``n_steps`` (η = 0), conditioned on X_T, on X_T's
    device (``generator`` must be there too)."""
    scheduler = DDIMScheduler()
    scheduler.set_timesteps(n_steps)
    cond = 2 * x_t - 1
    sample = torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype, device=x_t.device)
    for i, t in enumerate(scheduler.timesteps):
        eps = net(torch.cat([sample, cond], dim=1), t.to(x_t.device).expand(x_t.shape[0]))
        sample = scheduler.step(eps, i, sample).prev_sample
    return ((sample + 1) / 2).clamp(0, 1)


class DDIM(Method):
    name = "ddim"
    style = Style(label="DDIM", linestyle=":")
    steps_key = "ddim_steps"

    def check(self, spec):
        super().check(spec)
        if spec.backbone != "unet":
            raise ConfigError(f"method 'ddim' is built on the UNet family only, not {spec.backbone!r}")

    def in_channels(self, spec):
        return 8  # noisy sample + condition X_T

    def out_channels(self, spec):
        return 4

    def build(self, spec):
        from expodiff.nets.cond_unet import CondUNet, CondUNetConfig

        return CondUNet(CondUNetConfig(in_channels=self.in_channels(spec), out_channels=self.out_channels(spec)))

    def network_module(self, spec):
        return "nets.cond_unet"

    def loss(self, net, spec, batch, *, extra, training, generator, rng):
        return ddim_loss(net, batch, DDIMScheduler(), generator)

    def predict(self, net, spec, x_t, n_steps, K, ratio, gt=None, generator=None, *, dn_scale=ORIGINAL_DN_SCALE):
        return [ddim_sample(net, x_t, n_steps, generator)]  # one prediction after n sampler steps (no photon model)
