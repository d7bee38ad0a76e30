"""NAFNet (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022), as used by ExposureDiffusion.

Two sizes are used in the paper (Table 5): NAFNet-1 (the original's ``--netG naf``: width 16, one
middle block, no encoder/decoder stages) and NAFNet-2 (``--netG naf2``: encoders (2, 2, 4, 4),
12 middle blocks, decoders (2, 2, 2, 2)). Attribute names and registration order give the
original state-dict keys (``intro``, ``ending``, ``encoders``, ``decoders``, ``middle_blks``,
``ups``, ``downs``; ``sca.1`` and ``ups.k.0`` inside ``nn.Sequential``), so released weights load
with ``strict=True``. The module types are the original's too (``AdaptiveAvgPool2d``,
``PixelShuffle``), so thop counts the same MACs.

The network is a plain image-to-image map returning its raw output channels, as ``UNet`` does.
What the original's ``NAFNet.forward`` does around it, and where that lives here:

- adaptive mode (``--adaptive_res_and_x0``, 9 output channels): exactly the UNet's head:
  ``M = sigmoid(c0)``, ``X̂ = ch 1:5``, ``R = ch 5:9``, ``clip(X̂)·M + clip(R + inp[:, :4])·(1 − M)``
  where ``inp[:, :4]`` is the current image X_l (the first 4 input channels). Nothing is added
  back before the head is split. The original applies the head to the padded output and crops
  the image afterwards; the head is pixel-wise, so cropping first (here) gives the same image (up
  to an ulp where torch's vectorised and scalar sigmoid differ), and the original's final extra
  ``.clip(0, 1)`` is a no-op on a convex combination of values in [0, 1]. (Its returned X̂, M and
  clip(R + X_l) stay uncropped; that only matters for inputs not a multiple of 16, never in
  training on 512² patches.) So the head stays in ``expodiff.model.ours_forward``, shared with
  the UNet, and needs no flag here.
- feed-forward mode: ``x + inp`` (global residual), crop, clip. That is
  ``expodiff.model.baseline_forward`` (NAFNet backbones register with
  ``baseline_adds_input=True``). The original then returned an undefined ``metadata``
  and crashed; ours runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from expodiff.errors import ConfigError
from expodiff.nets import register_backbone


@dataclass(frozen=True)
class NAFNetConfig:
    in_channels: int = 4  # 4 (baseline), 8 (ours: X_l + photon map), 12 (ours + X_T)
    out_channels: int = 4  # 4 (baseline) or 9 (ours: mask logit + X̂ + residual)
    width: int = 16  # channels after `intro`; doubled by every down-sampling
    enc_blk_nums: tuple[int, ...] = ()  # NAFBlocks per encoder stage; NAFNet-2: (2, 2, 4, 4)
    middle_blk_num: int = 1  # NAFBlocks at the lowest resolution; NAFNet-2: 12
    dec_blk_nums: tuple[int, ...] = ()  # NAFBlocks per decoder stage; NAFNet-2: (2, 2, 2, 2)
    dw_expand: int = 2  # channel expansion before the depthwise 3×3 (halved again by the gate)
    ffn_expand: int = 2  # channel expansion of the feed-forward half (halved by the gate)

    def __post_init__(self):
        if len(self.enc_blk_nums) != len(self.dec_blk_nums):
            raise ConfigError(
                f"NAFNet needs as many decoder as encoder stages: enc_blk_nums={self.enc_blk_nums}, "
                f"dec_blk_nums={self.dec_blk_nums}"
            )


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map (the original's ``LayerNormFunction``,
    same forward arithmetic; its hand-written backward is what autograd computes)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        mu = x.mean(1, keepdim=True)  # (B, 1, H, W)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + self.eps).sqrt()
        return self.weight.view(1, c, 1, 1) * y + self.bias.view(1, c, 1, 1)


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them: the non-linearity of NAFNet."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return x1 * x2


class NAFBlock(nn.Module):
    """norm → 1×1 → depthwise 3×3 → gate → simplified channel attention → 1×1, added with weight β;
    then norm → 1×1 → gate → 1×1, added with weight γ. β = γ = 0 at init: the block is the identity."""

    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2):
        super().__init__()
        dw = c * dw_expand
        ffn = c * ffn_expand
        # registration order = the original's state-dict order (own parameters come first anyway)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)  # depthwise
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        # simplified channel attention: global average → 1×1 conv → per-channel scale (keys sca.1.*)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1))
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.sg = SimpleGate()

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        # inp: (B, c, H, W)
        x = self.conv2(self.conv1(self.norm1(inp)))  # (B, 2c, H, W)
        x = self.sg(x)  # (B, c, H, W)
        x = x * self.sca(x)  # (B, c, 1, 1) attention broadcast over H, W
        y = inp + self.conv3(x) * self.beta
        x = self.sg(self.conv4(self.norm2(y)))  # (B, c, H, W)
        return y + self.conv5(x) * self.gamma


class NAFNet(nn.Module):
    def __init__(self, config: NAFNetConfig):
        super().__init__()
        self.config = config
        # registration order = the original's state-dict order
        self.intro = nn.Conv2d(config.in_channels, config.width, 3, padding=1)
        self.ending = nn.Conv2d(config.width, config.out_channels, 3, padding=1)
        blocks = lambda n, c: nn.Sequential(*[NAFBlock(c, config.dw_expand, config.ffn_expand) for _ in range(n)])  # noqa: E731

        chan = config.width
        encoders, downs, ups, decoders = [], [], [], []
        for num in config.enc_blk_nums:
            encoders.append(blocks(num, chan))
            downs.append(nn.Conv2d(chan, 2 * chan, 2, stride=2))  # (c, h, w) → (2c, h/2, w/2)
            chan *= 2
        middle_blks = blocks(config.middle_blk_num, chan)
        for num in config.dec_blk_nums:
            # 1×1 conv to 2c, then pixel shuffle: (c, h, w) → (2c, h, w) → (c/2, 2h, 2w)
            ups.append(nn.Sequential(nn.Conv2d(chan, 2 * chan, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            decoders.append(blocks(num, chan))
        # assignment order = the original's key order: encoders, decoders, middle_blks, ups, downs
        self.encoders = nn.ModuleList(encoders)
        self.decoders = nn.ModuleList(decoders)
        self.middle_blks = middle_blks
        self.ups = nn.ModuleList(ups)
        self.downs = nn.ModuleList(downs)
        self.padder_size = 2 ** len(self.encoders)

    def check_image_size(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad bottom and right to a multiple of 2**len(encoders), as the original does."""
        h, w = x.shape[-2:]
        return F.pad(x, (0, -w % self.padder_size, 0, -h % self.padder_size))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        # inp: (B, in_channels, H, W), any H, W
        H, W = inp.shape[-2:]
        x = self.intro(self.check_image_size(inp))  # (B, width, H', W'), H', W' multiples of padder_size
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)  # (B, 2c, h/2, w/2)
        x = self.middle_blks(x)  # (B, width·2^len(encoders), H'/padder, W'/padder)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            x = decoder(up(x) + skip)  # (B, c/2, 2h, 2w)
        x = self.ending(x)  # (B, out_channels, H', W')
        return x[:, :, :H, :W]  # raw output, cropped back; no residual, no clip (see module docstring)


@register_backbone("naf1", baseline_adds_input=True)
def build_naf1(in_channels: int, out_channels: int) -> NAFNet:
    """NAFNet-1, the original's `--netG naf`: width 16, one middle block, no encoder/decoder stages."""
    return NAFNet(NAFNetConfig(in_channels=in_channels, out_channels=out_channels))


@register_backbone("naf2", baseline_adds_input=True)
def build_naf2(in_channels: int, out_channels: int) -> NAFNet:
    """NAFNet-2, the original's `--netG naf2`."""
    cfg = NAFNetConfig(in_channels=in_channels, out_channels=out_channels,
                       enc_blk_nums=(2, 2, 4, 4), middle_blk_num=12, dec_blk_nums=(2, 2, 2, 2))
    return NAFNet(cfg)
