# The ELD dataset's other cameras (eld_cameras; off by default): the SonyA7S2-trained variants on
# each camera's ELD scenes, packed by pack_camera_pairs (rules/camera_model.smk), K from the
# camera's parameter file (results/cameras/{camera}.json: its ELD release parameters and the raw
# format of its own files), and one table.


rule evaluate_eld_camera:
    input:
        checkpoint="results/train/{variant}/model_final.pt",
        eval_set="results/camera_models/{camera}/eval_set",
        camera="results/cameras/{camera}.json",
        code=get_variant_sources("evaluate"),
    output:
        per_image="results/eld_cameras/{camera}/{variant}/per_image.csv",
        summary="results/eld_cameras/{camera}/{variant}/summary.csv",
    log:
        "logs/eld_cameras/{camera}/{variant}.log",
    wildcard_constraints:
        camera="|".join(config["eld_cameras"]["cameras"]),
        variant="|".join(config["eld_cameras"]["variants"]),
    conda:
        "../envs/torch.yaml"
    threads: 4
    resources:
        mem_mb=16000,
        runtime=480,
        gpu=1,
    params:
        variant=get_variant,
        steps=get_eval_steps,
        protocols=config["evaluation"]["protocols"],
        eld_ratio=config["evaluation"]["eld_ratio"],
        seed=config["evaluation"]["seed"],
        padding=get_eval_padding,
        dark_shading=None,
        compute=config["compute"],
    script:
        "../workflow/scripts/evaluate.py"


rule eld_cameras_table:
    input:
        summaries=expand(
            "results/eld_cameras/{camera}/{variant}/summary.csv",
            camera=config["eld_cameras"]["cameras"],
            variant=config["eld_cameras"]["variants"],
        ),
        code=get_library_sources("report.tables"),
    output:
        csv=report(
            "results/tables/eld_cameras.csv",
            caption="../workflow/report/variant_table.rst",
            category="Tables",
            labels={"table": "eld_cameras", "format": "csv"},
        ),
        md=report(
            "results/tables/eld_cameras.md",
            caption="../workflow/report/variant_table.rst",
            category="Tables",
            labels={"table": "eld_cameras", "format": "md"},
        ),
        tex=report(
            "results/tables/eld_cameras.tex",
            caption="../workflow/report/variant_table.rst",
            category="Tables",
            labels={"table": "eld_cameras", "format": "tex"},
        ),
    log:
        "logs/eld_cameras/table.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        table=config["eld_cameras"],
        variant_cfgs={
            v: config["variants"][v] for v in config["eld_cameras"]["variants"]
        },
        protocols=config["evaluation"]["protocols"],
    script:
        "../workflow/scripts/eld_cameras_table.py"


rule eld_cameras:
    input:
        rules.eld_cameras_table.output,
