"""Figures and small tables for the HTML report (``snakemake --report``).

- ``scene_grids``: per evaluation scene, the amplified input X_T, the feed-forward baseline,
  ExposureDiffusion after each of its steps and the ground truth, in sRGB with PSNR in each title.
- ``plot_training_curves``: training loss against iteration, every variant in one figure.
- ``write_runtime``: wall time and peak memory of each benchmarked job (Snakemake ``benchmark:``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from expodiff.errors import ExpodiffError
from expodiff.io.atomic import atomic_dir, atomic_path
from expodiff.protocols import GT_FREE, ORACLE, SHORT_LABELS
from expodiff.report.render import packed_to_srgb
from expodiff.seeds import evaluation_seed

# scene_grids runs the networks: its torch-side imports are inside it, so the training curves
# and runtime figures need only numpy, pandas and matplotlib (envs/report.yaml)

GRID_COLUMNS = ["scene", "input_file", "ratio", "protocol", "panel", "n_steps", "step", "psnr"]
PANEL_INCHES = 2.6


# --- image grids ---------------------------------------------------------------------------


def grey_world_wb(packed: np.ndarray) -> tuple[float, float, float]:
    """White-balance gains (R, G, B) that equalise the channel means of a packed image to G's."""
    means = np.array([packed[0].mean(), 0.5 * (packed[1].mean() + packed[3].mean()), packed[2].mean()]) + 1e-8
    return tuple(float(g) for g in means[1] / means)


def scene_file_name(scene: str) -> str:
    """A scene id as a file name stem (letters, digits, '-', '_', '.')."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(scene))


def scene_grids(
    eval_dir,
    camera_json,
    baseline: dict,
    baseline_checkpoint,
    ours: dict,
    ours_checkpoint,
    ratio: int,
    n_steps: int,
    oracle: bool,
    seed: int,
    out_dir,
    padding: str | dict = "original",
    compute=None,
    eld_ratio: str = "original",
) -> pd.DataFrame:
    """One PNG per scene of ``eval_dir`` at ``ratio`` in ``out_dir`` (``{scene}.png``), plus ``psnr.csv``.

    ``baseline`` and ``ours`` are variant config entries with "name" (the panels' names; each
    is run as its own method, with the steps its method runs of ``n_steps``, and shown after
    each prediction). Each checkpoint is rebuilt from the spec it records, which must be its
    variant's. A scene with several inputs at ``ratio`` (ELD) gets
    one row per input. Every panel of a row is rendered with the ground truth's grey-world white
    balance. PSNR is on the packed raw image as the evaluation measures it: ``oracle`` True runs
    the oracle protocol (the paper's: ground-truth illumination correction), False the GT-free one
    (the input X_T is never corrected). Returns the PSNR table (``psnr.csv``).
    ``padding``: one for both networks, or {"baseline": ..., "ours": ...} (each variant's
    recipe's eval_padding, as its evaluation). ``compute``: where the networks run (config
    ``compute``; None: CPU fp32), ``eld_ratio``: how
    the measured ratio becomes amplification and ladder (config ``evaluation.eld_ratio``), as in
    the evaluation.
    """
    from expodiff.device import compute_settings

    compute = compute_settings(compute)
    from expodiff.checkpoint import load_model
    from expodiff.data.eval_sets import read_eval_index
    from expodiff.methods import MethodSpec

    # panel → (variant, network, spec)
    nets = {
        panel: (variant, *load_model(path, MethodSpec.from_variant(variant), f"variants.{variant['name']}",
                                     device=compute.device))
        for panel, variant, path in (("baseline", baseline, baseline_checkpoint), ("ours", ours, ours_checkpoint))
    }
    camera = json.loads(Path(camera_json).read_text())
    index = read_eval_index(eval_dir)
    index["row"] = range(len(index))  # position in the index: part of the evaluation's seeds
    index = index[index["ratio"].astype(int) == int(ratio)]
    if index.empty:
        raise ExpodiffError(f"{eval_dir}: no images at ratio {ratio} in index.csv")
    records = []
    with atomic_dir(out_dir, marker="psnr.csv") as tmp:
        for scene, rows in index.groupby("scene", sort=False):
            panels = [_scene_row(rec, nets, camera, n_steps, oracle, seed, padding, compute, eld_ratio)
                      for rec in rows.itertuples()]  # fmt: skip
            protocol = SHORT_LABELS[ORACLE if oracle else GT_FREE]
            _save_grid(tmp / f"{scene_file_name(scene)}.png", panels, f"scene {scene}, ×{int(ratio)}, {protocol} protocol")
            records += [r for _, _, row in panels for r in row]
        table = pd.DataFrame(records, columns=GRID_COLUMNS)
        table.to_csv(tmp / "psnr.csv", index=False, float_format="%.6f")
    return table


def _scene_row(rec, nets, camera, n_steps, oracle, seed, padding, compute, eld_ratio):
    """(input file, [(title, sRGB image)], PSNR records) of one evaluation image."""
    import torch

    from expodiff.data.eld import input_ratios
    from expodiff.inference import amplify, enhance
    from expodiff.metrics import psnr_ssim
    from expodiff.physics.camera import dn_scale
    from expodiff.physics.noise import k_from_iso

    x_short, gt = np.load(rec.input_npy), np.load(rec.gt_npy)
    ratio, K = int(rec.ratio), k_from_iso(float(rec.iso), camera)
    amplification, ladder_ratio = input_ratios(float(rec.exposure_ratio), eld_ratio)
    wb = grey_world_wb(gt)
    x_t = amplify(torch.as_tensor(x_short, dtype=torch.float32), amplification).numpy()

    shown = [("input", 1, 1, f"input X_T (×{ratio})", x_t)]
    for panel, (variant, net, spec) in nets.items():
        n = max(spec.impl.run_steps([n_steps]))  # a one-step method (the baseline) runs once
        preds = enhance(net, spec, x_short, ladder_ratio, K, n, gt=gt if oracle else None,
                        generator=compute.generator(evaluation_seed(seed, rec.row, n)),
                        padding=padding[panel] if isinstance(padding, dict) else padding,
                        compute=compute, amplification=amplification, dn_scale=dn_scale(camera))  # fmt: skip
        for step, pred in zip(spec.impl.step_labels(n, preds), preds):
            title = f"{panel}, step {step}/{n}" if len(preds) > 1 else f"{panel} ({variant['name']})"
            shown.append((panel, n, step, title, pred))
    panels, records = [], []
    protocol = ORACLE if oracle else GT_FREE
    for panel, n, step, title, image in shown:
        psnr = psnr_ssim(gt, image)[0]
        records.append([str(rec.scene), Path(str(rec.input_file)).name, ratio, protocol, panel, n, step, psnr])
        panels.append((f"{title}\nPSNR {psnr:.2f} dB", packed_to_srgb(image, wb=wb)))
    panels.append(("ground truth", packed_to_srgb(gt, wb=wb)))
    return Path(str(rec.input_file)).name, panels, records


def _save_grid(path: Path, rows: Sequence[tuple], title: str) -> None:
    """Rows of (input file, [(title, image)]) as one figure, panels left to right."""
    n_cols = max(len(panels) for _, panels, _ in rows)
    h, w = rows[0][1][0][1].shape[:2]
    fig = Figure(figsize=(PANEL_INCHES * n_cols, (PANEL_INCHES * h / w + 0.6) * len(rows) + 0.3), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rows), n_cols, squeeze=False))
    for r, (input_file, panels, _) in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.set_axis_off()
            if c < len(panels):
                ax.imshow(panels[c][1])
                ax.set_title(panels[c][0], fontsize="small")
        axes[r][0].text(-0.04, 0.5, input_file, transform=axes[r][0].transAxes, rotation=90,
                        va="center", ha="right", fontsize="x-small")  # fmt: skip
    fig.suptitle(title)
    fig.savefig(path, format="png", dpi=100)


# --- training curves -----------------------------------------------------------------------


def plot_training_curves(logs: Mapping[str, str | os.PathLike], png, methods: Mapping[str, str]) -> None:
    """Loss against iteration of every variant (log-scale y), from each ``train_log.csv``.

    Long logs are drawn as a running mean over 1 % of their iterations (the legend says over
    how many). ``methods``: variant name → its method's name; the line style is the method's
    (``Method.style``: ours solid, baseline dashed, DDIM dotted).
    """
    from expodiff.methods import get_method

    fig = Figure(figsize=(9.0, 5.0), layout="constrained")
    ax = fig.subplots()
    cmap = colormaps["tab20"]
    for i, (name, path) in enumerate(logs.items()):
        log = _read_log(path)
        window = max(1, len(log) // 100)
        loss = log["loss"].rolling(window, min_periods=1).mean()
        style = get_method(methods[name]).style.linestyle
        label = name if window == 1 else f"{name} (mean of {window})"
        ax.plot(log["iteration"], loss, style, color=cmap(i % 20), label=label, linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss (log scale)")
    ax.set_title("Training loss per variant")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def _read_log(path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise ExpodiffError(f"{path}: training log not found")
    log = pd.read_csv(path)
    missing = [c for c in ("iteration", "loss") if c not in log.columns]
    if missing:
        raise ExpodiffError(f"{path}: training log lacks column(s) {', '.join(missing)}")
    if log.empty:
        raise ExpodiffError(f"{path}: training log has no iterations")
    return log


# --- runtime per job -----------------------------------------------------------------------

RUNTIME_COLUMNS = ["rule", "job", "seconds", "h:m:s", "max_rss_mb", "cpu_seconds", "mean_load"]


def runtime_table(benchmarks: Mapping[str, str | os.PathLike]) -> pd.DataFrame:
    """One row per job from Snakemake benchmark TSVs; ``benchmarks`` maps "rule/job" to a TSV.

    Repeated measurements (``repeat()``) are averaged; a missing file or a value Snakemake could
    not measure ("-") is left empty (NaN), so a job that ran before it was benchmarked still has a row.
    """
    records = []
    for label, path in benchmarks.items():
        rule, _, job = label.partition("/")
        record = {"rule": rule, "job": job}
        path = Path(path)
        if path.is_file():
            bench = pd.read_csv(path, sep="\t", na_values=["-", "NA"])
            for column, source in (("seconds", "s"), ("max_rss_mb", "max_rss"), ("cpu_seconds", "cpu_time"),
                                   ("mean_load", "mean_load")):  # fmt: skip
                values = pd.to_numeric(bench.get(source, pd.Series(dtype=float)), errors="coerce")
                record[column] = float(values.mean()) if values.notna().any() else np.nan
        seconds = record.get("seconds", np.nan)
        record["h:m:s"] = "" if np.isnan(seconds) else _hms(seconds)
        records.append(record)
    return pd.DataFrame.from_records(records, columns=RUNTIME_COLUMNS)


def _hms(seconds: float) -> str:
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{sec:02d}"


def write_runtime(benchmarks: Mapping[str, str | os.PathLike], csv, png) -> pd.DataFrame:
    """``runtime_table`` as CSV and as a figure: wall time and peak memory (RSS) per job."""
    table = runtime_table(benchmarks)
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    labels = [f"{r.rule} {r.job.replace('/', ' on ')}" for r in table.itertuples()]
    fig = Figure(figsize=(10.0, 1.2 + 0.22 * max(len(table), 1)), layout="constrained")
    colours = {rule: colormaps["tab10"](i % 10) for i, rule in enumerate(dict.fromkeys(table["rule"]))}
    y = np.arange(len(table))
    for ax, column, name in zip(fig.subplots(1, 2, sharey=True), ("seconds", "max_rss_mb"),
                                ("wall time (s)", "peak memory, max RSS (MB)")):  # fmt: skip
        ax.barh(y, table[column].fillna(0), color=[colours[r] for r in table["rule"]])
        ax.set_xlabel(name)
        ax.grid(alpha=0.3, axis="x")
    fig.axes[0].set_yticks(y, labels, fontsize="x-small")
    fig.axes[0].invert_yaxis()
    fig.suptitle("Runtime per benchmarked job (empty bar: not measured)")
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return table
