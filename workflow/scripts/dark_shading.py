"""Fit PMN's dark-shading maps from raw dark frames (rule dark_shading)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.data.pmn import fit_dark_shading

fit_dark_shading(snakemake.params.frames, snakemake.output.npz)
