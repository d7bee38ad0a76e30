"""Feed-forward baseline: X_T (4 ch) → 4 ch, one pass, clipped to [0, 1] (protocol §4).

Its training loss is L1 on the clipped output (ExposureDiffusion's and PMN's code) or, with
the training setting ``loss_on: raw``, on the network's raw output (the ELD code: L1 on the
UNet's last convolution, ``models/ELD_model.py`` ``backward_G``); see ``recipes.*.loss_on``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from expodiff.errors import ConfigError
from expodiff.methods.base import Method, MethodSpec, Style
from expodiff.physics.camera import ORIGINAL_DN_SCALE
from expodiff.recipes import OMITTED_AT_DEFAULT

# what the training loss compares with the ground truth: the output clipped to [0, 1] (the
# prediction, as evaluated) or the network's raw output (what the ELD code's L1 reads)
LOSS_ON = ("clipped", "raw")


def baseline_raw_output(net: nn.Module, spec: MethodSpec, x_t: torch.Tensor) -> torch.Tensor:
    """One pass on X_T, not clipped. The UNet's output is the image; NAFNet adds X_T back first
    (global residual, ``nets.baseline_adds_input``), as the original's NAFNet does."""
    from expodiff.nets import baseline_adds_input

    out = net(x_t)  # (B, 4, H, W)
    if baseline_adds_input(spec.backbone):
        out = out + x_t
    return out


def baseline_forward(net: nn.Module, spec: MethodSpec, x_t: torch.Tensor) -> torch.Tensor:
    """Feed-forward prediction: one pass on X_T, clipped to [0, 1]."""
    return baseline_raw_output(net, spec, x_t).clamp(0, 1)


def loss_on(training: dict) -> str:
    """The training setting ``loss_on`` (absent: "clipped", the behaviour before it existed)."""
    value = training.get("loss_on", OMITTED_AT_DEFAULT["loss_on"])
    if value not in LOSS_ON:
        raise ConfigError(f"loss_on (recipes.*.loss_on): {value!r} is not one of {', '.join(LOSS_ON)}")
    return value


class Baseline(Method):
    name = "baseline"
    style = Style(label="baseline", linestyle="--")
    table_role = "baseline"

    def in_channels(self, spec):
        return 4

    def out_channels(self, spec):
        return 4

    def loss(self, net, spec, batch, *, extra, training, generator, rng):
        out = baseline_raw_output(net, spec, batch.x_t)
        if loss_on(training) == "clipped":
            out = out.clamp(0, 1)
        return F.l1_loss(out, batch.clean)

    def predict(self, net, spec, x_t, n_steps, K, ratio, gt=None, generator=None, *, dn_scale=ORIGINAL_DN_SCALE):
        return [baseline_forward(net, spec, x_t)]  # always one prediction; gt only corrects the output
