"""Write the mini run's summary and learning curves (rule mini_summary)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.provenance import config_hash, git_commit
from expodiff.report.mini import write_mini_summary

write_mini_summary(
    baseline_csv=snakemake.input.baseline[0],
    ours_csv=snakemake.input.ours[0],
    eval_set=snakemake.input.eval_set[0],
    logs=dict(zip(snakemake.params.methods, snakemake.input.logs)),
    methods=snakemake.params.methods,
    paper_csv=snakemake.input.paper,
    step_curve_csv=snakemake.input.step_curve,
    settings=snakemake.params.summary,
    protocols=snakemake.params.protocols,
    eval_steps=snakemake.params.eval_steps,
    eld_ratio=snakemake.params.eld_ratio,
    commit=git_commit(snakemake.params.repo),
    config_sha=config_hash(snakemake.params.run_config),
    md=snakemake.output.md,
    csv=snakemake.output.csv,
    curves_png=snakemake.output.curves,
)
