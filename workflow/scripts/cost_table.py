"""Table 5b: parameters, MACs and inference time per backbone (rule cost_table)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.gpu_slots import claim_gpu

claim_gpu()  # one GPU per job (sets CUDA_VISIBLE_DEVICES), before torch starts

from expodiff.report.cost import build_cost_table
from expodiff.report.tables import write_plain_table

cfg = snakemake.params.cost
table = build_cost_table(cfg["backbones"], snakemake.input.paper, count_size=cfg["count_size"],
                         time_size=cfg["time_size"], repeats=cfg["repeats"], n_steps=cfg["steps"])
out = snakemake.output
write_plain_table(table, out.csv, out.md, out.tex, cfg["caption"],
                  digits={"macs": 3, "seconds": 4})
