"""Reading the workflow's config files outside Snakemake (for the CLI), and the config
cross-checks the schema cannot express (shared with rules/common.smk)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from expodiff.errors import ConfigError


def deep_merge(base: dict, overlay: dict) -> dict:
    """Overlay ``overlay`` on ``base`` recursively, as Snakemake merges --configfile files."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(paths, schema_path: str | Path | None = None) -> dict:
    """Merge config files in order, validate against the workflow's JSON schema, then run the
    cross-checks of ``check`` (as rules/common.smk does for Snakemake).

    The schema defaults to ``schemas/config.schema.yaml`` beside the first file; without a
    schema file neither the schema nor the cross-checks (which assume it holds) are run.
    """
    paths = [Path(p) for p in paths]
    config: dict = {}
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from err
        config = deep_merge(config, loaded)
    schema_path = Path(schema_path) if schema_path else paths[0].parent / "schemas" / "config.schema.yaml"
    if schema_path.is_file():
        schema = yaml.safe_load(schema_path.read_text())
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.path))
        if errors:
            err = errors[0]
            key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
            raise ConfigError(f"config key {key}: {err.message} (in {', '.join(map(str, paths))})")
        check(config)
    return config


def get_variant(config: dict, name: str) -> dict:
    """A variant as the library takes it: its name, network and training data. Not its recipe,
    which reaches a training as its settings (``expodiff.recipes.training_settings``) and an
    evaluation as its padding: so a variant's fingerprint and checkpoints are what they were
    before recipes existed."""
    variants = config.get("variants", {})
    if name not in variants:
        raise ConfigError(f"unknown variant {name!r}; config variants: {', '.join(sorted(variants))}")
    return {"name": name, **{key: value for key, value in variants[name].items() if key != "recipe"}}


# --- cross-checks the schema cannot express ------------------------------------------------


def is_camera_path(source: str) -> bool:
    """cameras.NAME.params names a file (as expodiff.physics.camera tells them apart)."""
    return source.endswith(".json") or "/" in source


def _is_bundled_camera(name: str) -> bool:
    return (resources.files("expodiff") / "resources" / "camera_params" / f"{name}.json").is_file()


def backbone_errors(config: dict) -> list[str]:
    """Backbone names (``variants.NAME.backbone``, ``cost_table.backbones``) that no module of
    ``expodiff.nets`` registers."""
    from expodiff.nets import BACKBONES  # imports torch: only when a config is checked

    named = [(f"variants.{n}.backbone", v["backbone"]) for n, v in config["variants"].items()]
    named += [(f"cost_table.backbones[{i}]", b) for i, b in enumerate(config["cost_table"]["backbones"])]
    return [
        f"{key}: unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}"
        for key, name in named
        if name not in BACKBONES
    ]


def method_errors(config: dict) -> list[str]:
    """Variants whose method no module of ``expodiff.methods`` registers, or whose network the
    method refuses (``Method.check``: concat_origin, backbone family)."""
    from expodiff.methods import METHODS, MethodSpec  # imports torch: only when a config is checked

    errors = []
    for name, variant in config["variants"].items():
        if variant["method"] not in METHODS:
            errors.append(f"variants.{name}.method: unknown method {variant['method']!r}; known: {', '.join(METHODS)}")
            continue
        try:
            MethodSpec.from_variant(variant)
        except ConfigError as err:
            errors.append(f"variants.{name}: {err}")
    return errors


def data_errors(config: dict) -> list[str]:
    """Training data (``variants.NAME.data``, the ``data`` of paper-table rows) that the table
    of data kinds (``expodiff.data.sources.DATA_KINDS``) does not list."""
    from expodiff.data.sources import DATA_KINDS

    named = [(f"variants.{n}.data", v["data"]) for n, v in config["variants"].items()]
    named += [(f"tables.{t}.rows[{i}].data", row["data"])
              for t, table in config["tables"].items() for i, row in enumerate(table["rows"])]  # fmt: skip
    return [
        f"{key}: unknown training data {name!r}; known: {', '.join(DATA_KINDS)}"
        for key, name in named
        if name not in DATA_KINDS
    ]


def recipe_errors(config: dict) -> list[str]:
    """Variants naming a recipe ``recipes`` lacks, and recipe values the schema cannot check:
    checkpoints beyond the last epoch, a warm-up cosine schedule that does not fit the epochs,
    the baseline's ``loss_on`` and the ``eval_padding`` (the values their modules accept)."""
    from expodiff.inference import PADDINGS  # imports torch: only when a config is checked
    from expodiff.methods.baseline import LOSS_ON
    from expodiff.recipes import lr_schedule_pairs

    recipes = config["recipes"]
    errors = [f"variants.{name}.recipe: unknown recipe {v['recipe']!r}; config recipes: {', '.join(recipes)}"
              for name, v in config["variants"].items() if v["recipe"] not in recipes]  # fmt: skip
    for name, recipe in recipes.items():
        key = f"recipes.{name}"
        beyond = sorted(e for e in recipe["checkpoint_epochs"] if e > recipe["epochs"])
        if beyond:
            errors.append(f"{key}.checkpoint_epochs: {beyond} beyond {key}.epochs {recipe['epochs']} "
                          "(those checkpoints would never be written)")
        try:
            lr_schedule_pairs(recipe)
        except ConfigError as err:
            errors.append(f"{key}.{err}")
        for field, known in (("loss_on", LOSS_ON), ("eval_padding", PADDINGS)):
            if recipe[field] not in known:
                errors.append(f"{key}.{field}: {recipe[field]!r} is not one of {', '.join(known)}")
    return errors


def evaluation_errors(config: dict) -> list[str]:
    """An unknown protocol (``evaluation.protocols``) or ELD ratio mode (``evaluation.eld_ratio``)."""
    from expodiff.data.eld import check_eld_ratio_mode
    from expodiff.protocols import protocol_errors

    errors = protocol_errors(config["evaluation"]["protocols"], "evaluation.protocols")
    try:
        check_eld_ratio_mode(config["evaluation"]["eld_ratio"])
    except ConfigError as err:
        errors.append(str(err))
    return errors


def camera_errors(config: dict) -> list[str]:
    """Cameras (``camera``, evaluation datasets' cameras) that ``cameras`` does not hold, entries
    with neither frames nor parameters, parameter names that are not bundled, and camera-model
    variants that do not train on synthetic noise."""
    from expodiff.data.sources import DATA_KINDS

    cameras, errors = config["cameras"], []
    named = [(config["camera"], "camera")]
    named += [(d["camera"], f"evaluation.datasets.{n}.camera") for n, d in config["evaluation"]["datasets"].items()]
    for camera, key in named:
        if camera not in cameras:
            errors.append(f"{key}: {camera!r} is not an entry of cameras ({', '.join(cameras)})")
    for name, entry in cameras.items():
        source = entry["params"]
        if source is None and entry["frames"] is None:
            errors.append(f"cameras.{name}: give frames (dark/ and flat/ raw frames to calibrate from) or params "
                          "(an ELD-format parameter file); both are null")
        elif source is not None and not is_camera_path(source) and not _is_bundled_camera(source):
            errors.append(f"cameras.{name}.params: {source!r} is neither a bundled camera "
                          "(src/expodiff/resources/camera_params/) nor a path to a .json file")
    eld = config["eld_cameras"]  # an optional table: checked when it is on
    for i, name in enumerate(eld["cameras"] if eld["enabled"] else []):
        if name not in cameras:
            errors.append(f"eld_cameras.cameras[{i}]: {name!r} is not an entry of cameras")
        elif not cameras[name]["test_pairs"]:
            errors.append(f"eld_cameras.cameras[{i}]: cameras.{name}.test_pairs is null (its ELD scenes' folder)")
    for i, name in enumerate(eld["variants"] if eld["enabled"] else []):
        if name not in config["variants"]:
            errors.append(f"eld_cameras.variants[{i}]: unknown variant {name!r} (not in variants)")
    variants = config["variants"]
    for i, name in enumerate(config["camera_model"]["variants"]):
        if name not in variants:
            errors.append(f"camera_model.variants[{i}]: unknown variant {name!r} (not in variants)")
        elif variants[name]["data"] in DATA_KINDS and not DATA_KINDS[variants[name]["data"]].noise_model:
            errors.append(f"camera_model.variants[{i}]: {name!r} trains on real pairs of the SID camera "
                          f"(data {variants[name]['data']}); a camera model needs synthetic noise (pg or eld)")
    return errors


def run_variants(config: dict) -> list[str]:
    """The variants a run trains and evaluates: ``run_variants`` (config order), or every one."""
    chosen = config.get("run_variants")
    return [v for v in config["variants"] if chosen is None or v in chosen]


def run_variants_errors(config: dict) -> list[str]:
    """``run_variants`` naming unknown variants, and the step plot or ``mini_summary`` naming
    a variant the run does not train (their figures and summaries need its evaluations)."""
    variants, chosen = config["variants"], config.get("run_variants")
    errors = [f"run_variants: unknown variant {name!r} (not in variants)" for name in chosen or [] if name not in variants]
    active = run_variants(config)
    if chosen is not None:
        plot = config["step_plot"]
        errors += [f"step_plot.{field}: variant {plot[field]!r} is not in run_variants {chosen}"
                   for field in ("variant", "baseline", "ddim")
                   if plot[field] is not None and plot[field] in variants and plot[field] not in active]  # fmt: skip
    mini = config.get("mini_summary")
    if mini and mini["enabled"]:
        for field, method in (("baseline", "baseline"), ("ours", "ours")):
            name = mini[field]
            if name not in active:
                errors.append(f"mini_summary.{field}: {name!r} is not a variant this run trains (variants, run_variants)")
            elif variants[name]["method"] != method:
                errors.append(f"mini_summary.{field}: variant {name!r} is not {method}")
        if mini["dataset"] not in config["evaluation"]["datasets"]:
            errors.append(f"mini_summary.dataset: {mini['dataset']!r} is not in evaluation.datasets")
        if mini["steps"] not in config["evaluation"]["steps"]:
            errors.append(f"mini_summary.steps: {mini['steps']} is not in evaluation.steps")
    return errors


def config_errors(config: dict) -> list[str]:
    """Messages, each naming its key, for references between config sections and values that
    must agree (a schema-valid config; empty if it is consistent)."""
    from expodiff.methods import METHODS  # what each method runs and which table cells it fills

    variants = config["variants"]
    datasets = config["evaluation"]["datasets"]
    steps = config["evaluation"]["steps"]
    errors = backbone_errors(config) + method_errors(config) + data_errors(config)
    errors += evaluation_errors(config)
    for name, table in config["tables"].items():
        key = f"tables.{name}"
        dataset = datasets.get(table["dataset"])
        if dataset is None:
            errors.append(f"{key}.dataset: {table['dataset']!r} is not in evaluation.datasets")
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
                    errors.append(f"{ref_key}: unknown variant {ref!r} (not in variants)")
                    continue
                ref_method = METHODS.get(variants[ref]["method"])
                if ref_method is not None and ref_method.table_role != method:
                    errors.append(f"{ref_key}: variant {ref!r} has method {variants[ref]['method']!r}, "
                                  f"which does not fill the {method!r} cells of a table row")
                for field, wanted in (("backbone", row["backbone"]), ("data", row["data"])):
                    if variants[ref][field] != wanted:
                        errors.append(
                            f"{ref_key}: variant {ref!r} has {field} "
                            f"{variants[ref][field]!r}, the row needs {wanted!r}"
                        )
    for name, vtable in config["variant_tables"].items():
        key = f"variant_tables.{name}"
        if name in config["tables"] or name == "table5b":
            errors.append(f"{key}: the name is already a table")
        dataset = datasets.get(vtable["dataset"])
        if dataset is None:
            errors.append(f"{key}.dataset: {vtable['dataset']!r} is not in evaluation.datasets")
        elif not set(vtable["ratios"]) <= set(dataset["ratios"]):
            errors.append(f"{key}.ratios: not all in evaluation.datasets.{vtable['dataset']}.ratios")
        methods = [METHODS[m] for m in dict.fromkeys(v["method"] for v in variants.values()) if m in METHODS]
        for method in methods:
            if method.steps_key and vtable["steps"] not in method.eval_steps(config["evaluation"]):
                errors.append(f"{key}.steps: {vtable['steps']} is not run by the {method.name} variants "
                              f"(evaluation.{method.steps_key})")
    for name in config["released_checkpoints"]["files"]:
        if name not in variants:
            errors.append(f"released_checkpoints.files.{name}: unknown variant (not in variants)")
    plot = config["step_plot"]
    for field, method in (("variant", "ours"), ("baseline", "baseline"), ("ddim", "ddim")):
        if field == "ddim" and plot[field] is None:
            continue
        if plot[field] not in variants:
            errors.append(f"step_plot.{field}: unknown variant {plot[field]!r} (not in variants)")
        elif variants[plot[field]]["method"] != method:
            errors.append(f"step_plot.{field}: variant {plot[field]!r} is not {method}")
    if plot["dataset"] not in datasets:
        errors.append(f"step_plot.dataset: {plot['dataset']!r} is not in evaluation.datasets")
    elif plot["ratio"] not in datasets[plot["dataset"]]["ratios"]:
        errors.append(f"step_plot.ratio: {plot['ratio']} is not in evaluation.datasets.{plot['dataset']}.ratios")
    if not set(plot["steps"]) <= set(steps):
        errors.append(f"step_plot.steps: {plot['steps']} are not all in evaluation.steps")
    errors += run_variants_errors(config)
    errors += camera_errors(config)
    # the patch store cuts the centre crop into non-overlapping size x size patches
    size, crop = config["patches"]["size"], config["patches"]["crop"]
    if any(side % size for side in crop):
        errors.append(
            f"patches.size: {size} does not divide patches.crop {crop} (the crop is cut into {size}x{size} patches)"
        )
    return errors + recipe_errors(config)


def check(config: dict) -> None:
    """Raise ConfigError listing every message of ``config_errors`` (nothing if there are none)."""
    errors = config_errors(config)
    if errors:
        raise ConfigError("Invalid config:\n  " + "\n  ".join(errors))
