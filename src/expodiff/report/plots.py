"""The step-convergence figure: PSNR and SSIM against the number of network evaluations.

Ours is the final prediction of each n-step run (``step == n_steps`` in the summary), the
feed-forward baseline a horizontal line, and the paper's points (ExposureDiffusion and the
DDIM-based baseline, read off its figure) are overlaid with their own markers.
"""

from __future__ import annotations

import os
from typing import Sequence

import pandas as pd
from matplotlib.figure import Figure

from expodiff.errors import ExpodiffError
from expodiff.io.atomic import atomic_path
from expodiff.report.tables import _read_csv

METRICS = (("psnr", "PSNR (dB)"), ("ssim", "SSIM"))
PAPER_STYLE = {  # step_curve.csv method -> legend label, marker, colour
    "ours": ("paper: ExposureDiffusion", "s", "tab:blue"),
    "ddim": ("paper: DDIM-based", "^", "tab:gray"),
}


def step_curve(summary: pd.DataFrame, ratio: int, steps: Sequence[int] | None = None) -> pd.DataFrame:
    """Final prediction of each n-step run at ``ratio``, one row per n_steps (sorted)."""
    rows = summary[(summary["ratio"] == ratio) & (summary["step"] == summary["n_steps"])]
    if steps is not None:
        rows = rows[rows["n_steps"].isin(list(steps))]
    return rows.sort_values("n_steps").reset_index(drop=True)


def plot_step_curve(
    ours_summary: str | os.PathLike,
    baseline_summary: str | os.PathLike,
    paper_step_csv: str | os.PathLike,
    ratio: int,
    png: str | os.PathLike,
    pdf: str | os.PathLike,
    steps: Sequence[int] | None = None,
    ddim_summary: str | os.PathLike | None = None,
) -> None:
    """Two panels (PSNR, SSIM) against the number of steps; written as PNG and PDF, atomically.

    ``steps`` restricts ours to those step counts (default: every n_steps in the summary);
    ``ddim_summary`` adds this run's DDIM-based baseline at every sampler step count it has.
    """
    columns = ["ratio", "n_steps", "step", "psnr", "ssim"]
    ours = step_curve(_read_csv(ours_summary, columns, "evaluation summary"), ratio, steps)
    if ours.empty:
        raise ExpodiffError(f"{ours_summary}: no final-step rows for ratio {ratio}")
    if steps is not None and len(ours) != len(set(steps)):
        missing = sorted(set(steps) - set(ours["n_steps"]))
        raise ExpodiffError(f"{ours_summary}: no rows for ratio {ratio} with n_steps {missing}")
    base = step_curve(_read_csv(baseline_summary, columns, "evaluation summary"), ratio, steps=[1])
    if len(base) != 1:
        raise ExpodiffError(f"{baseline_summary}: expected one row for ratio {ratio}, n_steps 1, found {len(base)}")
    paper = _read_csv(paper_step_csv, ["method", "steps", "psnr", "ssim"], "paper step curve")
    ddim = None if ddim_summary is None else step_curve(_read_csv(ddim_summary, columns, "evaluation summary"), ratio)

    fig = Figure(figsize=(8.0, 3.2), layout="constrained")
    for ax, (metric, name) in zip(fig.subplots(1, 2), METRICS):
        for method, (label, marker, colour) in PAPER_STYLE.items():
            points = paper[paper["method"] == method].sort_values("steps")
            ax.plot(points["steps"], points[metric], marker=marker, linestyle=":", color=colour,
                    markerfacecolor="none", label=label)  # fmt: skip
        ax.plot(ours["n_steps"], ours[metric], marker="o", color="tab:red", label="ours (this run)")
        if ddim is not None:
            ax.plot(ddim["n_steps"], ddim[metric], marker="^", color="tab:gray", label="DDIM-based (this run)")
        ax.axhline(base[metric].iloc[0], color="tab:green", linestyle="--", label="baseline (this run)")
        ax.set_xlabel("number of steps (network evaluations)")
        ax.set_ylabel(name)
        ax.set_title(f"{name.split()[0]} at ×{ratio}")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize="small")
    for path, fmt in ((png, "png"), (pdf, "pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150)
