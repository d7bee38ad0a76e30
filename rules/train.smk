# Snakemake deletes a job's outputs before it runs and after it fails, so only files
# written at the very end are outputs: model_final.pt (written once training completes)
# and train_log.csv (copied then from train_log.partial.csv, which is then removed). The
# resume state (model_latest.pt, train_log.partial.csv) and the model_{epoch:03d}.pt
# checkpoints are not outputs: an interrupted training resumes from model_latest.pt and
# keeps its log.


if uses_released_checkpoints():

    # evaluate the authors' checkpoints instead of training (`--config checkpoints=released`)
    ruleorder: released_checkpoint > train

    rule released_checkpoint:
        input:
            checkpoint=get_released_checkpoint,
            code=get_variant_sources("checkpoint"),
        output:
            model="results/train/{variant}/model_final.pt",
        log:
            "logs/released_checkpoint/{variant}.log",
        wildcard_constraints:
            variant="|".join(config["released_checkpoints"]["files"]) or "(?!)",
        conda:
            "../envs/torch.yaml"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=10,
        params:
            variant=get_variant,
        script:
            "../workflow/scripts/released_checkpoint.py"

    for file in get_missing_released_checkpoints():

        rule:
            name:
                f"missing_{os.path.splitext(os.path.basename(file))[0]}"
            output:
                file,
            log:
                f"logs/missing_checkpoint/{os.path.basename(file)}.log",
            conda:
                "../envs/report.yaml"
            threads: 1
            resources:
                mem_mb=100,
                runtime=1,
            params:
                message=(
                    f"released checkpoint {file} not found: download the file from the "
                    "Google Drive folder linked in the ExposureDiffusion README into "
                    f"{config['released_checkpoints']['folder']}"
                ),
            script:
                "../workflow/scripts/missing_file.py"


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
        training=get_training_settings,
        save_every=config["training"]["save_every"],
        patches_dir=get_train_store_dir,
        patch_size=config["patches"]["size"],
        dark_shading=lambda w, input: input.get("dark_shading"),
        out_dir=lambda w, output: os.path.dirname(output.model),
        compute=config["compute"],
    script:
        "../workflow/scripts/train.py"
