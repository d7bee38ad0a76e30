"""Wall time and peak memory of every benchmarked train/evaluate job (rule runtime)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.report.figures import write_runtime

write_runtime(snakemake.params.benchmarks, csv=snakemake.output.csv, png=snakemake.output.png)
