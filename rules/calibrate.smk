# Camera noise parameters (PROTOCOL section 3).
# - results/calibration/{camera}.json: the noise model that synthesises training pairs.
#   Calibrated from dark/flat frames when calibration.frames names a folder (the demo:
#   its generated frames), else exported from calibration.camera_params (the paper: the
#   ELD release's SonyA7S2 parameters, bundled). Only the noise-model trainings read it.
# - results/cameras/{camera}.json: the bundled release parameters, for K from ISO at test
#   time and for real pairs (PROTOCOL section 3); a new calibration leaves these alone.

if config["calibration"]["frames"]:

    rule calibrate:
        input:
            frames=get_frames_input(config["calibration"]["frames"]),
            code=get_library_sources("physics.calibrate"),
        output:
            json=f"results/calibration/{config['camera']}.json",
            ptc=report(
                f"results/calibration/{config['camera']}/ptc.png",
                caption="../workflow/report/calibration.rst",
                category="Calibration",
                labels={"figure": "photon-transfer curves"},
            ),
            ppcc=report(
                f"results/calibration/{config['camera']}/ppcc.png",
                caption="../workflow/report/calibration.rst",
                category="Calibration",
                labels={"figure": "PPCC against lambda"},
            ),
            scales=report(
                f"results/calibration/{config['camera']}/scales.png",
                caption="../workflow/report/calibration.rst",
                category="Calibration",
                labels={"figure": "log sigma against log K"},
            ),
        log:
            f"logs/calibrate/{config['camera']}.log",
        conda:
            "../envs/rawio.yaml"
        threads: 1
        resources:
            mem_mb=8000,
            runtime=60,
        params:
            frames=get_calibration_frames(),
            camera=config["camera"],
            plots_dir=lambda w, output: os.path.dirname(output.ptc),
        script:
            "../workflow/scripts/calibrate.py"

else:

    rule noise_params:
        input:
            params=get_noise_params_file(),
            code=get_library_sources("physics.camera"),
        output:
            json=f"results/calibration/{config['camera']}.json",
        log:
            f"logs/noise_params/{config['camera']}.log",
        conda:
            "../envs/rawio.yaml"
        threads: 1
        resources:
            mem_mb=500,
            runtime=5,
        params:
            source=config["calibration"]["camera_params"],
        script:
            "../workflow/scripts/camera_params.py"


rule camera_params:
    input:
        params=get_bundled_camera_file,
        code=get_library_sources("physics.camera"),
    output:
        json="results/cameras/{camera}.json",
    log:
        "logs/camera_params/{camera}.log",
    conda:
        "../envs/rawio.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        source=lambda w: w.camera,
    script:
        "../workflow/scripts/camera_params.py"
