"""Synthetic sensor noise in torch (protocol §3): the P+G and the ELD (P+G+r+u) models.

Everything is batched over the first dimension and runs on the input's device, so noise
synthesis happens on the training device and never waits on the CPU: the random draws are made
on the generator's device (a CUDA generator on CUDA, ``expodiff.device.generator``), so on the
CPU they are exactly the CPU generator's draws, and on CUDA they are CUDA's (other streams). Signals are in DN of a
scale S, the DN that a packed value of 1 stands for: the camera's ``physics.camera.dn_scale``,
by default the original's fixed 15583 (16383 − 800, ``DN_SCALE``), which the original uses as its
"saturation level" for every camera; with it K and the σ's mean what they meant there.

The formulas a noise model is made of (``quantise``, ``shot_noise``) take their random draws as
arguments and use only operators, so they run on numpy arrays too: the demo-data generator
(``expodiff.data.synthetic``) builds its frames from them with numpy draws.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache

import torch

from expodiff.errors import ConfigError
from expodiff.physics.camera import k_from_iso  # noqa: F401  (defined in physics.camera; imported from here too)
from expodiff.physics.camera import ORIGINAL_DN_SCALE, profile_log_sigma

DN_SCALE = ORIGINAL_DN_SCALE  # 15583: the original's signal scale (white level − 800), the default S

# config name of the training data → the original's noise-model string
NOISE_MODELS = {"pg": "P+g", "eld": "P+G+r+u"}


@dataclass(frozen=True)
class NoiseParams:
    """Per-sample noise parameters, each a (B,) float tensor (unused ones may be zeros).

    The numpy demo-data generator holds one sample's values as plain floats in the same fields.
    """

    K: torch.Tensor  # system gain, DN per photo-electron
    ratio: torch.Tensor  # exposure ratio r (continuous, U(20, 300) in the paper)
    sigma_g: torch.Tensor  # P+g: Gaussian read-noise standard deviation, DN
    sigma_r: torch.Tensor  # ELD: row-noise standard deviation, DN
    sigma_tl: torch.Tensor  # ELD: Tukey-lambda read-noise scale, DN
    lam: torch.Tensor  # ELD: Tukey-lambda shape λ

    @classmethod
    def of(cls, batch: int = 1, **values) -> "NoiseParams":
        """Build from numbers or tensors; missing fields are zero."""
        fields = ("K", "ratio", "sigma_g", "sigma_r", "sigma_tl", "lam")
        unknown = set(values) - set(fields)
        if unknown:
            raise ConfigError(f"unknown noise parameter(s): {', '.join(sorted(unknown))}")
        return cls(**{f: _per_sample(values.get(f, 0.0), batch) for f in fields})

    def with_values(self, **values) -> "NoiseParams":
        batch = self.K.shape[0]
        return replace(self, **{k: _per_sample(v, batch) for k, v in values.items()})


def _per_sample(value, batch: int) -> torch.Tensor:
    """A number or tensor as a (batch,) float32 tensor."""
    return torch.as_tensor(value, dtype=torch.float32).reshape(-1).expand(batch).clone()


POISSON_CHUNK = 1 << 20  # draws per independently seeded chunk of a large Poisson sample


@lru_cache(maxsize=None)
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="expodiff-poisson")


def poisson(rate: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Poisson draws with the given rates, using every CPU thread.

    torch's CPU Poisson sampler runs on one thread and dominates noise synthesis, so a large
    sample is cut into fixed chunks, each seeded from ``generator`` and drawn on a thread pool.
    The chunking does not depend on the thread count, so results are reproducible anywhere.
    On a GPU the one kernel is already parallel: ``torch.poisson`` with the CUDA generator
    (the thread pool is for CPU tensors only).
    """
    flat = rate.detach().reshape(-1)
    if rate.device.type != "cpu" or flat.numel() <= POISSON_CHUNK:
        return torch.poisson(rate.detach(), generator=generator)
    chunks = flat.split(POISSON_CHUNK)
    seeds = torch.randint(0, 2**62, (len(chunks),), generator=generator).tolist()
    draw = lambda args: torch.poisson(args[0], generator=torch.Generator().manual_seed(args[1]))  # noqa: E731
    out = list(_pool(torch.get_num_threads()).map(draw, zip(chunks, seeds)))
    return torch.cat(out).view_as(rate)


def _noise_model(model: str) -> str:
    if model in NOISE_MODELS.values():
        return model
    if model in NOISE_MODELS:
        return NOISE_MODELS[model]
    raise ConfigError(f"unknown noise model {model!r}; known: {', '.join([*NOISE_MODELS.values(), *NOISE_MODELS])}")


def _draw_device(generator: torch.Generator | None, fallback=None) -> torch.device:
    """Where draws from ``generator`` are made: its device (CPU generators: the CPU), or
    ``fallback`` (default CPU) without one."""
    if generator is not None:
        return generator.device
    return torch.device(fallback) if fallback is not None else torch.device("cpu")


def _log_linear(line: dict, log_k: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """σ with log σ ~ N(slope·log K + bias, sigma²): a camera profile line with its scatter."""
    z = torch.randn(log_k.shape, generator=generator, dtype=log_k.dtype, device=log_k.device)
    return torch.exp(profile_log_sigma(line, log_k) + line["sigma"] * z)


def sample_noise_params(
    model: str,
    camera: dict,
    batch: int,
    *,
    K_range: tuple[float, float] = (0.1, 30.0),
    ratio_range: tuple[float, float] = (20.0, 300.0),
    generator: torch.Generator | None = None,
    K: float | None = None,
) -> NoiseParams:
    """Per-sample parameters as the original draws them (protocol §3): log K ~ U(log Kmin, log Kmax),
    each σ from its Profile-1 line at log K with Gaussian scatter, λ uniformly from G_shape,
    r ~ U(ratio_range). A given ``K`` is used as is and the σ's are drawn at it. The parameters
    are on the generator's device (the CPU without one)."""
    model = _noise_model(model)
    profile = camera["Profile-1"]
    f64 = dict(dtype=torch.float64, device=_draw_device(generator))
    log_k = math.log(K_range[0]) + torch.rand(batch, generator=generator, **f64) * math.log(K_range[1] / K_range[0])
    if K is not None:
        if not K > 0:
            raise ConfigError(f"K must be > 0, got {K}")
        log_k = torch.full((batch,), math.log(K), **f64)
    ratio = ratio_range[0] + torch.rand(batch, generator=generator, **f64) * (ratio_range[1] - ratio_range[0])
    zeros = torch.zeros(batch, **f64)
    sigma_g = sigma_r = sigma_tl = lam = zeros
    if model == "P+g":
        sigma_g = _log_linear(profile["g_scale"], log_k, generator)
    else:
        sigma_r = _log_linear(profile["R_scale"], log_k, generator)
        sigma_tl = _log_linear(profile["G_scale"], log_k, generator)
        shapes = torch.tensor(camera["G_shape"], **f64)
        lam = shapes[torch.randint(len(shapes), (batch,), generator=generator, device=shapes.device)]
    f32 = lambda t: t.to(torch.float32)  # noqa: E731
    return NoiseParams(K=f32(torch.exp(log_k)), ratio=f32(ratio), sigma_g=f32(sigma_g),
                       sigma_r=f32(sigma_r), sigma_tl=f32(sigma_tl), lam=f32(lam))


def tukey_lambda(shape, lam: torch.Tensor, generator=None, device=None, dtype=torch.float32) -> torch.Tensor:
    """Standard Tukey-lambda samples by inverse CDF: Q(u) = (u^λ − (1−u)^λ)/λ, logistic at λ = 0.

    ``shape`` is (B, ...) and ``lam`` holds one shape per sample (B,).
    """
    eps = torch.finfo(torch.float32).eps
    u = torch.rand(shape, generator=generator, dtype=torch.float32, device=_draw_device(generator, device))
    u = u.clamp_(eps, 1 - eps)
    out = torch.empty_like(u)
    for b, lam_b in enumerate(lam.reshape(-1).tolist()):
        if abs(lam_b) < 1e-6:
            torch.log(u[b] / (1 - u[b]), out=out[b])
        else:
            torch.sub(u[b].pow(lam_b), (1 - u[b]).pow_(lam_b), out=out[b]).div_(lam_b)
    return out.to(device=device, dtype=dtype)


def quantise(signal, u):
    """Quantisation: ``signal`` plus uniform U(−½, ½) draws ``u``, clipped at 0 (numpy or torch)."""
    return (signal + u).clip(min=0)


def shot_noise(signal, K, poisson_draw):
    """K·Poisson(signal/K): photo-electrons are Poisson, DN = K·electrons. ``poisson_draw`` draws
    Poisson counts at given rates (``poisson`` here; ``rng.poisson`` in numpy)."""
    return K * poisson_draw(signal / K)


def add_noise(model: str, clean: torch.Tensor, params: NoiseParams, generator: torch.Generator | None = None,
              dn_scale: float = ORIGINAL_DN_SCALE) -> torch.Tensor:
    """Turn clean packed images (B,4,H,W) in [0,1] into amplified noisy inputs X_T in [0,1].

    s = y·S/r is the short exposure's signal in DN, S = ``dn_scale`` (the camera's,
    ``physics.camera.dn_scale``). P+g: x = K·Poisson(s/K) + N(0, σ_g²).
    P+G+r+u: quantisation U(−½,½) and clip at 0, K·Poisson(·/K), one N(0, σ_r²) per mosaic row
    (packed R and G1 share a row, B and G2 the next), Tukey-lambda(λ)·σ_TL read noise.
    X_T = clip(x·r/S, 0, 1).
    """
    model = _noise_model(model)
    view = lambda t: t.to(clean).view(-1, 1, 1, 1)  # noqa: E731
    K, ratio = view(params.K), view(params.ratio)
    at = _draw_device(generator, clean.device)  # the CPU for a CPU generator, as before
    randn = lambda *shape: torch.randn(shape, generator=generator, dtype=clean.dtype, device=at).to(clean.device)  # noqa: E731
    signal = clean * dn_scale / ratio
    b, c, h, w = clean.shape
    draw = lambda rate: poisson(rate, generator)  # noqa: E731
    if model == "P+g":
        noisy = shot_noise(signal, K, draw) + view(params.sigma_g) * randn(b, c, h, w)
    else:
        u = torch.rand(clean.shape, generator=generator, dtype=clean.dtype, device=at).to(clean.device) - 0.5
        noisy = shot_noise(quantise(signal, u), K, draw)
        rows = randn(b, 2, h, 1)[:, [0, 0, 1, 1]]  # mosaic rows 2j (R, G1) and 2j+1 (B, G2)
        noisy += view(params.sigma_r) * rows
        read = tukey_lambda((b, c, h, w), params.lam, generator, clean.device, clean.dtype)
        noisy += view(params.sigma_tl) * read
    return noisy.mul_(ratio / dn_scale).clamp_(0, 1)
