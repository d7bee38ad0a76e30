"""DDPM noise schedule and the DDIM sampler (η = 0) for the conditional diffusion baseline.

Kept apart from the network as in diffusers: ``add_noise`` serves training, ``set_timesteps``
and ``step`` serve sampling. Symbols: ᾱ_t = Π(1 − β_s); x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DDIMStepOutput:
    prev_sample: torch.Tensor  # x_{t_prev}
    pred_original_sample: torch.Tensor  # x̂_0 predicted at this step


class DDIMScheduler:
    def __init__(self, num_train_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        self.num_train_timesteps = num_train_timesteps
        betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float64)
        self.alphas_cumprod = torch.cumprod(1 - betas, dim=0)  # ᾱ_t
        self.timesteps: torch.Tensor | None = None

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod.to(x0.device)[t].float().view(-1, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def set_timesteps(self, num_inference_steps: int) -> None:
        """Evenly spaced time steps T−1 … 0 (the "trailing" spacing, so 1 step starts from pure noise)."""
        if not 1 <= num_inference_steps <= self.num_train_timesteps:
            raise ValueError(f"num_inference_steps must be in 1..{self.num_train_timesteps}, got {num_inference_steps}")
        step = self.num_train_timesteps / num_inference_steps
        self.timesteps = (torch.arange(num_inference_steps, 0, -1, dtype=torch.float64) * step).round().long() - 1

    def step(self, model_output: torch.Tensor, i: int, sample: torch.Tensor) -> DDIMStepOutput:
        """One deterministic DDIM update (η = 0) from timesteps[i] to timesteps[i+1] (or to x_0)."""
        if self.timesteps is None:
            raise RuntimeError("call set_timesteps(n) before step()")
        t = int(self.timesteps[i])
        # 1. ᾱ at this and the previous time step (ᾱ_prev = 1 after the last step)
        a_t = float(self.alphas_cumprod[t])
        a_prev = float(self.alphas_cumprod[int(self.timesteps[i + 1])]) if i + 1 < len(self.timesteps) else 1.0
        # 2. predicted x_0 from the predicted noise
        x0 = (sample - (1 - a_t) ** 0.5 * model_output) / a_t**0.5
        # 3. direction pointing to x_t (η = 0: no fresh noise)
        prev = a_prev**0.5 * x0 + (1 - a_prev) ** 0.5 * model_output
        return DDIMStepOutput(prev_sample=prev, pred_original_sample=x0)
