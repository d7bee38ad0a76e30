"""The SID "UNetSeeInDark" (Chen et al., CVPR 2018), as used by ELD and ExposureDiffusion.

Attribute names (conv1_1 … conv10_1, upv6 … upv9) are the original state-dict keys, so the
released checkpoints load with ``strict=True``. The network is a plain image-to-image map:
the exposure-diffusion input assembly and output head live in ``expodiff.model``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from expodiff.nets import register_backbone


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 4  # 4 (baseline), 8 (ours: X_l + photon map), 12 (ours + X_T)
    out_channels: int = 4  # 4 (baseline) or 9 (ours: mask logit + X̂ + residual)
    widths: tuple[int, ...] = (32, 64, 128, 256, 512)  # channels of the 5 levels


class UNet(nn.Module):
    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        w = config.widths
        levels = len(w)
        # encoder: conv{k}_1, conv{k}_2 for k = 1..5
        c_in = config.in_channels
        for k in range(1, levels + 1):
            self.add_module(f"conv{k}_1", nn.Conv2d(c_in, w[k - 1], 3, padding=1))
            self.add_module(f"conv{k}_2", nn.Conv2d(w[k - 1], w[k - 1], 3, padding=1))
            c_in = w[k - 1]
        # decoder: upv{k} (2×2 transposed conv) then conv{k}_1, conv{k}_2 for k = 6..9
        for k in range(levels + 1, 2 * levels):
            c_skip = w[2 * levels - k - 1]
            self.add_module(f"upv{k}", nn.ConvTranspose2d(c_in, c_skip, 2, stride=2))
            self.add_module(f"conv{k}_1", nn.Conv2d(2 * c_skip, c_skip, 3, padding=1))
            self.add_module(f"conv{k}_2", nn.Conv2d(c_skip, c_skip, 3, padding=1))
            c_in = c_skip
        self.conv10_1 = nn.Conv2d(c_in, config.out_channels, 1)

    def _double_conv(self, k: int, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(getattr(self, f"conv{k}_1")(x), 0.2)
        return F.leaky_relu(getattr(self, f"conv{k}_2")(x), 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, in_channels, H, W), H and W multiples of 16
        levels = len(self.config.widths)
        skips = []
        for k in range(1, levels + 1):
            x = self._double_conv(k, x)  # (B, w[k-1], H/2^(k-1), W/2^(k-1))
            if k < levels:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for k in range(levels + 1, 2 * levels):
            x = getattr(self, f"upv{k}")(x)
            x = torch.cat([x, skips.pop()], dim=1)
            x = self._double_conv(k, x)
        return self.conv10_1(x)  # (B, out_channels, H, W), raw (unclipped) output


@register_backbone("unet")
def build_unet(in_channels: int, out_channels: int) -> UNet:
    return UNet(UNetConfig(in_channels=in_channels, out_channels=out_channels))
