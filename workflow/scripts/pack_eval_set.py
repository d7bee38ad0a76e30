"""Pack one evaluation set: index.csv plus one .npy per image (rule pack_eval_set)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.data.eval_sets import pack_dataset

dataset = snakemake.params.dataset
pack_dataset(
    kind=dataset["kind"],
    root=snakemake.params.root,
    camera=dataset["camera"],
    scenes=dataset["scenes"],
    ratios=dataset["ratios"],
    out_dir=snakemake.output.eval_set,
    crop=dataset["crop"],
)
