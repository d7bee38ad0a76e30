"""Image grids of the step plot's variants, one PNG per evaluation scene (rule scene_grids)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from expodiff.gpu_slots import claim_gpu

claim_gpu()  # one GPU per job (sets CUDA_VISIBLE_DEVICES), before torch starts

from expodiff.report.figures import scene_grids

scene_grids(
    eval_dir=snakemake.input.eval_set,
    camera_json=snakemake.input.camera,
    baseline=snakemake.params.baseline,
    baseline_checkpoint=snakemake.input.baseline,
    ours=snakemake.params.ours,
    ours_checkpoint=snakemake.input.ours,
    ratio=snakemake.params.ratio,
    n_steps=snakemake.params.n_steps,
    oracle=snakemake.params.oracle,
    seed=snakemake.params.seed,
    out_dir=snakemake.output.grids,
    compute=snakemake.params.compute,
    eld_ratio=snakemake.params.eld_ratio,
    padding=snakemake.params.padding,
)
