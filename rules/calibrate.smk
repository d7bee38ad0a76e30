# Camera parameters (PROTOCOL section 3; docs/CALIBRATE.md), for each entry of `cameras`:
# - results/calibration/{camera}.json: the noise model that synthesises the camera's training
#   pairs. Calibrated from cameras.{camera}.frames when given (the demo: its generated frames),
#   else exported from cameras.{camera}.params (the paper: the ELD release's SonyA7S2 file).
# - results/cameras/{camera}.json: K from ISO at test time and for real pairs (PROTOCOL section
#   3): cameras.{camera}.params (a new calibration leaves the release's parameters alone), else
#   the calibration. Both record the camera's raw format and DN scale (`sensor`).


rule calibrate:
    input:
        frames=get_camera_frames_input,
        code=get_library_sources("physics.calibrate"),
    output:
        json="results/calibration/{camera}.json",
        ptc=report(
            "results/calibration/{camera}/ptc.png",
            caption="../workflow/report/calibration.rst",
            category="Calibration",
            labels={"camera": "{camera}", "figure": "photon-transfer curves"},
        ),
        ppcc=report(
            "results/calibration/{camera}/ppcc.png",
            caption="../workflow/report/calibration.rst",
            category="Calibration",
            labels={"camera": "{camera}", "figure": "PPCC against lambda"},
        ),
        scales=report(
            "results/calibration/{camera}/scales.png",
            caption="../workflow/report/calibration.rst",
            category="Calibration",
            labels={"camera": "{camera}", "figure": "log sigma against log K"},
        ),
    log:
        "logs/calibrate/{camera}.log",
    wildcard_constraints:
        camera=get_cameras_pattern(calibrated=True),
    conda:
        "../envs/rawio.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        frames=lambda w: get_camera(w)["frames"],
        camera=lambda w: w.camera,
        dn_scale=lambda w: get_camera(w)["dn_scale"],
        plots_dir=lambda w, output: os.path.dirname(output.ptc),
    script:
        "../workflow/scripts/calibrate.py"


rule noise_params:
    input:
        unpack(get_camera_params_inputs),
        code=get_library_sources("physics.camera"),
    output:
        json="results/calibration/{camera}.json",
    log:
        "logs/noise_params/{camera}.log",
    wildcard_constraints:
        camera=get_cameras_pattern(calibrated=False),
    conda:
        "../envs/rawio.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        camera=lambda w: w.camera,
        entry=get_camera,
        test_pairs=lambda w: get_test_pairs(w.camera),
    script:
        "../workflow/scripts/camera_params.py"


rule camera_params:
    input:
        unpack(get_camera_params_inputs),
        code=get_library_sources("physics.camera"),
    output:
        json="results/cameras/{camera}.json",
    log:
        "logs/camera_params/{camera}.log",
    wildcard_constraints:
        camera=get_cameras_pattern(),
    conda:
        "../envs/rawio.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        camera=lambda w: w.camera,
        entry=get_camera,
        test_pairs=lambda w: get_test_pairs(w.camera),
    script:
        "../workflow/scripts/camera_params.py"
