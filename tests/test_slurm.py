"""The workflow on SLURM (issue 7): profiles/slurm-local runs the demo's jobs through sbatch.

Needs the one-node test cluster of scripts/slurm-local.sh (root: it installs Debian's slurm-wlm
and munge and starts them in about a second; `make test` starts it when run as root with
apt-get). Without it every test here skips and says so. Only these tests:

    scripts/slurm-local.sh start && .venv/bin/python -m pytest -m slurm

The main test runs the demo's training and evaluation of two variants through SLURM (one
training is cancelled mid-way, as a scheduler kills a job, and its retry resumes) and the
same targets locally, side by side, and asserts equal results (2 to 2.6 minutes on 2 cores).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from expodiff.checkpoint import load_checkpoint
from test_workflow import REPO, SNAKEMAKE, clean_workflow, copy_workflow

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
    reason="snakemake-executor-plugin-slurm is not installed (pip install -e '.[workflow]')",
)
CLUSTER = "expodiff-local"  # ClusterName in the slurm.conf of scripts/slurm-local.sh
VARIANTS = ("unet-pg-base", "unet-pg-ours")
TARGETS = [f"results/eval/{variant}/sid/summary.csv" for variant in VARIANTS]
KILLED = "unet-pg-ours"  # the training cancelled mid-way


def cluster_problem() -> str | None:
    """Why the test cluster cannot be used, or None."""
    start = "start it with `scripts/slurm-local.sh start` (as root)"
    if not SNAKEMAKE.exists():
        return "snakemake is not installed beside python"
    if shutil.which("sbatch") is None:
        return f"no SLURM here (sbatch is not on PATH): {start}"
    try:
        proc = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"the SLURM controller does not answer ({err}): {start}"
    if proc.returncode != 0:
        return f"the SLURM controller does not answer ({proc.stderr.strip()}): {start}"
    name = re.search(r"^ClusterName\s*=\s*(\S+)", proc.stdout, re.M)
    if not name or name.group(1) != CLUSTER:
        return f"this SLURM cluster is not the test cluster {CLUSTER!r} of scripts/slurm-local.sh"
    sinfo = subprocess.run(["sinfo", "--responding", "--noheader", "--partition", "local", "--format", "%T"],
                           capture_output=True, text=True, timeout=20)
    if not sinfo.stdout.split() or sinfo.stdout.split()[0] not in ("idle", "mixed", "allocated"):
        return f"the test cluster's node is not up (sinfo: {sinfo.stdout.strip() or sinfo.stderr.strip()}): {start}"
    return None


@pytest.fixture(scope="module")
def slurm_cluster():
    problem = cluster_problem()
    if problem:
        pytest.skip(problem)


@pytest.fixture
def runs():
    """Starts snakemake in the background; whatever still runs at the end is stopped."""
    started = []

    def start(work: Path, *args) -> subprocess.Popen:
        """snakemake in ``work``, its output in work/snakemake.out."""
        with open(work / "snakemake.out", "w") as out:
            proc = subprocess.Popen([str(SNAKEMAKE), *map(str, args)], cwd=work, stdout=out,
                                    stderr=subprocess.STDOUT, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """As Ctrl-C: snakemake cancels its SLURM jobs and exits."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def finish(proc: subprocess.Popen, work: Path, timeout: float) -> str:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc)
        pytest.fail(f"snakemake in {work} did not finish in {timeout} s:\n" + (work / "snakemake.out").read_text())
    return (work / "snakemake.out").read_text()


def running_job(comment: str) -> str | None:
    """SLURM id of the running job whose comment (set by the plugin) is ``comment``."""
    out = subprocess.run(["squeue", "--noheader", "--states=RUNNING", "--format=%i|%k"],
                         capture_output=True, text=True, timeout=20).stdout
    for line in out.splitlines():
        job_id, _, job_comment = line.partition("|")
        if job_comment.strip() == comment:
            return job_id.strip()
    return None


def cancel_when_checkpointed(proc: subprocess.Popen, work: Path, variant: str, timeout: float = 600) -> str:
    """Wait until ``variant``'s training wrote model_latest.pt (an epoch done), then scancel
    its SLURM job, as the scheduler does at a time limit or preemption. Returns the job id."""
    run_dir = work / "results" / "train" / variant
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "snakemake ended before the training was cancelled:\n" + (
            work / "snakemake.out").read_text()
        assert not (run_dir / "model_final.pt").exists(), "the training finished before it could be cancelled"
        if (run_dir / "model_latest.pt").exists():
            job_id = running_job(f"rule_train_wildcards_{variant}")
            if job_id:
                subprocess.run(["scancel", job_id], check=True, timeout=20)
                return job_id
        time.sleep(0.2)
    pytest.fail(f"no model_latest.pt of {variant} after {timeout} s")


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_demo_on_slurm_equals_local(tmp_path, runs):
    """Training and evaluation through sbatch give the local run's numbers, a killed training
    is reported with its rule and log and resumes from model_latest.pt, GPUs are requested."""
    local, slurm = copy_workflow(tmp_path / "local"), copy_workflow(tmp_path / "slurm")
    # both runs train and evaluate single-threaded (set-threads in both profiles): torch's CPU
    # results are then the same wherever the job runs; the local run goes on meanwhile
    local_run = runs(local, *TARGETS, "--nolock", "--cores", "2", "--workflow-profile", "profiles/demo")
    slurm_run = runs(slurm, *TARGETS, "--nolock", "--workflow-profile", "profiles/slurm-local")
    killed = cancel_when_checkpointed(slurm_run, slurm, KILLED)
    out = finish(slurm_run, slurm, timeout=1200)
    local_out = finish(local_run, local, timeout=1200)
    assert slurm_run.returncode == 0, out
    assert local_run.returncode == 0, local_out

    # the cancelled job: rule, SLURM state and log named, then resubmitted (retries: 1)
    assert "Error in rule train:" in out and f"SLURM-job '{killed}' failed" in out and "CANCELLED" in out, out
    assert f"logs/train/{KILLED}.log" in out and f"rule_train/{KILLED}/{killed}.log" in out, out
    assert "Trying to restart job" in out, out
    # ... which resumed: the log holds every iteration once, and its clock (seconds since the
    # process started) restarts where the retried job took over, after the first iteration
    rows = [r.split(",") for r in (slurm / "results" / "train" / KILLED / "train_log.csv").read_text().splitlines()[1:]]
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1)), rows[:3]
    seconds = [float(r[4]) for r in rows]
    restarts = [i for i in range(1, len(rows)) if seconds[i] < seconds[i - 1]]
    assert restarts and restarts[0] > 0, f"the retried training started from scratch:\n{rows[:3]}"

    # every job went through sbatch, the GPU rules with --gpus=1 (the test cluster's fake GPUs)
    submitted = dict(re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/", out))
    assert set(submitted.values()) >= {"synthetic_data", "calibrate", "patch_store", "pack_eval_set",
                                       "train", "evaluate"}, out
    for job_id, rule in submitted.items():
        if rule in ("train", "evaluate"):
            job = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
            assert "TresPerJob=gres:gpu:1" in job, job  # sbatch --gpus=1

    for variant in VARIANTS:
        for name in ("summary.csv", "per_image.csv"):
            path = Path("results", "eval", variant, "sid", name)
            assert (slurm / path).read_text() == (local / path).read_text(), path
        path = Path("results", "train", variant, "model_final.pt")
        ours, theirs = load_checkpoint(slurm / path)["netG"], load_checkpoint(local / path)["netG"]
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), f"{path}: weights differ"


def without_conda(profile_dir: Path) -> None:
    """The profile without conda (not on this machine; jobs use the venv's python)."""
    path = profile_dir / "config.yaml"
    settings = yaml.safe_load(path.read_text())
    settings.pop("software-deployment-method", None)
    path.write_text(yaml.safe_dump(settings))


def failing(runs, work: Path, *args, timeout: float = 300) -> str:
    """The output of a snakemake run that must fail."""
    proc = runs(work, *args)
    out = finish(proc, work, timeout)
    assert proc.returncode != 0, out
    return out


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_unset_account_and_partition_name_the_profile(tmp_path, runs):
    """profiles/slurm as shipped: the first submission fails, naming the placeholder."""
    work = copy_workflow(tmp_path / "wf")
    without_conda(work / "profiles" / "slurm")
    out = failing(runs, work, "results/cameras/SonyA7S2.json", "--nolock", "--workflow-profile", "profiles/slurm",
              "--configfile", "configs/demo.yaml", "--retries", "0", "--slurm-init-seconds-before-status-checks", "1")
    assert "Error in rule camera_params:" in out and "SLURM sbatch failed" in out, out
    assert "invalid partition specified: SET_ME_in_profiles_slurm_config_yaml" in out, out
    assert "logs/camera_params/SonyA7S2.log" in out, out


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
def test_request_the_cluster_rejects_names_the_rule(tmp_path, runs):
    """More memory or CPUs than the node has: sbatch's refusal, with the rule and its log."""
    work = copy_workflow(tmp_path / "wf")
    target = ["results/cameras/SonyA7S2.json", "--nolock", "--workflow-profile", "profiles/slurm-local"]
    for request, refusal in [
        (["--set-resources", "camera_params:mem_mb=100000000"], "Memory specification can not be satisfied"),
        # (the profile caps threads at 2)
        (["--set-threads", "camera_params=4096", "--max-threads", "4096"], "More processors requested than permitted"),
    ]:
        out = failing(runs, work, *target, *request, "--retries", "0")
        assert "Error in rule camera_params:" in out and "SLURM sbatch failed" in out, out
        assert refusal in out, out
        assert "logs/camera_params/SonyA7S2.log" in out, out


def test_slurm_local_profile_keeps_the_slurm_profile():
    """profiles/slurm-local is profiles/slurm with the site entries filled in: the settings they
    share agree (so the SLURM test tests the shipped profile's behaviour)."""
    slurm = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    local = yaml.safe_load((REPO / "profiles" / "slurm-local" / "config.yaml").read_text())
    for key in ("executor", "retries", "rerun-incomplete", "slurm-status-command", "show-failed-logs"):
        assert local[key] == slurm[key], key


@pytest.mark.parametrize("profile", ["slurm", "slurm-local"])
def test_slurm_profiles_plan_the_demo(profile, tmp_path):
    """Every key of the profiles is an option of snakemake or of the plugin (no SLURM needed)."""
    shutil.copytree(REPO / "profiles" / profile, tmp_path / profile)
    without_conda(tmp_path / profile)
    args = ["-n", "--workflow-profile", tmp_path / profile, "--configfile", "configs/demo.yaml"]
    proc = subprocess.run([str(SNAKEMAKE), "--nolock", *map(str, args)], cwd=clean_workflow(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "This was a dry-run" in proc.stdout + proc.stderr
