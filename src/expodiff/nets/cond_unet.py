"""A time-conditioned UNet for the DDIM-based baseline of the step figure (protocol §5).

The same five-level UNet family as ``unet.py`` (32…512 channels, two 3×3 convs per level,
LeakyReLU 0.2, max-pool, transposed-conv up-sampling, skip concatenation), plus a sinusoidal
embedding of the diffusion time step that is projected and added to every level's features.
Input: the noisy sample x_t and the condition (amplified low-light input), concatenated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class CondUNetConfig:
    in_channels: int = 8  # x_t (4) + condition X_T (4)
    out_channels: int = 4  # predicted noise ε
    widths: tuple[int, ...] = (32, 64, 128, 256, 512)
    time_dim: int = 128  # sinusoidal embedding size


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer time steps (B,) → (B, dim), as in DDPM/Transformer."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class CondUNet(nn.Module):
    def __init__(self, config: CondUNetConfig):
        super().__init__()
        self.config = config
        w, levels = config.widths, len(config.widths)
        self.time_mlp = nn.Sequential(nn.Linear(config.time_dim, 4 * config.time_dim), nn.SiLU(),
                                      nn.Linear(4 * config.time_dim, 4 * config.time_dim))
        self.enc = nn.ModuleList()
        c_in = config.in_channels
        for k in range(levels):
            self.enc.append(nn.ModuleList([nn.Conv2d(c_in, w[k], 3, padding=1), nn.Conv2d(w[k], w[k], 3, padding=1),
                                           nn.Linear(4 * config.time_dim, w[k])]))
            c_in = w[k]
        self.ups, self.dec = nn.ModuleList(), nn.ModuleList()
        for k in reversed(range(levels - 1)):
            self.ups.append(nn.ConvTranspose2d(c_in, w[k], 2, stride=2))
            self.dec.append(nn.ModuleList([nn.Conv2d(2 * w[k], w[k], 3, padding=1), nn.Conv2d(w[k], w[k], 3, padding=1),
                                           nn.Linear(4 * config.time_dim, w[k])]))
            c_in = w[k]
        self.out = nn.Conv2d(c_in, config.out_channels, 1)

    @staticmethod
    def _block(layers: nn.ModuleList, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        conv1, conv2, time_proj = layers
        x = F.leaky_relu(conv1(x), 0.2) + time_proj(emb)[:, :, None, None]  # time enters every level
        return F.leaky_relu(conv2(x), 0.2)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # x: (B, in_channels, H, W) with H, W multiples of 16; t: (B,) integer time steps
        emb = self.time_mlp(timestep_embedding(t, self.config.time_dim))
        skips = []
        for k, layers in enumerate(self.enc):
            x = self._block(layers, x, emb)
            if k < len(self.enc) - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for up, layers in zip(self.ups, self.dec):
            x = self._block(layers, torch.cat([up(x), skips.pop()], dim=1), emb)
        return self.out(x)  # (B, out_channels, H, W): predicted ε
