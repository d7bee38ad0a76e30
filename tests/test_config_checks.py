"""One set of config cross-checks (expodiff.config.config_errors): every message is triggered
by a bad overlay of the paper config (and a guard fails when a new message has no case here);
Snakemake (rules/common.smk) and the CLI (load_config, so `expodiff plan`, `train` and
`evaluate`) say the same; a schema error of Snakemake names the config files it read."""

from __future__ import annotations

import ast
import copy
import functools
import inspect
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

import expodiff.config
from expodiff.config import check, config_errors, deep_merge, load_config
from expodiff.errors import ConfigError
from test_workflow import REPO, SNAKEMAKE, copy_workflow, overlay, snakemake

needs_snakemake = pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed beside python")
PAPER = REPO / "config.yaml"


# --- every message of config_errors, from a bad overlay ------------------------------------


@functools.cache
def paper_config() -> dict:
    return load_config([PAPER])


@functools.cache
def schema_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text()))


def paper_with(content: dict) -> dict:
    """The paper config with ``content`` merged over it (as --configfile merges), schema-valid:
    only the cross-checks can object."""
    config = deep_merge(copy.deepcopy(paper_config()), content)
    errors = [e.message for e in schema_validator().iter_errors(config)]
    assert not errors, f"the overlay must pass the schema: {errors}"
    return config


def row(table: str, i: int, **fields) -> dict:
    """An overlay changing ``fields`` of row ``i`` of a paper table (lists are replaced whole)."""
    rows = copy.deepcopy(paper_config()["tables"][table]["rows"])
    rows[i].update(fields)
    return {"tables": {table: {"rows": rows}}}


UNET_BASELINE = {"backbone": "unet", "data": "pg", "method": "baseline", "concat_origin": False, "recipe": "eld"}
VARIANT_TABLE = {"caption": "x", "dataset": "eld", "ratios": [100], "steps": 3}
CAMERA_ENTRY = {"frames": None, "params": None, "dn_scale": None, "sensor": None, "test_pairs": None}

# case: (overlay of the paper config, a message config_errors must then give)
BAD = {
    "unknown backbone": ({"variants": {"unet-pg-base": {"backbone": "resnet"}}},
                         r"^variants\.unet-pg-base\.backbone: unknown backbone 'resnet'; known: "),
    "unknown cost backbone": ({"cost_table": {"backbones": ["unet", "vgg"]}},
                              r"^cost_table\.backbones\[1\]: unknown backbone 'vgg'"),
    "unknown method": ({"variants": {"unet-x": {**UNET_BASELINE, "method": "gan"}}},
                       r"^variants\.unet-x\.method: unknown method 'gan'; known: "),
    "method refuses the network": ({"variants": {"unet-x": {**UNET_BASELINE, "concat_origin": True}}},
                                   r"^variants\.unet-x: .*concat_origin"),
    "unknown data kind": ({"variants": {"unet-x": {**UNET_BASELINE, "data": "raw2raw"}}},
                          r"^variants\.unet-x\.data: unknown training data 'raw2raw'; known: pg, eld, paired, pmn$"),
    "unknown row data kind": (row("table4", 0, data="raw2raw"),
                              r"^tables\.table4\.rows\[0\]\.data: unknown training data 'raw2raw'"),
    "table dataset": ({"tables": {"table4": {"dataset": "nowhere"}}},
                      r"^tables\.table4\.dataset: 'nowhere' is not in evaluation\.datasets$"),
    "table ratios": ({"tables": {"table4": {"ratios": [100, 200]}}},
                     r"^tables\.table4\.ratios: \[100, 200\] are not all in evaluation\.datasets\.sid\.ratios"),
    "table steps": ({"tables": {"table4": {"steps": 7}}}, r"^tables\.table4\.steps: 7 is not in evaluation\.steps$"),
    "row variant": (row("table4", 0, ours="unet-pg-nope"),
                    r"^tables\.table4\.rows\[0\]\.ours: unknown variant 'unet-pg-nope' \(not in variants\)$"),
    "row method": (row("table4", 0, baseline="unet-pg-ours"),
                   r"^tables\.table4\.rows\[0\]\.baseline: variant 'unet-pg-ours' has method 'ours'"),
    "row data": (row("table4", 0, data="eld"),
                 r"^tables\.table4\.rows\[0\]\.baseline: variant 'unet-pg-base' has data 'pg', the row needs 'eld'$"),
    "variant table name": ({"variant_tables": {"table4": VARIANT_TABLE}},
                           r"^variant_tables\.table4: the name is already a table$"),
    "variant table dataset": ({"variant_tables": {"eld": {"dataset": "nowhere"}}},
                              r"^variant_tables\.eld\.dataset: 'nowhere' is not in evaluation\.datasets$"),
    "variant table ratios": ({"variant_tables": {"eld": {"ratios": [100, 300]}}},
                             r"^variant_tables\.eld\.ratios: not all in evaluation\.datasets\.eld\.ratios$"),
    "variant table steps": ({"variant_tables": {"eld": {"steps": 7}}},
                            r"^variant_tables\.eld\.steps: 7 is not run by the ours variants"),
    "released checkpoint": ({"released_checkpoints": {"files": {"unet-nope": "x.pt"}}},
                            r"^released_checkpoints\.files\.unet-nope: unknown variant \(not in variants\)$"),
    "step plot variant": ({"step_plot": {"variant": "unet-nope"}},
                          r"^step_plot\.variant: unknown variant 'unet-nope' \(not in variants\)$"),
    "step plot method": ({"step_plot": {"baseline": "unet-pg-ours"}},
                         r"^step_plot\.baseline: variant 'unet-pg-ours' is not baseline$"),
    "step plot dataset": ({"step_plot": {"dataset": "nowhere"}},
                          r"^step_plot\.dataset: 'nowhere' is not in evaluation\.datasets$"),
    "step plot ratio": ({"step_plot": {"ratio": 200}}, r"^step_plot\.ratio: 200 is not in evaluation\.datasets\.sid\.ratios$"),
    "step plot steps": ({"step_plot": {"steps": [1, 9]}}, r"^step_plot\.steps: \[1, 9\] are not all in evaluation\.steps$"),
    "camera params": ({"cameras": {"SonyA7S2": {"params": "NoSuchCamera"}}},
                      r"^cameras\.SonyA7S2\.params: 'NoSuchCamera' is neither a bundled camera"),
    "camera": ({"camera": "NoSuchCamera"}, r"^camera: 'NoSuchCamera' is not an entry of cameras"),
    "dataset camera": ({"evaluation": {"datasets": {"eld": {"camera": "NoSuchCamera"}}}},
                       r"^evaluation\.datasets\.eld\.camera: 'NoSuchCamera' is not an entry of cameras"),
    "camera without source": ({"cameras": {"MyCam": CAMERA_ENTRY}},
                              r"^cameras\.MyCam: give frames \(dark/ and flat/ raw frames to calibrate from\) or params"),
    "eld camera unknown": ({"eld_cameras": {"enabled": True, "cameras": ["NikonD850", "NoSuchCamera"]}},
                           r"^eld_cameras\.cameras\[1\]: 'NoSuchCamera' is not an entry of cameras$"),
    "eld camera without pairs": ({"eld_cameras": {"enabled": True}, "cameras": {"NikonD850": {"test_pairs": None}}},
                                 r"^eld_cameras\.cameras\[0\]: cameras\.NikonD850\.test_pairs is null"),
    "eld camera variant": ({"eld_cameras": {"enabled": True, "variants": ["unet-nope"]}},
                           r"^eld_cameras\.variants\[0\]: unknown variant 'unet-nope' \(not in variants\)$"),
    "camera model variant": ({"camera_model": {"variants": ["unet-pg-base", "unet-nope"]}},
                             r"^camera_model\.variants\[1\]: unknown variant 'unet-nope' \(not in variants\)$"),
    "camera model real pairs": ({"camera_model": {"variants": ["unet-paired-base"]}},
                                r"^camera_model\.variants\[0\]: 'unet-paired-base' trains on real pairs"),
    "protocol": ({"evaluation": {"protocols": ["oracle", "ideal"]}},
                 r"^evaluation\.protocols: unknown protocol 'ideal'; known: oracle, gt-free$"),
    "eld ratio": ({"evaluation": {"eld_ratio": "floor"}},
                  r"^evaluation\.eld_ratio: unknown mode 'floor'; choose one of original, rounded$"),
    "run variant": ({"run_variants": ["unet-pg-base", "unet-pg-nope"]},
                    r"^run_variants: unknown variant 'unet-pg-nope' \(not in variants\)$"),
    "step plot not run": ({"run_variants": ["unet-pg-base", "unet-pg-ours"]},
                          r"^step_plot\.ddim: variant 'unet-pg-ddim' is not in run_variants"),
    "mini summary not run": ({"run_variants": ["unet-pg-base", "unet-pg-ours", "unet-pg-ddim"],
                              "mini_summary": {"enabled": True, "baseline": "unet-eld-base"}},
                             r"^mini_summary\.baseline: 'unet-eld-base' is not a variant this run trains"),
    "mini summary method": ({"mini_summary": {"enabled": True, "ours": "unet-pg-base"}},
                            r"^mini_summary\.ours: variant 'unet-pg-base' is not ours$"),
    "mini summary dataset": ({"mini_summary": {"enabled": True, "dataset": "nope"}},
                             r"^mini_summary\.dataset: 'nope' is not in evaluation\.datasets$"),
    "mini summary steps": ({"mini_summary": {"enabled": True, "steps": 7}},
                           r"^mini_summary\.steps: 7 is not in evaluation\.steps$"),
    "patch size": ({"patches": {"size": 48}},
                   r"^patches\.size: 48 does not divide patches\.crop \[1024, 2048\]"),
    "checkpoint epochs": ({"recipes": {"eld": {"epochs": 20, "checkpoint_epochs": [10, 20, 30, 40]}}},
                          r"^recipes\.eld\.checkpoint_epochs: \[30, 40\] beyond recipes\.eld\.epochs 20"),
    "unknown recipe": ({"variants": {"unet-pg-base": {"recipe": "elx"}}},
                       r"^variants\.unet-pg-base\.recipe: unknown recipe 'elx'; config recipes: exposurediffusion, eld"),
    "warm-up cosine misfit": ({"recipes": {"pmn": {"epochs": 18}}},
                              r"^recipes\.pmn\.lr_schedule\.warmup_cosine: warmup_epochs 10 must be between 0 and "
                              r"the period of 6 epochs"),
    "recipe loss_on": ({"recipes": {"eld": {"loss_on": "sigmoid"}}},
                       r"^recipes\.eld\.loss_on: 'sigmoid' is not one of clipped, raw$"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD)
def test_each_message_is_given_by_a_bad_overlay(case):
    content, message = BAD[case]
    errors = config_errors(paper_with(content))
    assert any(re.search(message, e) for e in errors), errors


def message_lines() -> dict[int, str]:
    """The lines of expodiff.config where config_errors (and the *_errors helpers it calls)
    make a message: every ``errors.append(...)`` and every f-string a helper's returned
    comprehension yields, {line: source}."""
    source = inspect.getsource(expodiff.config)
    lines = source.splitlines()
    found = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.FunctionDef) and node.name.endswith("_errors")):
            continue
        for sub in ast.walk(node):
            if (isinstance(sub, ast.Expr) and isinstance(sub.value, ast.Call)
                    and isinstance(sub.value.func, ast.Attribute) and sub.value.func.attr == "append"):
                found[sub.lineno] = lines[sub.lineno - 1].strip()
            elif isinstance(sub, ast.Return) and isinstance(sub.value, (ast.ListComp, ast.GeneratorExp)):
                found[sub.value.elt.lineno] = lines[sub.value.elt.lineno - 1].strip()
    return found


def test_every_message_of_config_errors_has_a_case():
    """Runs every case of BAD under a line tracer: each message line of config_errors must run
    for at least one of them (a new message needs a new case)."""
    wanted = message_lines()
    assert len(wanted) >= 10, wanted  # the parse found the messages (some cases share a line)
    path = inspect.getsourcefile(expodiff.config)
    ran: set[int] = set()

    def tracer(frame, event, arg):
        if frame.f_code.co_filename != path:
            return None
        if event == "line":
            ran.add(frame.f_lineno)
        return tracer

    configs = [paper_with(content) for content, _ in BAD.values()]
    sys.settrace(tracer)
    try:
        for config in configs:
            config_errors(config)
    finally:
        sys.settrace(None)
    missing = {line: text for line, text in wanted.items() if line not in ran}
    assert not missing, f"messages of expodiff.config no case of BAD triggers (add one): {missing}"


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
    """A variant with a data kind the table of data kinds lacks, a table row naming an unknown
    variant, a patch size that does not divide the crop and a checkpoint epoch beyond the last."""
    rows = yaml.safe_load(PAPER.read_text())["tables"]["table4"]["rows"]
    rows[0]["ours"] = "unet-pg-nope"
    return overlay(tmp_path, "bad", {"variants": {"unet-x": {**UNET_BASELINE, "data": "raw2raw"}},
                                     "tables": {"table4": {"rows": rows}}, "patches": {"size": 48},
                                     "recipes": {"exposurediffusion": {"checkpoint_epochs": [100, 400]}}})  # fmt: skip


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
    bad = overlay(tmp_path, "bad", {"recipes": {"eld": {"epochs": 20, "checkpoint_epochs": [10, 20, 30, 40]}}})
    with pytest.raises(ConfigError, match=r"recipes\.eld\.checkpoint_epochs: \[30, 40\] beyond recipes\.eld\.epochs 20"):
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


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "expodiff.cli", *args], capture_output=True, text=True, timeout=300)


@needs_snakemake
def test_snakemake_and_the_cli_give_the_same_messages(tmp_path):
    """snakemake -n, `expodiff plan`, `expodiff train` and `expodiff evaluate` (every command
    taking a config) refuse the same config with the same messages."""
    work = copy_workflow(tmp_path / "wf")
    bad = bad_overlay(tmp_path)
    dry = snakemake("-n", "--configfile", bad, cwd=work, check=False)
    assert "WorkflowError" in dry.out
    expected = messages(dry.out)
    assert [m.split(":")[0] for m in expected] == ["variants.unet-x.data", "tables.table4.rows[0].ours",
                                                   "patches.size", "recipes.exposurediffusion.checkpoint_epochs"], dry.out  # fmt: skip
    assert "'raw2raw'" in expected[0] and "unet-pg-nope" in expected[1]
    configs = [str(work / "config.yaml"), str(bad)]
    runs = {
        "plan": cli("plan", *configs),
        "train": cli("train", "--config", *configs, "--variant", "unet-pg-base", "--out", str(tmp_path / "t")),
        "evaluate": cli("evaluate", "--config", *configs, "--variant", "unet-pg-base", "--checkpoint", "x.pt",
                        "--eval-set", str(tmp_path), "--out", str(tmp_path / "e")),
    }  # fmt: skip
    for command, proc in runs.items():
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr and proc.stderr.startswith(f"expodiff {command}: error: Invalid config:")
        assert messages(proc.stderr) == expected, (command, proc.stderr)
    assert not (tmp_path / "t").exists() and not (tmp_path / "e").exists()


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
