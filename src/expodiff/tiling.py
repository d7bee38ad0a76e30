"""Tiled inference: a network run over overlapping windows of a frame, for devices too small
for whole frames (config ``compute.tile_size`` / ``compute.tile_overlap``; off by default).

The frame is cut into ``tile_size``² cores; each core is computed from a window that reaches
``tile_overlap`` pixels further on every side (inside the frame) and only the core of the
window's output is kept, so every output pixel sees at least ``tile_overlap`` pixels of
context in every direction. Windows start on multiples of 16 (the UNet's four
down-samplings), so each window is pooled on the frame's own grid. A convolutional network's
output still depends on what lies beyond the window (its receptive field is wider than any
practical overlap, and NAFNet's channel attention pools the whole input), so tiled results
differ slightly from whole-frame ones: that is why tiling is an option and never the default
(tests/test_tiling.py states by how much).
"""

from __future__ import annotations

import torch
from torch import nn

from expodiff.errors import ConfigError

GRID = 16  # window starts and sizes are multiples of this


def check_tiling(tile_size=0, tile_overlap=0, key: str = "compute") -> tuple[int, int]:
    """``(tile_size, tile_overlap)`` if both are whole multiples of 16 ≥ 0, else a ConfigError
    naming ``key``.tile_size / .tile_overlap (the flags --tile-size / --tile-overlap when
    ``key`` is ``--``)."""
    for name, value in (("tile_size", tile_size), ("tile_overlap", tile_overlap)):
        where = f"--{name.replace('_', '-')}" if key == "--" else f"{key}.{name}"
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value % GRID:
            raise ConfigError(f"{where} must be a whole multiple of {GRID}, ≥ 0 (tile_size 0: whole frames), "
                              f"got {value!r}")
    return tile_size, tile_overlap


def windows(length: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Along one axis of ``length``: (window start, window end, core start, core end) per tile."""
    out = []
    for core in range(0, length, tile):
        core_end = min(core + tile, length)
        out.append((max(0, core - overlap), min(length, core_end + overlap), core, core_end))
    return out


class TiledNetwork(nn.Module):
    """Calls ``net`` on overlapping windows of its first argument, a (B,C,H,W) tensor, and
    stitches the cores of the outputs; further arguments (a DDIM timestep) pass unchanged.
    A frame no larger than one tile is one call, as without tiling."""

    def __init__(self, net: nn.Module, tile_size: int, tile_overlap: int):
        super().__init__()
        self.net, (self.tile_size, self.tile_overlap) = net, check_tiling(tile_size, tile_overlap)

    def forward(self, x: torch.Tensor, *args):
        h, w = x.shape[-2:]
        if h <= self.tile_size and w <= self.tile_size:
            return self.net(x, *args)
        out = None
        for wy0, wy1, y0, y1 in windows(h, self.tile_size, self.tile_overlap):
            for wx0, wx1, x0, x1 in windows(w, self.tile_size, self.tile_overlap):
                piece = self.net(x[..., wy0:wy1, wx0:wx1], *args)
                if out is None:
                    out = piece.new_empty((*piece.shape[:-2], h, w))
                out[..., y0:y1, x0:x1] = piece[..., y0 - wy0 : y1 - wy0, x0 - wx0 : x1 - wx0]
        return out
