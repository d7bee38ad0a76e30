"""What a config will cost: its jobs per rule, and the GPU-hours of its trainings.

``plan(config_paths, run_dir=, its=)`` (``expodiff plan``) lists the jobs a config makes, per
rule, and estimates the GPU-hours of its trainings from iterations per second measured in a
finished run (its ``benchmarks/out/train/*.tsv`` and ``results/train/*/train_log.csv``) or
given. The counts are read off the tables the workflow itself expands: the data kinds
(``expodiff.data.sources.DATA_KINDS``: which store, and the rule building it, each training
reads) and the methods (``expodiff.methods``: the step counts each evaluation runs);
tests/test_report.py checks them against ``snakemake -n``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

from expodiff.data.sources import DARK_SHADING, STORES, data_kind
from expodiff.errors import ExpodiffError
from expodiff.recipes import recipe_name, used_recipes

PAPER_TRAIN = {"patches": 161, "pairs": 280}  # PROTOCOL section 1: SID train scenes, and pairs


def _run_variants(config: Mapping) -> dict:
    """The variants the run trains (``run_variants``; null or absent: all), {name: entry}."""
    chosen = config.get("run_variants")
    return {name: v for name, v in config["variants"].items() if chosen is None or name in chosen}


def job_counts(config: Mapping) -> dict[str, int]:
    """Jobs per rule of the training stores, training, evaluation and report stages for ``config``.

    Read off the config as rules/{data,train,evaluate,report}.smk expand it: one job per store
    (and dark-shading maps) that a variant's data kind reads, one training per variant, one
    evaluation per variant and dataset. Downloads, packing and calibration are left out: what
    they run depends on what is on disk, and they need no GPU.
    """
    variants, datasets = _run_variants(config), config["evaluation"]["datasets"]
    kinds = [data_kind(v["data"]) for v in variants.values()]
    counts = {store.rule: 1 for store in dict.fromkeys(kind.store for kind in kinds)}
    if any(kind.uses_dark_shading(config) for kind in kinds):
        counts[DARK_SHADING.rule] = 1
    counts |= {
        "train": len(variants),
        "evaluate": len(variants) * len(datasets),
        "table": len(config["tables"]),
        "variant_table": len(config["variant_tables"]),
        "cost_table": 1,
        "step_plot": 1,
        "scene_grids": 1,
        "training_curves": 1,
        "runtime": 1,
        "environment": 1,
    }
    return {rule: n for rule, n in counts.items() if n}


def eval_steps(config: Mapping) -> dict[str, list[int]]:
    """The step counts each method's evaluations run, {method: steps}, for the methods of the
    config's variants (``expodiff.methods``: evaluation.steps for ours, evaluation.ddim_steps
    for ddim, one step for the baseline)."""
    from expodiff.methods import get_method  # torch: only when planning

    methods = dict.fromkeys(v["method"] for v in _run_variants(config).values())
    return {name: get_method(name).eval_steps(config["evaluation"]) for name in methods}


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def samples_per_epoch(config: Mapping, run_dir: str | os.PathLike | None = None) -> dict[str, tuple[int, str]]:
    """Training samples per epoch by store, {"patches"|"pairs": (count, where it comes from)}.

    From the stores of ``run_dir`` when it has them (they are exactly what training reads), else,
    for real data, from the paper's counts (PROTOCOL section 1: 161 images cut into patches of
    ``patches.size`` from the ``patches.crop`` centre crop; 280 pairs, each cut into the same
    patches with ``paired.crops: centre-patches``: 2,240).
    """
    out: dict[str, tuple[int, str]] = {}
    root = Path(run_dir) if run_dir is not None else None
    for name, store in STORES.items():
        meta_path = f"{store.path}/meta.json"
        meta = _read_json(root / meta_path) if root is not None else None
        if meta is not None:  # a pair store's samples: pairs × fixed patches (older stores: pairs)
            out[name] = (int(meta.get("samples", meta["count"])), str(root / meta_path))
        elif config["data"]["source"] == "real":
            size, (crop_h, crop_w) = int(config["patches"]["size"]), config["patches"]["crop"]
            per_image = (int(crop_h) // size) * (int(crop_w) // size)
            if name == "patches":
                out[name] = (PAPER_TRAIN[name] * per_image, f"paper: {PAPER_TRAIN[name]} images × {per_image}")
            elif config["paired"]["crops"] == "centre-patches":
                out[name] = (PAPER_TRAIN[name] * per_image, f"paper: {PAPER_TRAIN[name]} SID train pairs × {per_image}")
            else:
                out[name] = (PAPER_TRAIN[name], "paper: SID train pairs, a random crop each")
    return out


def measured_its(run_dir: str | os.PathLike, variant: str) -> float | None:
    """Iterations per second of a finished training in ``run_dir``: the iterations its
    ``train_log.csv`` records over the wall time of its benchmark (``s`` column)."""
    root = Path(run_dir)
    bench, log = root / "benchmarks/out/train" / f"{variant}.tsv", root / "results/train" / variant / "train_log.csv"
    if not (bench.is_file() and log.is_file()):
        return None
    with open(bench, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    with open(log, newline="") as f:
        iterations = [int(r["iteration"]) for r in csv.DictReader(f)]
    seconds = sum(float(r["s"]) for r in rows)
    if not iterations or seconds <= 0:
        return None
    return max(iterations) / seconds


def read_speeds(paths: Sequence[str | os.PathLike]) -> list[dict]:
    """Measured training speeds: the ``speeds`` records of benchmarks/gpu_check.py's JSON, or
    the one record of ``benchmarks/train_step.py --json``; each with backbone, method,
    precision, size, batch_size, iterations_per_s and the device it ran on (``device_name``)."""
    records = []
    for path in paths:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ExpodiffError(f"--speeds {path}: not a readable JSON file ({err})") from None
        found = data.get("speeds") if isinstance(data, dict) else None
        if found is None and isinstance(data, dict) and "iterations_per_s" in data:
            found = [data]
        keys = ("backbone", "method", "precision", "size", "iterations_per_s")
        if not found or not all(isinstance(r, dict) and all(k in r for k in keys) for r in found):
            raise ExpodiffError(f"--speeds {path}: no training speeds in it (expected the JSON of "
                                "benchmarks/gpu_check.py or of benchmarks/train_step.py --json)")
        device = data.get("gpu") or data.get("device") or "?"
        records += [{"device_name": device, **r, "file": str(path)} for r in found]
    return records


def speed_for(records: list[dict], backbone: str, method: str, precision: str, size: int, batch: int):
    """(it/s, where from) of the records measured for this network, precision, patch size and
    batch size (their mean), or (None, why not)."""
    match = [r for r in records if (r["backbone"], r["method"], r["precision"], int(r["size"]),
                                    int(r.get("batch_size", 1))) == (backbone, method, precision, size, batch)]
    if not match:
        return None, f"no {backbone}/{method} {precision} {size}² speed"
    devices = ", ".join(sorted({str(r["device_name"]) for r in match}))
    return sum(float(r["iterations_per_s"]) for r in match) / len(match), f"{devices} {precision} {size}²"


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as left-aligned columns, indented by two spaces."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def plan(
    config_paths: Sequence[str | os.PathLike],
    run_dir: str | os.PathLike | None = None,
    its: float | None = None,
    speeds: Sequence[str | os.PathLike] = (),
    precision: str | None = None,
) -> str:
    """The jobs per rule of a config and the estimated GPU-hours of its trainings, as text.

    ``config_paths``: config.yaml and overlays, merged in order and checked
    (``expodiff.config.load_config``). Iterations per second per variant: ``its`` for every
    variant if given, else measured in ``run_dir`` (a finished run of the workflow: its benchmark
    TSVs and train logs); a variant not measured there takes the mean of the measured variants
    with its backbone and method; else from ``speeds`` (benchmark JSON files, ``read_speeds``):
    the speed measured for its backbone, method, the config's patch size and batch size, in
    ``precision`` (default: the config's compute.precision). Training iterations = epochs of the variant's recipe
    (``recipes.NAME.epochs``) × ceil(samples per epoch / batch size), samples from the
    variant's store (``samples_per_epoch``).
    """
    from expodiff.config import load_config  # jsonschema/yaml only when planning

    config = load_config(config_paths)
    if its is not None and its <= 0:
        raise ExpodiffError(f"--its must be positive, got {its}")
    counts = job_counts(config)
    lines = [f"plan for {' + '.join(map(str, config_paths))}", "",
             "jobs per rule (training stores, training, evaluation, report; data preparation: see snakemake -n):"]
    width = max(map(len, counts))
    lines += [f"  {rule:<{width}}  {n:>4}" for rule, n in counts.items()]
    lines.append(f"  {'total':<{width}}  {sum(counts.values()):>4}")

    batch = int(config["training"]["batch_size"])
    samples = samples_per_epoch(config, run_dir)
    variants = _run_variants(config)
    measured = {name: measured_its(run_dir, name) for name in variants} if run_dir is not None else {}
    benchmarked = read_speeds(speeds) if speeds else []
    precision = precision or config["compute"]["precision"]
    if precision not in ("fp32", "tf32", "bf16"):
        raise ExpodiffError(f"--precision must be fp32, tf32 or bf16, got {precision!r}")
    rows, total, unknown = [], 0.0, []
    for name, v in variants.items():
        recipe = recipe_name(config, name)
        epochs = int(config["recipes"][recipe]["epochs"])
        n, _ = samples.get(data_kind(v["data"]).store.name, (None, ""))
        iterations = epochs * math.ceil(n / batch) if n is not None else None
        if its is not None:
            rate, source = its, "--its"
        elif measured.get(name):
            rate, source = measured[name], "measured"
        else:
            peers = [measured[o] for o, w in variants.items() if measured.get(o)
                     and (w["backbone"], w["method"]) == (v["backbone"], v["method"])]  # fmt: skip
            rate = sum(peers) / len(peers) if peers else None
            source = f"mean of {len(peers)} {v['backbone']}/{v['method']}" if peers else "not measured"
            if rate is None and benchmarked:
                rate, source = speed_for(benchmarked, v["backbone"], v["method"], precision,
                                         int(config["patches"]["size"]), batch)
        hours = iterations / rate / 3600 if iterations is not None and rate else None
        if hours is None:
            unknown.append(name)
        else:
            total += hours
        rows.append((name, v["data"], recipe, str(epochs), "?" if n is None else str(n),
                     "?" if iterations is None else str(iterations), "?" if not rate else f"{rate:.3g}", source,
                     "?" if hours is None else f"{hours:.2f}"))  # fmt: skip
    header = ("variant", "data", "recipe", "epochs", "samples/epoch", "iterations", "it/s", "it/s from", "GPU-hours")
    recipes = ", ".join(f"{r} ({len(names)})" for r, names in used_recipes(config).items())
    lines += ["", f"training: batch {batch}, one GPU per training job; epochs from each variant's recipe: {recipes}",
              *_columns([header, *rows])]  # fmt: skip
    lines.append(f"  total GPU-hours: {total:.2f}" + (f" (without {len(unknown)} unknown: {', '.join(unknown)})" if unknown else ""))
    for store, (n, where) in samples.items():
        lines.append(f"  {store}: {n} per epoch ({where})")
    if run_dir is not None:
        lines.append(f"  measured in {run_dir}: it/s hold for that run's patch size and device only")
    if benchmarked:
        lines.append(f"  benchmarked speeds ({precision}): {', '.join(sorted({r['file'] for r in benchmarked}))}")

    methods = [v["method"] for v in variants.values()]
    steps = eval_steps(config)
    rows = [(m, ", ".join(map(str, s)), str(sum(s)), str(methods.count(m))) for m, s in steps.items()]
    lines += ["", f"evaluation: every variant on {len(config['evaluation']['datasets'])} dataset(s), one run per "
                  "step count and image", *_columns([("method", "step counts", "network evaluations/image", "variants"),
                                                     *rows])]  # fmt: skip
    return "\n".join(lines) + "\n"
