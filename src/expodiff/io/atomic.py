"""Atomic file writes: an output either appears complete or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from expodiff.errors import ExpodiffError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds.

    The temporary keeps ``path``'s suffix so that libraries choosing a format by extension
    (matplotlib, pandas) behave as for the final name; writers that would change the name
    (``np.save`` appends ``.npy`` unless the name ends in exactly that) must write to an open
    file instead, as ``save_npy_atomic`` does. A ``path`` that is a folder is refused up front.
    """
    path = Path(path)
    if path.is_dir():
        raise ExpodiffError(f"{path}: is a folder; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)  # mkstemp makes 0600 files; give the output the usual permissions
    os.umask(umask)
    tmp_path.chmod(0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_npy_atomic(path: str | os.PathLike, array) -> None:
    """``np.save`` to exactly ``path`` (whatever its suffix), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, marker: str) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; on success it takes ``path``'s place.

    A crash leaves ``path`` as it was (no half-written output). An existing ``path`` is replaced
    only if it is empty or holds ``marker`` (a file every complete output of this kind has), so a
    mistyped path never deletes unrelated data.
    """
    path = Path(path)
    if path.exists() and not (path.is_dir() and (not any(path.iterdir()) or (path / marker).is_file())):
        raise ExpodiffError(
            f"{path}: exists and is not an earlier output (no {marker}); remove it or choose another path"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    mask = os.umask(0)  # mkdtemp makes 0700 directories; give the final one the usual permissions
    os.umask(mask)
    os.chmod(tmp, 0o777 & ~mask)
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "x")  # move the old output aside, then swap in the new one
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
