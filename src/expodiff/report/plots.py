"""The step-convergence figure: PSNR and SSIM against the number of network evaluations.

Ours is the final prediction of each n-step run (``step == n_steps`` in the summary), the
feed-forward baseline a horizontal line, and the paper's points (ExposureDiffusion and the
DDIM-based baseline, read off its figure) are overlaid with their own markers. This run's curves
are drawn once per evaluation protocol (``expodiff.protocols``): oracle solid, GT-free dashed;
the paper's points are oracle ones.
"""

from __future__ import annotations

import os
from typing import Sequence

import pandas as pd
from matplotlib.figure import Figure

from expodiff.errors import ExpodiffError
from expodiff.io.atomic import atomic_path
from expodiff.protocols import GT_FREE, ORACLE, PROTOCOLS, SHORT_LABELS, check_protocols
from expodiff.report.tables import _read_csv

METRICS = (("psnr", "PSNR (dB)"), ("ssim", "SSIM"))
PAPER_STYLE = {  # step_curve.csv method -> legend label, marker, colour
    "ours": ("paper: ExposureDiffusion (oracle)", "s", "tab:blue"),
    "ddim": ("paper: DDIM-based (oracle)", "^", "tab:gray"),
}
PROTOCOL_LINESTYLE = {ORACLE: "-", GT_FREE: "--"}  # this run's curves; the paper's are dotted
SUMMARY_COLUMNS = ["protocol", "ratio", "n_steps", "step", "psnr", "ssim"]


def step_curve(summary: pd.DataFrame, ratio: int, steps: Sequence[int] | None = None,
               protocol: str = ORACLE) -> pd.DataFrame:
    """Final prediction of each n-step run at ``ratio`` under ``protocol``, one row per n_steps (sorted)."""
    rows = summary[(summary["protocol"] == protocol) & (summary["ratio"] == ratio)
                   & (summary["step"] == summary["n_steps"])]  # fmt: skip
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
    protocols=tuple(PROTOCOLS),
) -> Figure:
    """Two panels (PSNR, SSIM) against the number of steps; written as PNG and PDF, atomically
    (and returned).

    ``steps`` restricts ours to those step counts (default: every n_steps in the summary);
    ``ddim_summary`` adds this run's DDIM-based baseline at every sampler step count it has.
    ``protocols`` (config ``evaluation.protocols``): this run's curves under each, in its line
    style (``PROTOCOL_LINESTYLE``); every summary must hold them all.
    """
    protocols = check_protocols(protocols)
    summaries = {"ours": _read_csv(ours_summary, SUMMARY_COLUMNS, "evaluation summary"),
                 "base": _read_csv(baseline_summary, SUMMARY_COLUMNS, "evaluation summary")}  # fmt: skip
    if ddim_summary is not None:
        summaries["ddim"] = _read_csv(ddim_summary, SUMMARY_COLUMNS, "evaluation summary")
    curves = {}  # protocol -> (ours, baseline row, ddim or None)
    for protocol in protocols:
        ours = step_curve(summaries["ours"], ratio, steps, protocol)
        if ours.empty:
            raise ExpodiffError(f"{ours_summary}: no final-step rows for protocol {protocol}, ratio {ratio}")
        if steps is not None and len(ours) != len(set(steps)):
            missing = sorted(set(steps) - set(ours["n_steps"]))
            raise ExpodiffError(f"{ours_summary}: no rows for protocol {protocol}, ratio {ratio} with n_steps {missing}")
        base = step_curve(summaries["base"], ratio, [1], protocol)
        if len(base) != 1:
            raise ExpodiffError(f"{baseline_summary}: expected one row for protocol {protocol}, ratio {ratio}, "
                                f"n_steps 1, found {len(base)}")
        ddim = step_curve(summaries["ddim"], ratio, protocol=protocol) if "ddim" in summaries else None
        if ddim is not None and ddim.empty:
            raise ExpodiffError(f"{ddim_summary}: no final-step rows for protocol {protocol}, ratio {ratio}")
        curves[protocol] = (ours, base, ddim)
    paper = _read_csv(paper_step_csv, ["method", "steps", "psnr", "ssim"], "paper step curve")

    fig = Figure(figsize=(8.0, 3.6), layout="constrained")
    for ax, (metric, name) in zip(fig.subplots(1, 2), METRICS):
        for method, (label, marker, colour) in PAPER_STYLE.items():
            points = paper[paper["method"] == method].sort_values("steps")
            ax.plot(points["steps"], points[metric], marker=marker, linestyle=":", color=colour,
                    markerfacecolor="none", label=label)  # fmt: skip
        for protocol, (ours, base, ddim) in curves.items():
            style, which = PROTOCOL_LINESTYLE[protocol], SHORT_LABELS[protocol]
            ax.plot(ours["n_steps"], ours[metric], marker="o", linestyle=style, color="tab:red",
                    label=f"ours (this run, {which})")  # fmt: skip
            if ddim is not None:
                ax.plot(ddim["n_steps"], ddim[metric], marker="^", linestyle=style, color="tab:gray",
                        label=f"DDIM-based (this run, {which})")  # fmt: skip
            ax.axhline(base[metric].iloc[0], color="tab:green", linestyle=style, label=f"baseline (this run, {which})")
        ax.set_xlabel("number of steps (network evaluations)")
        ax.set_ylabel(name)
        ax.set_title(f"{name.split()[0]} at ×{ratio}")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize="x-small")
    if len(curves) > 1:
        fig.suptitle("solid: oracle protocol (ground truth in inference, as the paper); dashed: GT-free",
                     fontsize="small")  # fmt: skip
    for path, fmt in ((png, "png"), (pdf, "pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150)
    return fig
