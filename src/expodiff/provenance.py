"""Where a result came from, and what a config will cost.

Provenance: ``table_provenance`` records, for one table, the code's git commit, a hash of
the resolved config, the SHA-256 of every checkpoint the table's numbers come from and the
checksums of the datasets they were measured on; ``write_provenance`` writes it as JSON
(``results/tables/{table}.provenance.json``).

Planning: ``plan(config_paths, run_dir=, its=)`` lists the jobs a config makes, per rule, and
estimates the GPU-hours of its trainings from iterations per second measured in a finished
run (its ``benchmarks/out/train/*.tsv`` and ``results/train/*/train_log.csv``) or given.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from expodiff import __version__
from expodiff.errors import ExpodiffError
from expodiff.io.atomic import write_text_atomic

NOT_A_CHECKOUT = "unknown (not a git checkout)"
CHUNK = 1 << 20


# --- hashes --------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    path = Path(path)
    if not path.is_file():
        raise ExpodiffError(f"{path}: file to checksum not found")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def config_hash(config: Mapping) -> str:
    """Hex SHA-256 of the config as canonical JSON (sorted keys): equal configs, equal hashes."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def git_commit(repo_dir: str | os.PathLike = ".") -> str:
    """``git rev-parse HEAD`` of ``repo_dir``, with "+dirty" if tracked files have uncommitted
    changes; "unknown (not a git checkout)" if it is not one (or git is missing)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo_dir), *args], capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return NOT_A_CHECKOUT
    return commit + ("+dirty" if dirty else "")


def dataset_checksum(path: str | os.PathLike) -> dict:
    """Checksums of a dataset as the workflow knows it.

    A file (a SID list file): its SHA-256. A packed evaluation set (has ``index.csv``): the
    index's SHA-256 and one SHA-256 over all its files (relative path and content hash, sorted).
    The generated demo data (has ``MANIFEST.json``): the manifest's SHA-256. Any other folder
    (an ELD camera folder): a SHA-256 over its file listing (relative path and size), since
    hashing gigabytes of raw files for every table would be slow.
    """
    path = Path(path)
    if path.is_file():
        return {"path": str(path), "sha256": sha256_file(path)}
    if not path.is_dir():
        raise ExpodiffError(f"{path}: dataset to checksum not found")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != ".snakemake_timestamp")
    record: dict = {"path": str(path)}
    if (path / "index.csv").is_file():
        record["index_sha256"] = sha256_file(path / "index.csv")
        lines = [f"{p.relative_to(path).as_posix()}\t{sha256_file(p)}" for p in files]
        record["files_sha256"] = hashlib.sha256("\n".join(lines).encode()).hexdigest()
        record["files"] = len(files)
    elif (path / "MANIFEST.json").is_file():
        record["manifest_sha256"] = sha256_file(path / "MANIFEST.json")
    else:
        lines = [f"{p.relative_to(path).as_posix()}\t{p.stat().st_size}" for p in files]
        record["listing_sha256"] = hashlib.sha256("\n".join(lines).encode()).hexdigest()
        record["files"] = len(files)
    return record


# --- table provenance ----------------------------------------------------------------------


def table_provenance(
    config: Mapping,
    repo_dir: str | os.PathLike,
    checkpoints: Mapping[str, str | os.PathLike],
    datasets: Mapping[str, str | os.PathLike],
    tables: Sequence[str | os.PathLike] = (),
) -> dict:
    """What one table was made from.

    ``checkpoints`` maps each variant whose numbers the table shows to its ``model_final.pt``;
    ``datasets`` maps a name ("eval_set", "source") to a file or folder (see ``dataset_checksum``);
    ``tables`` are the table's own files, whose SHA-256s tie this record to their contents.
    """
    return {
        "commit": git_commit(repo_dir),
        "expodiff_version": __version__,
        "table_files": {Path(t).name: sha256_file(t) for t in tables},
        "config_sha256": config_hash(config),
        "checkpoints": {name: {"path": str(p), "sha256": sha256_file(p)} for name, p in checkpoints.items()},
        "datasets": {name: dataset_checksum(p) for name, p in datasets.items()},
    }


def write_provenance(path: str | os.PathLike, provenance: Mapping) -> None:
    write_text_atomic(path, json.dumps(provenance, indent=1) + "\n")


# --- software and config of a run ---------------------------------------------------------

PACKAGES = ("torch", "numpy", "rawpy", "snakemake", "scipy", "scikit-image", "pandas", "matplotlib", "expodiff")


def software_versions(packages: Sequence[str] = PACKAGES, given: Mapping[str, str] | None = None) -> dict:
    """Python, platform and package versions of this interpreter ("not installed" where absent);
    ``given`` overrides (e.g. the version of the snakemake that ran the workflow, which a
    rule's conda env does not contain). With torch: its CUDA build and the device it sees."""
    import importlib.metadata
    import platform

    found = {}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    found.update(given or {})
    versions = {"python": platform.python_version(), "platform": platform.platform(), "packages": found}
    if found.get("torch", "not installed") != "not installed":
        import torch

        cuda = torch.cuda.is_available()
        versions["torch"] = {
            "cuda_build": torch.version.cuda,
            "device": torch.cuda.get_device_name(0) if cuda else "cpu",
            "threads": torch.get_num_threads(),
        }
    return versions


def write_environment(path, config: Mapping, repo_dir, given_versions: Mapping[str, str] | None = None) -> None:
    """Commit, config hash, software versions and the resolved config as one YAML document."""
    import yaml

    document = {
        "commit": git_commit(repo_dir),
        "config_sha256": config_hash(config),
        **software_versions(given=given_versions),
        "config": json.loads(json.dumps(config, default=str)),  # plain types for safe_dump
    }
    header = "# software and resolved config of this run (rule environment; expodiff.provenance)\n"
    write_text_atomic(path, header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100))


# --- plan: jobs and GPU-hours of a config --------------------------------------------------

PAIR_STORE_DATA = ("paired", "pmn")  # trained on the pair store; the noise models on the patch store
PAPER_TRAIN = {"images": 161, "pairs": 280}  # PROTOCOL section 1: SID train scenes and pairs


def job_counts(config: Mapping) -> dict[str, int]:
    """Jobs per rule of the training, evaluation and report stages for ``config``.

    Read off the config as rules/{train,evaluate,report}.smk expand it (tests/test_report.py
    checks it against ``snakemake -n``). Data preparation (downloads, packing, calibration) is
    left out: what it runs depends on what is on disk, and it needs no GPU.
    """
    variants, datasets = config["variants"], config["evaluation"]["datasets"]
    counts = {
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


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def samples_per_epoch(config: Mapping, run_dir: str | os.PathLike | None = None) -> dict[str, tuple[int, str]]:
    """Training samples per epoch by store, {"patches"|"pairs": (count, where it comes from)}.

    From the stores of ``run_dir`` when it has them (they are exactly what training reads), else,
    for real data, from the paper's counts (PROTOCOL section 1: 161 images cut into patches of
    ``patches.size`` from the ``patches.crop`` centre crop, 280 pairs).
    """
    out: dict[str, tuple[int, str]] = {}
    root = Path(run_dir) if run_dir is not None else None
    for store, meta_path in (("patches", "results/patches/sid_train/meta.json"), ("pairs", "results/pairs/sid_train/meta.json")):
        meta = _read_json(root / meta_path) if root is not None else None
        if meta is not None:
            out[store] = (int(meta["count"]), str(root / meta_path))
        elif config["data"]["source"] == "real":
            if store == "patches":
                size, (crop_h, crop_w) = int(config["patches"]["size"]), config["patches"]["crop"]
                per_image = (int(crop_h) // size) * (int(crop_w) // size)
                out[store] = (PAPER_TRAIN["images"] * per_image, f"paper: {PAPER_TRAIN['images']} images × {per_image}")
            else:
                out[store] = (PAPER_TRAIN["pairs"], "paper: SID train pairs")
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


def plan(
    config_paths: Sequence[str | os.PathLike],
    run_dir: str | os.PathLike | None = None,
    its: float | None = None,
) -> str:
    """The jobs per rule of a config and the estimated GPU-hours of its trainings, as text.

    ``config_paths``: config.yaml and overlays, merged in order (``expodiff.config.load_config``).
    Iterations per second per variant: ``its`` for every variant if given, else measured in
    ``run_dir`` (a finished run of the workflow: its benchmark TSVs and train logs); a variant not
    measured there takes the mean of the measured variants with its backbone and method. Training
    iterations = epochs × ceil(samples per epoch / batch size), samples from ``samples_per_epoch``.
    """
    from expodiff.config import load_config  # jsonschema/yaml only when planning

    config = load_config(config_paths)
    if its is not None and its <= 0:
        raise ExpodiffError(f"--its must be positive, got {its}")
    counts = job_counts(config)
    lines = [f"plan for {' + '.join(map(str, config_paths))}", "",
             "jobs per rule (training, evaluation, report; data preparation: see snakemake -n):"]
    width = max(map(len, counts))
    lines += [f"  {rule:<{width}}  {n:>4}" for rule, n in counts.items()]
    lines.append(f"  {'total':<{width}}  {sum(counts.values()):>4}")

    training = config["training"]
    epochs, batch = int(training["epochs"]), int(training["batch_size"])
    samples = samples_per_epoch(config, run_dir)
    variants = config["variants"]
    measured = {name: measured_its(run_dir, name) for name in variants} if run_dir is not None else {}
    rows, total, unknown = [], 0.0, []
    for name, v in variants.items():
        store = "pairs" if v["data"] in PAIR_STORE_DATA else "patches"
        n, _ = samples.get(store, (None, ""))
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
        hours = iterations / rate / 3600 if iterations is not None and rate else None
        if hours is None:
            unknown.append(name)
        else:
            total += hours
        rows.append((name, v["data"], "?" if n is None else str(n), "?" if iterations is None else str(iterations),
                     "?" if not rate else f"{rate:.3g}", source, "?" if hours is None else f"{hours:.2f}"))
    header = ("variant", "data", "samples/epoch", "iterations", "it/s", "it/s from", "GPU-hours")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    lines += ["", f"training: {epochs} epochs, batch {batch}, one GPU per training job", fmt(header)]
    lines += [fmt(r) for r in rows]
    lines.append(f"  total GPU-hours: {total:.2f}" + (f" (without {len(unknown)} unknown: {', '.join(unknown)})" if unknown else ""))
    for store, (n, where) in samples.items():
        lines.append(f"  {store}: {n} per epoch ({where})")
    if run_dir is not None:
        lines.append(f"  measured in {run_dir}: it/s hold for that run's patch size and device only")
    return "\n".join(lines) + "\n"
