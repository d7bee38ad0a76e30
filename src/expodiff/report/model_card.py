"""A camera model's card (rule model_card, docs/CALIBRATE.md): what the camera is, how its noise
model was obtained, how its networks were trained and how they score on its own test pairs.

Everything is read from the workflow's files: the camera's parameter files (its ``sensor`` block,
calibration table and profile lines), each variant's training log and settings, and the
evaluations' ``summary.csv`` (each variant at its own step count, both protocols).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from expodiff.io.atomic import write_text_atomic
from expodiff.physics.camera import iso_range
from expodiff.report.mini import loss_trend

# the settings of a training the card lists (expodiff.recipes names), in this order
TRAINING_KEYS = ("epochs", "lr", "lr_schedule", "batch_size", "ratio_range", "K_range", "diffusion_steps")


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _num(value, spec=".4g") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def camera_section(camera: str, entry: Mapping, params: Mapping, noise: Mapping) -> list[str]:
    """The camera: raw format, where its parameters came from, K's span."""
    sensor = params.get("sensor", {})
    source = (f"calibrated from the frames in `{entry['frames']}`" if entry.get("frames")
              else f"the parameter file `{entry['params']}`")
    lo, hi = iso_range(noise)
    lines = [f"## Camera: {camera}", "",
             f"- {sensor.get('make', '?')} {sensor.get('model', '?')}: CFA {sensor.get('cfa', '?')}, "
             f"{sensor.get('bit_depth', '?')} bit, black level {sensor.get('black_level', '?')}, "
             f"white level {sensor.get('white_level', '?')}",
             f"- noise model: {source}; DN scale {_num(sensor.get('dn_scale', '?'))} "
             "(the DN a packed 1 stands for)",
             f"- K (DN/e⁻) {noise['Kmin']:.4g} at ISO {lo:g} to {noise['Kmax']:.4g} at ISO {hi:g}"
             + ("" if "iso_range" in noise else " (the ELD release's anchors; not a calibrated span)")]
    if entry.get("params") and entry.get("frames"):
        lines.append(f"- K from ISO at test time: `{entry['params']}` (results/cameras/{camera}.json)")
    return lines + [""]


def calibration_section(noise: Mapping, figures: Sequence[str], card_dir: Path) -> list[str]:
    """The per-ISO fits, the profile lines and the figures of a calibrated camera."""
    lines = ["## Calibration", ""]
    rows = noise.get("per_iso", [])
    if rows:
        lines += _table(["ISO", "K", "σ_r (R_scale)", "λ (G_shape)", "σ_TL (G_scale)", "σ_g (g_scale)"],
                        [[_num(r["iso"], "g"), _num(r["K"]), _num(r["sigma_r"]), _num(r["lambda"], "+.3f"),
                          _num(r["sigma_TL"]), _num(r["sigma_g"])] for r in rows])
        lines.append("")
    profile = noise["Profile-1"]
    lines += ["log σ = slope · log K + bias (natural logs; sigma: the residuals' spread):", ""]
    lines += _table(["scale", "slope", "bias", "sigma"],
                    [[k, _num(v["slope"]), _num(v["bias"]), _num(v["sigma"])] for k, v in profile.items()])
    if figures:
        lines += ["", " ".join(f"![{Path(f).stem}]({os.path.relpath(f, card_dir)})" for f in figures)]
    return lines + [""]


def training_section(variants: Mapping[str, Mapping], logs: Mapping[str, str], noise: Mapping,
                     K_range: str) -> list[str]:
    """Each variant's settings and its loss, first and last epoch."""
    span = (f"the camera's calibrated span [{noise['Kmin']:.4g}, {noise['Kmax']:.4g}]" if K_range == "calibrated"
            else "the recipe's K_range")
    lines = ["## Training", "",
             f"On SID's clean long exposures (the patch store) with the camera's noise model; K of the "
             f"training noise: {span}.", ""]
    rows = []
    for name, settings in variants.items():
        trend = loss_trend(logs[name])
        shown = {k: settings[k] for k in TRAINING_KEYS if k in settings and k != "K_range"}
        rows.append([name, f"{trend['iterations']:,}", f"{trend['first']:.4g} → {trend['last']:.4g}",
                     "; ".join(f"{k} {v}" for k, v in shown.items())])
    return lines + _table(["variant", "iterations", "loss (first → last epoch)", "settings"], rows) + [""]


def metrics_section(summaries: Mapping[str, str], variants: Mapping[str, Mapping], protocols: Sequence[str]) -> list[str]:
    """PSNR/SSIM on the camera's own test pairs: each variant at its final step count."""
    lines = ["## Metrics on the camera's test pairs", ""]
    if not summaries:
        return lines + ["No test pairs (cameras.NAME.test_pairs is null): not evaluated.", ""]
    rows = []
    for name, path in summaries.items():
        df = pd.read_csv(path)
        steps = int(variants[name].get("diffusion_steps", 1)) if (df["n_steps"] > 1).any() else 1
        final = df[(df["n_steps"] == steps) & (df["step"] == steps)]
        for protocol in protocols:
            for r in final[final["protocol"] == protocol].sort_values("ratio").itertuples():
                rows.append([name, steps, protocol, f"×{r.ratio}", f"{r.psnr:.2f}", f"{r.ssim:.4f}", r.count])
    lines += _table(["variant", "steps", "protocol", "ratio", "PSNR (dB)", "SSIM", "images"], rows)
    return lines + ["", "oracle: the ground truth corrects each prediction's illumination (the paper's); "
                        "gt-free: no correction (what a user's own photos get).", ""]


def write_model_card(
    *,
    camera: str,
    entry: Mapping,
    noise_json,
    camera_json,
    variants: Mapping[str, Mapping],
    logs: Mapping[str, str],
    summaries: Mapping[str, str],
    figures: Sequence[str],
    K_range: str,
    protocols: Sequence[str],
    commit: str,
    config_sha: str,
    out_md,
) -> Path:
    """Write the model card of ``camera`` to ``out_md`` (Markdown)."""
    out_md = Path(out_md)
    noise, params = json.loads(Path(noise_json).read_text()), json.loads(Path(camera_json).read_text())
    best = next(reversed(list(variants)))
    lines = [f"# Model card: {camera}", "", f"- commit: `{commit}`", f"- config SHA-256: `{config_sha}`", ""]
    lines += camera_section(camera, entry, params, noise)
    if entry.get("frames"):
        lines += calibration_section(noise, figures, out_md.parent)
    lines += training_section(variants, logs, noise, K_range)
    lines += metrics_section(summaries, variants, protocols)
    lines += ["## Denoise your own files", "", "```bash",
              f"expodiff denoise --camera {camera} --checkpoint results/camera_models/{camera}/train/{best}/model_final.pt \\",
              "    IMG_*.ARW --ratio 100 --out denoised/", "```", "",
              f"`--camera {camera}` reads results/cameras/{camera}.json; ISO from each file's EXIF (or --iso).", ""]
    write_text_atomic(out_md, "\n".join(lines))
    return out_md
