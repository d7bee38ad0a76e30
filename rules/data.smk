if config["data"]["source"] == "synthetic":

    rule synthetic_data:
        input:
            code=get_library_sources("data.synthetic"),
        output:
            # SID/, ELD/, calibration/ and MANIFEST.json, built beside it and renamed into place
            data=directory(SYNTHETIC_DIR),
        log:
            "logs/synthetic_data/synthetic_data.log",
        conda:
            "../envs/torch.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=15,
        params:
            seed=config["data"]["synthetic"]["seed"],
            preset=config["data"]["synthetic"]["preset"],
        script:
            "../workflow/scripts/synthetic_data.py"


# Source real without the data: plan the DAG anyway, and fail with a clear message
# if a job needs it. (Download rules arrive with issue 6.)
if get_missing_raw_data():

    rule dataset_missing:
        output:
            marker="{marker}",
        log:
            "logs/dataset_missing/{marker}.log",
        wildcard_constraints:
            marker="|".join(map(re.escape, get_missing_raw_data())),
        conda:
            "../envs/report.yaml"
        threads: 1
        resources:
            mem_mb=100,
            runtime=1,
        params:
            message=get_missing_message,
        script:
            "../workflow/scripts/dataset_missing.py"


rule pack_eval_set:
    input:
        raw=get_dataset_marker,
        code=get_library_sources("data.eval_sets"),
    output:
        # index.csv plus one .npy per image, built beside it and renamed into place
        eval_set=directory("results/eval_sets/{dataset}"),
    log:
        "logs/pack_eval_set/{dataset}.log",
    conda:
        "../envs/rawio.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        root=get_dataset_root,
        dataset=get_dataset,
    script:
        "../workflow/scripts/pack_eval_set.py"


rule patch_store:
    input:
        raw=get_raw_marker("sid", "Sony_train_list.txt"),
        code=get_library_sources("data.sid", "data.patches"),
    output:
        patches="results/patches/sid_train/patches.npy",
        meta="results/patches/sid_train/meta.json",
    log:
        "logs/patch_store/sid_train.log",
    conda:
        "../envs/rawio.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        root=lambda w: get_raw_root("sid"),
        patch_size=config["patches"]["size"],
        crop_hw=config["patches"]["crop"],
        out_dir=lambda w, output: os.path.dirname(output.meta),
    script:
        "../workflow/scripts/patch_store.py"


rule pair_store:
    input:
        raw=get_raw_marker("sid", "Sony_train_list.txt"),
        code=get_library_sources("data.sid", "data.pairs"),
    output:
        # short_NNNN.npy, long_NNNN.npy and meta.json, built beside it and renamed into place
        store=directory("results/pairs/sid_train"),
    log:
        "logs/pair_store/sid_train.log",
    conda:
        "../envs/rawio.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        root=lambda w: get_raw_root("sid"),
        out_dir=lambda w, output: output.store,
    script:
        "../workflow/scripts/pair_store.py"


if config["pmn"]["dark_frames"]:

    rule dark_shading:
        input:
            frames=get_dark_frames_input(),
            code=get_library_sources("data.pmn"),
        output:
            npz=DARK_SHADING,
        log:
            "logs/dark_shading/dark_shading.log",
        conda:
            "../envs/rawio.yaml"
        threads: 1
        resources:
            mem_mb=8000,
            runtime=60,
        params:
            frames=config["pmn"]["dark_frames"],
        script:
            "../workflow/scripts/dark_shading.py"
