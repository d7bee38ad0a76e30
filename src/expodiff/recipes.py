"""Training recipes: how a paper trained its networks, as named config entries.

A recipe (``recipes.NAME`` in config.yaml) is what a training learns with: epochs, learning
rate and its schedule, the sampled exposure ratios and gains, the baseline's loss, the
checkpoints kept, and the one evaluation setting that belongs to how the network was made
(``eval_padding``). Every variant names one (``variants.NAME.recipe``); the ``training``
section holds what every training shares and what never changes a result's meaning (seed,
batch size, how often it saves). docs/RECIPES.md says where each shipped number comes from.

``training_settings(config, variant)`` is the one merge: the settings dict a training gets
(rule train, ``expodiff train``; ``expodiff.train.train_variant`` fingerprints and records it),
``eval_padding(config, variant)`` the padding its evaluation runs with. The config checks of
the recipes (unknown names, checkpoints beyond the last epoch, option values) live with the
others in ``expodiff.config.config_errors``; the schema requires every recipe key.

Standard library only: Snakemake reads these while it parses the rules.
"""

from __future__ import annotations

import copy
import math
from typing import Mapping

from expodiff.errors import ConfigError

# recipe keys that say how a variant is evaluated, not what it learns: not training settings
EVALUATION_KEYS = ("eval_padding",)
# recipe keys added after trainings existed, at the value those trainings had: a training at
# that value gets no such key, so its settings, fingerprint and checkpoints are the ones from
# before the key existed (the baseline reads the same default: methods/baseline.py)
OMITTED_AT_DEFAULT = {"loss_on": "clipped"}
# the keys of the `training` section before recipes existed, in its order: the merged settings
# keep it, so the settings dict recorded in a checkpoint pickles to the same bytes as then
SETTINGS_ORDER = ("seed", "epochs", "lr", "lr_schedule", "batch_size", "checkpoint_epochs", "diffusion_steps",
                  "ratio_range", "K_range", "oracle_correction", "save_every")  # fmt: skip


def recipe_name(config: Mapping, variant: str) -> str:
    """The name of the recipe ``variant`` trains with (``variants.NAME.recipe``)."""
    variants = config["variants"]
    if variant not in variants:
        raise ConfigError(f"unknown variant {variant!r}; config variants: {', '.join(sorted(variants))}")
    name = variants[variant]["recipe"]
    if name not in config["recipes"]:
        raise ConfigError(f"variants.{variant}.recipe: unknown recipe {name!r}; "
                          f"config recipes: {', '.join(config['recipes'])}")  # fmt: skip
    return name


def variant_recipe(config: Mapping, variant: str) -> dict:
    """The recipe entry ``variant`` trains with (a copy)."""
    return copy.deepcopy(dict(config["recipes"][recipe_name(config, variant)]))


def training_settings(config: Mapping, variant: str) -> dict:
    """The settings ``variant``'s training gets: the ``training`` section merged with its
    recipe, without the recipe's evaluation keys, the learning-rate schedule as [epoch, lr]
    pairs (``lr_schedule_pairs``) and keys at their ``OMITTED_AT_DEFAULT`` value left out.

    A variant on the ``exposurediffusion`` recipe gets exactly the settings (keys, values and
    order) that the ``training`` section gave before recipes existed, hence the same
    fingerprint and byte-identical checkpoints."""
    recipe = variant_recipe(config, variant)
    merged = copy.deepcopy(dict(config["training"]))
    merged.update({key: value for key, value in recipe.items() if key not in EVALUATION_KEYS})
    merged["lr_schedule"] = lr_schedule_pairs(recipe)
    for key, default in OMITTED_AT_DEFAULT.items():
        if merged.get(key) == default:
            del merged[key]
    ordered = {key: merged[key] for key in SETTINGS_ORDER if key in merged}
    return ordered | {key: value for key, value in merged.items() if key not in ordered}


def eval_padding(config: Mapping, variant: str) -> str:
    """The reflect padding ``variant`` is evaluated with (``recipes.NAME.eval_padding``, one of
    ``expodiff.inference.PADDINGS``)."""
    return config["recipes"][recipe_name(config, variant)]["eval_padding"]


def used_recipes(config: Mapping) -> dict[str, list[str]]:
    """{recipe: the variants training with it}, in config order, recipes no variant names left out."""
    used: dict[str, list[str]] = {}
    for variant in config["variants"]:
        used.setdefault(recipe_name(config, variant), []).append(variant)
    return used


# --- learning-rate schedules ------------------------------------------------------------


def lr_schedule_pairs(recipe: Mapping) -> list:
    """A recipe's ``lr_schedule`` as the [0-based epoch, lr] pairs ``expodiff.train.lr_at``
    takes: a list of pairs as it is; ``{warmup_cosine: {...}}`` one pair per epoch
    (``warmup_cosine_lr``)."""
    schedule = recipe["lr_schedule"]
    if isinstance(schedule, Mapping):
        form = schedule["warmup_cosine"]
        lr, epochs = float(recipe["lr"]), int(recipe["epochs"])
        return [[epoch, warmup_cosine_lr(epoch, lr, epochs, int(form["warmup_epochs"]), int(form["periods"]),
                                         float(form["floor"]))] for epoch in range(epochs)]  # fmt: skip
    return copy.deepcopy(list(schedule))


def warmup_cosine_lr(epoch: int, lr: float, epochs: int, warmup_epochs: int, periods: int, floor: float) -> float:
    """PMN's warm-up cosine schedule (its ``get_cos_lr``, stepped once per epoch) during our
    0-based ``epoch``: ``epochs`` split into ``periods`` equal periods; in each, a linear
    warm-up over ``warmup_epochs`` to the peak, then a half cosine down to ``floor`` × the
    peak; each period's peak is half the one before.

    PMN steps its scheduler once before the first epoch, so its first epoch (ours 0) is its
    step 1, and the first epoch of each later period is its step 0 of that period: learning
    rate 0, as in PMN's code."""
    period = epochs // periods
    if not 0 < warmup_epochs < period:
        raise ConfigError(f"lr_schedule.warmup_cosine: warmup_epochs {warmup_epochs} must be between 0 and "
                          f"the period of {period} epochs (epochs {epochs} / periods {periods})")  # fmt: skip
    step = epoch + 1
    into = step % period
    if into <= warmup_epochs:
        factor = into / warmup_epochs
    else:
        factor = floor + (1 - floor) * (1 + math.cos(math.pi * (into - warmup_epochs) / (period - warmup_epochs))) / 2
    return lr * factor / 2 ** (step // period)


def resolve_K_range(training: Mapping, camera: Mapping) -> dict:
    """``training`` with ``K_range: calibrated`` (a camera model's, camera_model.K_range) made the
    camera's own span [Kmin, Kmax]: the recipes' [0.1, 30] is the SonyA7S2's, far outside a
    12-bit sensor's gains. Any other K_range is kept."""
    if training.get("K_range") != "calibrated":
        return dict(training)
    return {**training, "K_range": [float(camera["Kmin"]), float(camera["Kmax"])]}

