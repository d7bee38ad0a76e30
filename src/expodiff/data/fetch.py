"""Install a downloaded dataset archive where the configuration expects the dataset.

Used by the workflow's ``install_*`` rules and by ``expodiff unpack`` (an archive downloaded by
hand). The archive's SHA-256 is checked first when one is given. The archive's layout need not
match exactly: SID's ``Sony.zip`` holds ``Sony/`` and the list files at its top, another release
may wrap everything in one folder. The archive is extracted safely
(``expodiff.archive.extract_zip``, which refuses links and any entry that could write outside
the destination) into a staging folder; the folder that holds the expected entry then becomes
``dest`` (with no expected entry, the whole archive does).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from expodiff.io.archive import MARKER, ArchiveError, extract_zip
from expodiff.io.download import VerificationError, _sha256_of
from expodiff.errors import ConfigError


def install_archive(archive, dest, expected: str | None = None, *, sha256: str | None = None) -> Path:
    """Extract ``archive`` so that ``dest/expected`` exists (``expected`` None: as it is); return ``dest``.

    ``sha256``: the archive's expected SHA-256 (hex); a mismatch extracts nothing.
    """
    archive, dest = Path(archive), Path(dest)
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ConfigError(f"sha256 for {archive}: expected 64 hex digits, got {sha256!r}")
    if not archive.is_file():
        raise ArchiveError(f"{archive}: archive not found")
    if dest.exists() and (not dest.is_dir() or any(p.name != MARKER for p in dest.iterdir())):
        raise ArchiveError(f"{dest}: exists and is not an empty folder; not extracting {archive} over it")
    if sha256 is not None:
        digest = _sha256_of(archive)
        if digest != sha256:
            raise VerificationError(
                f"{archive}: SHA-256 is {digest}, expected {sha256}; nothing was extracted to {dest}: "
                f"the file is kept; delete it and download it again (expodiff download)"
            )
    staging = dest.parent / f".{dest.name}.staging"
    if staging.exists():
        shutil.rmtree(staging)  # a previous extraction that died before the rename
    extract_zip(archive, staging)
    try:
        if expected is None:
            root = staging
        else:
            candidates = [staging] + sorted(p for p in staging.iterdir() if p.is_dir())
            root = next((c for c in candidates if (c / expected).exists()), None)
            if root is None:
                raise ArchiveError(
                    f"{archive}: holds no {expected} at its top or one folder down; is it the right archive?"
                )
        if dest.exists():
            shutil.rmtree(dest)  # empty (Snakemake may create it as an output's parent)
        os.replace(root, dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return dest
