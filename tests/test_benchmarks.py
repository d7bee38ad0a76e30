"""benchmarks/train_step.py and benchmarks/gpu_check.py run (on the CPU, tiny) and say what
they should: the ratio line, the JSON keys."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}
sys.path.insert(0, str(REPO / "benchmarks"))


def test_train_step_prints_the_ratio_last_and_plan_reads_its_speed(tmp_path):
    """The ratio line; and its --json record gives `expodiff plan --speeds` the GPU-hours of the
    variants of that network at that patch size (the paper config with 32² patches), the others
    unknown."""
    record = tmp_path / "speed.json"
    out = subprocess.run([sys.executable, "benchmarks/train_step.py", "--device", "cpu", "--size", "32",
                          "--iterations", "3", "--json", str(record)], cwd=REPO, env=ENV, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("iteration/bare ratio: ")
    assert float(last.split(": ")[1]) > 0
    assert "data" in out.stdout and "noise" in out.stdout and "fwd+bwd" in out.stdout

    from expodiff.plan import plan

    its = json.loads(record.read_text())["iterations_per_s"]
    overlay = tmp_path / "patches32.yaml"
    overlay.write_text("patches:\n  size: 32\n")
    text = plan([REPO / "config.yaml", overlay], speeds=[record])
    row = next(line.split() for line in text.splitlines() if line.strip().startswith("unet-pg-ours "))
    iterations, rate, hours = int(row[5]), float(row[6]), float(row[-1])
    assert rate == float(f"{its:.3g}") and abs(hours - iterations / its / 3600) < 0.006
    assert "no unet/baseline fp32 32² speed" in text and f"benchmarked speeds (fp32): {record}" in text


def test_gpu_check_smoke_on_the_cpu(tmp_path):
    out_json = tmp_path / "gpu_check.json"
    out = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--device", "cpu", "--smoke", "--out",
                          str(out_json)], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "cannot be measured here" in out.stdout
    result = json.loads(out_json.read_text())
    assert {"device", "gpu_figures_measured", "lazy_imports", "gpu_tests", "train", "inference",
            "gpu_hours", "seconds"} <= set(result)
    assert result["gpu_figures_measured"] is False
    assert set(result["train"]) == {"fp32", "bf16"}
    assert result["train"]["fp32"]["ratio"] > 0
    assert "max_abs_diff_fp32_bf16" in result["inference"]
    assert {(r["backbone"], r["method"], r["precision"]) for r in result["speeds"]} == {
        ("unet", m, p) for m in ("baseline", "ours") for p in ("fp32", "bf16")}
    # the venv has pyyaml and jsonschema: the plan ran, on speeds of the smoke's 64² (not the config's 512²)
    assert "no unet/ours fp32 512² speed" in result["gpu_hours"]["fp32"]["plan"]


def test_the_benchmark_training_settings_are_the_configs():
    import train_step

    from expodiff.config import load_config
    from expodiff.recipes import training_settings

    training = training_settings(load_config([REPO / "config.yaml"]), "unet-pg-ours")  # exposurediffusion
    assert {k: training[k] for k in train_step.TRAINING} == train_step.TRAINING
