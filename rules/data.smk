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

    # a generated camera other than the Sony (expodiff.data.synthetic.GENERATED_CAMERAS, by the
    # lower-case name: Gen12 is gen12), for camera_model at demo size (configs/camera-demo.yaml)
    rule synthetic_camera_data:
        input:
            code=get_library_sources("data.synthetic"),
        output:
            # calibration/ (dark/, flat/, true_params.json), pairs/ and MANIFEST.json
            data=directory(f"{SYNTHETIC_CAMERAS_DIR}/{{camera}}"),
        log:
            "logs/synthetic_camera_data/{camera}.log",
        conda:
            "../envs/torch.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=15,
        params:
            seed=config["data"]["synthetic"]["seed"],
            preset=config["data"]["synthetic"]["preset"],
            generator=lambda w: w.camera.lower(),
        script:
            "../workflow/scripts/synthetic_camera_data.py"


# Source real and a dataset not on disk: download and install it (resumable, verified).
# When the dataset is in place (copied by hand, or a shared path in data.*_root), these
# rules do not exist and nothing is downloaded.
for name, download in get_missing_downloads().items():

    rule:
        name:
            f"download_{name}"
        output:
            archive=download["archive"],
        log:
            f"logs/download/{name}.log",
        conda:
            "../envs/rawio.yaml"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=1440,
        params:
            url=download["url"],
            sha256=download["sha256"],
            size=download["size"],
        script:
            "../workflow/scripts/download.py"

    rule:
        name:
            f"install_{name}"
        input:
            archive=download["archive"],
            code=get_library_sources("data.fetch"),
        output:
            markers=download["markers"],
        log:
            f"logs/install/{name}.log",
        conda:
            "../envs/rawio.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=240,
        params:
            # the dataset root is the folder of the first marker (a list file or a camera folder)
            dest=lambda w, output: os.path.dirname(os.path.normpath(output.markers[0])),
            expected=download["expected"],
        script:
            "../workflow/scripts/install_archive.py"


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
        patches=f"{PATCH_STORE.path}/patches.npy",
        meta=PATCH_STORE.output,
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
        store=directory(PAIR_STORE.output),
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
        selection=config["paired"]["selection"],
        crops=config["paired"]["crops"],
        crop_hw=config["patches"]["crop"],
        patch_size=config["patches"]["size"],
        # the real SID: the shot-00 selection must be the original's 280 pairs
        real=config["data"]["source"] == "real",
    script:
        "../workflow/scripts/pair_store.py"


if config["pmn"]["dark_frames"]:

    rule dark_shading:
        input:
            frames=get_frames_input(config["pmn"]["dark_frames"]),
            code=get_library_sources("data.pmn"),
        output:
            npz=DARK_SHADING.output,
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
