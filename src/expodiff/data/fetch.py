"""Install a downloaded dataset archive where the configuration expects the dataset.

The archive's layout need not match exactly: SID's ``Sony.zip`` holds ``Sony/`` and the list
files at its top, another release may wrap everything in one folder. The archive is extracted
safely (``expodiff.archive.extract_zip``) into a staging folder; the folder that holds the
expected entry then becomes ``dest``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from expodiff.archive import MARKER, ArchiveError, extract_zip
from expodiff.download import download


def install_archive(archive, dest, expected: str) -> Path:
    """Extract ``archive`` so that ``dest/expected`` exists; return ``dest``."""
    archive, dest = Path(archive), Path(dest)
    if dest.exists() and any(p.name != MARKER for p in dest.iterdir()):
        raise ArchiveError(f"{dest}: exists and is not empty; not extracting {archive} over it")
    staging = dest.parent / f".{dest.name}.staging"
    if staging.exists():
        shutil.rmtree(staging)  # a previous extraction that died before the rename
    extract_zip(archive, staging)
    try:
        candidates = [staging] + sorted(p for p in staging.iterdir() if p.is_dir())
        root = next((c for c in candidates if (c / expected).exists()), None)
        if root is None:
            raise ArchiveError(f"{archive}: holds no {expected} at its top or one folder down; is it the right archive?")
        if dest.exists():
            shutil.rmtree(dest)  # empty (Snakemake may create it as an output's parent)
        os.replace(root, dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return dest


def fetch_dataset(url: str, archive, dest, expected: str, sha256: str | None = None, size: int | None = None) -> Path:
    """Download (resumably, verified) and install one dataset archive."""
    download(url, archive, sha256=sha256, size=size)
    return install_archive(archive, dest, expected)
