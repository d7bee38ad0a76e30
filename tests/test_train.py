"""Real training steps on tiny patches: both methods learn, checkpoints are in the released
format, and a run stopped mid-way resumes to the same result as an uninterrupted one."""

import csv
from importlib.resources import files

import pytest
import torch

from expodiff.checkpoint import load_checkpoint
from expodiff.data.patches import build_patch_store
from expodiff.data.sid import sid_train_gt_files
from expodiff.data.synthetic import make_demo_data
from expodiff.errors import ConfigError
from expodiff.train import lr_at, train_variant

CAMERA = files("expodiff") / "resources" / "camera_params" / "SonyA7S2.json"
TRAINING = {
    "seed": 2018, "epochs": 2, "lr": 1.0e-4, "lr_schedule": [[1, 5.0e-5]], "batch_size": 1,
    "checkpoint_epochs": [1, 2], "diffusion_steps": 3, "ratio_range": [20, 300], "K_range": [0.1, 30],
    "oracle_correction": True,
}


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    data = make_demo_data(root / "synthetic", seed=0, preset="tiny")
    out = root / "patches"
    build_patch_store(sid_train_gt_files(data / "SID"), out, patch_size=16, crop_hw=(32, 32))
    return out


def test_lr_schedule_like_paper():
    schedule = [[150, 5e-5], [270, 1e-5]]
    assert [lr_at(e, 1e-4, schedule) for e in (0, 149, 150, 269, 270, 299)] == [1e-4, 1e-4, 5e-5, 5e-5, 1e-5, 1e-5]


@pytest.mark.parametrize("method", ["baseline", "ours"])
def test_training_writes_released_format_and_log(patches, tmp_path, method):
    variant = {"name": f"unet-pg-{method}", "backbone": "unet", "data": "pg", "method": method, "concat_origin": False}
    final = train_variant(variant, TRAINING, patches, CAMERA, tmp_path)
    state = torch.load(final, weights_only=True)
    assert {"netG", "opt_g", "epoch", "iterations"} <= set(state)
    assert state["epoch"] == 2
    rows = list(csv.DictReader(open(tmp_path / "train_log.csv")))
    assert len(rows) == state["iterations"] > 0
    assert all(float(r["loss"]) > 0 for r in rows)
    assert float(rows[-1]["lr"]) == 5e-5 and float(rows[0]["lr"]) == 1e-4
    assert (tmp_path / "model_001.pt").exists() and (tmp_path / "model_002.pt").exists()
    in_channels = state["netG"]["conv1_1.weight"].shape[1]
    assert in_channels == (4 if method == "baseline" else 8)


def test_resume_equals_uninterrupted(patches, tmp_path, one_thread):
    variant = {"name": "unet-pg-ours", "backbone": "unet", "data": "pg", "method": "ours", "concat_origin": False}
    full = train_variant(variant, TRAINING, patches, CAMERA, tmp_path / "full")
    partial_dir = tmp_path / "partial"
    latest = train_variant(variant, TRAINING, patches, CAMERA, partial_dir, save_every=3, max_iterations=5)
    assert latest.name == "model_latest.pt" and not (partial_dir / "model_final.pt").exists()
    assert load_checkpoint(latest)["iterations"] == 5
    resumed = train_variant(variant, TRAINING, patches, CAMERA, partial_dir)
    a, b = torch.load(full, weights_only=True), torch.load(resumed, weights_only=True)
    assert a["iterations"] == b["iterations"]
    for key in a["netG"]:
        torch.testing.assert_close(a["netG"][key], b["netG"][key], rtol=0, atol=0)
    log = list(csv.DictReader(open(partial_dir / "train_log.csv")))
    assert [int(r["iteration"]) for r in log] == list(range(1, a["iterations"] + 1))


def test_unknown_training_data_is_named(patches, tmp_path):
    variant = {"name": "unet-xx-ours", "backbone": "unet", "data": "xx", "method": "ours"}
    with pytest.raises(ConfigError, match="unet-xx-ours"):
        train_variant(variant, TRAINING, patches, CAMERA, tmp_path)


def test_paired_real_training(tiny_data, tmp_path):
    from expodiff.data.pairs import PairStore, build_pair_store
    from expodiff.data.sid import sid_train_pairs

    pairs = sid_train_pairs(tiny_data / "SID")
    store_dir = build_pair_store(pairs, tmp_path / "pairs")
    store = PairStore(store_dir)
    assert len(store) == len(pairs)
    short, long = store.crop(0, 16, __import__("numpy").random.default_rng(0))
    assert short.shape == long.shape == (4, 16, 16) and 0 <= short.max() <= 1
    assert short.mean() < long.mean()  # the short exposure is darker before amplification
    variant = {"name": "unet-paired-ours", "backbone": "unet", "data": "paired", "method": "ours", "concat_origin": True}
    final = train_variant(variant, {**TRAINING, "epochs": 1}, store_dir, CAMERA, tmp_path / "run", patch_size=16)
    state = torch.load(final, weights_only=True)
    assert state["netG"]["conv1_1.weight"].shape[1] == 12
    with pytest.raises(ConfigError, match="patch_size"):
        train_variant(variant, TRAINING, store_dir, CAMERA, tmp_path / "run2")
