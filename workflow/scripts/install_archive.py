"""Extract a downloaded dataset archive where the config expects the dataset (rule install_*)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.data.fetch import install_archive

install_archive(snakemake.input.archive, snakemake.params.dest, snakemake.params.expected)
