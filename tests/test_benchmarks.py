"""benchmarks/train_step.py and benchmarks/gpu_check.py run (on the CPU, tiny) and say what
they should: the ratio line, the JSON keys."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}
sys.path.insert(0, str(REPO / "benchmarks"))


def test_train_step_prints_the_ratio_last():
    out = subprocess.run([sys.executable, "benchmarks/train_step.py", "--device", "cpu", "--size", "64",
                          "--iterations", "3"], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("iteration/bare ratio: ")
    assert float(last.split(": ")[1]) > 0
    assert "data" in out.stdout and "noise" in out.stdout and "fwd+bwd" in out.stdout


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
    assert result["gpu_hours"]["fp32"]["total_gpu_hours"] > 0  # the venv has pyyaml and jsonschema


def test_the_benchmark_training_settings_are_the_configs():
    import train_step

    training = yaml.safe_load((REPO / "config.yaml").read_text())["training"]
    assert {k: training[k] for k in train_step.TRAINING} == train_step.TRAINING
