"""Training loss against iteration of every variant, one figure (rule training_curves)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.report.figures import plot_training_curves

plot_training_curves(
    dict(zip(snakemake.params.variants, snakemake.input.logs)),
    snakemake.output.png,
    methods=snakemake.params.methods,
)
