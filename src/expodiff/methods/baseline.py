"""Feed-forward baseline: X_T (4 ch) → 4 ch, one pass, clipped to [0, 1] (protocol §4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from expodiff.methods.base import Method, MethodSpec, Style


def baseline_forward(net: nn.Module, spec: MethodSpec, x_t: torch.Tensor) -> torch.Tensor:
    """Feed-forward: one pass on X_T, clipped to [0, 1]. The UNet's output is the image; NAFNet
    adds X_T back first (global residual, ``nets.baseline_adds_input``), as the original's NAFNet does."""
    from expodiff.nets import baseline_adds_input

    out = net(x_t)  # (B, 4, H, W)
    if baseline_adds_input(spec.backbone):
        out = out + x_t
    return out.clamp(0, 1)


class Baseline(Method):
    name = "baseline"
    style = Style(label="baseline", linestyle="--")
    table_role = "baseline"

    def in_channels(self, spec):
        return 4

    def out_channels(self, spec):
        return 4

    def loss(self, net, spec, batch, *, extra, training, generator, rng):
        return F.l1_loss(baseline_forward(net, spec, batch.x_t), batch.clean)

    def predict(self, net, spec, x_t, n_steps, K, ratio, gt=None, generator=None):
        return [baseline_forward(net, spec, x_t)]  # always one prediction; gt only corrects the output
