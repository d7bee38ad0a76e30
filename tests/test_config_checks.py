"""One set of config cross-checks (expodiff.config.config_errors): Snakemake (rules/common.smk)
and the CLI (load_config, so `expodiff plan` and every command taking --config) say the same;
a schema error of Snakemake names the config files it read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from expodiff.config import check, config_errors, load_config
from expodiff.errors import ConfigError
from test_workflow import REPO, SNAKEMAKE, copy_workflow, overlay, snakemake

needs_snakemake = pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed beside python")
PAPER = REPO / "config.yaml"


def messages(out: str) -> list[str]:
    """The indented message lines under "Invalid config:" in a command's output."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.rstrip().endswith("Invalid config:"))
    found = []
    for line in lines[start + 1 :]:
        if not line.startswith("  ") or line.startswith("   ") or line.lstrip().startswith('File "'):
            break  # (snakemake then names the file and line that raised)
        found.append(line.strip())
    return found


def bad_overlay(tmp_path: Path) -> Path:
    """A table row naming an unknown variant, a patch size that does not divide the crop and a
    checkpoint epoch beyond the last epoch."""
    rows = yaml.safe_load(PAPER.read_text())["tables"]["table4"]["rows"]
    rows[0]["ours"] = "unet-pg-nope"
    return overlay(tmp_path, "bad", {"tables": {"table4": {"rows": rows}}, "patches": {"size": 48},
                                     "training": {"checkpoint_epochs": [100, 400]}})  # fmt: skip


def test_paper_and_demo_configs_pass():
    assert config_errors(load_config([PAPER])) == []
    assert config_errors(load_config([PAPER, REPO / "configs" / "demo.yaml"])) == []


def test_patch_size_must_divide_the_crop(tmp_path):
    bad = overlay(tmp_path, "bad", {"patches": {"size": 48}})
    with pytest.raises(ConfigError, match=r"patches\.size: 48 does not divide patches\.crop \[1024, 2048\]"):
        load_config([PAPER, bad])
    ok = overlay(tmp_path, "ok", {"patches": {"size": 256}})
    assert load_config([PAPER, ok])["patches"]["size"] == 256


def test_checkpoint_epochs_beyond_the_epochs_are_named(tmp_path):
    bad = overlay(tmp_path, "bad", {"training": {"epochs": 20, "checkpoint_epochs": [10, 20, 30, 40]}})
    with pytest.raises(ConfigError, match=r"training\.checkpoint_epochs: \[30, 40\] beyond training\.epochs 20"):
        load_config([PAPER, bad])


def test_check_lists_every_message(tmp_path):
    config = load_config([PAPER])
    config["patches"]["size"] = 48
    config["step_plot"]["dataset"] = "nowhere"
    errors = config_errors(config)
    assert len(errors) == 2 and any("step_plot.dataset" in e for e in errors)
    with pytest.raises(ConfigError) as err:
        check(config)
    assert str(err.value) == "Invalid config:\n  " + "\n  ".join(errors)


@needs_snakemake
def test_snakemake_and_plan_give_the_same_messages(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    bad = bad_overlay(tmp_path)
    dry = snakemake("-n", "--configfile", bad, cwd=work, check=False)
    plan = subprocess.run([sys.executable, "-m", "expodiff.cli", "plan", str(work / "config.yaml"), str(bad)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "WorkflowError" in dry.out and "Traceback" not in plan.stderr
    assert plan.stderr.startswith("expodiff plan: error: Invalid config:")
    expected = messages(plan.stderr)
    assert messages(dry.out) == expected, dry.out
    assert [m.split(":")[0] for m in expected] == ["tables.table4.rows[0].ours", "patches.size",
                                                   "training.checkpoint_epochs"]  # fmt: skip
    assert "unet-pg-nope" in expected[0]


@needs_snakemake
def test_schema_error_names_the_config_files_read(tmp_path):
    """From another folder the Snakefile's `configfile: config.yaml` is not found, and with
    --configfile snakemake goes on without it: the error says so, and how to run instead."""
    work = copy_workflow(tmp_path / "wf")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    demo = work / "configs" / "demo.yaml"
    proc = snakemake("-n", "-s", work / "Snakefile", "--configfile", demo, cwd=elsewhere, check=False)
    assert "'sid_root' is a required property" in proc.out, proc.out
    assert f"config files read: {demo}\n" in proc.out, proc.out
    assert f"{work / 'config.yaml'} was not read" in proc.out, proc.out
    assert f"Run snakemake from {work}" in proc.out, proc.out
    assert f"--configfile {work / 'config.yaml'} {demo}" in proc.out, proc.out
    # passing config.yaml too, as the message says, works from there
    ok = snakemake("-n", "-s", work / "Snakefile", "--configfile", work / "config.yaml", demo, cwd=elsewhere)
    assert ok.returncode == 0, ok.out


@needs_snakemake
def test_schema_error_in_the_workflow_folder_lists_config_yaml(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    bad = overlay(tmp_path, "bad", {"training": {"save_every": 0}})
    proc = snakemake("-n", "--configfile", bad, cwd=work, check=False)
    assert "save_every" in proc.out and f"config files read: config.yaml, {bad}\n" in proc.out, proc.out
    assert "was not read" not in proc.out
