"""expodiff.io.download and expodiff.io.archive against a real HTTP server on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import stat
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from expodiff.io.archive import ArchiveError, extract_zip
from expodiff.io.download import DiskSpaceError, DownloadError, VerificationError, download, parse_gdrive
from expodiff.errors import ConfigError

SID_MEMBERS = {
    "Sony/short/10185_00_0.1s.ARW": b"short exposure bytes " * 50,
    "Sony/long/10185_00_10s.ARW": b"long exposure bytes " * 80,
    "Sony_test_list.txt": b"./Sony/short/10185_00_0.1s.ARW ./Sony/long/10185_00_10s.ARW ISO200 F9\n",
}


def make_zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


SONY_ZIP = make_zip(SID_MEMBERS)
SONY_SHA = hashlib.sha256(SONY_ZIP).hexdigest()


class Handler(BaseHTTPRequestHandler):
    timeout = 5  # per-request socket timeout: a stuck client never hangs the server thread

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        srv = self.server
        with srv.lock:
            srv.requests.append((self.command, self.path, self.headers.get("Range")))
            first = len(srv.requests) == 1
        if srv.status:
            self.send_error(srv.status)
            return
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        if srv.corrupt:
            body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
        start, code = 0, 200
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and not srv.ignore_range:
            start, code = int(match.group(1)), 206
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        self.send_response(code)
        self.send_header("Content-Length", str(len(body) - start))
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        payload = body[start:]
        if first and srv.drop_after is not None:
            # Announce the full length, send part of it, then cut the connection.
            self.wfile.write(payload[: srv.drop_after])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(payload)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.files = {"/Sony.zip": SONY_ZIP}
        self.requests: list[tuple[str, str, str | None]] = []
        self.drop_after: int | None = None  # first GET: send this many body bytes, then drop
        self.ignore_range = False
        self.status: int | None = None  # answer every request with this status
        self.corrupt = False  # flip one byte of the body

    def url(self, path="/Sony.zip") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def server():
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "expodiff.cli", *args], capture_output=True, text=True, timeout=30)


def test_full_download_verify_extract(server, tmp_path):
    out = download(server.url(), tmp_path / "Sony.zip", sha256=SONY_SHA, size=len(SONY_ZIP), progress=False)
    assert out == tmp_path / "Sony.zip" and sha(out) == SONY_SHA
    assert not (tmp_path / "Sony.zip.part").exists()
    files = extract_zip(out, tmp_path / "SID", expected_members=list(SID_MEMBERS))
    assert sorted(files) == sorted(tmp_path / "SID" / name for name in SID_MEMBERS)
    for name, data in SID_MEMBERS.items():
        assert (tmp_path / "SID" / name).read_bytes() == data
    # No temporary directories left beside the destination; re-extraction replaces the earlier one.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SID", "Sony.zip"]
    extract_zip(out, tmp_path / "SID")
    assert (tmp_path / "SID" / "Sony_test_list.txt").is_file()


def test_rerun_on_complete_file_only_verifies(server, tmp_path):
    out = download(server.url(), tmp_path / "Sony.zip", sha256=SONY_SHA, progress=False)
    n = len(server.requests)
    assert download(server.url(), out, sha256=SONY_SHA, size=len(SONY_ZIP), progress=False) == out
    assert len(server.requests) == n  # verified locally, no request
    # A complete file that does not match is reported and left alone.
    with pytest.raises(VerificationError, match="not modified") as err:
        download(server.url(), out, sha256="0" * 64, progress=False)
    assert str(out) in str(err.value) and SONY_SHA in str(err.value)
    assert sha(out) == SONY_SHA and len(server.requests) == n


def test_dropped_connection_resumes_with_range(server, tmp_path):
    server.drop_after = 300
    out = download(server.url(), tmp_path / "Sony.zip", sha256=SONY_SHA, progress=False, chunk_size=64)
    assert sha(out) == SONY_SHA
    assert len(server.requests) == 2 and server.requests[0][2] is None
    # The second request resumes from what reached the disk (whole chunks of the 300 sent bytes).
    start = int(re.fullmatch(r"bytes=(\d+)-", server.requests[1][2]).group(1))
    assert 0 < start <= 300


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.ignore_range = True
    part = tmp_path / "Sony.zip.part"
    part.write_bytes(b"garbage that is not the start of the file")
    out = download(server.url(), tmp_path / "Sony.zip", sha256=SONY_SHA, progress=False)
    assert server.requests[0][2] == f"bytes={len(b'garbage that is not the start of the file')}-"
    assert sha(out) == SONY_SHA and not part.exists()


def test_complete_partial_gets_416_then_verified(server, tmp_path):
    (tmp_path / "Sony.zip.part").write_bytes(SONY_ZIP)
    out = download(server.url(), tmp_path / "Sony.zip", sha256=SONY_SHA, progress=False)
    assert sha(out) == SONY_SHA and server.requests[0][2] == f"bytes={len(SONY_ZIP)}-"


def test_corrupted_download_rejected_and_partial_kept(server, tmp_path):
    server.corrupt = True
    with pytest.raises(VerificationError) as err:
        download(server.url(), tmp_path / "Sony.zip", sha256=SONY_SHA, progress=False)
    part = tmp_path / "Sony.zip.part"
    message = str(err.value)
    assert server.url() in message and str(part) in message and SONY_SHA in message and "kept" in message
    assert part.is_file() and part.stat().st_size == len(SONY_ZIP)
    assert not (tmp_path / "Sony.zip").exists()


def test_size_mismatch_announced_by_server_fails_before_writing(server, tmp_path):
    with pytest.raises(VerificationError, match=f"announces {len(SONY_ZIP)} bytes, expected {len(SONY_ZIP) + 1}"):
        download(server.url(), tmp_path / "Sony.zip", size=len(SONY_ZIP) + 1, progress=False)
    assert not (tmp_path / "Sony.zip.part").exists()


@pytest.mark.parametrize("status", [404, 500])
def test_http_errors_through_cli(server, tmp_path, status):
    server.status = status
    part = tmp_path / "Sony.zip.part"
    part.write_bytes(SONY_ZIP[:50])  # an earlier partial must survive the failure
    result = run_cli("download", server.url(), "--out", str(tmp_path / "Sony.zip"), "--sha256", SONY_SHA)
    assert result.returncode == 2
    assert f"HTTP {status}" in result.stderr and server.url() in result.stderr
    assert "Traceback" not in result.stderr
    assert part.read_bytes() == SONY_ZIP[:50] and not (tmp_path / "Sony.zip").exists()


def test_cli_success_and_missing_path(server, tmp_path):
    result = run_cli("download", server.url(), "--out", str(tmp_path / "Sony.zip"), "--sha256", SONY_SHA)
    assert result.returncode == 0, result.stderr
    assert "complete and verified" in result.stdout and sha(tmp_path / "Sony.zip") == SONY_SHA
    result = run_cli("download", server.url("/nothing.zip"), "--out", str(tmp_path / "x.zip"))
    assert result.returncode == 2 and "HTTP 404" in result.stderr


def test_connection_refused(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/Sony.zip"
    with pytest.raises(DownloadError, match=re.escape(url) + ".*nothing was written"):
        download(url, tmp_path / "Sony.zip", progress=False, retries=0, timeout=5)


def test_insufficient_disk_space_fails_before_any_request(server, tmp_path):
    with pytest.raises(DiskSpaceError) as err:
        download(server.url(), tmp_path / "Sony.zip", size=10**18, progress=False)
    assert str(tmp_path) in str(err.value) and str(10**18) in str(err.value) and "free" in str(err.value)
    assert server.requests == []


def test_gdrive_url_parsing():
    assert parse_gdrive("gdrive:13Ge6-FY9RMPrvGiPvw7O4KS3LNfUXqEX") == "13Ge6-FY9RMPrvGiPvw7O4KS3LNfUXqEX"
    assert parse_gdrive("https://storage.googleapis.com/isl-datasets/SID/Sony.zip") is None
    for bad in ("gdrive:", "gdrive:abc", "gdrive:13Ge6/FY9RMPrvGiPvw7O4KS3LNfUXqEX", "gdrive: 13Ge6-FY9RMPrvGi"):
        with pytest.raises(ConfigError, match="gdrive:FILE_ID"):
            parse_gdrive(bad)


def test_bad_arguments_rejected(tmp_path):
    with pytest.raises(ConfigError, match="http"):
        download("ftp://example.org/Sony.zip", tmp_path / "x", progress=False)
    with pytest.raises(ConfigError, match="64 hex"):
        download("http://127.0.0.1:1/x", tmp_path / "x", sha256="abc", progress=False)


def _symlink_zip(path: Path, name: str, target: str) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Sony/short/10185_00_0.1s.ARW", b"ok")
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)


@pytest.mark.parametrize("bad", ["../evil.txt", "Sony/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt", "..\\evil.txt"])
def test_zip_with_unsafe_entry_refused(tmp_path, bad):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(make_zip({"Sony/short/10185_00_0.1s.ARW": b"ok", bad: b"evil"}))
    with pytest.raises(ArchiveError) as err:
        extract_zip(archive, tmp_path / "out" / "SID")
    assert str(archive) in str(err.value) and repr(bad) in str(err.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path / "evil.txt").exists()


def test_zip_symlinks(tmp_path):
    escaping = tmp_path / "escaping.zip"
    _symlink_zip(escaping, "Sony/link", "../../outside")
    with pytest.raises(ArchiveError, match="symlink"):
        extract_zip(escaping, tmp_path / "SID")
    assert not (tmp_path / "SID").exists()
    # one pointing inside too: a dataset needs no links (tests/test_archive.py: chains that escape)
    inside = tmp_path / "inside.zip"
    _symlink_zip(inside, "Sony/link", "short/10185_00_0.1s.ARW")
    with pytest.raises(ArchiveError, match="'Sony/link' is a symlink"):
        extract_zip(inside, tmp_path / "SID")
    assert not (tmp_path / "SID").exists()


def test_truncated_and_corrupt_zip(tmp_path):
    truncated = tmp_path / "Sony.zip"
    truncated.write_bytes(SONY_ZIP[: len(SONY_ZIP) // 2])
    with pytest.raises(ArchiveError, match="truncated.*delete it"):
        extract_zip(truncated, tmp_path / "SID")
    # Stored (uncompressed) so that flipping one data byte breaks only the CRC.
    data = bytearray(make_zip(SID_MEMBERS, zipfile.ZIP_STORED))
    data[data.index(b"long exposure bytes") + 5] ^= 0xFF
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="CRC") as err:
        extract_zip(corrupt, tmp_path / "SID")
    assert str(corrupt) in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Sony.zip", "corrupt.zip"]  # nothing half-extracted


def test_missing_expected_members(tmp_path):
    archive = tmp_path / "Sony.zip"
    archive.write_bytes(SONY_ZIP)
    with pytest.raises(ArchiveError, match="Sony_val_list.txt"):
        extract_zip(archive, tmp_path / "SID", expected_members=[*SID_MEMBERS, "Sony_val_list.txt"])
    assert not (tmp_path / "SID").exists()
