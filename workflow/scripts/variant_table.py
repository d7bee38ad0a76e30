"""Every variant on one evaluation set, e.g. the ELD dataset (rule variant_table)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.report.tables import build_variant_table, write_variant_table

cfg = snakemake.params.table
summaries = dict(zip(snakemake.params.variants, snakemake.input.summaries))
table = build_variant_table(snakemake.params.variant_cfgs, summaries, cfg["ratios"], cfg["steps"],
                            protocols=snakemake.params.protocols)
out = snakemake.output
write_variant_table(table, out.csv, out.md, out.tex, cfg["caption"])
