"""Dataset archives are extracted safely: no link, no entry that could write outside the
destination, no completion marker written through a link. Through ``expodiff unpack`` (an
archive downloaded by hand) and through the workflow's ``install_sid`` rule, on real zip files.

The attack these guard against: ``x/y/z -> ../..`` looks harmless on its own text, and so does
``.expodiff-extracted -> x/y/z/../../../VICTIM``; together they let the completion marker
overwrite a file three folders above the extraction.
"""

from __future__ import annotations

import hashlib
import stat
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest

from expodiff.io.archive import MARKER
from expodiff.cli import main
from test_fetch import _zip_tree, server  # noqa: F401  (server: the loopback HTTP fixture)
from test_workflow import copy_workflow, overlay, snakemake

VICTIM_TEXT = "precious data, not to be overwritten\n"
SID_LISTS = [
    (f"Sony_{split}_list.txt", b"./Sony/short/10185_00_0.1s.ARW ./Sony/long/10185_00_10s.ARW ISO200 F9\n")
    for split in ("train", "test", "val")
]


def _link(name: str, target: str):
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def _make_zip(path: Path, entries) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names, on purpose
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in entries:
                if isinstance(name, zipfile.ZipInfo):  # writestr fills in a ZipInfo: use a fresh copy
                    info = zipfile.ZipInfo(name.filename)
                    info.create_system, info.external_attr = name.create_system, name.external_attr
                    name = info
                zf.writestr(name, data)
    return path


MARKER_ATTACK = [*SID_LISTS, _link("x/y/z", "../.."), _link(MARKER, "x/y/z/../../../VICTIM")]

# name: (entries, the entry the refusal must name)
BAD_ARCHIVES = {
    "marker-through-link": (MARKER_ATTACK, "x/y/z"),
    "link-chain": ([("Sony/short/10185_00_0.1s.ARW", b"ok"), _link("a/b", ".."), _link("esc", "a/b/..")], "a/b"),
    "plain-link": ([("Sony/short/10185_00_0.1s.ARW", b"ok"), _link("Sony/link", "short/10185_00_0.1s.ARW")],
                   "Sony/link"),
    "marker-named-file": ([*SID_LISTS, (MARKER, b"2 files\n")], MARKER),
    "nested-marker-named-file": ([("Sony/short/a.ARW", b"ok"), (f"Sony/{MARKER}", b"x")], f"Sony/{MARKER}"),
    "duplicate-name": ([("Sony_test_list.txt", b"one"), ("Sony/short/a.ARW", b"ok"), ("Sony_test_list.txt", b"two")],
                       "Sony_test_list.txt"),
    "through-a-file": ([("Sony", b"a file"), ("Sony/short/a.ARW", b"ok")], "Sony/short/a.ARW"),
    "through-a-later-file": ([("Sony/short/a.ARW", b"ok"), ("Sony", b"a file")], "Sony/short/a.ARW"),
}


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path below ``root`` (links not followed) with its content (None for folders, links)."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def victim(tmp_path) -> Path:
    """tmp_path/VICTIM, three folders above an extraction into tmp_path/a/b/SID (a/b exists)."""
    path = tmp_path / "VICTIM"
    path.write_text(VICTIM_TEXT)
    (tmp_path / "a" / "b").mkdir(parents=True)
    return path


def _assert_refused(err: str, archive: Path, entry: str) -> None:
    assert "expodiff unpack: error:" in err
    assert str(archive) in err and f"entry {entry!r}" in err and "nothing was extracted" in err


@pytest.mark.parametrize("case", BAD_ARCHIVES)
def test_unpack_refuses_unsafe_archive(case, tmp_path, victim, capsys):
    entries, entry = BAD_ARCHIVES[case]
    archive = _make_zip(tmp_path / "Sony.zip", entries)
    dest = tmp_path / "a" / "b" / "SID"
    before = _tree(tmp_path)
    assert main(["unpack", str(archive), "--dest", str(dest)]) == 2
    _assert_refused(capsys.readouterr().err, archive, entry)
    assert victim.read_text() == VICTIM_TEXT
    assert _tree(tmp_path) == before  # dest not created, no staging or temporary folder left, nothing outside


def test_unpack_refuses_the_marker_attack_as_a_command(tmp_path, victim):
    archive = _make_zip(tmp_path / "Sony.zip", MARKER_ATTACK)
    dest = tmp_path / "a" / "b" / "SID"
    before = _tree(tmp_path)
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("expodiff")), "unpack", str(archive), "--dest", str(dest),
         "--expected", "Sony_train_list.txt"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    _assert_refused(proc.stderr, archive, "x/y/z")
    assert "Traceback" not in proc.stderr
    assert victim.read_text() == VICTIM_TEXT
    assert _tree(tmp_path) == before


def test_install_rule_refuses_the_marker_attack(tmp_path, victim, server):  # noqa: F811
    www, url = server
    archive = _make_zip(www / "Sony.zip", MARKER_ATTACK)
    work = copy_workflow(tmp_path / "wf")
    sid_root = tmp_path / "a" / "b" / "SID"
    cfg = overlay(tmp_path, "real", {
        "data": {"source": "real", "sid_root": str(sid_root), "eld_root": str(tmp_path / "ELD")},
        # as shipped: no checksum, no size
        "downloads": {"sid": {"url": f"{url}/Sony.zip", "archive": str(tmp_path / "dl" / "Sony.zip"),
                              "sha256": None, "size": None}},
    })
    proc = snakemake("results/eval_sets/sid", "--cores", "1", "--configfile", cfg, cwd=work, check=False)
    assert "install_sid" in proc.out
    assert (tmp_path / "dl" / "Sony.zip").read_bytes() == archive.read_bytes()  # the download itself succeeded
    assert victim.read_text() == VICTIM_TEXT
    log = (work / "logs" / "install" / "sid.log").read_text()
    assert "entry 'x/y/z'" in log and "refusing to extract" in log, log
    # nothing extracted: sid_root at most the empty folder Snakemake makes for its outputs
    assert [p for p in (tmp_path / "a").rglob("*") if not p.is_dir()] == []
    assert not sid_root.exists() or not any(sid_root.iterdir())


def test_unpack_checks_the_sha256(tiny_data, tmp_path, capsys):
    archive = _zip_tree(tiny_data / "SID", tmp_path / "Sony.zip")
    dest = tmp_path / "SID"
    before = _tree(tmp_path)
    assert main(["unpack", str(archive), "--dest", str(dest), "--sha256", "0" * 64]) == 2
    err = capsys.readouterr().err
    assert "expodiff unpack: error:" in err and str(archive) in err and "SHA-256" in err
    assert "nothing was extracted" in err
    assert main(["unpack", str(archive), "--dest", str(dest), "--sha256", "abc"]) == 2
    assert "64 hex digits" in capsys.readouterr().err
    assert _tree(tmp_path) == before
    assert archive.is_file()  # kept


def test_unpack_installs_a_sid_archive(tiny_data, tmp_path, capsys):
    src = tiny_data / "SID"
    archive = _zip_tree(src, tmp_path / "Sony.zip")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    dest = tmp_path / "data" / "SID"
    assert main(["unpack", str(archive), "--dest", str(dest), "--sha256", digest.upper()]) == 0
    assert "verified" in capsys.readouterr().out
    got = {k: v for k, v in _tree(dest).items() if k != MARKER}
    assert got == _tree(src) and (dest / "Sony_test_list.txt").is_file()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["SID"]  # no staging left beside it
    # not over an installed dataset
    assert main(["unpack", str(archive), "--dest", str(dest)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    # an archive wrapping the dataset in one folder, found by its expected entry
    wrapped = _zip_tree(src, tmp_path / "wrapped.zip", prefix="SID-release/")
    dest2 = tmp_path / "data2" / "SID"
    assert main(["unpack", str(wrapped), "--dest", str(dest2), "--expected", "Sony_test_list.txt"]) == 0
    assert _tree(dest2) == _tree(src)
