import ast
import os
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")


##### constants #####


# the library's source tree: its files are inputs (code-change reruns) and its bundled data
LIBRARY = Path(workflow.basedir, "src", "expodiff")
# where `data: {source: synthetic}` writes the generated SID, ELD and calibration folders
SYNTHETIC_DIR = "results/data/synthetic"


##### config cross-checks the schema cannot express #####


def get_config_errors():
    """Messages, each naming its key, for references between config sections."""
    variants = config["variants"]
    datasets = config["evaluation"]["datasets"]
    steps = config["evaluation"]["steps"]
    errors = []
    for name, table in config["tables"].items():
        key = f"tables.{name}"
        dataset = datasets.get(table["dataset"])
        if dataset is None:
            errors.append(
                f"{key}.dataset: {table['dataset']!r} is not in evaluation.datasets"
            )
        elif not set(table["ratios"]) <= set(dataset["ratios"]):
            errors.append(
                f"{key}.ratios: {table['ratios']} are not all in "
                f"evaluation.datasets.{table['dataset']}.ratios {dataset['ratios']}"
            )
        if table["steps"] not in steps:
            errors.append(f"{key}.steps: {table['steps']} is not in evaluation.steps")
        for i, row in enumerate(table["rows"]):
            for method in ("baseline", "ours"):
                ref, ref_key = row[method], f"{key}.rows[{i}].{method}"
                if ref is None:
                    continue
                if ref not in variants:
                    errors.append(
                        f"{ref_key}: unknown variant {ref!r} (not in variants)"
                    )
                    continue
                for field, wanted in (
                    ("method", method),
                    ("backbone", row["backbone"]),
                    ("data", row["data"]),
                ):
                    if variants[ref][field] != wanted:
                        errors.append(
                            f"{ref_key}: variant {ref!r} has {field} "
                            f"{variants[ref][field]!r}, the row needs {wanted!r}"
                        )
    plot = config["step_plot"]
    for field, method in (("variant", "ours"), ("baseline", "baseline")):
        if plot[field] not in variants:
            errors.append(
                f"step_plot.{field}: unknown variant {plot[field]!r} (not in variants)"
            )
        elif variants[plot[field]]["method"] != method:
            errors.append(f"step_plot.{field}: variant {plot[field]!r} is not {method}")
    if plot["dataset"] not in datasets:
        errors.append(
            f"step_plot.dataset: {plot['dataset']!r} is not in evaluation.datasets"
        )
    elif plot["ratio"] not in datasets[plot["dataset"]]["ratios"]:
        errors.append(
            f"step_plot.ratio: {plot['ratio']} is not in "
            f"evaluation.datasets.{plot['dataset']}.ratios"
        )
    if not set(plot["steps"]) <= set(steps):
        errors.append(
            f"step_plot.steps: {plot['steps']} are not all in evaluation.steps"
        )
    source = config["calibration"]["camera_params"]
    if (
        not (source.endswith(".json") or "/" in source)
        and not get_bundled_camera(source).exists()
    ):
        errors.append(
            f"calibration.camera_params: {source!r} is neither a bundled camera "
            "(src/expodiff/resources/camera_params/) nor a path to a .json file"
        )
    for name, dataset in datasets.items():
        if (
            dataset["camera"] != config["camera"]
            and not get_bundled_camera(dataset["camera"]).exists()
        ):
            errors.append(
                f"evaluation.datasets.{name}.camera: no bundled parameters for "
                f"{dataset['camera']!r} (only `camera` may use calibration.camera_params)"
            )
    return errors


def get_bundled_camera(name):
    """Path of a bundled camera parameter file (ELD release format)."""
    return LIBRARY / "resources" / "camera_params" / f"{name}.json"


config_errors = get_config_errors()
if config_errors:
    raise WorkflowError("Invalid config:\n  " + "\n  ".join(config_errors))


wildcard_constraints:
    variant="|".join(config["variants"]),
    dataset="|".join(config["evaluation"]["datasets"]),
    table="|".join(config["tables"]) or "(?!)",
    camera=r"[A-Za-z0-9]+",


##### targets #####


def get_final_output():
    """Every variant on every evaluation set, the paper tables and the step plot."""
    outputs = expand(
        "results/eval/{variant}/{dataset}/summary.csv",
        variant=config["variants"],
        dataset=config["evaluation"]["datasets"],
    )
    outputs += expand(
        "results/tables/{table}.{ext}", table=config["tables"], ext=["csv", "md", "tex"]
    )
    outputs += expand("results/plots/steps.{ext}", ext=["png", "pdf"])
    return outputs


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


def get_missing_raw_data():
    """Absent raw-data markers (source real) -> the message of the job standing in for them."""
    if config["data"]["source"] != "real":
        return {}
    markers = {
        get_raw_marker("sid", f"Sony_{split}_list.txt"): "SID"
        for split in ("train", "test")
    }
    for dataset in config["evaluation"]["datasets"].values():
        if dataset["kind"] == "eld":
            markers[get_raw_marker("eld", dataset["camera"])] = "ELD"
    return {
        marker: (
            f"{name} not found at {os.path.dirname(marker)} (no {os.path.basename(marker)}): "
            "download rules arrive with issue 6; place the dataset there"
        )
        for marker, name in markers.items()
        if not os.path.exists(marker)
    }


def get_missing_message(wildcards):
    return get_missing_raw_data()[wildcards.marker]


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


def get_camera_params_source(wildcards):
    """Bundled camera name or JSON path for a camera (calibration.camera_params for `camera`)."""
    if wildcards.camera == config["camera"]:
        return config["calibration"]["camera_params"]
    return wildcards.camera


def get_camera_params_file(wildcards):
    """The file behind get_camera_params_source, so that editing it reruns the export."""
    source = get_camera_params_source(wildcards)
    if source.endswith(".json") or "/" in source:  # as expodiff.camera tells them apart
        return source
    return os.path.relpath(get_bundled_camera(source))


##### training and evaluation #####


def get_variant(wildcards):
    """Config entry of a variant plus its name, as the library takes it."""
    return {"name": wildcards.variant, **config["variants"][wildcards.variant]}


def get_eval_steps(wildcards):
    """Numbers of network evaluations to run: all of evaluation.steps for `ours`, 1 otherwise."""
    if config["variants"][wildcards.variant]["method"] == "ours":
        return config["evaluation"]["steps"]
    return [1]


def get_eval_camera_json(wildcards):
    return f"results/calibration/{get_dataset(wildcards)['camera']}.json"


##### tables and plots #####


def get_table(wildcards):
    return config["tables"][wildcards.table]


def get_table_variants(wildcards):
    """Variants filling a table's cells, in order of appearance, without the not-run ones."""
    names = [
        row[method]
        for row in get_table(wildcards)["rows"]
        for method in ("baseline", "ours")
        if row[method] is not None
    ]
    return list(dict.fromkeys(names))


def get_table_summaries(wildcards):
    """Evaluation summaries of get_table_variants, in the same order."""
    return expand(
        "results/eval/{variant}/{dataset}/summary.csv",
        variant=get_table_variants(wildcards),
        dataset=get_table(wildcards)["dataset"],
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


def get_step_plot_labels(fmt):
    plot = config["step_plot"]
    return {
        "figure": "steps",
        "dataset": plot["dataset"],
        "ratio": plot["ratio"],
        "format": fmt,
    }
