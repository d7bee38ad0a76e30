"""Evaluate one variant on one evaluation set, per step (rule evaluate)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.gpu_slots import claim_gpu

claim_gpu()  # one GPU per job (sets CUDA_VISIBLE_DEVICES), before torch starts

from expodiff.evaluate import evaluate_variant

evaluate_variant(
    checkpoint=snakemake.input.checkpoint,
    eval_dir=snakemake.input.eval_set,
    variant=snakemake.params.variant,
    steps=snakemake.params.steps,
    protocols=snakemake.params.protocols,
    seed=snakemake.params.seed,
    camera_json=snakemake.input.camera,
    per_image_csv=snakemake.output.per_image,
    summary_csv=snakemake.output.summary,
    padding=snakemake.params.padding,
    dark_shading=snakemake.params.dark_shading,
    compute=snakemake.params.compute,
    eld_ratio=snakemake.params.eld_ratio,
)
