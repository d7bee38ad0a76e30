"""Calibrate a camera's noise model from its dark and flat frames (rule calibrate)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.physics.calibrate import calibrate

calibrate(
    frames_dir=snakemake.params.frames,
    camera=snakemake.params.camera,
    out_json=snakemake.output.json,
    plots_dir=snakemake.params.plots_dir,
    dn_scale=snakemake.params.dn_scale,
)
