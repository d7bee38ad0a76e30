"""Train one variant; resumes from its own checkpoints (rule train)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.gpu_slots import claim_gpu

claim_gpu()  # one GPU per job (sets CUDA_VISIBLE_DEVICES), before torch starts

from expodiff.train import train_variant

train_variant(
    variant=snakemake.params.variant,
    training=snakemake.params.training,
    patches_dir=snakemake.params.patches_dir,
    camera_json=snakemake.input.camera,
    out_dir=snakemake.params.out_dir,
    log_csv=snakemake.output.log_csv,
    save_every=snakemake.params.save_every,
    patch_size=snakemake.params.patch_size,
    dark_shading=snakemake.params.dark_shading,
    compute=snakemake.params.compute,
)
