"""Take an authors' released checkpoint as a variant's model, after checking it fits (rule released_checkpoint)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.checkpoint import import_checkpoint

import_checkpoint(snakemake.input.checkpoint, snakemake.params.variant, snakemake.output.model)
