"""Write the ELD other-cameras table (rule eld_cameras_table)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.report.tables import build_camera_table, write_variant_table

cfg = snakemake.params.table
variants = snakemake.params.variant_cfgs
paths = iter(snakemake.input.summaries)  # camera-major, as the rule expands them
summaries = {camera: {v: next(paths) for v in variants} for camera in cfg["cameras"]}
table = build_camera_table(variants, summaries, cfg["ratios"], cfg["steps"], protocols=snakemake.params.protocols)
out = snakemake.output
write_variant_table(table, out.csv, out.md, out.tex, cfg["caption"])
