"""Generate the demo's stand-in SID, ELD and calibration data (rule synthetic_data)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.data.synthetic import make_demo_data

make_demo_data(
    snakemake.output.data,
    seed=snakemake.params.seed,
    preset=snakemake.params.preset,
)
