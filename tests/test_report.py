"""The HTML report, provenance and the planner: expodiff.provenance, expodiff.plan,
expodiff.report.figures, the report rules.

Fast: hashes, the git commit, dataset checksums, runtime and training-curve figures, `plan`, and
`plan`'s job counts against `snakemake -n`. Slow: the demo DAG once (module fixture), then
`snakemake --report` opened in headless Chromium (Debian's `chromium`), whose rendered page must
show every table, plot and image; the image grids' PSNRs must equal the evaluation's.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_workflow import job_counts as dry_run_counts
from test_workflow import snakemake as run_snakemake
import yaml

from expodiff.plan import job_counts, plan
from expodiff.provenance import (
    NOT_A_CHECKOUT,
    config_hash,
    dataset_checksum,
    git_commit,
    sha256_file,
    table_provenance,
)
from expodiff.report.figures import grey_world_wb, plot_training_curves, runtime_table, write_runtime

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PNG = b"\x89PNG\r\n\x1a\n"

needs_snakemake = pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed beside python")


def snakemake(*args, cwd=None) -> str:
    """Run snakemake (targets first: --configfile takes every argument after it); assert success."""
    return run_snakemake(*args, cwd=cwd, check=True).out


# --- hashes and provenance -----------------------------------------------------------------


def test_sha256_and_config_hash(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"expodiff")
    assert sha256_file(f) == hashlib.sha256(b"expodiff").hexdigest()
    a = {"training": {"epochs": 3, "lr": 1e-4}, "camera": "SonyA7S2"}
    b = {"camera": "SonyA7S2", "training": {"lr": 1e-4, "epochs": 3}}
    assert config_hash(a) == config_hash(b)  # key order does not matter
    assert config_hash(a) != config_hash({**a, "camera": "NikonD850"})


def test_git_commit_outside_a_checkout(tmp_path):
    assert git_commit(tmp_path) == NOT_A_CHECKOUT


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_commit_and_dirty_marker(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True,
                       env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})  # fmt: skip

    git("init", "-q")
    (tmp_path / "f.txt").write_text("1\n")
    git("add", "f.txt")
    git("commit", "-q", "-m", "one")
    commit = git_commit(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{40}", commit)
    (tmp_path / "untracked.txt").write_text("results are not code\n")
    assert git_commit(tmp_path) == commit  # untracked files (results/) do not count
    (tmp_path / "f.txt").write_text("2\n")
    assert git_commit(tmp_path) == commit + "+dirty"


def test_dataset_checksums(tmp_path):
    eval_set = tmp_path / "eval_sets" / "sid"
    eval_set.mkdir(parents=True)
    (eval_set / "index.csv").write_text("dataset,scene\nsid,10185\n")
    np.save(eval_set / "a.npy", np.zeros(3, np.float32))
    record = dataset_checksum(eval_set)
    assert record["index_sha256"] == sha256_file(eval_set / "index.csv") and record["files"] == 2
    np.save(eval_set / "a.npy", np.ones(3, np.float32))  # a changed image changes the set's hash
    assert dataset_checksum(eval_set)["files_sha256"] != record["files_sha256"]
    synthetic = tmp_path / "synthetic"
    synthetic.mkdir()
    (synthetic / "MANIFEST.json").write_text("{}\n")
    assert dataset_checksum(synthetic)["manifest_sha256"] == sha256_file(synthetic / "MANIFEST.json")
    eld = tmp_path / "ELD" / "SonyA7S2" / "scene-1"
    eld.mkdir(parents=True)
    (eld / "IMG_0001.ARW").write_bytes(b"raw")
    assert dataset_checksum(eld.parent)["files"] == 1 and "listing_sha256" in dataset_checksum(eld.parent)
    listed = tmp_path / "Sony_test_list.txt"
    listed.write_text("./Sony/short/10185_00_0.1s.ARW ./Sony/long/10185_00_10s.ARW ISO200 F9\n")
    assert dataset_checksum(listed)["sha256"] == sha256_file(listed)


def test_table_provenance_records_everything(tmp_path):
    ckpt = tmp_path / "model_final.pt"
    ckpt.write_bytes(b"weights")
    listed = tmp_path / "list.txt"
    listed.write_text("x\n")
    table = tmp_path / "table4.csv"
    table.write_text("label\nP+G\n")
    config = {"variants": {"unet-pg-ours": {"recipe": "exposurediffusion"}},
              "recipes": {"exposurediffusion": {"epochs": 300}}, "checkpoints": "trained"}
    prov = table_provenance(config, tmp_path, {"unet-pg-ours": ckpt}, {"source": listed}, tables=[table])
    assert prov["commit"] == NOT_A_CHECKOUT
    assert prov["table_files"] == {"table4.csv": sha256_file(table)}
    assert prov["config_sha256"] == config_hash(config)
    assert prov["cell_recipes"] == {"unet-pg-ours": "exposurediffusion"}  # which recipe made each cell
    assert prov["recipes"] == {"exposurediffusion": {"epochs": 300}}
    assert prov["checkpoints"]["unet-pg-ours"]["sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert prov["datasets"]["source"]["sha256"] == sha256_file(listed)
    json.dumps(prov)  # serialisable as written


# --- report figures ------------------------------------------------------------------------


def test_runtime_table_and_figure(tmp_path):
    bench = tmp_path / "train.tsv"
    bench.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                     "3723.5\t1:02:03\t812.3\t900\t-\t-\t0\t1\t95.0\t3500.0\n")  # fmt: skip
    na = tmp_path / "eval.tsv"
    na.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                  "2.0\t0:00:02\t-\t-\t-\t-\t-\t-\t-\t-\n")  # fmt: skip
    benchmarks = {"train/unet-pg-ours": bench, "evaluate/unet-pg-ours/sid": na, "train/never-ran": tmp_path / "no.tsv"}
    table = runtime_table(benchmarks)
    assert list(table["rule"]) == ["train", "evaluate", "train"]
    assert table["seconds"].iloc[0] == 3723.5 and table["h:m:s"].iloc[0] == "1:02:04"
    assert table["max_rss_mb"].iloc[0] == pytest.approx(812.3)
    assert np.isnan(table["max_rss_mb"].iloc[1]) and np.isnan(table["seconds"].iloc[2])
    write_runtime(benchmarks, tmp_path / "runtime.csv", tmp_path / "runtime.png")
    assert (tmp_path / "runtime.png").read_bytes()[:8] == PNG
    assert len(pd.read_csv(tmp_path / "runtime.csv")) == 3


def test_training_curves_figure(tmp_path):
    logs = {}
    for name in ("unet-pg-base", "unet-pg-ours", "unet-pg-ddim"):
        logs[name] = tmp_path / f"{name}.csv"
        n = np.arange(1, 301)
        pd.DataFrame({"iteration": n, "epoch": n // 100, "lr": 1e-4, "loss": 1 / n, "seconds": n * 0.1}).to_csv(
            logs[name], index=False
        )
    methods = {"unet-pg-base": "baseline", "unet-pg-ours": "ours", "unet-pg-ddim": "ddim"}
    plot_training_curves(logs, tmp_path / "curves.png", methods)
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG


def test_grey_world_white_balance_equalises_channels():
    packed = np.stack([np.full((4, 4), 0.2), np.full((4, 4), 0.4), np.full((4, 4), 0.1), np.full((4, 4), 0.4)])
    assert grey_world_wb(packed) == pytest.approx((2.0, 1.0, 4.0))


# --- plan ----------------------------------------------------------------------------------


def test_plan_with_given_its():
    text = plan([REPO / "config.yaml"], its=10.0)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    n_variants = len(config["variants"])
    assert re.search(rf"^\s+train\s+{n_variants}$", text, re.M)
    assert re.search(rf"^\s+evaluate\s+{n_variants * len(config['evaluation']['datasets'])}$", text, re.M)
    # the paper: 300 epochs (the exposurediffusion recipe) of 1288 patches at batch 1 = 386,400
    # iterations; at 10 it/s 10.73 h. Columns: variant, data, recipe, epochs, samples/epoch, ...
    row = next(line for line in text.splitlines() if line.split()[:1] == ["unet-pg-ours"])
    assert row.split()[2:7] == ["exposurediffusion", "300", "1288", "386400", "10"] and row.split()[-1] == "10.73"
    paired = next(line for line in text.splitlines() if line.split()[:1] == ["unet-paired-ours"])
    # the original's paired data: 280 shot-00 pairs × the same 8 centre patches = 2,240 per epoch
    assert paired.split()[4:6] == ["2240", "672000"]
    samples = {"patches": 1288, "pairs": 2240}  # pair store: paired and pmn
    epochs = {name: config["recipes"][v["recipe"]]["epochs"] for name, v in config["variants"].items()}
    hours = sum(epochs[name] * samples["pairs" if v["data"] in ("paired", "pmn") else "patches"]
                for name, v in config["variants"].items()) / 10 / 3600  # fmt: skip
    assert f"total GPU-hours: {hours:.2f}" in text


def test_plan_counts_come_from_the_data_kinds_and_the_methods(tmp_path):
    """Only the stores the variants' data kinds read are built; each method's evaluations run
    the step counts expodiff.methods gives (evaluation.steps, evaluation.ddim_steps, one)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    keep = {n: v for n, v in config["variants"].items() if v["data"] == "pg"}
    released = {n: f for n, f in config["released_checkpoints"]["files"].items() if n in keep}
    config |= {"variants": keep, "tables": {}, "variant_tables": {},
               "released_checkpoints": {**config["released_checkpoints"], "files": released}}  # fmt: skip
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")  # (an overlay can only add variants)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    text = plan([tmp_path / "config.yaml"], its=10.0)
    assert re.search(r"^\s+patch_store\s+1$", text, re.M) and "pair_store" not in text
    methods = {m: sum(v["method"] == m for v in keep.values()) for m in ("baseline", "ours", "ddim")}
    ev = config["evaluation"]
    for method, steps in (("baseline", [1]), ("ours", ev["steps"]), ("ddim", ev["ddim_steps"])):
        shown = ", ".join(map(str, steps))
        assert re.search(rf"^  {method}\s+{shown}\s+{sum(steps)}\s+{methods[method]}$", text, re.M), text


def test_plan_from_a_measured_run(tmp_path):
    """it/s from a finished run's benchmark and train log; unmeasured variants borrow their peers'."""
    run = tmp_path / "run"
    (run / "results/patches/sid_train").mkdir(parents=True)
    (run / "results/patches/sid_train/meta.json").write_text(json.dumps({"count": 24, "patch_size": 32}))
    (run / "results/pairs/sid_train").mkdir(parents=True)
    (run / "results/pairs/sid_train/meta.json").write_text(json.dumps({"count": 6}))
    (run / "benchmarks/out/train").mkdir(parents=True)
    (run / "benchmarks/out/train/unet-pg-ours.tsv").write_text("s\th:m:s\tmax_rss\n36.0\t0:00:36\t100\n")
    (run / "results/train/unet-pg-ours").mkdir(parents=True)
    epochs = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())["recipes"]["exposurediffusion"]["epochs"]
    iterations = epochs * 24
    pd.DataFrame({"iteration": range(1, iterations + 1), "loss": 0.1}).to_csv(
        run / "results/train/unet-pg-ours/train_log.csv", index=False)  # fmt: skip
    (run / "benchmarks/out/train/unet-pg-ours.tsv").write_text(f"s\th:m:s\tmax_rss\n{iterations / 2}\t0:00:36\t100\n")
    text = plan([REPO / "config.yaml", REPO / "configs" / "demo.yaml"], run_dir=run)
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("  unet-")}
    # demo: epochs × 24 patches at 2 it/s (the benchmark's seconds are half the iterations)
    assert rows["unet-pg-ours"].split()[4:8] == ["24", str(iterations), "2", "measured"]
    assert "mean of 1 unet/ours" in rows["unet-eld-ours"]
    assert rows["unet-pg-base"].rstrip().endswith("?")  # no unet baseline measured
    assert "without" in text and "unet-pg-base" in text.split("without", 1)[1]


@needs_snakemake
@pytest.mark.parametrize("configs", [[], ["configs/demo.yaml"]], ids=["paper", "demo"])
def test_plan_job_counts_match_the_dag(configs, tmp_path):
    """plan's jobs per rule are the ones snakemake plans (paper config planned without its data)."""
    overlay = tmp_path / "no_data.yaml"
    overlay.write_text(yaml.safe_dump({"data": {"sid_root": str(tmp_path / "SID"), "eld_root": str(tmp_path / "ELD")}}))
    paths = [REPO / "config.yaml", *(REPO / c for c in configs)] + ([] if configs else [overlay])
    from expodiff.config import load_config

    expected = job_counts(load_config(paths))
    # the stores from the data kinds table (and PMN's maps where the demo has dark frames)
    assert {"patch_store", "pair_store"} <= set(expected) and ("dark_shading" in expected) == bool(configs)
    counts = dry_run_counts(snakemake("report_figures", "demo" if configs else "all", "-n", "--configfile",
                                      *paths[1:]))  # fmt: skip
    assert {rule: counts.get(rule, 0) for rule in expected} == expected


@needs_snakemake
def test_default_target_builds_the_report_figures():
    """`snakemake --report` reports the jobs of the default target: it must include the grids etc.

    Needs `outputs += get_report_output()` in get_final_output (rules/common.smk, targets).
    """
    counts = dry_run_counts(snakemake("-n", "--configfile", "configs/demo.yaml"))
    for rule in ("scene_grids", "training_curves", "runtime", "environment", "table_provenance"):
        assert rule in counts, f"rule all does not build {rule}: add get_report_output() to get_final_output()"


# --- the report of a demo run, in Chromium (slow) ------------------------------------------


@pytest.fixture(scope="module")
def demo_report(demo_run) -> Path:
    """The session's demo run (rule all builds the report figures), then its HTML report."""
    snakemake("--report", "report.html", "--workflow-profile", "profiles/demo", cwd=demo_run)
    return demo_run


# Runs in the report page after it loads: loads every embedded PNG, opens each category as a
# reader would click it, shows one image grid as the result viewer does, and leaves what the
# page showed in <pre id="expodiff-check"> (JSON) for --dump-dom. (Image.decode() never settles
# under --virtual-time-budget; onload does.)
CHECK_SCRIPT = """
<script>
window.addEventListener("load", () => setTimeout(async () => {
  const pause = () => new Promise(done => setTimeout(done, 300));
  const loaded = (src) => new Promise(done => {
    const img = new Image();
    img.onload = () => done([img.naturalWidth, img.naturalHeight]);
    img.onerror = () => done(null);
    img.src = src;
  });
  const out = {results: {}, views: {}, graph: document.querySelector("#app svg, #app canvas") !== null};
  for (const [path, res] of Object.entries(results)) {
    out.results[path] = {name: res.name, mime: res.mime_type, labels: res.labels};
    if (res.mime_type === "image/png") out.results[path].size = await loaded(res.data_uri);
  }
  for (const category of Object.keys(categories)) {
    app.setView({navbarMode: "menu"});  // back to the menu, then click the category
    await pause();
    app.showCategory(category);
    await pause();
    out.views[category] = document.querySelector("#app").innerText;
  }
  const grid = Object.keys(results).find(path => results[path].job_properties.rule === "scene_grids");
  if (grid !== undefined) {
    app.setView({content: "img", contentPath: results[grid].data_uri});
    await pause();
    const shown = [...document.querySelectorAll("#app img")].find(img => img.src === results[grid].data_uri);
    out.shown = shown === undefined ? null : {name: results[grid].name, size: [shown.naturalWidth, shown.naturalHeight]};
  }
  const pre = document.createElement("pre");
  pre.id = "expodiff-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}, 500));
</script>
"""


def render_in_chromium(report: Path, tmp_path: Path) -> dict:
    """Open ``report`` (plus CHECK_SCRIPT) in headless Chromium; the check script's findings."""
    page = tmp_path / "report_check.html"
    text = report.read_text()
    page.write_text(text[: text.rindex("</body>")] + CHECK_SCRIPT + text[text.rindex("</body>") :])
    proc = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}",
         "--virtual-time-budget=30000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    found = re.search(r'<pre id="expodiff-check">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"the report's scripts did not finish in Chromium:\n{proc.stderr[-3000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_report_renders_tables_and_images_in_chromium(demo_report, tmp_path):
    found = render_in_chromium(demo_report / "report.html", tmp_path)
    names = {entry["name"] for entry in found["results"].values()}
    tables = ["table4", "table5a", "table5b", "eld"]
    for table in tables:
        assert {f"{table}.csv", f"{table}.md", f"{table}.tex", f"{table}.provenance.json"} <= names
    index = pd.read_csv(demo_report / "results/eval_sets/sid/index.csv", dtype={"scene": str})
    scenes = sorted(set(index[index["ratio"] == 100]["scene"]))
    expected = {"steps.png", "training_curves.png", "runtime.png", "runtime.csv", "environment.txt",
                "ptc.png", "ppcc.png", "scales.png"} | {f"{s}.png" for s in scenes}  # fmt: skip
    assert expected <= names, expected - names
    for path, entry in found["results"].items():
        if entry["mime"] == "image/png":
            assert entry["size"] and min(entry["size"]) > 0, (path, entry)  # a PNG the browser decodes
    assert found["graph"], "the rule graph did not render"
    # each category lists its results by their labels, as a reader sees them after a click
    views = found["views"]
    assert {"Tables", "Plots", "Images", "Training", "Runtime", "Environment", "Calibration"} <= set(views)
    for word in [*tables, "provenance", "csv", "md", "tex"]:
        assert word in views["Tables"], word
    for scene in scenes:
        assert scene in views["Images"]
    assert "steps" in views["Plots"] and "training loss" in views["Training"]
    assert "runtime per job" in views["Runtime"] and "software and config" in views["Environment"]
    assert "photon-transfer curves" in views["Calibration"]
    assert found["shown"]["name"] in {f"{s}.png" for s in scenes} and min(found["shown"]["size"]) > 0


@pytest.mark.slow
def test_scene_grids_match_the_evaluation(demo_report):
    """The grids use the evaluation's seeds: their PSNRs are per_image.csv's (to float rounding)."""
    config = yaml.safe_load((demo_report / "config.yaml").read_text())["step_plot"]
    grids = demo_report / "results/report/scene_grids"
    psnr = pd.read_csv(grids / "psnr.csv", dtype={"scene": str})
    n = max(config["steps"])
    assert set(psnr["panel"]) == {"input", "baseline", "ours"} and len(psnr[psnr["panel"] == "ours"]) == n * psnr["scene"].nunique()
    assert set(psnr["protocol"]) == {"oracle"}
    for panel, variant, n_steps in (("ours", config["variant"], n), ("baseline", config["baseline"], 1)):
        evaluated = pd.read_csv(demo_report / "results/eval" / variant / config["dataset"] / "per_image.csv",
                                dtype={"scene": str})  # fmt: skip
        evaluated = evaluated[(evaluated["ratio"] == config["ratio"]) & (evaluated["n_steps"] == n_steps)]
        # the grids run the oracle protocol (configured): they match its rows of per_image.csv
        merged = psnr[psnr["panel"] == panel].merge(evaluated, on=["scene", "ratio", "protocol", "n_steps", "step"],
                                                    suffixes=("", "_eval"))  # fmt: skip
        assert len(merged) == len(psnr[psnr["panel"] == panel]) > 0
        # equal but for float rounding that differs with the thread count (and grows a little
        # through the re-exposure's Poisson draws)
        np.testing.assert_allclose(merged["psnr"], merged["psnr_eval"], atol=0.05)
        assert (abs(merged["psnr"] - merged["psnr_eval"]) < 1e-3).mean() > 0.8
    for scene in psnr["scene"].unique():
        assert (grids / f"{scene}.png").read_bytes()[:8] == PNG


@pytest.mark.slow
def test_demo_tables_carry_provenance(demo_report):
    prov = json.loads((demo_report / "results/tables/table4.provenance.json").read_text())
    assert prov["commit"] == NOT_A_CHECKOUT  # the copy is not a git checkout
    for ext in ("csv", "md", "tex"):
        assert prov["table_files"][f"table4.{ext}"] == sha256_file(demo_report / f"results/tables/table4.{ext}")
    for variant, record in prov["checkpoints"].items():
        assert record["sha256"] == sha256_file(demo_report / "results/train" / variant / "model_final.pt")
    assert "unet-pg-ours" in prov["checkpoints"]
    assert prov["datasets"]["eval_set"]["index_sha256"] == sha256_file(demo_report / "results/eval_sets/sid/index.csv")
    assert prov["datasets"]["source"]["manifest_sha256"] == sha256_file(
        demo_report / "results/data/synthetic/MANIFEST.json"
    )
    environment = yaml.safe_load((demo_report / "results/report/environment.txt").read_text())
    assert environment["config_sha256"] == prov["config_sha256"]
    assert environment["config"]["data"]["source"] == "synthetic"
    assert environment["packages"]["snakemake"] and environment["packages"]["torch"] != "not installed"
    assert json.loads((demo_report / "results/tables/table5b.provenance.json").read_text())["checkpoints"] == {}
    runtime = pd.read_csv(demo_report / "results/report/runtime.csv")
    assert (runtime[runtime["rule"] == "train"]["seconds"] > 0).all()
