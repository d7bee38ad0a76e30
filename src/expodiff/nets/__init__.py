"""Networks by backbone name. Pick one through ``build_net``; an unknown name is an error."""

from __future__ import annotations

from torch import nn

from expodiff.errors import ConfigError
from expodiff.nets.unet import UNet, UNetConfig

BACKBONES = {"unet": (UNet, UNetConfig)}


def build_net(backbone: str, in_channels: int, out_channels: int) -> nn.Module:
    if backbone not in BACKBONES:
        raise ConfigError(f"unknown backbone {backbone!r}; known backbones: {', '.join(sorted(BACKBONES))}")
    net_cls, cfg_cls = BACKBONES[backbone]
    return net_cls(cfg_cls(in_channels=in_channels, out_channels=out_channels))
