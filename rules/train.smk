# Snakemake deletes a job's outputs before it runs and after it fails, so only files
# written at the very end are outputs: model_final.pt (written once training completes)
# and train_log.csv. The resume state (model_latest.pt) and the model_{epoch:03d}.pt
# checkpoints are not outputs: an interrupted training resumes from model_latest.pt.


rule train:
    input:
        unpack(get_train_inputs),
        code=get_variant_sources("train"),
    output:
        model="results/train/{variant}/model_final.pt",
        log_csv="results/train/{variant}/train_log.csv",
    log:
        "logs/train/{variant}.log",
    benchmark:
        "benchmarks/out/train/{variant}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 4
    resources:
        mem_mb=16000,
        runtime=4320,
        gpu=1,
    params:
        variant=get_variant,
        training=config["training"],
        patches_dir=get_train_store_dir,
        patch_size=config["patches"]["size"],
        dark_shading=lambda w, input: input.get("dark_shading"),
        out_dir=lambda w, output: os.path.dirname(output.model),
    script:
        "../workflow/scripts/train.py"
