"""Safe, atomic zip extraction.

Every entry is checked before anything is written, and one unsafe entry refuses the whole
archive ("nothing was extracted"):

- names that could leave the destination: absolute paths, drive letters, ``..`` components,
  NUL bytes (``\\`` counts as a separator, as Windows tools write it);
- symbolic links, whatever they point to: a dataset needs none, and a link checked on its own
  text can still escape through links created before it in the same archive (``x/y/z -> ../..``
  then ``esc -> x/y/z/../../..``); other special files (devices, FIFOs) likewise;
- an entry named like the completion marker (``.expodiff-extracted``, at any depth);
- two entries with the same name, and an entry whose path passes through a file entry.

Extraction goes to a temporary sibling directory (``atomic_dir``) that replaces ``dest`` only
when complete, so a corrupt archive or a crash never leaves a half-extracted dataset behind.
Every file, the marker included, is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``: nothing is
ever written through a link or over another entry.
"""

from __future__ import annotations

import os
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

# Create a new regular file; fail if anything (a file, a link, even a dangling one) has the name.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


class ArchiveError(ExpodiffError):
    """An archive is corrupt, truncated, incomplete or holds an unsafe entry."""


def _unix_mode(info: zipfile.ZipInfo) -> int | None:
    return info.external_attr >> 16 if info.create_system == 3 else None  # 3: made on Unix


def _parts(name: str) -> tuple[str, ...]:
    """The path components ``name`` is extracted to ('\\' is a separator; '' and '.' drop out)."""
    return tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def _is_dir(info: zipfile.ZipInfo) -> bool:
    return info.filename.replace("\\", "/").endswith("/")


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
    if not _parts(norm):
        return "names no file"
    if MARKER in _parts(norm):
        return f"is named like the completion marker {MARKER} that extraction writes"
    return None


def _check_members(zip_path: Path, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    def refuse(info: zipfile.ZipInfo, reason: str) -> None:
        raise ArchiveError(
            f"{zip_path}: refusing to extract: entry {info.filename!r} {reason}; nothing was extracted"
        )

    seen: dict[tuple[str, ...], zipfile.ZipInfo] = {}
    for info in infos:
        reason = _unsafe_reason(info.filename)
        if reason:
            refuse(info, reason)
        mode = _unix_mode(info)
        if mode is not None and stat.S_ISLNK(mode):
            target = zf.read(info).decode("utf-8", "replace")
            refuse(info, f"is a symlink (to {target!r}); datasets hold no links, so none is extracted")
        if mode is not None and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            refuse(info, f"is a special file (mode {stat.filemode(mode)}), not a file or folder")
        parts = _parts(info.filename)
        if parts in seen:
            refuse(info, f"appears twice (also as {seen[parts].filename!r})")
        seen[parts] = info
    for parts, info in seen.items():
        for i in range(1, len(parts)):
            parent = seen.get(parts[:i])
            if parent is not None and not _is_dir(parent):
                refuse(info, f"passes through {parent.filename!r}, which is a file entry")


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
        try:
            with atomic_dir(dest, marker=MARKER) as tmp:
                for info in infos:
                    name = "/".join(_parts(info.filename))
                    target = tmp / name
                    if _is_dir(info):
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, os.fdopen(os.open(target, _CREATE, 0o666), "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    files.append(name)
                with os.fdopen(os.open(tmp / MARKER, _CREATE, 0o666), "w") as f:
                    f.write(f"{zip_path.name}\n{len(files)} files\n")
        except (zipfile.BadZipFile, zlib.error, EOFError) as err:
            raise ArchiveError(
                f"{zip_path}: corrupt archive ({err}); nothing was extracted to {dest}: {redownload}"
            ) from err
    return [dest / name for name in files]
