"""Training one variant (protocol §6), in one readable loop.

Resumable: ``model_latest.pt`` is rewritten every ``save_every`` iterations and at every epoch
end; a run killed mid-way continues from it (same config), and because every iteration draws
its randomness from (seed, iteration) the resumed run equals an uninterrupted one. When the
run completes, ``model_final.pt`` is written (the workflow's declared output).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from expodiff.checkpoint import load_checkpoint, save_checkpoint
from expodiff.correction import oracle_illumination_correct
from expodiff.data.patches import PatchStore
from expodiff.errors import ConfigError
from expodiff.model import MethodSpec, baseline_forward, ours_forward
from expodiff.noise import NOISE_MODELS, NoiseParams, add_noise, sample_noise_params
from expodiff.scheduler import ExposureScheduler, reexpose

LOG_FIELDS = ("iteration", "epoch", "lr", "loss", "seconds")


def lr_at(epoch: int, base_lr: float, schedule) -> float:
    """Learning rate during 0-based ``epoch``: base, then each [from_epoch, lr] once reached."""
    lr = base_lr
    for from_epoch, value in sorted(schedule):
        if epoch >= from_epoch:
            lr = value
    return lr


def augment(patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random horizontal/vertical flips and transpose of a (4,p,p) patch."""
    if rng.random() < 0.5:
        patch = patch[:, :, ::-1]
    if rng.random() < 0.5:
        patch = patch[:, ::-1, :]
    if rng.random() < 0.5:
        patch = patch.transpose(0, 2, 1)
    return np.ascontiguousarray(patch)


def fingerprint(variant: dict, training: dict) -> str:
    """Identifies a run's settings, so a checkpoint is only resumed by the run that made it."""
    blob = json.dumps({"variant": variant, "training": training}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def ours_loss(net, spec, clean, x_t, params: NoiseParams, step_weights, n_steps, oracle, rng, generator):
    """Σ_t w_t·term_t over one sampled exposure ladder (protocol §5, training)."""
    total = 0.0
    for b in range(clean.shape[0]):  # ladders differ per sample: one sample at a time
        y, x_tb = clean[b : b + 1], x_t[b : b + 1]
        ratio, K = int(params.ratio[b]), float(params.K[b])
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
            x_l = reexpose(pred, x_tb, levels[idx + 1], ratio, K, generator, straight_through=True)
    return total / clean.shape[0]


def train_variant(
    variant: dict,
    training: dict,
    patches_dir,
    camera_json,
    out_dir,
    log_csv=None,
    save_every: int = 500,
    max_iterations: int | None = None,
) -> Path:
    """Train ``variant`` (config entry with "name") with ``training`` settings; return model_final.pt.

    ``max_iterations`` stops early (for tests of resuming), leaving only model_latest.pt.
    """
    if variant.get("data") not in NOISE_MODELS:
        raise ConfigError(f"variants.{variant.get('name')}.data: {variant.get('data')!r} is not a known training data kind ({', '.join(NOISE_MODELS)})")
    spec = MethodSpec.from_variant(variant)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_csv = Path(log_csv) if log_csv else out_dir / "train_log.csv"
    camera = json.loads(Path(camera_json).read_text())
    store = PatchStore(patches_dir)
    seed, batch = int(training["seed"]), int(training["batch_size"])
    n_steps = int(training["diffusion_steps"])
    iters_per_epoch = math.ceil(len(store) / batch)
    total_iters = int(training["epochs"]) * iters_per_epoch
    run_id = fingerprint(variant, training)

    torch.manual_seed(seed)  # network initialisation
    net = spec.build()
    # learnable step weights (n−1 of them, init 1/n), trained by the same Adam, not part of netG
    step_weights = torch.nn.Parameter(torch.full((n_steps - 1,), 1.0 / n_steps))
    params = list(net.parameters()) + ([step_weights] if spec.method == "ours" else [])
    optimizer = torch.optim.Adam(params, lr=float(training["lr"]), betas=(0.9, 0.999), weight_decay=0)

    start = 0
    latest = out_dir / "model_latest.pt"
    if latest.exists():
        state = load_checkpoint(latest)
        if state.get("run_id") == run_id and state["iterations"] < total_iters:
            net.load_state_dict(state["netG"])
            optimizer.load_state_dict(state["opt_g"])
            step_weights.data.copy_(state["step_weights"])
            start = int(state["iterations"])
    _truncate_log(log_csv, start)

    def save(path, it):
        save_checkpoint(path, net, optimizer, epoch=it // iters_per_epoch, iterations=it,
                        step_weights=step_weights.detach().clone(), run_id=run_id,
                        variant=dict(variant), spec={"backbone": spec.backbone, "method": spec.method,
                                                     "concat_origin": spec.concat_origin})

    net.train()
    t0 = time.time()
    end = total_iters if max_iterations is None else min(total_iters, max_iterations)
    with open(log_csv, "a", newline="") as log_file:
        log = csv.writer(log_file)
        for it in tqdm(range(start, end), initial=start, total=total_iters, desc=f"train {variant['name']}", unit="it"):
            epoch, pos = divmod(it, iters_per_epoch)
            lr = lr_at(epoch, float(training["lr"]), training["lr_schedule"])
            for group in optimizer.param_groups:
                group["lr"] = lr
            order = np.random.default_rng([seed, epoch]).permutation(len(store))
            rng = np.random.default_rng([seed, epoch, pos])
            generator = torch.Generator().manual_seed(seed * 1_000_003 + it)
            idx = order[pos * batch : (pos + 1) * batch]
            clean = torch.from_numpy(np.stack([augment(store[i], rng) for i in idx]))
            noise = sample_noise_params(variant["data"], camera, len(idx), K_range=tuple(training["K_range"]),
                                        ratio_range=tuple(training["ratio_range"]), generator=generator)
            x_t = add_noise(variant["data"], clean, noise, generator)
            if spec.method == "baseline":
                loss = F.l1_loss(baseline_forward(net, spec, x_t), clean)
            else:
                loss = ours_loss(net, spec, clean, x_t, noise, step_weights, n_steps,
                                 bool(training["oracle_correction"]), random.Random(f"{seed}-{it}"), generator)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done = it + 1
            log.writerow([done, epoch, lr, f"{loss.item():.6f}", f"{time.time() - t0:.2f}"])
            log_file.flush()
            if done % iters_per_epoch == 0 and (done // iters_per_epoch) in set(training["checkpoint_epochs"]):
                save(out_dir / f"model_{done // iters_per_epoch:03d}.pt", done)
            if done % save_every == 0 or done % iters_per_epoch == 0 or done == end:
                save(latest, done)
    if end < total_iters:
        return latest
    final = out_dir / "model_final.pt"
    save(final, total_iters)
    return final


def _truncate_log(log_csv: Path, upto: int) -> None:
    """Keep the log's rows up to iteration ``upto`` (a resumed run rewrites what follows)."""
    rows = []
    if log_csv.exists() and upto > 0:
        with open(log_csv, newline="") as f:
            rows = [r for r in csv.reader(f)][1:]
        rows = [r for r in rows if r and int(r[0]) <= upto]
    with open(log_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(LOG_FIELDS)
        writer.writerows(rows)
