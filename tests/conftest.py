"""Shared fixtures: one tiny demo dataset (real DNG files) for the whole test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from expodiff.data.synthetic import make_demo_data


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """``make_demo_data(preset="tiny", seed=0)``: SID/, ELD/, calibration/, MANIFEST.json (~0.3 s)."""
    return make_demo_data(tmp_path_factory.mktemp("demo") / "data", seed=0, preset="tiny")
