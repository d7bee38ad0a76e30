"""Shared fixtures: one tiny demo dataset (real DNG files) for the whole test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from expodiff.data.synthetic import make_demo_data


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """``make_demo_data(preset="tiny", seed=0)``: SID/, ELD/, calibration/, MANIFEST.json (~0.3 s)."""
    return make_demo_data(tmp_path_factory.mktemp("demo") / "data", seed=0, preset="tiny")


@pytest.fixture
def one_thread():
    """Run a test on one CPU thread: multi-threaded kernels sum in varying order (~1e-8
    differences between two runs of the unrolled ExposureDiffusion graph), and small inputs
    are faster and immune to OpenMP stalls on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The whole demo DAG (`snakemake --workflow-profile profiles/demo`), run once per session
    in a fresh copy of the workflow; tests read its results."""
    from test_workflow import SNAKEMAKE, copy_workflow, snakemake

    if not SNAKEMAKE.exists():
        pytest.skip("snakemake is not installed beside python")
    work = copy_workflow(tmp_path_factory.mktemp("demo_run") / "wf")
    snakemake("--cores", "all", "--workflow-profile", "profiles/demo", cwd=work, check=True)
    return work


# --- the checkout's own run state is never read or written by the tests ---------------------

CHECKOUT = Path(__file__).resolve().parents[1]
RUN_STATE = ("results", "logs", ".snakemake", "benchmarks/out")


def _run_state() -> dict[str, tuple[int, int]]:
    """(size, mtime) of every entry under the checkout's run-state folders."""
    state = {}
    for name in RUN_STATE:
        for folder, dirs, files in os.walk(CHECKOUT / name):
            for entry in dirs + files:
                st = os.lstat(os.path.join(folder, entry))
                state[os.path.relpath(os.path.join(folder, entry), CHECKOUT)] = (st.st_size, st.st_mtime_ns)
    return state


def pytest_sessionstart(session):
    session.config._expodiff_run_state = _run_state()


def pytest_sessionfinish(session, exitstatus):
    """Fail the session if any test changed the checkout's results/, logs/, .snakemake/ or
    benchmarks/out/: every workflow run belongs in a temporary copy (test_workflow.copy_workflow)."""
    before = getattr(session.config, "_expodiff_run_state", None)
    if before is None:
        return
    after = _run_state()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed:
        shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"ERROR: the tests changed the checkout's run state: {shown}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
