"""The real-data path end to end on a small stand-in: the workflow downloads a SID-layout zip
from a server on 127.0.0.1, verifies it, installs it at data.sid_root and packs the
evaluation set from it (the same code that reads the synthetic DNG stand-ins)."""

import functools
import hashlib
import http.server
import threading
import zipfile

import pandas as pd
import pytest

from expodiff.io.archive import ArchiveError
from expodiff.data.fetch import install_archive
from test_workflow import copy_workflow, overlay, snakemake


def _zip_tree(root, zip_path, prefix=""):
    with zipfile.ZipFile(zip_path, "w") as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + str(path.relative_to(root)))
    return zip_path


@pytest.fixture
def server(tmp_path):
    """A static file server on 127.0.0.1 serving tmp_path/www (stopped after the test)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_install_finds_the_dataset_one_folder_down(tiny_data, tmp_path):
    archive = _zip_tree(tiny_data / "ELD", tmp_path / "eld.zip", prefix="ELD/")
    dest = install_archive(archive, tmp_path / "data" / "ELD", "SonyA7S2")
    assert (dest / "SonyA7S2" / "scene-1").is_dir()
    with pytest.raises(ArchiveError, match="holds no Sony_test_list.txt"):
        install_archive(archive, tmp_path / "data" / "SID", "Sony_test_list.txt")
    assert not (tmp_path / "data" / "SID").exists() or not any((tmp_path / "data" / "SID").iterdir())


def test_workflow_downloads_installs_and_packs_sid(tiny_data, tmp_path, server):
    www, url = server
    archive = _zip_tree(tiny_data / "SID", www / "Sony.zip")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    work = copy_workflow(tmp_path / "wf")
    sid_root = tmp_path / "data" / "SID"
    cfg = overlay(tmp_path, "real", {
        "data": {"source": "real", "sid_root": str(sid_root), "eld_root": str(tmp_path / "data" / "ELD")},
        "downloads": {"sid": {"url": f"{url}/Sony.zip", "archive": str(tmp_path / "dl" / "Sony.zip"),
                              "sha256": digest, "size": archive.stat().st_size}},
        "evaluation": {"datasets": {"sid": {"scenes": ["10185", "10187", "20188"], "crop": 16}}},
    })
    proc = snakemake("results/eval_sets/sid", "--cores", "1", "--configfile", cfg, cwd=work, check=True)
    assert "download_sid" in proc.out and "install_sid" in proc.out
    assert (sid_root / "Sony_test_list.txt").is_file() and (tmp_path / "dl" / "Sony.zip").is_file()
    index = pd.read_csv(work / "results" / "eval_sets" / "sid" / "index.csv", dtype={"scene": str})
    assert sorted(index.scene.unique()) == ["10185", "10187", "20188"] and len(index) == 9
    # a second plan finds everything in place: nothing to download again
    assert "Nothing to be done" in snakemake("results/eval_sets/sid", "-n", "--configfile", cfg, cwd=work).out


def test_workflow_rejects_a_corrupt_download(tiny_data, tmp_path, server):
    www, url = server
    archive = _zip_tree(tiny_data / "SID", www / "Sony.zip")
    work = copy_workflow(tmp_path / "wf")
    cfg = overlay(tmp_path, "real", {
        "data": {"source": "real", "sid_root": str(tmp_path / "SID"), "eld_root": str(tmp_path / "ELD")},
        "downloads": {"sid": {"url": f"{url}/Sony.zip", "archive": str(tmp_path / "dl" / "Sony.zip"),
                              "sha256": "0" * 64, "size": None}},
    })
    proc = snakemake("results/eval_sets/sid", "--cores", "1", "--configfile", cfg, cwd=work, check=False)
    log = (work / "logs" / "download" / "sid.log").read_text()
    assert "SHA-256" in log or "sha256" in log.lower()
    assert (tmp_path / "dl" / "Sony.zip.part").stat().st_size == archive.stat().st_size  # kept for inspection
    assert not (tmp_path / "SID" / "Sony_test_list.txt").exists()
    assert "download_sid" in proc.out
