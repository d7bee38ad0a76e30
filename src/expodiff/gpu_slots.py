"""One GPU per job: a job claims a free GPU of this machine before CUDA starts.

``snakemake --resources gpu=N`` only limits how many GPU jobs run at once; it does not say
which GPU each one gets, so without this every job would start on GPU 0. ``claim_gpu()``:

- ``CUDA_VISIBLE_DEVICES`` already set (SLURM sets it for ``--gpus=1``, or a user did): it is
  used as it is, nothing is locked, and ``None`` is returned;
- else the machine's GPUs are counted (``nvidia-smi -L``; ``EXPODIFF_GPU_COUNT`` overrides it,
  e.g. for tests); none: the job runs on the CPU, nothing is set, ``None`` is returned;
- else the job takes the first free slot 0..count−1: an exclusive ``fcntl.flock`` on the file
  ``gpu<slot>.lock`` in the lock folder (``EXPODIFF_GPU_LOCK_DIR``, default
  ``/tmp/expodiff-gpu-slots-<uid>``), sets ``CUDA_VISIBLE_DEVICES`` to that GPU (its UUID when
  ``nvidia-smi`` lists one, so the order CUDA enumerates GPUs in does not matter) and returns
  the slot. The lock is held until the process ends: the kernel releases a flock when its
  file is closed, which includes a crash or SIGKILL, so no stale lock is ever left behind.
  When every slot is taken it waits (``EXPODIFF_GPU_WAIT_S`` seconds, default 600) and then
  raises ``ExpodiffError`` naming the lock folder and the holders' process ids.

It must run before anything initialises CUDA (in practice: before torch is imported), so the
rule scripts call it first; this module imports only the standard library.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import subprocess
import time
from pathlib import Path

from expodiff.errors import ConfigError, ExpodiffError

log = logging.getLogger(__name__)

COUNT_ENV = "EXPODIFF_GPU_COUNT"  # number of GPUs (overrides nvidia-smi; 0: none)
LOCK_DIR_ENV = "EXPODIFF_GPU_LOCK_DIR"  # the folder of the slot locks
WAIT_ENV = "EXPODIFF_GPU_WAIT_S"  # seconds to wait for a free slot
DEFAULT_WAIT_S = 600.0
POLL_S = 0.2

_claimed: tuple[int, int] | None = None  # (slot, fd) held by this process, kept open until exit


def lock_dir() -> Path:
    """The folder of the slot lock files (``EXPODIFF_GPU_LOCK_DIR``, else one per user in /tmp:
    not ``$TMPDIR``, which a batch system may set per job, so that every job of a user meets)."""
    given = os.environ.get(LOCK_DIR_ENV)
    return Path(given) if given else Path(f"/tmp/expodiff-gpu-slots-{os.getuid()}")


def parse_nvidia_smi(text: str) -> list[str]:
    """The GPUs of ``nvidia-smi -L`` output, in its order: their UUIDs (``GPU-…``), or their
    index where a line has no UUID. MIG devices (indented lines) are not counted."""
    gpus = []
    for line in text.splitlines():
        m = re.match(r"GPU (\d+):.*?(?:\(UUID: (GPU-[0-9a-fA-F-]+)\))?\s*$", line)
        if m:
            gpus.append(m.group(2) or m.group(1))
    return gpus


def machine_gpus() -> list[str]:
    """What ``CUDA_VISIBLE_DEVICES`` names for each GPU of this machine: ``EXPODIFF_GPU_COUNT``
    indices 0..n−1 if set, else the GPUs ``nvidia-smi -L`` lists (none if it is missing or fails)."""
    given = os.environ.get(COUNT_ENV)
    if given is not None:
        try:
            n = int(given)
        except ValueError:
            n = -1
        if n < 0:
            raise ConfigError(f"{COUNT_ENV}={given!r}: must be a whole number of GPUs (0 or more)")
        return [str(i) for i in range(n)]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(out.stdout) if out.returncode == 0 else []


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited across exec
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}\n".encode())
    return fd


def claim_gpu(wait_s: float | None = None) -> int | None:
    """Claim one GPU of this machine for this process (see the module docstring); the slot, or
    None when ``CUDA_VISIBLE_DEVICES`` was set already or the machine has no GPU. Call it before
    torch is imported. A second call in the same process returns the same slot."""
    global _claimed
    if _claimed is not None:
        return _claimed[0]
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        log.info("CUDA_VISIBLE_DEVICES=%r is set: using it as it is", os.environ["CUDA_VISIBLE_DEVICES"])
        return None
    gpus = machine_gpus()
    if not gpus:
        log.info("no GPU on this machine: running on the CPU")
        return None
    if wait_s is None:
        raw = os.environ.get(WAIT_ENV, str(DEFAULT_WAIT_S))
        try:
            wait_s = float(raw)
        except ValueError:
            raise ConfigError(f"{WAIT_ENV}={raw!r}: must be a number of seconds") from None
    folder = lock_dir()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise ExpodiffError(f"GPU slot lock folder {folder}: cannot create it ({err}); set {LOCK_DIR_ENV}") from err
    paths = [folder / f"gpu{slot}.lock" for slot in range(len(gpus))]
    deadline, announced = time.monotonic() + wait_s, False
    while True:
        for slot, path in enumerate(paths):
            try:
                fd = _try_lock(path)
            except OSError as err:
                raise ExpodiffError(f"GPU slot lock {path}: {err}; set {LOCK_DIR_ENV} to a writable folder") from err
            if fd is not None:
                _claimed = (slot, fd)
                os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot]
                log.info("GPU slot %d of %d: CUDA_VISIBLE_DEVICES=%s (lock %s)", slot, len(gpus), gpus[slot], path)
                return slot
        if time.monotonic() >= deadline:
            holders = ", ".join(f"gpu{i}: {_holder(p)}" for i, p in enumerate(paths))
            raise ExpodiffError(
                f"all {len(gpus)} GPU slots are taken ({holders}; locks in {folder}) and none came free "
                f"within {wait_s:g} s ({WAIT_ENV}); run fewer GPU jobs at once (snakemake --resources "
                f"gpu=N with N at most {len(gpus)}) or set CUDA_VISIBLE_DEVICES yourself")
        if not announced:
            log.info("all %d GPU slots in %s are taken: waiting up to %g s", len(gpus), folder, wait_s)
            announced = True
        time.sleep(POLL_S)


def release_gpu() -> None:
    """Give this process's slot back before it exits (exiting releases it too)."""
    global _claimed
    if _claimed is not None:
        os.close(_claimed[1])
        _claimed = None
