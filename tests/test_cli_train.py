"""`expodiff train` runs every training the workflow runs, with the same inputs: a tiny paired
and a tiny PMN variant trained by hand through the CLI give the byte-identical model_final.pt
of `train_variant` called as rule train calls it. The table of data kinds behind both
(expodiff.data.sources.DATA_KINDS) and the CLI's errors for inputs that do not fit the variant.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from expodiff.cli import main
from expodiff.config import get_variant, load_config
from expodiff.data.pairs import build_pair_store
from expodiff.data.pmn import fit_dark_shading
from expodiff.data.sid import sid_train_pairs
from expodiff.data.sources import DARK_SHADING, DATA_KINDS, STORES, data_kind
from expodiff.physics.camera import export_camera_params
from expodiff.physics.noise import NOISE_MODELS
from expodiff.recipes import training_settings
from expodiff.train import train_variant

REPO = Path(__file__).resolve().parents[1]
PAIR_DIR = STORES["pairs"].path
ONE_EPOCH = {"epochs": 1, "lr_schedule": [[1, 5.0e-5]], "checkpoint_epochs": [1]}
TINY = {  # one epoch of the tiny data's pairs, 16 × 16 crops (patches.size must divide the crop)
    "patches": {"size": 16, "crop": [32, 32]},
    "training": {"save_every": 2},
    "recipes": {"exposurediffusion": ONE_EPOCH, "eld": ONE_EPOCH},  # the recipes of the variants trained here
    "compute": {"device": "cpu"},  # byte-identical to the in-process run on any machine
}


@pytest.fixture(scope="module")
def run(tiny_data, tmp_path_factory) -> Path:
    """A run folder as the workflow leaves it before training: the pair store where rule
    pair_store builds it, the dark-shading maps of rule dark_shading, the release parameters of
    rule camera_params, and a config overlay whose pmn.dark_frames names the dark frames."""
    root = tmp_path_factory.mktemp("cli_train")
    build_pair_store(sid_train_pairs(tiny_data / "SID"), root / STORES["pairs"].path)
    dark = tiny_data / "calibration" / "SonyA7S2" / "dark"
    fit_dark_shading(dark, root / DARK_SHADING.path)
    export_camera_params("SonyA7S2", root / "results/cameras/SonyA7S2.json")
    (root / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "pmn": {"dark_frames": str(dark)}}))
    return root


def configs(run: Path) -> list[str]:
    return [str(REPO / "config.yaml"), str(run / "tiny.yaml")]


def train_as_the_rule(run: Path, name: str, out: Path) -> Path:
    """rules/train.smk + workflow/scripts/train.py: the inputs get_train_inputs gives, the params."""
    config = load_config(configs(run))
    kind = data_kind(config["variants"][name]["data"])
    return train_variant(
        variant=get_variant(config, name),
        training=training_settings(config, name),
        patches_dir=run / kind.store.path,
        camera_json=run / "results/cameras" / f"{config['camera']}.json",
        out_dir=out,
        log_csv=out / "train_log.csv",
        save_every=config["training"]["save_every"],
        patch_size=config["patches"]["size"],
        dark_shading=run / DARK_SHADING.path if kind.uses_dark_shading(config) else None,
        compute=config["compute"],
    )


def train_by_hand(run: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m expodiff.cli train --config config.yaml tiny.yaml ...` in the run folder, on one
    thread (as the in-process run: multi-threaded sums may differ in the last bit)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "expodiff.cli", "train", "--config", *configs(run), *args],
                          cwd=run, env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_paired_by_hand_equals_the_rule(run, tmp_path, one_thread):
    """--data defaults to where the workflow builds the variant's store (the pair store), K
    from the release parameters of the config's camera."""
    by_hand = tmp_path / "cli"
    proc = train_by_hand(run, "--variant", "unet-paired-base", "--out", str(by_hand))
    assert f"checkpoint: {by_hand / 'model_final.pt'}" in proc.stdout
    rule = train_as_the_rule(run, "unet-paired-base", tmp_path / "rule")
    assert (by_hand / "model_final.pt").read_bytes() == rule.read_bytes()


def test_pmn_by_hand_equals_the_rule(run, tmp_path, one_thread):
    """PMN with pmn.dark_frames set: --dark-shading (the maps of rule dark_shading)."""
    by_hand = tmp_path / "cli"
    train_by_hand(run, "--variant", "unet-pmn-ours", "--data", str(run / PAIR_DIR), "--dark-shading",
                  str(run / DARK_SHADING.path), "--out", str(by_hand))  # fmt: skip
    rule = train_as_the_rule(run, "unet-pmn-ours", tmp_path / "rule")
    assert (by_hand / "model_final.pt").read_bytes() == rule.read_bytes()


@pytest.mark.parametrize("args, message", [
    (["--variant", "unet-pmn-base"],
     r"--dark-shading NPZ is required for variant 'unet-pmn-base' \(data: pmn\) with pmn\.dark_frames set"),
    (["--variant", "unet-paired-base", "--dark-shading", DARK_SHADING.path],
     r"--dark-shading: variant 'unet-paired-base' \(data: paired\) uses no dark-shading maps"),
    (["--variant", "unet-paired-base", "--noise-params", "results/cameras/SonyA7S2.json"],
     r"--noise-params: variant 'unet-paired-base' \(data: paired\) trains on real pairs"),
    (["--variant", "unet-pg-base"],
     r"--data results/patches/sid_train: not a folder; variant 'unet-pg-base' \(data: pg\) trains on the patches "
     r"store \(the workflow builds results/patches/sid_train: snakemake results/patches/sid_train/meta\.json\)"),
    (["--variant", "unet-pg-base", "--data", PAIR_DIR, "--noise-params", "nowhere.json"],
     r"--noise-params: nowhere\.json: camera parameter file not found"),
])  # fmt: skip
def test_inputs_that_do_not_fit_the_variant_are_named(run, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(run)
    assert main(["train", "--config", *configs(run), *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_pmn_without_dark_frames_needs_no_maps(run, tmp_path, monkeypatch):
    """pmn.dark_frames null (the paper config): the workflow trains PMN without the dark-shading
    correction, and so does the CLI, without --dark-shading."""
    (tmp_path / "no_dark.yaml").write_text(yaml.safe_dump(TINY))
    monkeypatch.chdir(run)
    out = tmp_path / "out"
    assert main(["train", "--config", str(REPO / "config.yaml"), str(tmp_path / "no_dark.yaml"), "--variant",
                 "unet-pmn-base", "--out", str(out), "--max-iterations", "1"]) == 0  # fmt: skip
    assert (out / "model_latest.pt").is_file()


def test_the_data_kinds_table():
    """The noise-model kinds are physics.noise's models; each kind's store is a data store, and
    the rules the table names build what it says (rules/data.smk)."""
    assert {k.name for k in DATA_KINDS.values() if k.noise_model} == set(NOISE_MODELS)
    assert all(k.noise_model in (None, k.name) for k in DATA_KINDS.values())
    assert {k.store for k in DATA_KINDS.values()} == set(STORES.values())
    assert all(k.patch_size for k in DATA_KINDS.values() if k.store is STORES["pairs"])  # pairs are cropped
    rules = (REPO / "rules" / "data.smk").read_text()
    for store in (*STORES.values(), DARK_SHADING):
        assert re.search(rf"^\s*rule {store.rule}:", rules, re.M), store.rule
    with pytest.raises(Exception, match=r"unknown training data 'raw2raw'; known: pg, eld, paired, pmn"):
        data_kind("raw2raw")


def test_the_table_imports_neither_numpy_nor_torch():
    """Snakemake reads the table while it parses the rules, where neither need be installed."""
    code = "import sys, expodiff.data.sources; print(sorted({'numpy', 'torch'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("command", ["train", "plan", "make-demo-data", "pack", "noise", "calibrate", "download",
                                     "unpack"])  # fmt: skip
def test_every_flag_has_a_help_text(command):
    import argparse

    from expodiff.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [a.dest for a in sub.choices[command]._actions if not a.help and not isinstance(a, argparse._HelpAction)]
    assert not missing, f"expodiff {command}: no help for {missing}"
