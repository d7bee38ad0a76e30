"""ExposureDiffusion (protocol §4, §5): the backbone as a step of the exposure ladder.

Input [X_l, X_l·l/(r·K), (X_T)] → output [c0, X̂, R]; M = sigmoid(c0);
out = clip(X̂)·M + clip(R + X_l)·(1 − M)   (adaptive residual).
The ladder itself is ``expodiff.schedulers.exposure`` (no network inside).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from expodiff.methods.base import Method, MethodSpec, Style
from expodiff.physics.camera import ORIGINAL_DN_SCALE
from expodiff.physics.correction import oracle_illumination_correct
from expodiff.schedulers.exposure import ExposureScheduler, photon_map, reexpose


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


def ours_loss(net, spec, batch, step_weights, n_steps, oracle, rng, generator):
    """Σ_t w_t·term_t over one sampled exposure ladder (protocol §5, training)."""
    total = 0.0
    clean, x_t = batch.clean, batch.x_t
    for b in range(clean.shape[0]):  # ladders differ per sample: one sample at a time
        y, x_tb = clean[b : b + 1], x_t[b : b + 1]
        ratio, K = int(batch.ratio[b]), float(batch.K[b])
        levels = ExposureScheduler.sample_training_levels(ratio, n_steps, rng)
        x_l = x_tb
        for idx in range(len(levels) - 1):
            out = ours_forward(net, spec, x_l, x_tb, levels[idx], ratio, K)
            pred = oracle_illumination_correct(out.final, y if oracle else None)
            aux = ((out.x0 - y).abs() * out.mask + (out.by_residual - y).abs() * (1 - out.mask)).mean()
            term = F.l1_loss(pred, y) + aux
            # the original's learnable step weights: clip(w_t, 0, 1), the last step gets 1 − Σw
            w = step_weights[idx].clamp(0, 1) if idx < len(step_weights) else 1 - step_weights.sum()
            total = total + w * term
            # re-exposed on the scale the batch's noise was made on (the camera's)
            x_l = reexpose(pred, x_tb, levels[idx + 1], ratio, K, generator, straight_through=True,
                           dn_scale=batch.dn_scale)
    return total / clean.shape[0]


class Ours(Method):
    name = "ours"
    style = Style(label="w/ Ours", linestyle="-")
    steps_key = "steps"
    table_role = "ours"

    def check(self, spec):
        pass  # concat_origin allowed

    def in_channels(self, spec):
        return 12 if spec.concat_origin else 8

    def out_channels(self, spec):
        return 9

    def extra_parameters(self, spec, training):
        # the original's learnable step weights (n−1 of them, init 1/n), trained by the same Adam
        n_steps = int(training["diffusion_steps"])
        return {"step_weights": nn.Parameter(torch.full((n_steps - 1,), 1.0 / n_steps))}

    def loss(self, net, spec, batch, *, extra, training, generator, rng):
        return ours_loss(net, spec, batch, extra["step_weights"], int(training["diffusion_steps"]),
                         bool(training["oracle_correction"]), rng, generator)

    def predict(self, net, spec, x_t, n_steps, K, ratio, gt=None, generator=None, *, dn_scale=ORIGINAL_DN_SCALE):
        scheduler = ExposureScheduler()
        scheduler.set_timesteps(n_steps, ratio)
        x_l, preds = x_t, []
        for i in range(scheduler.num_steps):
            pred = ours_forward(net, spec, x_l, x_t, scheduler.level(i), ratio, K).final
            pred = oracle_illumination_correct(pred, gt)  # on every intermediate prediction
            preds.append(pred)
            if i + 1 < scheduler.num_steps:  # the last prediction is the result; no re-exposure after it
                x_l = scheduler.step(pred, i, x_t, K, generator, dn_scale=dn_scale).prev_sample
        return preds

    def step_labels(self, n_steps, preds):
        return list(range(1, len(preds) + 1))  # the prediction after each network evaluation
