# Camera noise parameters (PROTOCOL section 3): for now exported from the ELD release's
# calibration (bundled) or a JSON file given as calibration.camera_params.
# Calibration from dark and flat frames arrives in a later issue: a rule producing
# results/calibration/{camera}.json from frames goes here, selected by config.


rule camera_params:
    input:
        params=get_camera_params_file,
        code=get_library_sources("camera"),
    output:
        json="results/calibration/{camera}.json",
    log:
        "logs/camera_params/{camera}.log",
    conda:
        "../envs/rawio.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        source=get_camera_params_source,
    script:
        "../workflow/scripts/camera_params.py"
