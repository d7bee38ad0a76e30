"""Download one dataset archive: resumable, size/SHA-256 verified, renamed into place (rule download_*)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.io.download import download

download(snakemake.params.url, snakemake.output.archive, sha256=snakemake.params.sha256, size=snakemake.params.size)
