"""Networks by backbone name: a registry that each backbone module fills when it is imported.

A backbone module (``nets/unet.py``, ``nets/nafnet.py``, …) registers a builder per name with
``@register_backbone(name, ...)``; this package imports every module in it, so a new backbone is one
new module here plus its name in the config. ``build_net`` builds one by name (an unknown name is an
error), ``backbone_module`` names the file it lives in (the workflow's per-network sources), and
``baseline_adds_input`` says whether a backbone's feed-forward baseline adds its input back.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from expodiff.errors import ConfigError


@dataclass(frozen=True)
class Backbone:
    name: str
    build: Callable[[int, int], nn.Module]  # (in_channels, out_channels) → network
    module: str  # dotted module below ``expodiff`` that defines it, e.g. "nets.unet"
    # the feed-forward baseline adds X_T back before clipping (protocol §4): the original NAFNet's
    # non-adaptive branch does `x + inp`, UNetSeeInDark (resid=False) does not
    baseline_adds_input: bool = False


BACKBONES: dict[str, Backbone] = {}


def register_backbone(name: str, *, baseline_adds_input: bool = False):
    """Decorator: register ``build(in_channels, out_channels) -> nn.Module`` as backbone ``name``.

    Stacks to register several names from one module (NAFNet-1 and NAFNet-2).
    """

    def register(build: Callable[[int, int], nn.Module]):
        if name in BACKBONES and BACKBONES[name].build is not build:
            raise ConfigError(f"backbone {name!r} is already registered by {BACKBONES[name].module}")
        module = build.__module__.removeprefix("expodiff.")
        BACKBONES[name] = Backbone(name, build, module, baseline_adds_input)
        return build

    return register


def get_backbone(name: str) -> Backbone:
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; known backbones: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name]


def build_net(backbone: str, in_channels: int, out_channels: int) -> nn.Module:
    return get_backbone(backbone).build(in_channels, out_channels)


def backbone_module(name: str) -> str:
    """The dotted module below ``expodiff`` that defines backbone ``name``, e.g. ``"nets.unet"``."""
    return get_backbone(name).module


def baseline_adds_input(name: str) -> bool:
    return get_backbone(name).baseline_adds_input


# import every module of this package, so that each registers its backbones
for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")
