import ast
import glob
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


def get_config_files_read():
    """The config files merged into `config`, in merge order, and a hint when config.yaml of
    the workflow was not among them (`configfile:` is relative to the working directory, and
    snakemake skips it silently when --configfile is given)."""
    given = [os.path.normpath(f) for f in workflow.overwrite_configfiles]
    read = [os.path.normpath(f) for f in workflow.configfiles]
    # `configfile:` first, then --configfile
    files = [f for f in read if f not in given] + given
    base = os.path.join(workflow.basedir, "config.yaml")
    text = "config files read: " + (", ".join(files) or "none")
    if not any(os.path.exists(f) and os.path.samefile(f, base) for f in files):
        text += (
            f"\n{os.path.normpath(base)} was not read: the Snakefile's `configfile: config.yaml` is "
            f"relative to the working directory ({os.getcwd()}). Run snakemake from "
            f"{os.path.normpath(workflow.basedir)}, or pass that file first: "
            f"--configfile {os.path.normpath(base)} {' '.join(given)}".rstrip()
        )
    return text


try:
    validate(config, schema="../schemas/config.schema.yaml")
except WorkflowError as err:
    raise WorkflowError(f"{err}\n{get_config_files_read()}") from None


##### constants #####


# the library's source tree: its files are inputs (code-change reruns) and its bundled data
LIBRARY = Path(workflow.basedir, "src", "expodiff")
# where `data: {source: synthetic}` writes the generated SID, ELD and calibration folders
SYNTHETIC_DIR = "results/data/synthetic"
# generated cameras (expodiff.data.synthetic's second camera): {camera}/calibration, {camera}/pairs
SYNTHETIC_CAMERAS_DIR = "results/data/synthetic_cameras"

# The workflow's own library, also where snakemake's python lacks it: its config checks and
# its table of training data kinds (which store each `data` trains on, the rule building it,
# whether it needs patches.size or PMN's dark-shading maps DARK_SHADING), and the method and
# backbone registries, which hold torch modules: snakemake's own python needs torch
if str(LIBRARY.parent) not in sys.path:
    sys.path.insert(0, str(LIBRARY.parent))
try:
    import torch  # noqa: F401  (only to say what is missing, before anything else fails)
except ImportError:
    raise WorkflowError(
        "the workflow reads its methods and backbones from the expodiff library, which needs "
        "PyTorch in snakemake's own environment: run snakemake from the project's venv "
        "(make venv; .venv/bin/snakemake ...) or `pip install -e .` into snakemake's environment"
    )
from expodiff.config import config_errors, is_camera_path
from expodiff.recipes import eval_padding, training_settings
import expodiff.config
from expodiff.data.sources import DARK_SHADING, PAIR_STORE, PATCH_STORE, data_kind

##### config cross-checks the schema cannot express #####

# expodiff.config.config_errors: the same checks `expodiff plan` and every CLI command taking
# --config run (load_config)
_config_errors = config_errors(config)
if _config_errors:
    raise WorkflowError("Invalid config:\n  " + "\n  ".join(_config_errors))


wildcard_constraints:
    variant="|".join(config["variants"]),
    dataset="|".join(config["evaluation"]["datasets"]),
    table="|".join(config["tables"]) or "(?!)",
    vtable="|".join(config["variant_tables"]) or "(?!)",
    camera=r"[A-Za-z0-9]+",


##### targets #####


def get_active_variants():
    """Variants with a model: every variant of `run_variants` (null: all) when we train them
    (`checkpoints: trained`), the ones the authors released when evaluating their checkpoints
    (`checkpoints: released`).
    """
    if config["checkpoints"] == "released":
        return [
            v
            for v in expodiff.config.run_variants(config)
            if v in config["released_checkpoints"]["files"]
        ]
    return expodiff.config.run_variants(config)


def uses_released_checkpoints():
    return config["checkpoints"] == "released"


def get_final_output():
    """Every variant on every evaluation set, the tables, the step plot and the report figures.

    With released checkpoints: their evaluations and the tables (other cells "not run").
    """
    outputs = expand(
        "results/eval/{variant}/{dataset}/summary.csv",
        variant=get_active_variants(),
        dataset=config["evaluation"]["datasets"],
    )
    outputs += expand(
        "results/tables/{table}.{ext}", table=config["tables"], ext=["csv", "md", "tex"]
    )
    outputs += expand(
        "results/tables/{table}.{ext}",
        table=[*config["variant_tables"], "table5b"],
        ext=["csv", "md", "tex"],
    )
    if (
        uses_released_checkpoints()
    ):  # no trainings: no step plot (it needs the baseline) or curves
        return outputs + expand(
            "results/tables/{table}.provenance.json", table=get_provenance_tables()
        )
    outputs += expand("results/plots/steps.{ext}", ext=["png", "pdf"])
    outputs += get_report_output()
    return outputs + get_mini_output() + get_eld_cameras_output()


def get_eld_cameras_output():
    """The ELD other-cameras table (eld_cameras.enabled), else nothing."""
    if not config["eld_cameras"]["enabled"]:
        return []
    return expand("results/tables/eld_cameras.{ext}", ext=["csv", "md", "tex"])


def get_mini_output():
    """The mini summary (`mini_summary.enabled`: configs/mini.yaml), else nothing."""
    if not config["mini_summary"]["enabled"]:
        return []
    return expand("results/mini/summary.{ext}", ext=["md", "csv"]) + [
        "results/mini/training_curves.png"
    ]


def get_mini_target(wildcards):
    """Target mini: everything, with the summary; refuses a config without it."""
    if not config["mini_summary"]["enabled"]:
        raise WorkflowError(
            "target mini needs the mini overlay: add --configfile configs/mini.yaml "
            "or --workflow-profile profiles/mini (or run `make mini`)"
        )
    return get_final_output()


def get_demo_output(wildcards):
    """The demo's outputs; refuses to plan the full paper run under the name `demo`."""
    if config["data"]["source"] != "synthetic":
        raise WorkflowError(
            "target demo runs on the generated data; add --configfile configs/demo.yaml "
            "or --workflow-profile profiles/demo (or run `make demo`)"
        )
    return get_final_output()


##### library code and bundled data #####


def get_library_sources(*modules):
    """The library files a rule's script runs, as inputs: editing one reruns the rule.

    Modules are dotted names below expodiff ("train", "data.patches"); each is followed
    through its `expodiff` imports (and its packages' __init__.py), so the list stays
    complete as the library changes. Modules that do not exist (yet) are skipped.
    """
    todo, files = list(modules), {}
    while todo:
        parts = [p for p in todo.pop().split(".") if p]
        for depth in range(len(parts) + 1):  # the module and the packages it sits in
            path = LIBRARY.joinpath(*parts[:depth])
            path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
            if path in files or not path.is_file():
                continue
            files[path] = None
            try:
                tree = ast.parse(path.read_text(), filename=str(path))
            except SyntaxError:
                continue  # a file being edited: still an input, imports not followed
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module] + [
                        f"{node.module}.{a.name}" for a in node.names
                    ]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                todo += [
                    n.removeprefix("expodiff")
                    for n in names
                    if n == "expodiff" or n.startswith("expodiff.")
                ]
    return sorted(os.path.relpath(f) for f in files)


from expodiff.methods import MethodSpec
from expodiff.nets import BACKBONES, backbone_module


def get_module_file(module):
    """The file of a module below expodiff ("nets.unet" -> src/expodiff/nets/unet.py)."""
    return os.path.relpath(LIBRARY.joinpath(*module.split(".")).with_suffix(".py"))


def get_network_file(variant):
    """The file defining a variant's network, as its method says (the backbone's module, or
    the method's own network: nets/cond_unet.py for ddim)."""
    return get_module_file(MethodSpec.from_variant(variant).network_module())


# every file that defines a network: a variant's jobs depend only on its own one
NETWORK_FILES = sorted(
    {get_module_file(backbone_module(name)) for name in BACKBONES}
    | {get_network_file(v) for v in config["variants"].values()}
)


def get_networks_sources(module, variants):
    """get_library_sources(module) with, of the network files, only those of `variants`."""
    own = sorted({get_network_file(v) for v in variants})
    shared = [f for f in get_library_sources(module) if f not in NETWORK_FILES]
    return shared + own


def get_variant_sources(module):
    """get_library_sources(module) for one variant, with its own network's file and no other:
    editing NAFNet reruns the NAFNet variants' training and evaluation, not the UNet's.
    """

    def sources(wildcards):
        return get_networks_sources(module, [config["variants"][wildcards.variant]])

    return sources


def get_resource(*parts):
    """A file bundled with the library (src/expodiff/resources/...)."""
    return os.path.relpath(LIBRARY.joinpath("resources", *parts))


##### raw data #####


def get_raw_root(kind):
    """Folder of a raw dataset layout, kind "sid" or "eld"."""
    if config["data"]["source"] == "synthetic":
        return f"{SYNTHETIC_DIR}/{kind.upper()}"
    return config["data"][f"{kind}_root"]


def get_raw_marker(kind, item):
    """File or folder that stands for a raw dataset in the DAG (rules take it as input)."""
    if config["data"]["source"] == "synthetic":
        return SYNTHETIC_DIR
    return os.path.join(get_raw_root(kind), item)


def get_missing_downloads():
    """Raw datasets (source real) not on disk -> how to download and install them.

    A dataset counts as present when its markers exist: SID's list files, or the folder of
    each ELD camera that an evaluation set uses.
    """
    if config["data"]["source"] != "real":
        return {}
    cameras = sorted(
        {
            d["camera"]
            for d in config["evaluation"]["datasets"].values()
            if d["kind"] == "eld"
        }
        | set(
            config["eld_cameras"]["cameras"] if config["eld_cameras"]["enabled"] else []
        )
    )
    wanted = {
        "sid": [
            get_raw_marker("sid", f"Sony_{split}_list.txt")
            for split in ("train", "test")
        ],
        "eld": [get_raw_marker("eld", camera) for camera in cameras],
    }
    missing = {}
    for name, markers in wanted.items():
        if markers and not all(os.path.exists(m) for m in markers):
            spec = config["downloads"][name]
            missing[name] = {
                **spec,
                "markers": [directory(m) if name == "eld" else m for m in markers],
                "expected": os.path.basename(markers[0]),
            }
    return missing


def get_dataset(wildcards):
    """Config entry of an evaluation dataset."""
    return config["evaluation"]["datasets"][wildcards.dataset]


def get_dataset_root(wildcards):
    return get_raw_root(get_dataset(wildcards)["kind"])


def get_dataset_marker(wildcards):
    dataset = get_dataset(wildcards)
    if dataset["kind"] == "sid":
        return get_raw_marker("sid", "Sony_test_list.txt")
    return get_raw_marker("eld", dataset["camera"])


##### camera parameters #####


def get_bundled_camera(name):
    """Path of a bundled camera parameter file (ELD release format)."""
    return LIBRARY / "resources" / "camera_params" / f"{name}.json"


def get_camera(wildcards):
    """The `cameras` entry of the job's camera."""
    return config["cameras"][wildcards.camera]


def get_cameras_pattern(calibrated=None):
    """Wildcard pattern of the cameras (calibrated: with frames; False: without; None: all)."""
    names = [
        name
        for name, entry in config["cameras"].items()
        if calibrated is None or bool(entry["frames"]) == calibrated
    ]
    return "|".join(names) or "(?!)"


def get_frames_input(folder):
    """A folder of raw frames as a DAG input: the generated dataset (SID/ELD/Sony frames, or a
    generated camera's) if it lives inside one."""
    folder = os.path.normpath(folder)
    if folder == SYNTHETIC_DIR or folder.startswith(SYNTHETIC_DIR + os.sep):
        return SYNTHETIC_DIR
    if folder.startswith(SYNTHETIC_CAMERAS_DIR + os.sep):
        camera = folder[len(SYNTHETIC_CAMERAS_DIR) + 1 :].split(os.sep)[0]
        return os.path.join(SYNTHETIC_CAMERAS_DIR, camera)
    return folder


def get_camera_frames_input(wildcards):
    return get_frames_input(get_camera(wildcards)["frames"])


def get_camera_params_inputs(wildcards):
    """The camera's parameter source (its params file, else its calibration) and a sample raw
    file of it when one is on disk (for unpack())."""
    entry = get_camera(wildcards)
    source = entry["params"]
    if source is None:
        params = f"results/calibration/{wildcards.camera}.json"
    elif is_camera_path(source):
        params = source
    else:
        params = os.path.relpath(get_bundled_camera(source))
    # the raw format of a camera whose frames are not read here: its test pairs' files
    pairs = get_camera_pairs_input(wildcards) if entry["test_pairs"] else None
    return {"params": params} | ({"pairs": pairs} if pairs else {})


##### training and evaluation #####


def get_variant(wildcards):
    """Config entry of a variant plus its name, as the library takes it (without its recipe:
    get_training_settings, get_eval_padding)."""
    return expodiff.config.get_variant(config, wildcards.variant)


def get_training_settings(wildcards):
    """The variant's training settings: `training` merged with its recipe (expodiff.recipes)."""
    return training_settings(config, wildcards.variant)


def get_eval_padding(wildcards):
    """The reflect padding of the variant's evaluations (its recipe's eval_padding)."""
    return eval_padding(config, wildcards.variant)


def get_eval_steps(wildcards):
    """Step counts to run, as the variant's method says: evaluation.steps (ours),
    evaluation.ddim_steps (ddim), 1 (baseline)."""
    spec = MethodSpec.from_variant(config["variants"][wildcards.variant])
    return spec.impl.eval_steps(config["evaluation"])


def get_eval_camera_json(wildcards):
    """Release parameters of the dataset's camera: K from the input's ISO."""
    return f"results/cameras/{get_dataset(wildcards)['camera']}.json"


def get_released_checkpoint(wildcards):
    """The authors' checkpoint file of a released variant (checkpoints: released)."""
    spec = config["released_checkpoints"]
    return os.path.join(spec["folder"], spec["files"][wildcards.variant])


def get_missing_released_checkpoints():
    """Released checkpoint files of the active variants that are not in the folder."""
    spec = config["released_checkpoints"]
    files = [
        os.path.join(spec["folder"], spec["files"][v]) for v in get_active_variants()
    ]
    return [f for f in files if not os.path.exists(f)]


def get_data_kind(wildcards):
    """The variant's entry of the data kinds table (expodiff.data.sources.DATA_KINDS)."""
    return data_kind(config["variants"][wildcards.variant]["data"])


def get_train_store_dir(wildcards):
    """Folder of the variant's training data store (the patch store or the pair store)."""
    return get_data_kind(wildcards).store.path


def get_train_inputs(wildcards):
    """Training data store and camera file of a variant, and PMN's dark-shading maps (for unpack()).

    Synthetic-noise variants read the camera noise model (calibrated or exported); real-pair
    variants read the release parameters (K from ISO).
    """
    kind = get_data_kind(wildcards)
    if kind.noise_model:
        camera = f"results/calibration/{config['camera']}.json"
    else:
        camera = f"results/cameras/{config['camera']}.json"
    inputs = {"store": kind.store.output, "camera": camera}
    return inputs | get_dark_shading_input(wildcards)


def get_train_store(wildcards):
    """The variant's training data store (its marker file), as an input."""
    return get_data_kind(wildcards).store.output


def get_camera_training_settings(wildcards):
    """A camera model's training settings: the variant's, with K_range the camera's calibrated
    span (resolved from its parameter file at training time) when camera_model.K_range says so.
    """
    settings = get_training_settings(wildcards)
    if config["camera_model"]["K_range"] == "calibrated":
        settings = settings | {"K_range": "calibrated"}
    return settings


def get_test_pairs(camera):
    """cameras.{camera}.test_pairs with `{eld_root}` replaced by the ELD dataset's folder (the
    real one, data.eld_root, or the generated one); None when it has none."""
    folder = config["cameras"][camera]["test_pairs"]
    if folder is None:
        return None
    return os.path.normpath(folder.format(eld_root=get_raw_root("eld")))


def get_camera_pairs_input(wildcards):
    """The camera's test-pair folder as an input: the ELD dataset's install marker when it lies
    in the ELD root (the other ELD cameras), so it is downloaded first; else the folder.
    """
    folder = get_test_pairs(wildcards.camera)
    root = os.path.normpath(get_raw_root("eld"))
    if os.path.dirname(folder) == root:
        return get_raw_marker("eld", os.path.basename(folder))
    return get_frames_input(folder)


def get_camera_pairs_dataset(wildcards):
    """The camera's test pairs as an evaluation dataset in ELD's layout: every scene-N folder
    (found when packed), x100 and x200, full frames."""
    folder = get_test_pairs(wildcards.camera)
    return {
        "kind": "eld",
        "camera": os.path.basename(folder),
        "scenes": None,
        "ratios": [100, 200],
        "crop": None,
    }


def get_model_card_inputs(wildcards):
    """What a camera's model card reports (for unpack()): its parameter files, its calibration
    figures when calibrated, the trainings' logs and the evaluations when it has test pairs.
    """
    camera, entry = wildcards.camera, get_camera(wildcards)
    variants = config["camera_model"]["variants"]
    inputs = {
        "calibration": f"results/calibration/{camera}.json",
        "camera": f"results/cameras/{camera}.json",
        "logs": [
            f"results/camera_models/{camera}/train/{v}/train_log.csv" for v in variants
        ],
    }
    if entry["frames"]:
        inputs["figures"] = [
            f"results/calibration/{camera}/{f}.png" for f in ("ptc", "ppcc", "scales")
        ]
    if entry["test_pairs"]:
        inputs["summaries"] = [
            f"results/camera_models/{camera}/eval/{v}/summary.csv" for v in variants
        ]
    return inputs


def get_dark_shading_input(wildcards):
    """PMN's dark-shading maps where the variant's data kind uses them (for unpack())."""
    if get_data_kind(wildcards).uses_dark_shading(config):
        return {"dark_shading": DARK_SHADING.output}
    return {}


##### tables and plots #####


def get_table(wildcards):
    return config["tables"][wildcards.table]


def get_table_variants(wildcards):
    """Variants filling a table's cells, in order of appearance, without the not-run ones."""
    names = [
        row[method]
        for row in get_table_config(wildcards)["rows"]
        for method in ("baseline", "ours")
        if row[method] is not None
    ]
    return list(dict.fromkeys(names))


def get_table_config(wildcards):
    """A table's config with the cells of variants that have no model set to null ("not run")."""
    table, active = get_table(wildcards), get_active_variants()
    rows = [
        {
            **row,
            **{m: row[m] if row[m] in active else None for m in ("baseline", "ours")},
        }
        for row in table["rows"]
    ]
    return {**table, "rows": rows}


def get_table_summaries(wildcards):
    """Evaluation summaries of get_table_variants, in the same order."""
    return expand(
        "results/eval/{variant}/{dataset}/summary.csv",
        variant=get_table_variants(wildcards),
        dataset=get_table(wildcards)["dataset"],
    )


def get_variant_table_summaries(wildcards):
    """Evaluation summaries of every variant on the variant table's dataset (config order)."""
    return expand(
        "results/eval/{variant}/{dataset}/summary.csv",
        variant=get_active_variants(),
        dataset=config["variant_tables"][wildcards.vtable]["dataset"],
    )


def get_table_labels(wildcards, fmt):
    table = get_table(wildcards)
    return {
        "table": wildcards.table,
        "dataset": table["dataset"],
        "ratios": ", ".join(map(str, table["ratios"])),
        "format": fmt,
    }


def get_step_plot_summary(which):
    """Evaluation summary of the step plot's `variant` or `baseline`."""
    plot = config["step_plot"]
    return f"results/eval/{plot[which]}/{plot['dataset']}/summary.csv"


def get_step_plot_summaries(wildcards):
    """Summaries drawn in the step plot: ours, the baseline and (if configured) the DDIM one."""
    names = {"ours": "variant", "baseline": "baseline", "ddim": "ddim"}
    return {
        key: get_step_plot_summary(field)
        for key, field in names.items()
        if config["step_plot"][field] is not None
    }


def get_step_plot_labels(fmt):
    plot = config["step_plot"]
    return {
        "figure": "steps",
        "dataset": plot["dataset"],
        "ratio": plot["ratio"],
        "format": fmt,
    }


##### report #####

from types import SimpleNamespace

from snakemake import __version__ as SNAKEMAKE_VERSION


def get_report_output():
    """The report's own outputs: table provenance, image grids, training curves, runtime, versions."""
    outputs = expand(
        "results/tables/{table}.provenance.json", table=get_provenance_tables()
    )
    outputs += [
        "results/report/scene_grids",
        "results/report/training_curves.png",
        "results/report/runtime.csv",
        "results/report/runtime.png",
        "results/report/environment.txt",
    ]
    return outputs


def get_provenance_tables():
    """Every table the workflow writes: paper tables, variant tables and Table 5b."""
    return [*config["tables"], *config["variant_tables"], "table5b"]


def get_table_provenance_variants(wildcards):
    """Variants whose numbers a table shows (none for Table 5b: its networks are untrained)."""
    if wildcards.ptable in config["tables"]:
        return get_table_variants(SimpleNamespace(table=wildcards.ptable))
    if wildcards.ptable in config["variant_tables"]:
        return get_active_variants()
    return []


def get_table_provenance_inputs(wildcards):
    """Checkpoints, packed evaluation set and raw-data marker a table is made from (for unpack())."""
    inputs = {
        "checkpoints": expand(
            rules.evaluate.input.checkpoint,
            variant=get_table_provenance_variants(wildcards),
        )
    }
    table = {**config["tables"], **config["variant_tables"]}.get(wildcards.ptable)
    if table is not None:
        dataset = table["dataset"]
        inputs["eval_set"] = expand(rules.evaluate.input.eval_set, dataset=dataset)[0]
        inputs["source"] = get_dataset_marker(SimpleNamespace(dataset=dataset))
    return inputs


def get_step_plot_variant(field):
    """Config entry (with "name") of the step plot's `variant` (ours) or `baseline`."""
    name = config["step_plot"][field]
    return {"name": name, **config["variants"][name]}


def get_scene_grid_inputs(wildcards):
    """The step plot's two checkpoints, its evaluation set and camera file (for unpack())."""
    plot = config["step_plot"]
    model = rules.evaluate.input.checkpoint
    return {
        "baseline": expand(model, variant=plot["baseline"])[0],
        "ours": expand(model, variant=plot["variant"])[0],
        "eval_set": expand(rules.evaluate.input.eval_set, dataset=plot["dataset"])[0],
        "camera": get_eval_camera_json(SimpleNamespace(dataset=plot["dataset"])),
    }


def get_scene_grid_sources(wildcards):
    """get_library_sources("report.figures") with the networks of the two variants only."""
    plot = config["step_plot"]
    variants = [config["variants"][plot[f]] for f in ("variant", "baseline")]
    return get_networks_sources("report.figures", variants)


def get_train_logs(wildcards):
    """Every trained variant's train_log.csv, in config order."""
    return expand(rules.train.output.log_csv, variant=get_active_variants())


def get_runtime_inputs(wildcards):
    """Outputs of every benchmarked train and evaluate job: the runtime table follows them.

    The benchmark files themselves are params, not inputs: a deleted benchmarks/out must not
    make Snakemake retrain (missing measurements show as empty rows).
    """
    return {
        "models": expand(rules.train.output.model, variant=get_active_variants()),
        "summaries": expand(
            rules.evaluate.output.summary,
            variant=get_active_variants(),
            dataset=config["evaluation"]["datasets"],
        ),
    }


def get_runtime_benchmarks(wildcards):
    """{"train/<variant>" | "evaluate/<variant>/<dataset>": benchmark TSV} of those jobs."""
    benchmarks = {
        f"train/{v}": expand(rules.train.benchmark, variant=v)[0]
        for v in get_active_variants()
    }
    for v in get_active_variants():
        for d in config["evaluation"]["datasets"]:
            benchmarks[f"evaluate/{v}/{d}"] = expand(
                rules.evaluate.benchmark, variant=v, dataset=d
            )[0]
    return benchmarks
