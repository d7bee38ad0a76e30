"""A Snakemake training killed mid-way (kill -9, as a power cut or an OOM kill) and rerun keeps
its whole log and ends with the weights of an uninterrupted run.

Snakemake deletes the declared train_log.csv before the rerun; the log lives on in
train_log.partial.csv beside model_latest.pt. The demo's data with a smaller patch crop and
frequent saves: about 40 s on 2 cores.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from test_workflow import SNAKEMAKE, copy_workflow, overlay, snakemake

pytestmark = pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed beside python")

VARIANT = "unet-pg-base"
TARGET = f"results/train/{VARIANT}/model_final.pt"
# 2 patches per demo training image (16 iterations an epoch), a resumable checkpoint every 3;
# two epochs of the variant's recipe (eld)
SMALL = {"patches": {"crop": [32, 64]}, "training": {"save_every": 3},
         "recipes": {"eld": {"epochs": 2, "checkpoint_epochs": [2]}}}


def iterations(log: Path) -> list[int]:
    with open(log, newline="") as f:
        return [int(row["iteration"]) for row in csv.DictReader(f)]


def kill_when_checkpointed(proc: subprocess.Popen, run_dir: Path, out: Path, timeout: float = 300) -> dict:
    """Wait until the training wrote model_latest.pt, then kill -9 snakemake and its jobs."""
    latest = run_dir / "model_latest.pt"
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "snakemake ended before the training was killed:\n" + out.read_text()
            if latest.exists():
                state = torch.load(latest, map_location="cpu", weights_only=True)
                if state["iterations"] > 0:
                    return state
            time.sleep(0.05)
        pytest.fail(f"no model_latest.pt after {timeout} s:\n" + out.read_text())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: snakemake and the job
        proc.wait(timeout=60)


def test_killed_training_resumes_with_its_whole_log(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    small = overlay(work, "small", SMALL)
    args = [TARGET, "--cores", "1", "--configfile", "configs/demo.yaml", small.name]
    run_dir = work / "results" / "train" / VARIANT

    # uninterrupted (with the data jobs), then moved aside so that the next run trains again
    snakemake(*args, cwd=work, check=True)
    uninterrupted = tmp_path / "uninterrupted"
    shutil.move(run_dir, uninterrupted)
    total = torch.load(uninterrupted / "model_final.pt", weights_only=True)["iterations"]
    assert iterations(uninterrupted / "train_log.csv") == list(range(1, total + 1)) and total == 32

    out = work / "killed.out"
    with open(out, "w") as f:
        proc = subprocess.Popen([str(SNAKEMAKE), "--nolock", *args], cwd=work, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    state = kill_when_checkpointed(proc, run_dir, out)
    logged = (run_dir / "train_log.partial.csv").stat().st_mtime_ns
    time.sleep(1)
    assert (run_dir / "train_log.partial.csv").stat().st_mtime_ns == logged, "the training job outlived the kill"
    killed_at = torch.load(run_dir / "model_latest.pt", weights_only=True)["iterations"]
    assert 0 < state["iterations"] <= killed_at < total, "the training was not killed mid-way"
    assert not (run_dir / "model_final.pt").exists()

    resumed = snakemake(*args, cwd=work, check=True)
    assert "Finished jobid" in resumed.out
    log = iterations(run_dir / "train_log.csv")
    assert log == list(range(1, total + 1)), f"killed at {killed_at}: {log}"  # each iteration exactly once
    a = torch.load(uninterrupted / "model_final.pt", weights_only=True)
    b = torch.load(run_dir / "model_final.pt", weights_only=True)
    assert a["iterations"] == b["iterations"] == total
    assert a["netG"].keys() == b["netG"].keys()
    for key in a["netG"]:
        assert torch.equal(a["netG"][key], b["netG"][key]), key
    # the losses of the iterations before the kill are the ones the uninterrupted run logged
    with open(uninterrupted / "train_log.csv") as f1, open(run_dir / "train_log.csv") as f2:
        assert [r["loss"] for r in csv.DictReader(f1)] == [r["loss"] for r in csv.DictReader(f2)]
    # and the checkpoint files are byte-identical
    assert (uninterrupted / "model_final.pt").read_bytes() == (run_dir / "model_final.pt").read_bytes()
