"""Plot PSNR/SSIM against the number of steps (rule step_plot)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.report.plots import plot_step_curve

plot_step_curve(
    ours_summary=snakemake.input.ours,
    baseline_summary=snakemake.input.baseline,
    paper_step_csv=snakemake.input.paper,
    ratio=snakemake.params.ratio,
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
    steps=snakemake.params.steps,
    ddim_summary=snakemake.input.get("ddim"),
    protocols=snakemake.params.protocols,
)
