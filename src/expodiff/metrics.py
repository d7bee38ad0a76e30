"""Image quality as the original computes it (protocol §7)."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def psnr_ssim(gt: np.ndarray, out: np.ndarray) -> tuple[float, float]:
    """PSNR/SSIM of packed (4,H,W) images in [0,1], as H×W×4 scaled by 255 (float, not rounded)."""
    # float32 ×255 then clip, as the original's tensor2im
    g = np.clip(np.transpose(gt, (1, 2, 0)).astype(np.float32) * 255.0, 0, 255)
    o = np.clip(np.transpose(out, (1, 2, 0)).astype(np.float32) * 255.0, 0, 255)
    psnr = peak_signal_noise_ratio(g, o, data_range=255)
    ssim = structural_similarity(g, o, data_range=255, channel_axis=-1)
    return float(psnr), float(ssim)
