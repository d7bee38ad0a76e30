"""A new backbone is one module that registers itself (``expodiff.nets.register_backbone``) plus
its name in the config: a toy conv net, registered only here, builds, trains and evaluates."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest
import torch
from torch import nn

from expodiff import nets
from expodiff.config import config_errors, load_config
from expodiff.data.eval_sets import pack_eval_set
from expodiff.data.patches import build_patch_store
from expodiff.data.sid import sid_eval_pairs, sid_train_gt_files
from expodiff.errors import ConfigError
from expodiff.evaluate import evaluate_variant
from expodiff.methods import MethodSpec
from expodiff.nets import backbone_module, baseline_adds_input, build_net, register_backbone
from expodiff.train import train_variant

CAMERA = files("expodiff") / "resources" / "camera_params" / "SonyA7S2.json"
TRAINING = {
    "seed": 2018, "epochs": 1, "lr": 1.0e-3, "lr_schedule": [], "batch_size": 1, "checkpoint_epochs": [1],
    "diffusion_steps": 2, "ratio_range": [20, 300], "K_range": [0.1, 30], "oracle_correction": True,
}  # fmt: skip


class ToyNet(nn.Module):
    """Two 3×3 convolutions: the smallest image-to-image map a method can wrap."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 8):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(width, out_channels, 3, padding=1))  # fmt: skip

    def forward(self, x):
        return self.body(x)


@pytest.fixture
def toy():
    """Register backbone "toy" for one test, as a backbone module would at import."""
    register_backbone("toy")(ToyNet)
    yield "toy"
    nets.BACKBONES.pop("toy")


def test_builtin_backbones_are_registered_by_their_modules():
    assert {"unet", "naf1", "naf2"} <= set(nets.BACKBONES)
    assert backbone_module("unet") == "nets.unet"
    assert backbone_module("naf1") == backbone_module("naf2") == "nets.nafnet"
    assert baseline_adds_input("naf1") and baseline_adds_input("naf2") and not baseline_adds_input("unet")


def test_unknown_and_duplicate_names_are_errors(toy):
    with pytest.raises(ConfigError, match="unknown backbone 'resnet'.*toy"):
        backbone_module("resnet")
    with pytest.raises(ConfigError, match="already registered"):
        register_backbone("toy")(lambda i, o: ToyNet(i, o, width=4))


def test_toy_backbone_builds_through_build_net_and_methods(toy):
    net = build_net(toy, 4, 4)
    assert isinstance(net, ToyNet) and net(torch.zeros(1, 4, 8, 8)).shape == (1, 4, 8, 8)
    assert backbone_module(toy) == __name__
    assert not baseline_adds_input(toy)
    spec = MethodSpec(toy, "ours")
    ours = spec.build()
    assert isinstance(ours, ToyNet) and ours.body[0].in_channels == spec.in_channels
    assert spec.network_module() == __name__


def test_config_accepts_registered_backbones_only(toy):
    config = load_config(["config.yaml"])
    variants = config["variants"]
    variants["toy-pg-ours"] = dict(variants["unet-pg-ours"], backbone=toy)
    variants["resnet-pg-ours"] = dict(variants["unet-pg-ours"], backbone="resnet")
    errors = [e for e in config_errors(config) if "backbone" in e]
    assert len(errors) == 1 and errors[0].startswith("variants.resnet-pg-ours.backbone: unknown backbone 'resnet'")


@pytest.mark.parametrize("method", ["baseline", "ours"])
def test_toy_backbone_trains_and_evaluates(toy, tiny_data, tmp_path, method):
    patches = build_patch_store(sid_train_gt_files(tiny_data / "SID"), tmp_path / "patches", patch_size=16,
                                crop_hw=(32, 32))
    variant = {"name": f"toy-pg-{method}", "backbone": toy, "data": "pg", "method": method, "concat_origin": False}
    final = train_variant(variant, TRAINING, patches, CAMERA, tmp_path / "train")
    state = torch.load(final, weights_only=True)
    assert state["epoch"] == 1 and state["iterations"] > 0
    assert state["netG"]["body.0.weight"].shape[1] == MethodSpec(toy, method).in_channels

    eval_set = pack_eval_set(sid_eval_pairs(tiny_data / "SID", ["10185"], [100]), tmp_path / "sid", crop=16)
    summary = evaluate_variant(final, eval_set, variant, [1, 2], ["oracle"], 2018, CAMERA, tmp_path / "per_image.csv",
                               tmp_path / "summary.csv")
    assert len(summary) > 0 and np.isfinite(summary["psnr"]).all()
