# A model for one camera (docs/CALIBRATE.md): the camera_model.variants' networks trained on SID's
# clean long exposures (the patch store) with the camera's own noise model, evaluated on its test
# pairs when it has some, and a model card. Targets: camera_model (the config's `camera`:
# `snakemake --config camera=NAME camera_model`) and camera_model_NAME for each camera.


rule train_camera_model:
    input:
        store=get_train_store,
        camera="results/calibration/{camera}.json",
        code=get_variant_sources("train"),
    output:
        model="results/camera_models/{camera}/train/{variant}/model_final.pt",
        log_csv="results/camera_models/{camera}/train/{variant}/train_log.csv",
    log:
        "logs/camera_models/{camera}/train/{variant}.log",
    benchmark:
        "benchmarks/out/camera_models/{camera}/train/{variant}.tsv"
    wildcard_constraints:
        camera=get_cameras_pattern(),
        variant="|".join(config["camera_model"]["variants"]),
    conda:
        "../envs/torch.yaml"
    threads: 4
    resources:
        mem_mb=16000,
        runtime=4320,
        gpu=1,
    params:
        variant=get_variant,
        training=get_camera_training_settings,
        save_every=config["training"]["save_every"],
        patches_dir=get_train_store_dir,
        patch_size=config["patches"]["size"],
        dark_shading=None,
        out_dir=lambda w, output: os.path.dirname(output.model),
        compute=config["compute"],
    script:
        "../workflow/scripts/train.py"


rule pack_camera_pairs:
    input:
        pairs=get_camera_pairs_input,
        code=get_library_sources("data.eval_sets", "data.eld"),
    output:
        # index.csv plus one .npy per image, built beside it and renamed into place
        eval_set=directory("results/camera_models/{camera}/eval_set"),
    log:
        "logs/camera_models/{camera}/pack_camera_pairs.log",
    wildcard_constraints:
        camera=get_cameras_pattern(),
    conda:
        "../envs/rawio.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        root=lambda w: os.path.dirname(get_test_pairs(w.camera)),
        dataset=get_camera_pairs_dataset,
    script:
        "../workflow/scripts/pack_eval_set.py"


rule evaluate_camera_model:
    input:
        checkpoint="results/camera_models/{camera}/train/{variant}/model_final.pt",
        eval_set="results/camera_models/{camera}/eval_set",
        camera="results/cameras/{camera}.json",
        code=get_variant_sources("evaluate"),
    output:
        per_image="results/camera_models/{camera}/eval/{variant}/per_image.csv",
        summary="results/camera_models/{camera}/eval/{variant}/summary.csv",
    log:
        "logs/camera_models/{camera}/evaluate/{variant}.log",
    wildcard_constraints:
        camera=get_cameras_pattern(),
        variant="|".join(config["camera_model"]["variants"]),
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


rule model_card:
    input:
        unpack(get_model_card_inputs),
        code=get_library_sources("report.model_card"),
    output:
        card=report(
            "results/camera_models/{camera}/model_card.md",
            caption="../workflow/report/model_card.rst",
            category="Camera models",
            labels={"camera": "{camera}"},
        ),
    log:
        "logs/camera_models/{camera}/model_card.log",
    wildcard_constraints:
        camera=get_cameras_pattern(),
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        camera=lambda w: w.camera,
        entry=get_camera,
        variants=lambda w: {
            v: get_training_settings(SimpleNamespace(variant=v))
            for v in config["camera_model"]["variants"]
        },
        K_range=config["camera_model"]["K_range"],
        protocols=config["evaluation"]["protocols"],
        run_config=config,
        repo=os.path.relpath(workflow.basedir),
    script:
        "../workflow/scripts/model_card.py"


rule camera_model:
    input:
        f"results/camera_models/{config['camera']}/model_card.md",


for _camera in config["cameras"]:

    rule:
        name:
            f"camera_model_{_camera}"
        input:
            f"results/camera_models/{_camera}/model_card.md",
