"""Build one paper table from evaluation summaries (rule table)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.report.tables import build_table, write_table

table = snakemake.params.table
summaries = dict(zip(snakemake.params.variants, snakemake.input.summaries))
frame = build_table(table, summaries, snakemake.input.paper, protocols=snakemake.params.protocols)
write_table(
    frame,
    csv=snakemake.output.csv,
    md=snakemake.output.md,
    tex=snakemake.output.tex,
    caption=table["caption"],
)
