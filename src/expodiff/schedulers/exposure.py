"""The exposure-diffusion step rule (protocol §5), kept apart from any network.

Symbols: r the exposure ratio, K the system gain (DN/e⁻), X_T the captured short exposure
amplified by r and clipped to [0,1], X_l the image "exposed" to level l (level 1 = the
capture, level r = the ground truth's exposure), y the (corrected) clean prediction.
A step from l to l' keeps the real capture and adds only the photons of the extra exposure:

    N_extra = Poisson(y · S · (l' − 1) / (r·K))              S = the camera's DN scale (15583: DN_SCALE)
    X_l'    = (X_T · S / (r·K) + N_extra) · r·K / (l' · S)   (not clipped)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from expodiff.physics.noise import DN_SCALE, poisson


@dataclass(frozen=True)
class ExposureStepOutput:
    prev_sample: torch.Tensor  # X_{l'}: the input of the next network evaluation
    pred_original_sample: torch.Tensor  # y: the clean prediction the step was made from


def photon_map(x: torch.Tensor, level, ratio, K) -> torch.Tensor:
    """X_l · l/(r·K): the image at level l in photo-electrons / S (the network's second input)."""
    return x * level / (ratio * K)


def reexpose(
    y: torch.Tensor,
    x_t: torch.Tensor,
    level_next,
    ratio,
    K,
    generator: torch.Generator | None = None,
    straight_through: bool = False,
    dn_scale: float = DN_SCALE,
) -> torch.Tensor:
    """X_{l'} from the clean estimate y (clamped to [0,1]) and the capture X_T.

    ``level_next``, ``ratio`` and ``K`` are numbers or tensors broadcastable to (B,1,1,1).
    With ``straight_through`` the Poisson draw passes its mean's gradient (training).
    ``dn_scale``: S, the camera's (``physics.camera.dn_scale``), as the noise model used.
    """
    mean = y.clamp(0, 1) * dn_scale * (level_next - 1) / (ratio * K)  # expected extra photons
    extra = poisson(mean, generator)
    if straight_through:
        extra = (extra - mean).detach() + mean
    captured = x_t.clamp(0, 1) * dn_scale / (ratio * K)  # photons in the real capture
    return (captured + extra) * ratio * K / (level_next * dn_scale)


class ExposureScheduler:
    """Evaluation ladder and training ladder of exposure levels, and the step between them."""

    def __init__(self) -> None:
        self.levels: np.ndarray | None = None
        self.ratio: int | None = None

    def set_timesteps(self, num_inference_steps: int, ratio: int) -> None:
        """n network evaluations at levels linspace(1, r, n+1)[:-1]; the last level is r itself."""
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be ≥ 1, got {num_inference_steps}")
        if ratio <= 1:
            raise ValueError(f"ratio must be > 1, got {ratio}")
        self.ratio = int(ratio)
        self.levels = np.linspace(1, self.ratio, num_inference_steps + 1)

    @property
    def num_steps(self) -> int:
        self._check()
        return len(self.levels) - 1

    def _check(self) -> None:
        if self.levels is None:
            raise RuntimeError("call set_timesteps(n_steps, ratio) before using the scheduler")

    def level(self, i: int) -> float:
        self._check()
        return float(self.levels[i])

    def step(
        self,
        model_output: torch.Tensor,
        i: int,
        x_t: torch.Tensor,
        K: float,
        generator: torch.Generator | None = None,
        *,
        dn_scale: float = DN_SCALE,
    ) -> ExposureStepOutput:
        """From the prediction made at level levels[i] to the input at level levels[i+1]
        (``dn_scale``: the camera's S, as in ``reexpose``)."""
        self._check()
        x_next = reexpose(model_output, x_t, float(self.levels[i + 1]), self.ratio, K, generator, dn_scale=dn_scale)
        return ExposureStepOutput(prev_sample=x_next, pred_original_sample=model_output)

    @staticmethod
    def sample_training_levels(ratio: int, n_steps: int, rng: random.Random) -> list[int]:
        """The original's training ladder: sorted({1} ∪ sample(range(1, r), n−1) ∪ {r}).

        ``range(1, r)`` includes 1, so a draw of 1 collapses into the set and the ladder has
        one step fewer; that is the original's behaviour and is kept.
        """
        ratio = int(ratio)
        inner = rng.sample(range(1, ratio), min(n_steps - 1, ratio - 1))
        return sorted({1, *inner, ratio})
