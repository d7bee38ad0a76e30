"""Download one large file: resumable, verified, renamed into place only when correct.

The transfer goes to ``OUT.part``; only a file whose size and SHA-256 match becomes ``OUT``
(``os.replace``, atomic). Nothing already downloaded is ever deleted: a failed transfer keeps its
partial so that re-running resumes it, and a file that fails verification is kept for inspection.
Running again on a complete ``OUT`` only verifies it (no network access).

``url`` is an http(s) URL, or ``gdrive:FILE_ID`` for Google Drive (through gdown, which handles
the confirmation page Drive shows for large files).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from pathlib import Path

import requests
from tqdm import tqdm

from expodiff.errors import ConfigError, ExpodiffError

GDRIVE_PREFIX = "gdrive:"


class DownloadError(ExpodiffError):
    """The transfer failed (HTTP status, connection, disk space); any partial is kept."""


class DiskSpaceError(DownloadError):
    """The target filesystem has less free space than the rest of the file needs."""


class VerificationError(DownloadError):
    """A file's size or SHA-256 differs from the expected value; the file is kept."""


def parse_gdrive(url: str) -> str | None:
    """The Drive file id of a ``gdrive:FILE_ID`` URL, None for any other URL."""
    if not url.startswith(GDRIVE_PREFIX):
        return None
    file_id = url[len(GDRIVE_PREFIX):]
    # Drive ids are URL-safe base64: letters, digits, '-' and '_'.
    if not re.fullmatch(r"[A-Za-z0-9_-]{10,}", file_id):
        raise ConfigError(
            f"url {url!r}: expected gdrive:FILE_ID with a Google Drive file id (letters, digits, - and _)"
        )
    return file_id


def download(url: str, out: str | os.PathLike, *, sha256: str | None = None, size: int | None = None,
             progress: bool = True, chunk_size: int = 1 << 20, timeout: float = 60, retries: int = 3) -> Path:
    """Download ``url`` to ``out`` (through ``out.part``), verify ``size``/``sha256`` and return ``out``.

    ``retries``: reconnections after a dropped connection that made no progress since the last one
    (a 25 GB transfer may drop many times; every reconnection resumes with an HTTP Range request).
    """
    out = Path(out)
    part = out.with_name(out.name + ".part")
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ConfigError(f"sha256 for {out}: expected 64 hex digits, got {sha256!r}")
    gdrive_id = parse_gdrive(url)
    if gdrive_id is None and not re.match(r"https?://", url):
        raise ConfigError(f"url {url!r}: expected an http(s):// URL or gdrive:FILE_ID")

    if out.exists():
        if not out.is_file():
            raise DownloadError(f"{out}: exists and is not a file; remove it or choose another --out")
        _verify(out, url, sha256=sha256, size=size, partial=False)
        return out

    out.parent.mkdir(parents=True, exist_ok=True)
    if size is not None:  # known up front: fail before any request
        _check_space(part, size - _partial_bytes(part))
    if gdrive_id is not None:
        _fetch_gdrive(gdrive_id, url, part, progress=progress, timeout=timeout, retries=retries)
    else:
        _fetch_http(url, part, size=size, progress=progress, chunk_size=chunk_size, timeout=timeout, retries=retries)
    # One verification/rename path for every source.
    _verify(part, url, sha256=sha256, size=size, partial=True)
    os.replace(part, out)
    return out


def _size_of(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _partial_bytes(part: Path) -> int:
    # Ours, plus gdown's resumable partial (OUT.part + 8 random characters + .part) if there is one.
    gdown_parts = part.parent.glob(part.name + "?" * 8 + ".part") if part.parent.is_dir() else []
    return _size_of(part) + sum(p.stat().st_size for p in gdown_parts)


def _check_space(part: Path, needed: int) -> None:
    if needed <= 0:
        return
    free = shutil.disk_usage(part.parent).free
    if needed > free:
        raise DiskSpaceError(
            f"{part.parent}: not enough free space for {part.name}: needs {needed} bytes ({needed / 1e9:.2f} GB) more, "
            f"{free} bytes ({free / 1e9:.2f} GB) free; free some space or choose another --out"
        )


def _fetch_http(url: str, part: Path, *, size: int | None, progress: bool, chunk_size: int, timeout: float,
                retries: int) -> None:
    """Fill ``part`` with the body of ``url``, resuming from what it already holds."""
    failures = 0
    with requests.Session() as session:
        while True:
            have = _size_of(part)
            # identity encoding: Range offsets must count the bytes as they are on disk.
            headers = {"Accept-Encoding": "identity"}
            if have:
                headers["Range"] = f"bytes={have}-"
            try:
                with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
                    if response.status_code == 416:
                        _check_416(url, part, response, have)
                        return  # the partial already holds the whole file: verification decides
                    if response.status_code >= 400:
                        raise DownloadError(
                            f"{url}: HTTP {response.status_code} {response.reason}"
                            + (f"; the partial {part} ({have} bytes) is kept" if have else "")
                        )
                    if have and (response.status_code != 206 or _range_start(response) != have):
                        have = 0  # the server ignored Range and sends the whole file: start over
                    total = _announced_total(response, have)
                    if total is not None and size is not None and total != size:
                        raise VerificationError(
                            f"{url}: the server announces {total} bytes, expected {size}; nothing was written"
                            + (f" (the partial {part} is kept)" if have or part.exists() else "")
                            + "; check the URL and the expected size"
                        )
                    if size is None and total is not None:
                        _check_space(part, total - have)
                    with open(part, "ab" if have else "wb") as f, tqdm(
                        total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                        desc=part.name, disable=not progress,
                    ) as bar:
                        for chunk in response.iter_content(chunk_size):
                            f.write(chunk)
                            bar.update(len(chunk))
                    if total is not None and _size_of(part) < total:
                        # Without a length check from urllib3 a short body would pass as complete.
                        raise requests.ConnectionError(f"body ended after {_size_of(part)} of {total} bytes")
                    return
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
                # A reconnection that made progress starts a fresh retry budget.
                failures = 0 if _size_of(part) > have else failures + 1
                if failures > retries:
                    kept = f"the partial {part} ({_size_of(part)} bytes) is kept and re-running resumes it" \
                        if part.exists() else "nothing was written"
                    raise DownloadError(f"{url}: connection failed after {retries} retries ({err}); {kept}") from err
                time.sleep(min(2.0 ** (failures - 1), 30.0))


def _range_start(response: requests.Response) -> int | None:
    match = re.match(r"bytes (\d+)-\d+/", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _announced_total(response: requests.Response, have: int) -> int | None:
    """The full file size the response implies, or None if the server does not say."""
    match = re.match(r"bytes \d+-\d+/(\d+)", response.headers.get("Content-Range", ""))
    if match:
        return int(match.group(1))
    length = response.headers.get("Content-Length")
    return int(length) + have if length is not None and length.isdigit() else None


def _check_416(url: str, part: Path, response: requests.Response, have: int) -> None:
    # 416 means "nothing at or after byte `have`"; a partial longer than the remote file is not complete.
    match = re.fullmatch(r"bytes \*/(\d+)", response.headers.get("Content-Range", ""))
    if match and int(match.group(1)) != have:
        raise DownloadError(
            f"{url}: the partial {part} holds {have} bytes but the remote file has {match.group(1)}; "
            f"it is kept: delete it and re-run to download again"
        )


def _fetch_gdrive(file_id: str, url: str, part: Path, *, progress: bool, timeout: float, retries: int) -> None:
    """Fill ``part`` from Google Drive (not testable offline, so kept minimal)."""
    import gdown

    # gdown keeps its own resumable partial beside ``part`` (OUT.part + 8 random characters + .part)
    # and renames it to ``part`` only once the body is complete; an existing ``part`` therefore is
    # a complete transfer (e.g. one that failed verification before) and only needs verifying.
    if part.exists():
        return
    try:
        gdown.download(id=file_id, output=str(part), quiet=not progress, resume=True, retries=retries, timeout=timeout)
    except (gdown.exceptions.FileURLRetrievalError, gdown.exceptions.DownloadError, requests.RequestException) as err:
        raise DownloadError(
            f"{url}: Google Drive download failed ({err}); any partial gdown wrote (named {part.name} + 8 characters + .part, "
            f"in {part.parent}) is kept and re-running resumes it"
        ) from err


def _sha256_of(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, url: str, *, sha256: str | None, size: int | None, partial: bool) -> None:
    """Raise VerificationError if ``path`` differs from the expected size or SHA-256; never deletes it."""
    if partial:
        advice = (f"the download of {url} is kept in {path} for inspection; delete it and re-run to download "
                  f"again (check the URL and the expected value first)")
    else:
        advice = f"{path} was not modified; delete it and re-run to download {url} again"
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise VerificationError(f"{path}: size is {actual} bytes, expected {size}; {advice}")
    if sha256 is not None:
        digest = _sha256_of(path)
        if digest != sha256:
            raise VerificationError(f"{path}: SHA-256 is {digest}, expected {sha256}; {advice}")
