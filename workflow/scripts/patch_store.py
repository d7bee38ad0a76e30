"""Cut the SID training ground truths into a patch store (rule patch_store)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.data.patches import build_patch_store
from expodiff.data.sid import sid_train_gt_files

build_patch_store(
    sid_train_gt_files(snakemake.params.root),
    out_dir=snakemake.params.out_dir,
    patch_size=snakemake.params.patch_size,
    crop_hw=snakemake.params.crop_hw,
)
