"""Write a camera's parameter file with its sensor block (rules noise_params, camera_params)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.physics.camera import export_camera_params

entry = snakemake.params.entry
export_camera_params(
    snakemake.input.params,
    snakemake.output.json,
    name=snakemake.params.camera,
    sensor=entry["sensor"],
    sample_raw=snakemake.params.test_pairs,  # a folder of the camera's raw files, or None
    dn_scale=entry["dn_scale"],
)
