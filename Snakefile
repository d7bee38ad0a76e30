# expodiff: ExposureDiffusion (Wang et al., ICCV 2023) reproduced as one DAG.
# Stages: data -> calibrate -> train -> evaluate -> report; see README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/calibrate.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
include: "rules/camera_model.smk"
include: "rules/eld_cameras.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
