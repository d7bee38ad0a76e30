"""The original's oracle illumination correction (protocol §5, §7).

Every prediction is rescaled by α = ⟨p, gt⟩ / ⟨p, p⟩ (p = prediction clamped to [0, 1], sums
over pixels where gt ≠ 1; α = 0 where ⟨p, p⟩ = 0, which the original leaves NaN). It uses the ground truth, so it is only available in evaluation
and training; the paper's numbers depend on it. ``None`` ground truth means no correction.
"""

from __future__ import annotations

import torch


def oracle_illumination_correct(pred: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
    """Per sample of a (B,C,H,W) batch: α·clamp(pred, 0, 1), α fitted against gt. Identity if gt is None."""
    if gt is None:
        return pred
    p = pred.clamp(0, 1)
    valid = (gt != 1).to(p.dtype)  # saturated ground-truth pixels do not vote
    num = (p * gt * valid).flatten(1).sum(1)
    den = (p * p * valid).flatten(1).sum(1)
    # a prediction that is 0 wherever gt votes (clamped to 0: a weak network's step) has no scale:
    # the original's 0/0 makes it NaN; α·0 is 0 for any α, so α = 0 keeps the zero image finite
    alpha = torch.where(den > 0, num / den, torch.zeros_like(num))
    return alpha.view(-1, 1, 1, 1) * p
