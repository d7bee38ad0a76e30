"""Safe, atomic zip extraction.

Every entry is checked before anything is written: absolute paths, drive letters, ``..``
components and symlinks pointing outside the destination are refused. Extraction goes to a
temporary sibling directory that replaces ``dest`` only when complete (``atomic_dir``), so a
corrupt archive or a crash never leaves a half-extracted dataset behind.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import stat
import zipfile
import zlib
from pathlib import Path

from expodiff.errors import ExpodiffError
from expodiff.io.atomic import atomic_dir

# Written into every complete extraction; lets atomic_dir replace an earlier one and nothing else.
MARKER = ".expodiff-extracted"


class ArchiveError(ExpodiffError):
    """An archive is corrupt, truncated, incomplete or holds an unsafe entry."""


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)  # 3: made on Unix


def _unsafe_reason(name: str) -> str | None:
    """Why the entry name ``name`` could write outside the destination, or None if it cannot."""
    # Windows tools may write '\' separators; judge them as separators too.
    norm = name.replace("\\", "/")
    if "\0" in norm:
        return "contains a NUL byte"
    if norm.startswith("/"):
        return "is an absolute path"
    if re.match(r"[A-Za-z]:", norm):
        return "starts with a drive letter"
    if ".." in norm.split("/"):
        return "has a '..' component"
    return None


def _check_members(zip_path: Path, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    for info in infos:
        reason = _unsafe_reason(info.filename)
        if reason is None and _is_symlink(info):
            target = zf.read(info).decode("utf-8", "replace")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(info.filename), target.replace("\\", "/")))
            if target.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", target) or resolved.split("/")[0] == "..":
                reason = f"is a symlink to {target!r}, outside the destination"
        if reason:
            raise ArchiveError(
                f"{zip_path}: refusing to extract: entry {info.filename!r} {reason}; nothing was extracted"
            )


def extract_zip(zip_path: str | os.PathLike, dest: str | os.PathLike, *,
                expected_members: list[str] | None = None) -> list[Path]:
    """Extract ``zip_path`` into ``dest`` (created or replaced atomically); return the extracted files.

    ``expected_members``: entry names that must be in the archive (checked before extracting).
    CRC-32 is verified while extracting (zipfile checks it at the end of each member), which
    catches a corrupt archive without reading a 25 GB file twice as ``testzip`` would.
    """
    zip_path, dest = Path(zip_path), Path(dest)
    redownload = "delete it and download it again (expodiff download)"
    try:
        zf = zipfile.ZipFile(zip_path)
    except FileNotFoundError:
        raise ArchiveError(f"{zip_path}: archive not found") from None
    except (zipfile.BadZipFile, OSError) as err:
        raise ArchiveError(
            f"{zip_path}: not a readable zip archive ({err}); it may be truncated: {redownload}"
        ) from err
    with zf:
        infos = zf.infolist()
        if expected_members:
            missing = sorted(set(expected_members) - {i.filename for i in infos})
            if missing:
                shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                raise ArchiveError(
                    f"{zip_path}: missing expected entries {shown}; the archive is incomplete: {redownload}"
                )
        _check_members(zip_path, zf, infos)
        needed = sum(i.file_size for i in infos)
        dest.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(dest.parent).free
        if needed > free:
            raise ArchiveError(f"{zip_path}: extracting needs {needed} bytes, {dest.parent} has {free} free")

        files: list[str] = []
        links: list[zipfile.ZipInfo] = []
        try:
            with atomic_dir(dest, marker=MARKER) as tmp:
                for info in infos:
                    target = tmp / info.filename.replace("\\", "/")
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                    elif _is_symlink(info):
                        links.append(info)
                    else:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        with zf.open(info) as src, open(target, "wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 20)
                        files.append(info.filename.replace("\\", "/"))
                # Links last, so no regular file is ever written through one.
                for info in links:
                    target = tmp / info.filename.replace("\\", "/")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(zf.read(info).decode("utf-8"), target)
                    files.append(info.filename.replace("\\", "/"))
                (tmp / MARKER).write_text(f"{zip_path.name}\n{len(files)} files\n")
        except (zipfile.BadZipFile, zlib.error, EOFError) as err:
            raise ArchiveError(
                f"{zip_path}: corrupt archive ({err}); nothing was extracted to {dest}: {redownload}"
            ) from err
    return [dest / name for name in files]
