"""Pack the SID (short, long) training pairs for paired-real training (rule pair_store)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.data.pairs import build_sid_pair_store

build_sid_pair_store(
    snakemake.params.root,
    snakemake.params.out_dir,
    selection=snakemake.params.selection,
    crops=snakemake.params.crops,
    crop_hw=snakemake.params.crop_hw,
    patch_size=snakemake.params.patch_size,
    real=snakemake.params.real,
)
