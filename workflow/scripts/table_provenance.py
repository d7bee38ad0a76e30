"""Record what one table was made from: commit, config, checkpoints, data (rule table_provenance)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.provenance import table_provenance, write_provenance

datasets = {k: snakemake.input[k] for k in ("eval_set", "source") if k in snakemake.input.keys()}
provenance = table_provenance(
    config=snakemake.params.run_config,
    repo_dir=snakemake.params.repo,
    checkpoints=dict(zip(snakemake.params.variants, snakemake.input.checkpoints)),
    datasets=datasets,
    tables=snakemake.input.tables,
)
write_provenance(snakemake.output.json, provenance)
