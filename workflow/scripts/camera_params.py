"""Export a camera's noise parameters to results/calibration (rule camera_params)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.physics.camera import export_camera_params

export_camera_params(snakemake.params.source, snakemake.output.json)
