"""Software versions and the resolved config of this run (rule environment)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.provenance import write_environment

write_environment(
    snakemake.output.txt,
    config=snakemake.params.run_config,
    repo_dir=snakemake.params.repo,
    given_versions=snakemake.params.versions,
)
