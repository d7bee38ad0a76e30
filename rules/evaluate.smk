rule evaluate:
    input:
        unpack(get_dark_shading_input),
        checkpoint="results/train/{variant}/model_final.pt",
        eval_set="results/eval_sets/{dataset}",
        camera=get_eval_camera_json,
        code=get_variant_sources("evaluate"),
    output:
        per_image="results/eval/{variant}/{dataset}/per_image.csv",
        summary="results/eval/{variant}/{dataset}/summary.csv",
    log:
        "logs/evaluate/{variant}/{dataset}.log",
    benchmark:
        "benchmarks/out/evaluate/{variant}/{dataset}.tsv"
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
        dark_shading=lambda w, input: input.get("dark_shading"),
        compute=config["compute"],
    script:
        "../workflow/scripts/evaluate.py"
