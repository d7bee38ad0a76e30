"""One GPU per job (expodiff.gpu_slots), for real on a CPU machine: separate processes with a
fake GPU count claim slots through flock locks in a temporary folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from expodiff import gpu_slots
from expodiff.errors import ConfigError

SRC = str(Path(__file__).resolve().parents[1] / "src")

# claims a slot, prints it and CUDA_VISIBLE_DEVICES, then holds the claim while sleeping
HOLDER = """
import os, sys, time
from expodiff.gpu_slots import claim_gpu
slot = claim_gpu()
print(slot, os.environ.get("CUDA_VISIBLE_DEVICES"), flush=True)
time.sleep(float(sys.argv[1]))
"""


def env(lock_dir: Path, count="2", wait="0", **extra) -> dict:
    e = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    e.update(PYTHONPATH=SRC, EXPODIFF_GPU_LOCK_DIR=str(lock_dir), EXPODIFF_GPU_COUNT=count, EXPODIFF_GPU_WAIT_S=wait)
    e.update(extra)
    return e


def start(lock_dir: Path, hold: float = 60, **kw) -> tuple[subprocess.Popen, str]:
    """A holder process and the line it printed once it has its claim."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(hold)], env=env(lock_dir, **kw),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line:
        proc.wait(30)
        raise AssertionError(f"holder printed nothing; stderr:\n{proc.stderr.read()}")
    return proc, line


def run_once(lock_dir: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HOLDER, "0"], env=env(lock_dir, **kw),
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def procs():
    started = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(30)


def test_two_jobs_get_different_gpus_and_a_third_fails_clearly(tmp_path, procs):
    a, line_a = start(tmp_path)
    procs.append(a)
    b, line_b = start(tmp_path)
    procs.append(b)
    assert sorted([line_a, line_b]) == ["0 0", "1 1"]
    t = time.monotonic()
    third = run_once(tmp_path, wait="1")
    assert third.returncode != 0
    assert time.monotonic() - t >= 1  # it waited for the timeout
    assert "all 2 GPU slots are taken" in third.stderr and str(tmp_path) in third.stderr
    assert f"pid {a.pid}" in third.stderr and f"pid {b.pid}" in third.stderr


def test_a_waiting_job_gets_the_slot_freed_by_a_finishing_one(tmp_path, procs):
    a, line_a = start(tmp_path, count="1", hold=1.5)
    procs.append(a)
    assert line_a == "0 0"
    second = run_once(tmp_path, count="1", wait="30")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "0 0"


def test_a_killed_job_frees_its_gpu(tmp_path, procs):
    a, line_a = start(tmp_path)
    procs.append(a)
    b, line_b = start(tmp_path)
    procs.append(b)
    killed_slot = line_a.split()[0]
    os.kill(a.pid, signal.SIGKILL)
    a.wait(30)
    c, line_c = start(tmp_path)
    procs.append(c)
    assert line_c.split()[0] == killed_slot


def test_cuda_visible_devices_already_set_is_used_untouched(tmp_path, procs):
    a, _ = start(tmp_path, count="1")
    procs.append(a)
    # the only slot is held, yet a job given its GPU (as SLURM does) starts at once, unchanged
    done = run_once(tmp_path, count="1", CUDA_VISIBLE_DEVICES="GPU-1234,3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None GPU-1234,3"
    assert not (tmp_path / "gpu1.lock").exists()


def test_no_gpu_means_cpu_and_nothing_set(tmp_path):
    done = run_once(tmp_path, count="0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None None"
    assert not tmp_path.joinpath("gpu0.lock").exists()


def test_a_bad_count_names_the_variable(monkeypatch):
    monkeypatch.setenv("EXPODIFF_GPU_COUNT", "two")
    with pytest.raises(ConfigError, match="EXPODIFF_GPU_COUNT"):
        gpu_slots.machine_gpus()


def test_nvidia_smi_listing():
    text = ("GPU 0: NVIDIA H200 (UUID: GPU-0a1b2c3d-0000-1111-2222-333344445555)\n"
            "  MIG 1g.18gb     Device  0: (UUID: MIG-0a1b2c3d-aaaa-bbbb-cccc-ddddeeeeffff)\n"
            "GPU 1: Tesla V100-SXM2-16GB\n")
    assert gpu_slots.parse_nvidia_smi(text) == ["GPU-0a1b2c3d-0000-1111-2222-333344445555", "1"]
    assert gpu_slots.parse_nvidia_smi("") == []


def test_the_module_imports_only_the_standard_library():
    code = "import sys, expodiff.gpu_slots; print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], env=env(Path("/nonexistent")), capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
