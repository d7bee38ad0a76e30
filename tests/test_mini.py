"""`make mini` (docs/MINI.md): the summary module on hand-made per-image CSVs, the mini overlay's
config checks and dry run, and (slow) the mini profile end to end at a tiny budget, twice, with
the same summary both times."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from expodiff.config import check, config_errors, deep_merge, load_config, run_variants
from expodiff.errors import ConfigError
from expodiff.report.mini import (
    bootstrap_ci,
    build_mini_summary,
    findings,
    loss_trend,
    paper_deltas,
    render_markdown,
)
from test_workflow import REPO, copy_workflow, job_counts, snakemake

SCENES = [f"1{i:04d}" for i in range(12)]
RATIOS = (100, 250, 300)
PROTOCOLS = ("oracle", "gt-free")
STEPS = (1, 2, 3, 4)


def per_image(variant: str, psnr, steps=(1,)) -> pd.DataFrame:
    """A per_image.csv frame: ``psnr(protocol, ratio, scene_index, n_steps, step)``."""
    rows = []
    for protocol in PROTOCOLS:
        for ratio in RATIOS:
            for i, scene in enumerate(SCENES):
                for n in steps:
                    for step in range(1, n + 1):
                        rows.append([variant, "sid", "SonyA7S2", protocol, scene, ratio, n, step,
                                     psnr(protocol, ratio, i, n, step), 0.9])  # fmt: skip
    return pd.DataFrame(rows, columns=["variant", "dataset", "camera", "protocol", "scene", "ratio", "n_steps",
                                       "step", "psnr", "ssim"])  # fmt: skip


def inputs(level=30.0) -> pd.DataFrame:
    rows = [[p, s, r, level - r / 100 + 0.1 * i] for p in PROTOCOLS for r in RATIOS for i, s in enumerate(SCENES)]
    return pd.DataFrame(rows, columns=["protocol", "scene", "ratio", "psnr"])


def noise(i: int, n: int = 0) -> float:
    return float(np.sin(7.3 * i + 1.7 * n))  # deterministic per-image scatter


def summary_of(ours_offset: float, step_slope: float, seed: int = 0, resamples: int = 500):
    base = per_image("base", lambda p, r, i, n, s: 36.0 - r / 100 + 0.1 * i + 0.3 * noise(i))
    ours = per_image("ours", lambda p, r, i, n, s: 36.0 - r / 100 + 0.1 * i + ours_offset + step_slope * (s - 3)
                     + 0.3 * noise(i, s), steps=STEPS)  # fmt: skip
    return build_mini_summary(base, ours, inputs(), baseline_name="base", ours_name="ours", dataset="sid",
                              protocols=PROTOCOLS, eval_steps=STEPS, steps=3, min_gain_db=3.0,
                              resamples=resamples, seed=seed, paper={("ours-baseline", 100): 0.58})  # fmt: skip


# --- the summary module -------------------------------------------------------------------


def test_bootstrap_interval_holds_the_mean_and_is_seeded():
    rng = np.random.default_rng(1)
    d = rng.normal(0.5, 1.0, 40)
    low, high = bootstrap_ci(d, 2000, seed=3, key="k")
    assert low < d.mean() < high
    assert (low, high) == bootstrap_ci(d, 2000, seed=3, key="k")  # deterministic for a seed and key
    assert (low, high) != bootstrap_ci(d, 2000, seed=4, key="k")
    wide = bootstrap_ci(d[:5], 2000, seed=3, key="k")
    assert wide[1] - wide[0] > high - low  # fewer images, a wider interval


def test_summary_rows_gains_and_paired_deltas():
    s = summary_of(ours_offset=1.0, step_slope=0.5)
    head = s[(s["comparison"] == "ours-baseline") & (s["a"] == "ours@3")]
    assert len(head) == len(RATIOS) * len(PROTOCOLS)
    assert np.allclose(head["delta"], 1.0, atol=0.15)
    assert (head["ci_low"] <= head["delta"]).all() and (head["delta"] <= head["ci_high"]).all()
    assert (head["verdict"] == "better").all() and (head["n"] == len(SCENES)).all()
    oracle100 = head[(head["protocol"] == "oracle") & (head["ratio"] == 100)]
    assert oracle100["paper_delta"].iloc[0] == 0.58
    assert head[head["protocol"] == "gt-free"]["paper_delta"].isna().all()  # the paper has no GT-free numbers
    gains = s[s["comparison"] == "gain"]
    assert np.allclose(gains[gains["a"] == "base"]["delta"], 6.0, atol=0.2)
    assert (gains["verdict"] == "ok").all()
    steps = s[(s["comparison"] == "steps") & (s["a"] == "ours@4")]
    assert np.allclose(steps["delta"], 1.5, atol=0.3)
    assert s.equals(summary_of(ours_offset=1.0, step_slope=0.5))  # deterministic
    assert findings(s, {"base": _falls(), "ours": _falls()}, "ours", 3, 3.0) == []


def _falls(falls=True):
    return {"first": 0.1, "last": 0.05 if falls else 0.2, "epochs": 3, "iterations": 30, "falls": falls}


def test_plain_sentences_when_ours_is_worse_and_does_not_improve():
    s = summary_of(ours_offset=-1.0, step_slope=-0.5)
    notes = findings(s, {"base": _falls(), "ours": _falls(False)}, "ours", 3, 3.0)
    text = " ".join(notes)
    assert "ours (3 steps) does worse than the baseline" in text
    assert "does not improve over steps" in text
    assert "The training loss of ours does not fall" in text
    assert "learning curves" in text and "training_curves.png" in text
    md = render_markdown(s, {"base": _falls(), "ours": _falls(False)}, notes, commit="abc", config_sha="f00",
                         resamples=500, seed=0, min_gain_db=3.0)  # fmt: skip
    assert "`abc`" in md and "`f00`" in md and "does worse than the baseline" in md
    assert "## Protocol oracle" in md and "## Protocol gt-free" in md


def test_gain_below_target_is_said():
    base = per_image("base", lambda p, r, i, n, s: 30.0 - r / 100 + 0.1 * i + 1.0)
    ours = per_image("ours", lambda p, r, i, n, s: 30.0 - r / 100 + 0.1 * i + 4.0, steps=STEPS)
    s = build_mini_summary(base, ours, inputs(), baseline_name="base", ours_name="ours", dataset="sid",
                           protocols=PROTOCOLS, eval_steps=STEPS, steps=3, min_gain_db=3.0, resamples=200,
                           seed=0)  # fmt: skip
    gains = s[s["comparison"] == "gain"]
    assert set(gains[gains["a"] == "base"]["verdict"]) == {"below target"}
    assert set(gains[gains["a"] == "ours@3"]["verdict"]) == {"ok"}
    assert any("base is +1.00 dB from the input, short of the +3 dB target" in n
               for n in findings(s, {}, "ours", 3, 3.0))


def test_loss_trend_and_paper_deltas(tmp_path):
    log = tmp_path / "train_log.csv"
    log.write_text("iteration,epoch,lr,loss,seconds\n1,1,1e-4,0.5,0.1\n2,1,1e-4,0.3,0.1\n3,2,1e-4,0.2,0.1\n"
                   "4,2,1e-4,0.1,0.1\n")  # fmt: skip
    assert loss_trend(log) == {"first": 0.4, "last": pytest.approx(0.15), "epochs": 2, "iterations": 4, "falls": True}
    one = tmp_path / "one_epoch.csv"
    one.write_text("iteration,epoch,lr,loss,seconds\n" + "".join(f"{i},1,1e-4,{1 / i},0.1\n" for i in range(1, 21)))
    trend = loss_trend(one)  # one epoch: its first and last tenth
    assert trend["first"] == pytest.approx((1 + 1 / 2) / 2) and trend["last"] == pytest.approx((1 / 19 + 1 / 20) / 2)
    assert trend["falls"] and trend["epochs"] == 1
    resources = REPO / "src" / "expodiff" / "resources"
    paper = paper_deltas(resources / "paper_results.csv", resources / "step_curve.csv")
    assert paper[("ours-baseline", 100)] == pytest.approx(38.89 - 38.31)
    assert paper[("ours-baseline", 300)] == pytest.approx(34.99 - 33.37)
    assert paper[("steps", 3)] == pytest.approx(39.01 - 35.43)


# --- the overlay ----------------------------------------------------------------------------


def mini_config(*extra) -> dict:
    return load_config([REPO / "config.yaml", REPO / "configs" / "mini.yaml", *extra])


def test_mini_overlay_passes_the_checks():
    config = mini_config()
    assert run_variants(config) == ["unet-pg-base", "unet-pg-ours"]
    assert config["mini_summary"]["enabled"] and config["data"]["synthetic"]["preset"] == "mini"
    assert config["compute"]["device"] == "cpu"
    gpu = mini_config(REPO / "configs" / "mini-gpu.yaml")
    assert gpu["compute"]["device"] == "cuda" and run_variants(gpu) == run_variants(config)


def test_run_variants_checks_name_their_key():
    config = mini_config()
    bad = deep_merge(copy.deepcopy(config), {"run_variants": ["unet-pg-base", "nope"]})
    assert any(e.startswith("run_variants: unknown variant 'nope'") for e in config_errors(bad))
    bad = deep_merge(copy.deepcopy(config), {"step_plot": {"ddim": "unet-pg-ddim"}})
    assert any(e.startswith("step_plot.ddim:") and "run_variants" in e for e in config_errors(bad))
    bad = deep_merge(copy.deepcopy(config), {"mini_summary": {"ours": "unet-eld-ours"}})
    assert any(e.startswith("mini_summary.ours:") for e in config_errors(bad))
    with pytest.raises(ConfigError, match="mini_summary.baseline"):
        check(deep_merge(copy.deepcopy(config), {"mini_summary": {"baseline": "unet-pg-ours"}}))


def test_mini_dry_run():
    proc = snakemake("mini", "-n", "--configfile", "configs/mini.yaml", check=True)
    counts = job_counts(proc.out)
    assert counts["train"] == 2 and counts["evaluate"] == 4  # the UNet P+G pair on SID and ELD
    assert counts["mini_summary"] == 1 and counts["synthetic_data"] == 1
    assert "output: results/mini/summary.md" in proc.out
    proc = snakemake("mini", "-n", "--workflow-profile", "profiles/mini", check=True)
    assert job_counts(proc.out)["mini_summary"] == 1


def test_mini_target_refuses_other_configs():
    proc = snakemake("mini", "-n", "--configfile", "configs/demo.yaml", check=False)
    assert "configs/mini.yaml" in proc.out


# --- end to end, tiny budget ------------------------------------------------------------------

# the mini overlay on the demo's data and one epoch of 64 patches: the same DAG in a minute or two
TINY = {
    "data": {"synthetic": {"preset": "demo"}},
    "patches": {"size": 32, "crop": [64, 128]},
    "training": {"save_every": 64},
    "recipes": {name: {"epochs": 1, "lr_schedule": [[1, 5.0e-5]], "checkpoint_epochs": [1]}
                for name in ("exposurediffusion", "eld")},  # fmt: skip
    "evaluation": {"datasets": {"sid": {"scenes": ["10185", "10191", "20201"], "crop": 64}}},
    "mini_summary": {"bootstrap": {"resamples": 200}},
}


@pytest.mark.slow
def test_mini_profile_end_to_end_reproduces(tmp_path, monkeypatch):
    work = copy_workflow(tmp_path / "wf")
    monkeypatch.setenv("PYTHONPATH", str(work / "src"))  # the jobs run the copy's library
    (work / "configs" / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    args = ["mini", "--workflow-profile", "profiles/mini", "--configfile", "configs/mini.yaml", "configs/tiny.yaml"]
    snakemake(*args, cwd=work, check=True)
    out = work / "results" / "mini"
    first = (out / "summary.csv").read_text()
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False)
    assert set(summary["ratio"]) == {100, 250, 300} and set(summary["protocol"]) == {"oracle", "gt-free"}
    assert {"input", "gain", "ours-baseline", "steps"} <= set(summary["comparison"])
    md = (out / "summary.md").read_text()
    assert "commit:" in md and "config SHA-256:" in md and "## Findings" in md
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (work / "results" / "train" / "unet-eld-base").exists()  # only run_variants train
    # a second run of the same code, retraining and re-evaluating: the same numbers
    snakemake(*args, "--forcerun", "train", cwd=work, check=True)
    assert (out / "summary.csv").read_text() == first
