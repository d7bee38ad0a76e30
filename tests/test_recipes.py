"""Training recipes (expodiff.recipes): the merge of `training` with a variant's recipe, the
ExposureDiffusion recipe giving exactly the settings (and fingerprints) of the config before
recipes, the ELD recipe's schedule, loss and padding, PMN's schedule, the plan's iterations,
what Snakemake hands the train and evaluate jobs, provenance, and the config errors."""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from expodiff.config import deep_merge, get_variant, load_config
from expodiff.data.sources import TrainBatch
from expodiff.errors import ConfigError
from expodiff.inference import Padding, enhance
from expodiff.methods import MethodSpec, get_method
from expodiff.plan import plan
from expodiff.provenance import cell_recipes
from expodiff.recipes import eval_padding, lr_schedule_pairs, recipe_name, training_settings, warmup_cosine_lr
from expodiff.train import fingerprint, lr_at

REPO = Path(__file__).resolve().parents[1]
PAPER = [REPO / "config.yaml"]
DEMO = PAPER + [REPO / "configs" / "demo.yaml"]
SAME = PAPER + [REPO / "configs" / "same-recipe.yaml"]
ELD_BASELINES = ("unet-pg-base", "unet-paired-base", "unet-eld-base")

# the `training` section every variant trained with before recipes existed, in its order
BEFORE_RECIPES = {"seed": 2018, "epochs": 300, "lr": 1.0e-4, "lr_schedule": [[150, 5.0e-5], [270, 1.0e-5]],
                  "batch_size": 1, "checkpoint_epochs": [100, 200, 300], "diffusion_steps": 3,
                  "ratio_range": [20, 300], "K_range": [0.1, 30], "oracle_correction": True, "save_every": 500}
DEMO_BEFORE_RECIPES = {**BEFORE_RECIPES, "epochs": 2, "lr_schedule": [[1, 5.0e-5]], "checkpoint_epochs": [2],
                       "save_every": 32}
# expodiff.train.fingerprint of unet-pg-ours before recipes existed (paper, demo config)
FINGERPRINTS_BEFORE = {"paper": "2f57dd9a18da2d72", "demo": "314fc69fc7fb4d79"}


def as_before(merged: dict, before: dict) -> dict:
    """``before`` with the keys the `training` section has gained since recipes (settings of
    other features, appended in their order): what the section would give a training now."""
    return before | {k: v for k, v in merged["training"].items() if k not in before}


def config(paths=PAPER, overlay: dict | None = None) -> dict:
    merged = load_config(paths)
    return load_checked(deep_merge(merged, overlay)) if overlay else merged


def load_checked(merged: dict) -> dict:
    """``merged`` through the schema and the cross-checks, as load_config does."""
    import jsonschema

    from expodiff.config import check

    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    jsonschema.Draft202012Validator(schema).validate(merged)
    check(merged)
    return merged


# --- the merge -----------------------------------------------------------------------------


def test_settings_are_training_merged_with_the_recipe():
    paper = config()
    for name in ELD_BASELINES:
        assert recipe_name(paper, name) == "eld"
    eld = paper["recipes"]["eld"]
    expected = {**paper["training"], **{k: v for k, v in eld.items() if k != "eval_padding"}}
    settings = training_settings(paper, "unet-pg-base")
    assert settings == expected
    assert (settings["epochs"], settings["ratio_range"], settings["loss_on"]) == (200, [100, 300], "raw")
    assert "eval_padding" not in settings  # how it is evaluated is no training setting
    settings["lr_schedule"].append([1, 1.0])  # a copy: the config is untouched
    assert paper["recipes"]["eld"]["lr_schedule"] == [[100, 5.0e-5], [180, 1.0e-5]]


@pytest.mark.parametrize("which,paths,before", [("paper", PAPER, BEFORE_RECIPES), ("demo", DEMO, DEMO_BEFORE_RECIPES)])
def test_exposurediffusion_trains_as_before_recipes(which, paths, before):
    """Same settings dict (keys, values, order: the checkpoint records it), same variant dict,
    same fingerprint as before recipes existed, for every variant on the recipe."""
    merged = config(paths)
    on_it = [n for n in merged["variants"] if recipe_name(merged, n) == "exposurediffusion"]
    assert len(on_it) == len(merged["variants"]) - len(ELD_BASELINES)
    for name in on_it:
        settings = training_settings(merged, name)
        assert list(settings.items()) == list(as_before(merged, before).items()), name
        variant = get_variant(merged, name)
        assert "recipe" not in variant
        assert fingerprint(variant, settings) == fingerprint(variant, as_before(merged, before))
    variant = get_variant(merged, "unet-pg-ours")
    settings = training_settings(merged, "unet-pg-ours")
    assert fingerprint(variant, {k: settings[k] for k in before}) == FINGERPRINTS_BEFORE[which]
    assert fingerprint(get_variant(merged, "unet-pg-base"), training_settings(merged, "unet-pg-base")) != \
        fingerprint(get_variant(merged, "unet-pg-base"), before)  # fmt: skip


def test_same_recipe_overlay_puts_every_variant_on_exposurediffusion():
    same = config(SAME)
    assert {recipe_name(same, n) for n in same["variants"]} == {"exposurediffusion"}
    assert all(training_settings(same, n) == as_before(same, BEFORE_RECIPES) for n in same["variants"])
    demo_same = config(DEMO + SAME[1:])
    assert all(training_settings(demo_same, n) == as_before(demo_same, DEMO_BEFORE_RECIPES)
               for n in demo_same["variants"])  # fmt: skip


def test_the_demo_keeps_every_recipe_it_uses_tiny():
    demo = config(DEMO)
    used = {recipe_name(demo, n) for n in demo["variants"]}
    assert used == {"exposurediffusion", "eld"}
    assert all(demo["recipes"][r]["epochs"] == 2 and demo["recipes"][r]["checkpoint_epochs"] == [2] for r in used)


# --- schedules -----------------------------------------------------------------------------


def test_eld_learning_rate_steps_at_epochs_100_and_180():
    settings = training_settings(config(), "unet-pg-base")
    lrs = {epoch: lr_at(epoch, settings["lr"], settings["lr_schedule"]) for epoch in (0, 99, 100, 179, 180, 199)}
    assert lrs == {0: 1e-4, 99: 1e-4, 100: 5e-5, 179: 5e-5, 180: 1e-5, 199: 1e-5}


def test_pmn_warmup_cosine_schedule():
    """PMN's get_cos_lr, stepped once before its first epoch: 1800 epochs in 3 periods of 600,
    10 warm-up epochs, cosine to 0.2 of a peak that halves every period."""
    recipe = config()["recipes"]["pmn"]
    pairs = lr_schedule_pairs(recipe)
    assert [p[0] for p in pairs] == list(range(1800))
    lr = lambda epoch: lr_at(epoch, recipe["lr"], pairs)  # noqa: E731
    assert lr(0) == pytest.approx(2e-5)  # PMN's step 1: 1/10 of the warm-up
    assert lr(9) == pytest.approx(2e-4)  # the peak at the warm-up's end
    assert lr(300) == pytest.approx(2e-4 * (0.2 + 0.8 * (1 + math.cos(math.pi * 291 / 590)) / 2))
    assert lr(599) == 0  # PMN's step 600: the new period's step 0
    assert lr(600) == pytest.approx(2e-4 / 2 / 10)  # half the peak from the second period on
    assert lr(1209) == pytest.approx(2e-4 / 4)
    assert lr(598) == pytest.approx(2e-4 * (0.2 + 0.8 * (1 + math.cos(math.pi * 589 / 590)) / 2))
    with pytest.raises(ConfigError, match="warmup_epochs 10 must be between 0 and the period of 6 epochs"):
        warmup_cosine_lr(0, 1e-4, 18, 10, 3, 0.2)


# --- the baseline's loss -------------------------------------------------------------------


class FixedOutput(nn.Module):
    """A "network" whose output leaves [0, 1]: 1.5 and -0.5, with a parameter to train."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        out = torch.full_like(x, 1.5)
        out[:, :, :, : x.shape[-1] // 2] = -0.5
        return out * self.scale


def test_baseline_loss_on_raw_or_clipped_output():
    spec = MethodSpec("unet", "baseline")
    x_t = torch.rand(1, 4, 8, 8)
    clean = torch.zeros(1, 4, 8, 8)
    clean[:, :, :, 4:] = 1.0  # what the clipped output is: clipped loss 0, raw loss 0.5
    batch = TrainBatch(clean=clean, x_t=x_t, ratio=torch.tensor([100.0]), K=torch.tensor([2.0]))
    net, baseline = FixedOutput(), get_method("baseline")

    def loss(training):
        return baseline.loss(net, spec, batch, extra={}, training=training, generator=None, rng=None)

    assert loss({"loss_on": "clipped"}).item() == 0.0
    assert loss({"loss_on": "raw"}).item() == pytest.approx(0.5)
    # no loss_on (every setting before recipes, and exposurediffusion's): the clipped output, as before
    assert torch.equal(loss({}), F.l1_loss(net(x_t).clamp(0, 1), clean))
    raw = loss({"loss_on": "raw"})
    raw.backward()
    assert net.scale.grad.item() != 0  # the raw loss trains through the values the clip would cut
    with pytest.raises(ConfigError, match="loss_on"):
        loss({"loss_on": "sigmoid"})


# --- padding at evaluation -----------------------------------------------------------------


class ShapeRecorder(nn.Module):
    """The baseline's network as the identity, recording the shapes it is given."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape[-2:]))
        return x


def test_padding_none_leaves_multiples_of_16_and_refuses_the_rest():
    spec = MethodSpec("unet", "baseline")
    net = ShapeRecorder()
    x = torch.rand(4, 32, 48).numpy() * 0.01
    out = enhance(net, spec, x, 100, 2.0, 1, padding="none")
    assert net.shapes == [(32, 48)] and out[0].shape == (4, 32, 48)
    enhance(net, spec, x, 100, 2.0, 1, padding="original")
    assert net.shapes[-1] == (48, 64)  # the original's: 16 more even when divisible
    assert Padding.for_shape(512, 512, "none") == Padding(0, 0, 0, 0)
    with pytest.raises(ConfigError, match=r"padding 'none' \(recipes\.\*\.eval_padding.*multiples of 16, got 40"):
        enhance(net, spec, torch.rand(4, 32, 40).numpy(), 100, 2.0, 1, padding="none")


def test_eval_padding_of_the_shipped_recipes():
    paper = config()
    assert {n: eval_padding(paper, n) for n in ("unet-pg-base", "unet-pg-ours", "unet-pmn-base")} == {
        "unet-pg-base": "none", "unet-pg-ours": "original", "unet-pmn-base": "original"}
    assert paper["recipes"]["pmn"]["eval_padding"] == "none"
    # SID is evaluated on centre crops, ELD on full frames: the ELD frames (4256×2848 raw, packed
    # 2128×1424) and the SID crop are multiples of 16, so `none` applies to them
    assert paper["evaluation"]["datasets"]["sid"]["crop"] % 16 == 0 and 2128 % 16 == 1424 % 16 == 0


# --- the plan ------------------------------------------------------------------------------


def test_plan_iterations_follow_each_variants_recipe():
    text = plan(PAPER, its=10.0)
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith(("  unet-", "  naf"))}
    # variant, data, recipe, epochs, samples/epoch, iterations
    assert rows["unet-pg-ours"][2:6] == ["exposurediffusion", "300", "1288", "386400"]
    assert rows["naf1-pg-base"][2:6] == ["exposurediffusion", "300", "1288", "386400"]
    for name in ("unet-pg-base", "unet-eld-base"):
        assert rows[name][2:6] == ["eld", "200", "1288", "257600"]
    assert rows["unet-paired-base"][2:4] == ["eld", "200"]
    assert "eld (3), exposurediffusion (14)" in text


# --- what the workflow hands its jobs ------------------------------------------------------

PROBE = """include: "{snakefile}"

import json
from types import SimpleNamespace

_out = {{}}
for _v in config["variants"]:
    _w = SimpleNamespace(variant=_v)
    _out[_v] = {{"training": rules.train.params.training(_w), "variant": rules.train.params.variant(_w),
                "padding": rules.evaluate.params.padding(_w)}}
print("PROBE " + json.dumps(_out))
"""


def workflow_params(tmp_path, *configfiles) -> dict:
    """What rules train and evaluate of the Snakefile pass each variant (params training,
    variant, padding), as snakemake itself parses the config (a dry run of the workflow)."""
    from test_workflow import SNAKEMAKE, copy_workflow, snakemake

    if not SNAKEMAKE.exists():
        pytest.skip("snakemake is not installed beside python")
    work = tmp_path / "wf"
    if not work.exists():  # its own copy: the probe must sit beside the Snakefile (workflow.basedir)
        copy_workflow(work)
        (work / "probe.smk").write_text(PROBE.format(snakefile="Snakefile"))
    args = ["--configfile", *configfiles] if configfiles else []
    proc = snakemake("-s", "probe.smk", "-n", "all", *args, cwd=work, check=True)
    line = next(line for line in proc.out.splitlines() if line.startswith("PROBE "))
    return json.loads(line.removeprefix("PROBE "))


def test_snakemake_passes_each_variants_recipe_to_its_jobs(tmp_path):
    params = workflow_params(tmp_path)
    paper = config()
    base = params["unet-pg-base"]
    assert base["training"] == json.loads(json.dumps(training_settings(paper, "unet-pg-base")))
    assert (base["training"]["epochs"], base["training"]["loss_on"], base["padding"]) == (200, "raw", "none")
    before = as_before(paper, BEFORE_RECIPES)
    assert params["unet-pg-ours"]["training"] == before and params["unet-pg-ours"]["padding"] == "original"
    assert all("recipe" not in p["variant"] for p in params.values())
    same = workflow_params(tmp_path, "configs/same-recipe.yaml")
    assert all(p["training"] == before and p["padding"] == "original" for p in same.values())


# --- provenance ----------------------------------------------------------------------------


def test_provenance_names_the_recipe_of_each_cell():
    paper = config()
    cells = ["unet-pg-base", "unet-pg-ours", "unet-eld-base"]
    assert cell_recipes(paper, cells) == {"unet-pg-base": "eld", "unet-pg-ours": "exposurediffusion",
                                          "unet-eld-base": "eld"}
    released = {**paper, "checkpoints": "released"}
    assert cell_recipes(released, cells)["unet-pg-ours"] == "released checkpoint"
    assert cell_recipes(released, cells)["unet-pg-base"] == "eld"


# --- bad recipes ---------------------------------------------------------------------------


def test_unknown_recipe_is_named():
    with pytest.raises(ConfigError, match=r"variants\.unet-pg-base\.recipe: unknown recipe 'elx'; config recipes: "
                                          r"exposurediffusion, eld, pmn"):
        config(overlay={"variants": {"unet-pg-base": {"recipe": "elx"}}})


def test_recipe_missing_a_key_is_named(tmp_path):
    incomplete = copy.deepcopy(config()["recipes"]["eld"])
    del incomplete["loss_on"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"recipes": {"eld2": incomplete}}))
    with pytest.raises(ConfigError, match=r"config key recipes\.eld2: 'loss_on' is a required property"):
        load_config(PAPER + [bad])


@pytest.mark.parametrize("overlay,message", [
    ({"variants": {"unet-pg-base": {"recipe": "elx"}}}, r"variants\.unet-pg-base\.recipe: unknown recipe 'elx'"),
    ({"recipes": {"eld": {"loss_on": "sigmoid"}}}, r"recipes\.eld\.loss_on: 'sigmoid' is not one of clipped, raw"),
    ({"recipes": {"eld": {"eval_padding": "zero"}}},
     r"recipes\.eld\.eval_padding: 'zero' is not one of original, minimal, none"),
])  # fmt: skip
def test_the_cli_refuses_bad_recipes_with_exit_2(tmp_path, overlay, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(overlay))
    proc = subprocess.run([sys.executable, "-m", "expodiff.cli", "plan", str(REPO / "config.yaml"), str(bad)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(message, proc.stderr), proc.stderr
