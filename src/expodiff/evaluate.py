"""Per-step evaluation of one trained variant on one packed evaluation set (protocol §7), under
each configured protocol (``expodiff.protocols``: the paper's oracle one, the GT-free one)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from expodiff import seeds
from expodiff.checkpoint import load_network
from expodiff.data.eld import check_eld_ratio_mode, input_ratios
from expodiff.data.eval_sets import read_eval_index
from expodiff.data.pmn import DarkShading
from expodiff.device import compute_settings, peak_memory_message, reset_peak_memory
from expodiff.inference import enhance
from expodiff.io.atomic import atomic_path
from expodiff.metrics import psnr_ssim
from expodiff.methods import MethodSpec
from expodiff.physics.camera import dn_scale
from expodiff.physics.noise import k_from_iso
from expodiff.protocols import PROTOCOLS, check_protocols, uses_ground_truth

PER_IMAGE_COLUMNS = ["variant", "dataset", "camera", "protocol", "scene", "ratio", "n_steps", "step", "psnr", "ssim"]
SUMMARY_KEYS = ["variant", "dataset", "camera", "protocol", "ratio", "n_steps", "step"]


def summarize(per_image: pd.DataFrame) -> pd.DataFrame:
    """Arithmetic means per dataset, camera, protocol, ratio and step (protocols in the order of
    ``expodiff.protocols.PROTOCOLS``: oracle first)."""
    grouped = per_image.groupby(SUMMARY_KEYS, as_index=False)
    summary = grouped.agg(psnr=("psnr", "mean"), ssim=("ssim", "mean"), count=("psnr", "size"))
    order = list(PROTOCOLS)
    return summary.sort_values(SUMMARY_KEYS, key=lambda c: c.map(order.index) if c.name == "protocol" else c,
                               kind="stable").reset_index(drop=True)  # fmt: skip


def evaluate_variant(
    checkpoint,
    eval_dir,
    variant: dict,
    steps,
    protocols,
    seed: int,
    camera_json,
    per_image_csv,
    summary_csv,
    padding: str = "original",
    dark_shading=None,
    compute=None,
    eld_ratio: str = "original",
) -> pd.DataFrame:
    """Run ``variant`` at every step count of ``steps`` on every image under each of
    ``protocols``; write both CSVs (a ``protocol`` column: ``oracle``, ``gt-free``).

    ``steps``: the configured step counts of the variant's method (``Method.eval_steps``); a
    one-step method (the baseline) runs once whatever they are. The checkpoint must be the
    variant's network (a recorded spec that differs is refused).
    ``protocols``: names of ``expodiff.protocols.PROTOCOLS`` (config ``evaluation.protocols``).
    Every protocol runs each image with the same generator seeds (``seeds.evaluation_seed`` of
    image and step count), so the oracle rows are those of an oracle-only evaluation and the
    protocols differ by the correction alone.
    ``eld_ratio``: how an input's measured exposure ratio becomes its amplification and
    exposure ladder (config ``evaluation.eld_ratio``, ``expodiff.data.eld.input_ratios``); the
    ``ratio`` column is the index's nominal one either way.
    ``dark_shading``: PMN's maps (``.npz``), subtracted from every input first (PMN variants).
    ``compute``: the config's ``compute`` section (or a ``Compute``; None: CPU fp32), resolved
    here, when the job starts (an unavailable device is an error naming compute.device). On
    CUDA the generators are CUDA generators with the same seeds, so the numbers differ from a
    CPU evaluation's; the metrics are computed on the CPU. On CUDA the peak GPU memory is
    printed (stderr) at the end."""
    protocols = check_protocols(protocols)
    check_eld_ratio_mode(eld_ratio)
    compute = compute_settings(compute)
    spec = MethodSpec.from_variant(variant)
    method = spec.impl
    net = compute.prepare(load_network(checkpoint, spec, f"variants.{variant['name']}", device=compute.device))
    reset_peak_memory(compute.device)
    camera = json.loads(Path(camera_json).read_text())
    index = read_eval_index(eval_dir)
    dsc = DarkShading(dark_shading) if dark_shading else None
    steps = method.run_steps(steps)
    rows = []
    for i, rec in enumerate(tqdm(list(index.itertuples()), desc=f"evaluate {variant['name']}", unit="image")):
        x_short = np.load(rec.input_npy)
        if dsc is not None:
            x_short = dsc.correct_packed(x_short, float(rec.iso))
        gt = np.load(rec.gt_npy)
        K = k_from_iso(float(rec.iso), camera)
        amplification, ladder_ratio = input_ratios(float(rec.exposure_ratio), eld_ratio)
        for protocol in protocols:
            for n in steps:
                generator = compute.generator(seeds.evaluation_seed(seed, i, n))  # the same for every protocol
                preds = enhance(net, spec, x_short, ladder_ratio, K, n, gt=gt if uses_ground_truth(protocol) else None,
                                generator=generator, padding=padding, compute=compute, amplification=amplification,
                                dn_scale=dn_scale(camera))  # the scale K is on
                # ours: the prediction after each network evaluation; baseline and DDIM make one
                # prediction, the result of the n-step run (step = n_steps)
                for step, pred in zip(method.step_labels(n, preds), preds):
                    psnr, ssim = psnr_ssim(gt, pred)
                    rows.append([variant["name"], rec.dataset, rec.camera, protocol, str(rec.scene), int(rec.ratio),
                                 n, step, psnr, ssim])
    message = peak_memory_message(compute.device)  # None on the CPU
    if message:
        print(f"evaluate {variant['name']}: {message}", file=sys.stderr, flush=True)
    per_image = pd.DataFrame(rows, columns=PER_IMAGE_COLUMNS)
    summary = summarize(per_image)
    for frame, path in ((per_image, per_image_csv), (summary, summary_csv)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.6f")
    return summary
