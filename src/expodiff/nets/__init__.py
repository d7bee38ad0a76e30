"""Networks by backbone name. Pick one through ``build_net``; an unknown name is an error."""

from __future__ import annotations

from functools import partial

from torch import nn

from expodiff.errors import ConfigError
from expodiff.nets.nafnet import NAFNet, NAFNetConfig
from expodiff.nets.unet import UNet, UNetConfig

# name → (network class, config factory taking in_channels and out_channels)
BACKBONES = {
    "unet": (UNet, UNetConfig),
    # NAFNet-1, the original's `--netG naf`: width 16, one middle block, no encoder/decoder stages
    "naf1": (NAFNet, NAFNetConfig),
    # NAFNet-2, the original's `--netG naf2`
    "naf2": (NAFNet, partial(NAFNetConfig, enc_blk_nums=(2, 2, 4, 4), middle_blk_num=12, dec_blk_nums=(2, 2, 2, 2))),
}

# Backbones whose feed-forward baseline adds its input back before clipping (protocol §4): the
# original NAFNet's non-adaptive branch does `x + inp`, UNetSeeInDark (resid=False) does not.
BASELINE_ADDS_INPUT = frozenset({"naf1", "naf2"})


def build_net(backbone: str, in_channels: int, out_channels: int) -> nn.Module:
    if backbone not in BACKBONES:
        raise ConfigError(f"unknown backbone {backbone!r}; known backbones: {', '.join(sorted(BACKBONES))}")
    net_cls, cfg_cls = BACKBONES[backbone]
    return net_cls(cfg_cls(in_channels=in_channels, out_channels=out_channels))
