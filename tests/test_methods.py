"""Methods behind one interface (expodiff.methods): unit tests with dummy networks (the
schedulers and methods never need a trained one), checkpoints that describe themselves, and
a fourth method added by one class, trained and evaluated end to end."""

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from expodiff.checkpoint import load_checkpoint, load_model, save_checkpoint
from expodiff.data.eval_sets import pack_eval_set
from expodiff.data.patches import build_patch_store
from expodiff.data.sid import sid_eval_pairs, sid_train_gt_files
from expodiff.data.sources import TrainBatch
from expodiff.errors import ConfigError
from expodiff.evaluate import evaluate_variant
from expodiff.methods import METHODS, Method, MethodSpec, Style, get_method, register_method, unregister_method
from expodiff.train import train_variant
from test_train import CAMERA, TRAINING

EVALUATION = {"steps": [1, 2, 3], "ddim_steps": [1, 5, 10]}


# --- the registry --------------------------------------------------------------------------


def test_registry_names_every_method_once():
    assert list(METHODS) == ["baseline", "ours", "ddim"]
    assert all(get_method(name).name == name for name in METHODS)
    with pytest.raises(ConfigError, match="known methods: baseline, ours, ddim"):
        get_method("nope")
    with pytest.raises(ConfigError, match="already registered"):
        register_method(get_method("ours"))


def test_eval_steps_come_from_the_method():
    assert get_method("baseline").eval_steps(EVALUATION) == [1]
    assert get_method("ours").eval_steps(EVALUATION) == [1, 2, 3]
    assert get_method("ddim").eval_steps(EVALUATION) == [1, 5, 10]
    assert get_method("baseline").run_steps([2, 3]) == [1]  # a one-step method runs once


@pytest.mark.parametrize("backbone,method,concat,channels,module", [
    ("unet", "baseline", False, (4, 4), "nets.unet"),
    ("unet", "ours", False, (8, 9), "nets.unet"),
    ("naf2", "ours", True, (12, 9), "nets.nafnet"),
    ("unet", "ddim", False, (8, 4), "nets.cond_unet"),
])  # fmt: skip
def test_spec_channels_and_network_module(backbone, method, concat, channels, module):
    spec = MethodSpec(backbone, method, concat)
    assert (spec.in_channels, spec.out_channels) == channels
    assert spec.network_module() == module
    assert spec.describe() == f"backbone={backbone} method={method} concat_origin={concat}"


def test_spec_checks_are_the_methods():
    with pytest.raises(ConfigError, match="concat_origin"):
        MethodSpec("unet", "baseline", True)
    with pytest.raises(ConfigError, match="UNet family"):
        MethodSpec("naf2", "ddim")
    with pytest.raises(ConfigError, match="unknown method"):
        MethodSpec("unet", "nope")


# --- each method with a dummy network ------------------------------------------------------


class Constant(nn.Module):
    """Returns fixed channel values, whatever the input (plus 0·input, to keep the graph)."""

    def __init__(self, values):
        super().__init__()
        self.values = torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)

    def forward(self, x, t=None):
        b, _, h, w = x.shape
        return self.values.expand(b, -1, h, w) + 0 * x[:, :1]


def x_t_batch(seed=0, shape=(1, 4, 8, 8)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 0.5


def test_baseline_predicts_once_clipped():
    net = Constant([0.25, 1.5, -1.0, 0.5])
    x_t = x_t_batch()
    preds = get_method("baseline").predict(net, MethodSpec("unet", "baseline"), x_t, 3, K=1.0, ratio=100)
    assert len(preds) == 1
    assert preds[0][0, :, 0, 0].tolist() == [0.25, 1.0, 0.0, 0.5]
    assert get_method("baseline").step_labels(3, preds) == [3]
    # NAFNet's baseline adds X_T back before clipping
    naf = get_method("baseline").predict(net, MethodSpec("naf2", "baseline"), x_t, 1, K=1.0, ratio=100)[0]
    assert torch.equal(naf, (net(x_t) + x_t).clamp(0, 1))


def test_ours_adaptive_residual_on_a_dummy_network():
    """Mask logit 0 (M = ½), X̂ = 0.25, R = 0: every step predicts ½·0.25 + ½·X_l; the first
    sees X_l = X_T. Three steps give three predictions, labelled 1..3."""
    net = Constant([0.0] + [0.25] * 4 + [0.0] * 4)
    x_t = x_t_batch()
    spec = MethodSpec("unet", "ours")
    preds = get_method("ours").predict(net, spec, x_t, 3, K=2.0, ratio=100, generator=torch.Generator().manual_seed(1))
    assert len(preds) == 3 and get_method("ours").step_labels(3, preds) == [1, 2, 3]
    torch.testing.assert_close(preds[0], 0.125 + 0.5 * x_t, rtol=0, atol=1e-7)
    again = get_method("ours").predict(net, spec, x_t, 3, K=2.0, ratio=100, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(preds, again))  # randomness only from the generator


def test_ddim_predicts_once_after_n_sampler_steps():
    net = Constant([0.0] * 4)  # ε̂ = 0: the sample is rescaled towards x̂0 each step
    x_t = x_t_batch()
    method = get_method("ddim")
    preds = method.predict(net, MethodSpec("unet", "ddim"), x_t, 5, K=1.0, ratio=100,
                           generator=torch.Generator().manual_seed(3))  # fmt: skip
    assert len(preds) == 1 and preds[0].shape == x_t.shape and 0 <= preds[0].min() <= preds[0].max() <= 1
    assert method.step_labels(5, preds) == [5]


def test_losses_on_a_dummy_batch():
    clean = x_t_batch(1)
    batch = TrainBatch(clean=clean, x_t=x_t_batch(2), ratio=torch.tensor([100.0]), K=torch.tensor([2.0]))
    base = Constant([0.25] * 4)
    loss = get_method("baseline").loss(base, MethodSpec("unet", "baseline"), batch, extra={}, training=TRAINING,
                                       generator=torch.Generator().manual_seed(0), rng=None)  # fmt: skip
    assert torch.equal(loss, F.l1_loss(torch.full_like(clean, 0.25), clean))
    # ours: the learnable step weights get gradients through the same loss
    ours, spec = get_method("ours"), MethodSpec("unet", "ours")
    extra = ours.extra_parameters(spec, TRAINING)
    assert list(extra) == ["step_weights"] and extra["step_weights"].shape == (TRAINING["diffusion_steps"] - 1,)
    import random

    loss = ours.loss(Constant([0.0] + [0.25] * 4 + [0.0] * 4), spec, batch, extra=extra, training=TRAINING,
                     generator=torch.Generator().manual_seed(0), rng=random.Random("0-0"))  # fmt: skip
    loss.backward()
    assert extra["step_weights"].grad is not None and loss.item() > 0


# --- a fourth method: one class plus config --------------------------------------------------


class Refine(Method):
    """A toy method: the backbone predicts a correction, applied n times; a prediction per step."""

    name = "refine"
    style = Style(label="refine", linestyle="-.")
    steps_key = "steps"

    def in_channels(self, spec):
        return 4

    def out_channels(self, spec):
        return 4

    def loss(self, net, spec, batch, *, extra, training, generator, rng):
        return F.l1_loss((batch.x_t + net(batch.x_t)).clamp(0, 1), batch.clean)

    def predict(self, net, spec, x_t, n_steps, K, ratio, gt=None, generator=None, *, dn_scale=None):
        preds, x = [], x_t
        for _ in range(n_steps):
            x = (x + net(x)).clamp(0, 1)
            preds.append(x)
        return preds

    def step_labels(self, n_steps, preds):
        return list(range(1, len(preds) + 1))


@pytest.fixture
def refine():
    method = register_method(Refine())
    yield method
    unregister_method("refine")


@pytest.fixture(scope="module")
def patches(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("methods") / "patches"
    return build_patch_store(sid_train_gt_files(tiny_data / "SID"), out, patch_size=16, crop_hw=(32, 32))


@pytest.fixture(scope="module")
def eval_set(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("methods_eval")
    return pack_eval_set(sid_eval_pairs(tiny_data / "SID", ["10185"], [100, 300]), root / "sid", crop=16)


def test_a_fourth_method_trains_and_evaluates(refine, patches, eval_set, tmp_path, one_thread):
    variant = {"name": "unet-pg-refine", "backbone": "unet", "data": "pg", "method": "refine", "concat_origin": False}
    final = train_variant(variant, {**TRAINING, "epochs": 1}, patches, CAMERA, tmp_path / "train")
    state = load_checkpoint(final)
    assert state["spec"] == {"backbone": "unet", "method": "refine", "concat_origin": False}
    assert state["training"]["seed"] == TRAINING["seed"] and "step_weights" not in state
    steps = refine.eval_steps({"steps": [1, 2], "ddim_steps": [5]})
    summary = evaluate_variant(final, eval_set, variant, steps, ["oracle"], 2018, CAMERA, tmp_path / "per_image.csv",
                               tmp_path / "summary.csv")  # fmt: skip
    rows = pd.read_csv(tmp_path / "per_image.csv", dtype={"scene": str})
    assert set(zip(rows.n_steps, rows.step)) == {(1, 1), (2, 1), (2, 2)}
    assert len(rows) == 2 * 3 and rows.psnr.notna().all()  # 2 images × (1 + 2) predictions
    assert set(summary.n_steps) == {1, 2}
    # and the workflow's step counts for it are the method's
    assert get_method("refine").eval_steps({"steps": [1, 3], "ddim_steps": [5]}) == [1, 3]


# --- checkpoints describe themselves ---------------------------------------------------------


def test_checkpoint_records_spec_and_training_and_refuses_a_mismatch(patches, eval_set, tmp_path, one_thread):
    variant = {"name": "unet-pg-ours", "backbone": "unet", "data": "pg", "method": "ours", "concat_origin": False}
    training = {**TRAINING, "epochs": 1}
    final = train_variant(variant, {**training, "save_every": 7}, patches, CAMERA, tmp_path / "t")
    state = load_checkpoint(final)
    assert state["spec"] == {"backbone": "unet", "method": "ours", "concat_origin": False}
    assert state["variant"] == variant and "save_every" not in state["training"]  # it does not change what is learnt
    assert state["training"] == {**training, "patch_size": None}
    net, spec = load_model(final)  # rebuilt from its own spec
    assert spec == MethodSpec("unet", "ours") and net.conv1_1.weight.shape[1] == 8
    wrong = {**variant, "name": "unet-pg-base", "method": "baseline"}
    with pytest.raises(ConfigError, match=r"trained as backbone=unet method=ours concat_origin=False; "
                                          r"variants.unet-pg-base says method=baseline"):  # fmt: skip
        evaluate_variant(final, eval_set, wrong, [1], ["oracle"], 0, CAMERA, tmp_path / "p.csv", tmp_path / "s.csv")


def test_a_checkpoint_without_spec_loads_by_the_given_one(tmp_path):
    torch.manual_seed(0)
    spec = MethodSpec("unet", "baseline")
    save_checkpoint(tmp_path / "released.pt", spec.build(), None, epoch=1, iterations=1)
    assert load_model(tmp_path / "released.pt", spec)[1] == spec
    with pytest.raises(ConfigError, match="records no spec"):
        load_model(tmp_path / "released.pt")


def test_config_checks_methods_by_the_registry(refine):
    import yaml

    from expodiff.config import config_errors

    config = yaml.safe_load(open("config.yaml"))
    assert config_errors(config) == []
    config["variants"]["unet-pg-x"] = {"backbone": "unet", "data": "pg", "method": "nope", "concat_origin": False,
                                       "recipe": "exposurediffusion"}
    assert any("variants.unet-pg-x.method: unknown method 'nope'" in e for e in config_errors(config))
    config["variants"]["unet-pg-x"]["method"] = "refine"  # registered: one class plus config
    assert config_errors(config) == []
    config["variants"]["unet-pg-x"]["concat_origin"] = True
    assert any(e.startswith("variants.unet-pg-x: concat_origin") for e in config_errors(config))
