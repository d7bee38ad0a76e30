"""Generate a second camera's calibration frames and test pairs (rule synthetic_camera_data)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.data.synthetic import make_camera_data

make_camera_data(
    snakemake.output.data,
    camera=snakemake.params.generator,
    seed=snakemake.params.seed,
    preset=snakemake.params.preset,
)
