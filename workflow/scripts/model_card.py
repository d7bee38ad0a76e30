"""Write a camera model's card (rule model_card)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.provenance import config_hash, git_commit
from expodiff.report.model_card import write_model_card

variants = snakemake.params.variants
write_model_card(
    camera=snakemake.params.camera,
    entry=snakemake.params.entry,
    noise_json=snakemake.input.calibration,
    camera_json=snakemake.input.camera,
    variants=variants,
    logs=dict(zip(variants, snakemake.input.logs)),
    summaries=dict(zip(variants, snakemake.input.get("summaries", []))),
    figures=snakemake.input.get("figures", []),
    K_range=snakemake.params.K_range,
    protocols=snakemake.params.protocols,
    commit=git_commit(snakemake.params.repo),
    config_sha=config_hash(snakemake.params.run_config),
    out_md=snakemake.output.card,
)
