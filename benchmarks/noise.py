"""Noise synthesis speed: expodiff's batched torch model against the original's way.

The original (ELD/ExposureDiffusion ``noise.py``) synthesises one patch at a time in numpy and
scipy inside the data loader. This script implements those same formulas that way and times
both on a batch of packed 512² patches, checks that their statistics agree, and relates noise
time to one training step (UNet forward + backward, ExposureDiffusion input) on this machine.

    python benchmarks/noise.py [--batch 8] [--size 512] [--model P+G+r+u] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import tukeylambda

from expodiff.methods import MethodSpec
from expodiff.physics.camera import load_camera_params
from expodiff.physics.noise import DN_SCALE, add_noise, sample_noise_params


def numpy_one_patch(y: np.ndarray, K, ratio, sigma_g, sigma_r, sigma_tl, lam, model, rng) -> np.ndarray:
    """One (4,H,W) patch, the straightforward numpy/scipy way (same formulas as expodiff.physics.noise)."""
    s = y * DN_SCALE / ratio
    if model == "P+g":
        z = rng.poisson(s / K).astype(np.float32) * K + rng.standard_normal(s.shape).astype(np.float32) * sigma_g
    else:
        s = np.clip(s + rng.uniform(-0.5, 0.5, s.shape), 0, None)
        z = rng.poisson(s / K).astype(np.float32) * K
        rows = rng.standard_normal((2, s.shape[1], 1)).astype(np.float32)[[0, 0, 1, 1]]
        z = z + rows * sigma_r
        z = z + tukeylambda.rvs(lam, size=s.shape, random_state=rng).astype(np.float32) * sigma_tl
    return np.clip(z * ratio / DN_SCALE, 0, 1)


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--model", default="P+G+r+u", choices=["P+g", "P+G+r+u"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--train-step-size", type=int, default=256, help="patch side for the training-step timing (512 is ~15 s on a CPU)")
    args = ap.parse_args()

    camera = load_camera_params("SonyA7S2")
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(args.batch, 4, args.size, args.size, generator=g) * 0.8
    params = sample_noise_params(args.model, camera, args.batch, generator=g)
    clean_dev = clean.to(args.device)

    def ours():
        out = add_noise(args.model, clean_dev, params, torch.Generator().manual_seed(1))
        if args.device == "cuda":
            torch.cuda.synchronize()
        return out

    clean_np = clean.numpy()
    p = {k: getattr(params, k).numpy() for k in ("K", "ratio", "sigma_g", "sigma_r", "sigma_tl", "lam")}

    def original():
        rng = np.random.default_rng(1)
        return np.stack([
            numpy_one_patch(clean_np[i], p["K"][i], p["ratio"][i], p["sigma_g"][i], p["sigma_r"][i],
                            p["sigma_tl"][i], p["lam"][i], args.model, rng)
            for i in range(args.batch)
        ])

    t_ours, t_orig = timed(ours, args.repeat), timed(original, args.repeat)
    a, b = ours().cpu().numpy(), original()
    print(f"device: {args.device}; model {args.model}; batch {args.batch}×4×{args.size}²")
    print(f"numpy/scipy, one patch at a time : {t_orig * 1e3:9.1f} ms per batch")
    print(f"expodiff torch, batched          : {t_ours * 1e3:9.1f} ms per batch")
    print(f"speed-up                         : {t_orig / t_ours:9.2f}×  (CPU target ≥ 1.5×)")
    print(f"statistics per patch (mean, std) : max |Δmean| {np.abs(a.mean((1, 2, 3)) - b.mean((1, 2, 3))).max():.2e}, "
          f"max |Δstd|/std {np.max(np.abs(a.std((1, 2, 3)) - b.std((1, 2, 3))) / b.std((1, 2, 3))):.3%}")

    spec = MethodSpec("unet", "ours")
    net = spec.build().to(args.device)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    x = torch.rand(1, 8, args.train_step_size, args.train_step_size, device=args.device)

    def train_step():
        opt.zero_grad()
        net(x).abs().mean().backward()
        opt.step()
        if args.device == "cuda":
            torch.cuda.synchronize()

    t_step = timed(train_step, 2)
    one = args.train_step_size
    per_patch_noise = t_ours / args.batch * (one / args.size) ** 2
    print(f"one UNet training step at {one}²  : {t_step * 1e3:9.1f} ms; noise for that patch {per_patch_noise * 1e3:.2f} ms "
          f"= {per_patch_noise / t_step:.2%} of the step")


if __name__ == "__main__":
    main()
