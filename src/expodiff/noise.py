"""Synthetic sensor noise in torch (protocol §3): P+G ("P+g" in the original code).

All maths is batched over the first dimension and runs on the input's device. Signals are in
DN of the original's fixed scale ``DN_SCALE`` (16383 − 800 = 15583), which the original uses
as its "saturation level" throughout; it is kept so that K means what it meant there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

DN_SCALE = 16383 - 800  # 15583: the original's signal scale (white level − 800)


def k_from_iso(iso: float, camera: dict) -> float:
    """System gain K (DN per electron) at an ISO, linear between the camera's Kmin (ISO 100) and Kmax (ISO 6400)."""
    return (iso - 100) / (6400 - 100) * (camera["Kmax"] - camera["Kmin"]) + camera["Kmin"]


@dataclass(frozen=True)
class PGParams:
    """Per-sample noise parameters, each a (B,) float tensor."""

    K: torch.Tensor  # system gain, DN per photo-electron
    sigma_g: torch.Tensor  # Gaussian read-noise standard deviation, DN
    ratio: torch.Tensor  # exposure ratio r (continuous, U(20, 300) in the paper)


def _log_linear(line: dict, log_k: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """log σ ~ N(slope·log K + bias, sigma²): the camera profile's noise-scale line with scatter."""
    z = torch.randn(log_k.shape, generator=generator, dtype=log_k.dtype, device=log_k.device)
    return torch.exp(line["slope"] * log_k + line["bias"] + line["sigma"] * z)


def sample_pg_params(
    camera: dict,
    batch: int,
    *,
    K_range: tuple[float, float] = (0.1, 30.0),
    ratio_range: tuple[float, float] = (20.0, 300.0),
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> PGParams:
    """Draw P+G parameters per sample: log K ~ U(log Kmin, log Kmax), σ_g from the g_scale line."""
    u = torch.rand(batch, generator=generator, dtype=torch.float64)
    log_k = math.log(K_range[0]) + u * (math.log(K_range[1]) - math.log(K_range[0]))
    sigma_g = _log_linear(camera["Profile-1"]["g_scale"], log_k, generator)
    r = torch.rand(batch, generator=generator, dtype=torch.float64)
    ratio = ratio_range[0] + r * (ratio_range[1] - ratio_range[0])
    as_f32 = lambda t: t.to(device=device, dtype=torch.float32)  # noqa: E731
    return PGParams(K=as_f32(torch.exp(log_k)), sigma_g=as_f32(sigma_g), ratio=as_f32(ratio))


def add_pg_noise(clean: torch.Tensor, params: PGParams, generator: torch.Generator | None = None) -> torch.Tensor:
    """Turn clean packed images (B,4,H,W) in [0,1] into amplified noisy inputs X_T in [0,1].

    s = y·DN_SCALE/r (the short exposure's signal in DN); x = K·Poisson(s/K) + N(0, σ_g²);
    X_T = clip(x·r/DN_SCALE, 0, 1).
    """
    view = lambda t: t.to(clean).view(-1, 1, 1, 1)  # noqa: E731
    K, sigma_g, ratio = view(params.K), view(params.sigma_g), view(params.ratio)
    signal = clean * DN_SCALE / ratio
    photons = torch.poisson(signal / K, generator=generator)
    read = torch.randn(clean.shape, generator=generator, dtype=clean.dtype, device=clean.device)
    noisy = K * photons + sigma_g * read
    return (noisy * ratio / DN_SCALE).clamp(0, 1)
