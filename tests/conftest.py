"""Shared fixtures: one tiny demo dataset (real DNG files) for the whole test session."""

from __future__ import annotations

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
