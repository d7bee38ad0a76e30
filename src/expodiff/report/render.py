"""Packed raw → 8-bit sRGB for looking at results (not used for metrics)."""

from __future__ import annotations

import numpy as np


def srgb_gamma(linear: np.ndarray) -> np.ndarray:
    """The sRGB transfer curve on linear values in [0,1]."""
    linear = np.clip(linear, 0, 1)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


def packed_to_srgb(packed: np.ndarray, wb: tuple[float, float, float] | None = None) -> np.ndarray:
    """(4,H,W) packed R,G1,B,G2 in [0,1] → (H,W,3) uint8: half-size demosaic, white balance, gamma.

    Without ``wb`` the gains come from the grey-world assumption (channel means equalised to G).
    """
    rgb = np.stack([packed[0], 0.5 * (packed[1] + packed[3]), packed[2]], axis=-1).astype(np.float64)
    if wb is None:
        means = rgb.reshape(-1, 3).mean(0) + 1e-8
        wb = tuple(means[1] / means)
    rgb = rgb * np.asarray(wb)
    return np.round(srgb_gamma(rgb) * 255).astype(np.uint8)
