"""The Snakemake workflow itself, run as a user would (snakemake in a subprocess).

Lint, dry runs of the paper and demo configs (the paper's without any data), config errors
that name their key, code-change reruns, and (slow) the whole demo DAG.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
WORKFLOW_FILES = ["Snakefile", "config.yaml", "configs", "rules", "workflow", "schemas", "profiles", "envs"]

pytestmark = pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed beside python")


@functools.cache
def clean_workflow() -> Path:
    """A fresh copy of the workflow, made once per test session, for the runs that need no folder
    of their own (dry runs, lint): never the checkout, whose results/ (after `make demo`, say)
    would change what snakemake plans. Removed when the session ends."""
    root = Path(tempfile.mkdtemp(prefix="expodiff-workflow-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return copy_workflow(root / "wf")


def snakemake(*args, cwd=None, check=None) -> subprocess.CompletedProcess:
    """Run snakemake in ``cwd`` (default: the session's clean copy of the workflow);
    ``check`` True/False asserts success/failure and shows the output if not.

    Targets go first: --configfile takes every argument after it.
    """
    proc = subprocess.run(
        [str(SNAKEMAKE), "--nolock", *map(str, args)],
        cwd=cwd or clean_workflow(),
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    out = proc.stdout + proc.stderr
    if check is True:
        assert proc.returncode == 0, out
    elif check is False:
        assert proc.returncode != 0, out
    proc.out = out
    return proc


def job_counts(out: str) -> dict[str, int]:
    """The dry run's job-stats table as {rule: count}."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == ["job", "count"])
    counts = {}
    for line in lines[start + 2 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def overlay(tmp_path: Path, name: str, content: dict) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


@pytest.fixture
def no_data(tmp_path) -> Path:
    """An overlay pointing the real-data roots at folders that do not exist."""
    return overlay(
        tmp_path, "no_data", {"data": {"sid_root": str(tmp_path / "SID"), "eld_root": str(tmp_path / "ELD")}}
    )


def copy_workflow(dest: Path) -> Path:
    """The workflow and the library's sources (rule inputs) in a fresh folder."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    dest.mkdir(parents=True)
    for name in WORKFLOW_FILES + ["src"]:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore, symlinks=True)
        else:
            shutil.copy2(src, dest / name)
    return dest


def test_lint_is_clean():
    proc = snakemake("--lint", check=True)
    assert "Lints for" not in proc.out
    assert "Congratulations" in proc.out


def test_dry_run_paper_plans_everything_without_data(no_data):
    proc = snakemake("-n", "--configfile", no_data, check=True)
    counts = job_counts(proc.out)
    variants = yaml.safe_load((REPO / "config.yaml").read_text())["variants"]
    assert len(variants) == counts["train"] == 17  # the paper's 17 trainings
    assert counts["evaluate"] == 2 * len(variants)  # every variant on SID and ELD
    assert counts["table"] == 2 and counts["step_plot"] == 1
    assert counts["variant_table"] == 1 and counts["cost_table"] == 1
    # with no data present the datasets are downloaded and installed first
    assert counts["download_sid"] == counts["install_sid"] == 1
    assert counts["download_eld"] == counts["install_eld"] == 1
    assert counts["noise_params"] == 1 and "calibrate" not in counts  # the release parameters
    for variant in variants:
        assert f"results/train/{variant}/model_final.pt" in proc.out
    assert "results/tables/table4.csv" in proc.out and "results/tables/table5a.csv" in proc.out
    assert "synthetic_data" not in counts


def test_dataset_in_place_is_not_downloaded(tmp_path):
    """A dataset already at data.sid_root (copied by hand, a shared path) is used as it is."""
    sid = tmp_path / "SID"
    sid.mkdir()
    for split in ("train", "test"):
        (sid / f"Sony_{split}_list.txt").write_text("")
    cfg = overlay(tmp_path, "in_place", {"data": {"sid_root": str(sid), "eld_root": str(tmp_path / "ELD")}})
    counts = job_counts(snakemake("-n", "--configfile", cfg, check=True).out)
    assert "download_sid" not in counts and "install_sid" not in counts
    assert counts["download_eld"] == 1


def test_dry_run_demo_overlay():
    proc = snakemake("-n", "--configfile", "configs/demo.yaml", check=True)
    counts = job_counts(proc.out)
    assert counts["synthetic_data"] == 1 and counts["train"] == 17
    assert counts["calibrate"] == 1 and "noise_params" not in counts  # from the generated frames
    assert not any(rule.startswith(("download_", "install_")) for rule in counts)


def test_dry_run_demo_profile_and_target():
    proc = snakemake("demo", "-n", "--workflow-profile", "profiles/demo", check=True)
    assert job_counts(proc.out)["synthetic_data"] == 1


def test_demo_target_refuses_the_paper_config(no_data):
    proc = snakemake("demo", "-n", "--configfile", no_data, check=False)
    assert "configs/demo.yaml" in proc.out


def test_named_table_target(no_data):
    proc = snakemake("table4", "-n", "--configfile", no_data, check=True)
    counts = job_counts(proc.out)
    assert counts["table"] == 1 and "step_plot" not in counts


def test_demo_overlay_deep_merges():
    """--configfile overlays config.yaml key by key: untouched keys keep the paper's values."""
    proc = snakemake("table4", "-n", "--configfile", "configs/demo.yaml", check=True)
    assert "Config file config.yaml is extended" in proc.out
    paper = yaml.safe_load((REPO / "config.yaml").read_text())
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    assert set(demo) <= set(paper)  # an overlay only overrides existing keys


def test_wrong_type_names_the_key(tmp_path):
    bad = overlay(tmp_path, "bad", {"recipes": {"eld": {"epochs": "abc"}}})
    proc = snakemake("-n", "--configfile", bad, check=False)
    assert "epochs" in proc.out and "'abc'" in proc.out


def test_unknown_key_is_an_error(tmp_path):
    bad = overlay(tmp_path, "bad", {"training": {"epoch": 3}})
    proc = snakemake("-n", "--configfile", bad, check=False)
    assert "'epoch'" in proc.out


def test_table_row_with_unknown_variant_names_it(tmp_path):
    rows = yaml.safe_load((REPO / "config.yaml").read_text())["tables"]["table4"]["rows"]
    rows[0]["ours"] = "unet-pg-nope"
    bad = overlay(tmp_path, "bad", {"tables": {"table4": {"rows": rows}}})
    proc = snakemake("-n", "--configfile", bad, check=False)
    assert "tables.table4.rows[0].ours" in proc.out and "unet-pg-nope" in proc.out


def test_step_plot_with_unknown_dataset_names_it(tmp_path):
    bad = overlay(tmp_path, "bad", {"step_plot": {"dataset": "nowhere"}})
    proc = snakemake("-n", "--configfile", bad, check=False)
    assert "step_plot.dataset" in proc.out and "nowhere" in proc.out


def test_library_edits_rerun_only_what_uses_them(tmp_path):
    """Fake a finished demo run, then edit library files and see what a dry run plans."""
    work = copy_workflow(tmp_path / "wf")
    demo = ["--configfile", "configs/demo.yaml"]
    summary = snakemake("--summary", *demo, cwd=work, check=True).stdout.splitlines()
    outputs = [line.split("\t")[0] for line in summary[1:] if "\t" in line]
    assert "results/tables/table4.csv" in outputs
    for out in outputs:
        path = work / out
        directories = ("results/data/synthetic", "results/pairs/sid_train", "results/report/scene_grids")
        if out in directories or out.startswith("results/eval_sets/"):
            path.mkdir(parents=True)  # directory outputs
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    snakemake("--touch", "--cores", "1", *demo, cwd=work, check=True)
    assert "Nothing to be done" in snakemake("-n", *demo, cwd=work, check=True).out

    with open(work / "src" / "expodiff" / "report" / "tables.py", "a") as f:
        f.write("# an edit\n")
    counts = job_counts(snakemake("-n", *demo, cwd=work, check=True).out)
    # the two paper tables, the ELD table and Table 5b (written by tables.py) are remade
    # the tables (written by tables.py), their provenance records, and the step plot (which
    # reads summaries with tables' CSV reader)
    assert counts == {"table": 2, "variant_table": 1, "cost_table": 1, "step_plot": 1,
                      "table_provenance": 4, "all": 1, "total": 10}
    snakemake("--touch", "--cores", "1", *demo, cwd=work, check=True)

    # one network's code: only its variants retrain and re-evaluate
    with open(work / "src" / "expodiff" / "nets" / "nafnet.py", "a") as f:
        f.write("# an edit\n")
    proc = snakemake("-n", *demo, cwd=work, check=True)
    counts = job_counts(proc.out)
    assert counts["train"] == 8 and counts["evaluate"] == 16  # naf1/naf2 × pg/eld × base/ours
    assert "output: results/train/unet-pg-ours/model_final.pt" not in proc.out
    assert "pack_eval_set" not in counts and "patch_store" not in counts
    snakemake("--touch", "--cores", "1", *demo, cwd=work, check=True)

    # the calibration: exactly the noise-model trainings (not the paired ones) rerun
    with open(work / "src" / "expodiff" / "physics" / "calibrate.py", "a") as f:
        f.write("# an edit\n")
    proc = snakemake("-n", *demo, cwd=work, check=True)
    counts = job_counts(proc.out)
    noise_model = [n for n, v in yaml.safe_load((work / "config.yaml").read_text())["variants"].items()
                   if v["data"] in ("pg", "eld")]
    assert counts["calibrate"] == 1 and counts["train"] == len(noise_model) == 13
    assert "output: results/train/unet-paired-ours/model_final.pt" not in proc.out
    assert "camera_params" not in counts


@pytest.mark.slow
def test_demo_runs_end_to_end(demo_run):
    """The whole demo DAG on generated data (minutes on 2 cores; shared with test_report)."""
    work = demo_run
    tables = work / "results" / "tables"
    for ext in ("csv", "md", "tex"):
        assert (tables / f"table4.{ext}").stat().st_size > 0
    assert (work / "results" / "plots" / "steps.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(tables / "table4.csv", keep_default_na=False)
    for label in ("P+G", "Paired real", "ELD", "PMN"):
        rows = table[table["label"] == label]
        assert list(rows["method"]) == ["baseline", "ours"] * 2  # the oracle, then the GT-free block
        assert list(rows["protocol"]) == ["oracle"] * 2 + ["gt-free"] * 2
        for column in ("psnr_x100", "ssim_x100", "psnr_x300", "ssim_x300"):
            values = pd.to_numeric(rows[column], errors="raise")  # numbers, not "not run"
            assert values.notna().all()
    eld = pd.read_csv(tables / "eld.csv")
    assert len(eld) == 2 * 17 and eld["psnr_x200"].notna().all()  # every variant under both protocols
    table5b = pd.read_csv(tables / "table5b.csv")
    assert list(table5b["params_thop"]) == [7761801, 4697, 6871369]  # the paper's counts
    table5a = pd.read_csv(tables / "table5a.csv", keep_default_na=False)
    assert len(table5a) == 2 * 12 and pd.to_numeric(table5a["psnr_x250"], errors="raise").notna().all()
    calibration = work / "results" / "calibration"
    assert json.loads((calibration / "SonyA7S2.json").read_text())["per_iso"]
    for name in ("ptc.png", "ppcc.png", "scales.png"):
        assert (calibration / "SonyA7S2" / name).read_bytes()[:4] == b"\x89PNG"
    ddim = pd.read_csv(work / "results" / "eval" / "unet-pg-ddim" / "sid" / "summary.csv")
    assert sorted(set(ddim["n_steps"])) == [1, 2, 3, 5, 8, 10] and list(ddim["protocol"].unique()) == ["oracle", "gt-free"]
    # a second run has nothing to do
    assert "Nothing to be done" in snakemake("-n", "--workflow-profile", "profiles/demo", cwd=work, check=True).out
