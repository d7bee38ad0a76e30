"""Where a result came from: hashes, table provenance and the environment record of a run.

``table_provenance`` records, for one table, the code's git commit, a hash of the resolved
config, the SHA-256 of every checkpoint the table's numbers come from, the training recipe
that made each of them (``cell_recipes``) and the checksums of the datasets they were
measured on; ``write_provenance`` writes it as JSON
(``results/tables/{table}.provenance.json``). ``write_environment`` records the commit, config
hash and software versions of a run. (What a config will cost: ``expodiff.plan``.)
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from expodiff import __version__
from expodiff.errors import ExpodiffError
from expodiff.io.atomic import write_text_atomic
from expodiff.recipes import recipe_name

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

RELEASED = "released checkpoint"  # a cell of the authors' checkpoint (checkpoints: released): their training


def cell_recipes(config: Mapping, variants: Sequence[str]) -> dict[str, str]:
    """{variant: the recipe that trained its checkpoint} (``variants.NAME.recipe``), or
    "released checkpoint" for a variant whose released checkpoint is evaluated instead."""
    released = config.get("checkpoints") == "released"
    return {name: RELEASED if released and name in config["released_checkpoints"]["files"]
            else recipe_name(config, name) for name in variants}  # fmt: skip


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
    ``cell_recipes`` says which training recipe made each variant's cells, and ``recipes`` what
    those recipes are (from ``config``).
    """
    made_by = cell_recipes(config, list(checkpoints))
    return {
        "commit": git_commit(repo_dir),
        "expodiff_version": __version__,
        "table_files": {Path(t).name: sha256_file(t) for t in tables},
        "config_sha256": config_hash(config),
        "checkpoints": {name: {"path": str(p), "sha256": sha256_file(p)} for name, p in checkpoints.items()},
        "cell_recipes": made_by,
        "recipes": {name: config["recipes"][name] for name in dict.fromkeys(made_by.values()) if name != RELEASED},
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
