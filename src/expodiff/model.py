"""The two methods around a backbone (protocol §4): feed-forward baseline and ExposureDiffusion.

The backbone is a plain image-to-image network (its state dict is the released ``netG``);
the methods assemble its input and interpret its output:

- baseline: X_T (4 ch) → 4 ch, clipped (UNet); NAFNet adds X_T back before clipping.
- ours: [X_l, X_l·l/(r·K), (X_T)] → [c0, X̂, R]; M = sigmoid(c0);
  out = clip(X̂)·M + clip(R + X_l)·(1 − M)   (adaptive residual).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from expodiff.errors import ConfigError
from expodiff.nets import BASELINE_ADDS_INPUT, build_net
from expodiff.nets.cond_unet import CondUNet, CondUNetConfig
from expodiff.schedulers.exposure import photon_map

METHODS = ("baseline", "ours", "ddim")


@dataclass(frozen=True)
class MethodSpec:
    """What a variant's network is: enough to rebuild it from a checkpoint."""

    backbone: str
    method: str  # "baseline", "ours" or "ddim" (the conditional diffusion baseline)
    concat_origin: bool = False  # ours only: X_T concatenated to the input (12 channels)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}; known methods: {', '.join(METHODS)}")
        if self.method != "ours" and self.concat_origin:
            raise ConfigError("concat_origin applies to method 'ours' only")
        if self.method == "ddim" and self.backbone != "unet":
            raise ConfigError(f"method 'ddim' is built on the UNet family only, not {self.backbone!r}")

    @property
    def in_channels(self) -> int:
        if self.method == "ours":
            return 12 if self.concat_origin else 8
        return 8 if self.method == "ddim" else 4  # ddim: noisy sample + condition X_T

    @property
    def out_channels(self) -> int:
        return 9 if self.method == "ours" else 4

    def build(self) -> nn.Module:
        if self.method == "ddim":
            return CondUNet(CondUNetConfig(in_channels=self.in_channels, out_channels=self.out_channels))
        return build_net(self.backbone, self.in_channels, self.out_channels)

    @classmethod
    def from_variant(cls, variant: dict) -> "MethodSpec":
        return cls(variant["backbone"], variant["method"], bool(variant.get("concat_origin", False)))


@dataclass(frozen=True)
class AdaptiveOutput:
    final: torch.Tensor  # clip(X̂)·M + clip(R + X_l)·(1 − M)
    x0: torch.Tensor  # X̂, the direct prediction (unclipped)
    by_residual: torch.Tensor  # clip(R + X_l)
    mask: torch.Tensor  # M = sigmoid(c0), (B,1,H,W)


def ours_forward(net: nn.Module, spec: MethodSpec, x_l, x_t, level, ratio, K) -> AdaptiveOutput:
    """One ExposureDiffusion network evaluation at exposure level ``level``."""
    parts = [x_l, photon_map(x_l, level, ratio, K)]
    if spec.concat_origin:
        parts.append(x_t)
    raw = net(torch.cat(parts, dim=1))  # (B, 9, H, W)
    mask = torch.sigmoid(raw[:, :1])
    x0, resid = raw[:, 1:5], raw[:, 5:9]
    by_residual = (resid + x_l).clamp(0, 1)
    final = x0.clamp(0, 1) * mask + by_residual * (1 - mask)
    return AdaptiveOutput(final=final, x0=x0, by_residual=by_residual, mask=mask)


def baseline_forward(net: nn.Module, spec: MethodSpec, x_t: torch.Tensor) -> torch.Tensor:
    """Feed-forward: one pass on X_T, clipped to [0, 1]. The UNet's output is the image; NAFNet
    adds X_T back first (global residual, ``BASELINE_ADDS_INPUT``), as the original's NAFNet does."""
    out = net(x_t)  # (B, 4, H, W)
    if spec.backbone in BASELINE_ADDS_INPUT:
        out = out + x_t
    return out.clamp(0, 1)
