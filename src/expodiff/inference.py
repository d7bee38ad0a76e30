"""Enhance one packed short exposure with a trained network, step by step (protocol §5, §7)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from expodiff.device import compute_settings
from expodiff.errors import ConfigError, ExpodiffError
from expodiff.methods import MethodSpec
from expodiff.physics.camera import ORIGINAL_DN_SCALE
from expodiff.physics.correction import oracle_illumination_correct

PADDINGS = ("original", "minimal", "none")


def pad_amounts(size: int, multiple: int, mode: str) -> tuple[int, int]:
    """Reflect-padding (before, after) for one dimension.

    "original": the original's auto_padding, which adds ``multiple − size % multiple`` (so a
    size already divisible gets 16 more pixels, 8 each side); "minimal": to the next multiple;
    "none": no padding, as the ELD code evaluates (its SID crops and ELD frames are multiples),
    and a size that is not a multiple is refused (the networks need one).
    """
    if mode == "original":
        total = multiple - size % multiple
    elif mode == "minimal":
        total = -size % multiple
    elif mode == "none":
        if size % multiple:
            raise ConfigError(f"padding 'none' (recipes.*.eval_padding, --padding) needs image sides that are "
                              f"multiples of {multiple}, got {size}: use padding 'minimal' or 'original', "
                              f"or crop the image")
        total = 0
    else:
        raise ConfigError(f"unknown padding {mode!r}; choose one of {', '.join(PADDINGS)}")
    return total // 2, total - total // 2


@dataclass(frozen=True)
class Padding:
    top: int
    bottom: int
    left: int
    right: int

    @classmethod
    def for_shape(cls, h: int, w: int, mode: str, multiple: int = 16) -> "Padding":
        (t, b), (l, r) = pad_amounts(h, multiple, mode), pad_amounts(w, multiple, mode)
        return cls(t, b, l, r)

    def check_fits(self, h: int, w: int) -> None:
        """Reflect padding needs each pad narrower than the image; say so instead of a traceback."""
        if max(self.top, self.bottom) >= h or max(self.left, self.right) >= w:
            raise ConfigError(f"a packed {h}×{w} image is too small for its reflect padding "
                              f"({self.top}+{self.bottom} rows, {self.left}+{self.right} columns); "
                              "use a larger image (9×9 packed pixels or more)")

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, [self.left, self.right, self.top, self.bottom], mode="reflect")

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return x[..., self.top : h - self.bottom, self.left : w - self.right]


def amplify(x_short: torch.Tensor, ratio: float) -> torch.Tensor:
    """X_T = clip(short · r, 0, 1): the capture shown at full brightness."""
    return (x_short * ratio).clamp(0, 1)


@torch.no_grad()
def enhance(
    net: nn.Module,
    spec: MethodSpec,
    x_short: np.ndarray | torch.Tensor,
    ratio: int,
    K: float,
    n_steps: int,
    gt: np.ndarray | torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    padding: str = "original",
    compute=None,
    amplification: float | None = None,
    dn_scale: float = ORIGINAL_DN_SCALE,
) -> list[np.ndarray]:
    """Predictions (4,H,W float32 in [0,1]) after each of ``n_steps`` network evaluations.

    ``x_short``: the packed short exposure in [0,1], not amplified. With ``gt`` the paper's
    oracle illumination correction is applied as in the original: to every intermediate
    prediction on the padded image, and once more to each cropped output. Without it, none.
    The method (``spec.impl``) says what the predictions are: ExposureDiffusion one per step,
    the baseline always one, the DDIM baseline one after ``n_steps`` sampler steps.

    ``ratio``: the whole exposure ratio the exposure ladder and the network's ratio conditioning
    use. ``amplification``: what the input is multiplied by (X_T = clip(short · amplification));
    None: ``ratio``. The original amplifies an ELD input by its EXIF ratio (e.g. 99.6) and runs
    the ladder at int() of it (99): ``expodiff.data.eld.input_ratios`` gives both. ``dn_scale``:
    the camera's DN scale S (``physics.camera.dn_scale``) the re-exposure counts photons on, as K does.

    ``compute``: where and in which precision (``expodiff.device.compute_settings``: the config's
    ``compute`` dict or a ``Compute``; None: CPU fp32). The network is moved there, the input,
    padding, re-exposure and correction run there, and ``generator`` must be on that device
    (``Compute.generator``); the results come back to the CPU as numpy arrays.
    """
    compute = compute_settings(compute)
    if generator is not None and generator.device.type != compute.device.type:
        raise ConfigError(f"the generator is on {generator.device} but the network runs on {compute.device}: "
                          "make it with expodiff.device.generator(seed, device)")
    net = compute.prepare_inference(net)  # tiled when compute.tile_size is set
    # the exposure ladder and the original's evaluation use whole ratios (SID: 100, 250, 300)
    if not (math.isfinite(ratio) and ratio > 1 and float(ratio).is_integer()):
        raise ConfigError(f"ratio must be a whole number > 1, got {ratio}")
    amplification = ratio if amplification is None else amplification
    if not (math.isfinite(amplification) and amplification > 1):
        raise ConfigError(f"amplification must be a finite number > 1, got {amplification}")
    if not (math.isfinite(K) and K > 0):
        raise ConfigError(f"K (system gain, DN/e-) must be a finite number > 0, got {K}")
    ratio = int(ratio)
    to_batch = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))[None].to(compute.device)  # noqa: E731
    x_t = amplify(to_batch(x_short), amplification)
    gt_b = None if gt is None else to_batch(gt)
    pad = Padding.for_shape(*x_t.shape[-2:], mode=padding)
    pad.check_fits(*x_t.shape[-2:])
    x_t_pad = pad.pad(x_t)
    gt_pad = None if gt_b is None else pad.pad(gt_b)

    def finish(pred_padded: torch.Tensor) -> np.ndarray:
        out = oracle_illumination_correct(pad.crop(pred_padded), gt_b).clamp(0, 1)
        if not torch.isfinite(out).all():  # e.g. NaN weights: never hand on a NaN image as a result
            raise ExpodiffError("the network's output is not finite (NaN or infinite values): "
                                "the checkpoint's weights or the input are broken")
        return out[0].cpu().numpy().astype(np.float32)  # metrics and files: on the CPU

    preds = spec.impl.predict(net, spec, x_t_pad, n_steps, K, ratio, gt=gt_pad, generator=generator, dn_scale=dn_scale)
    return [finish(pred) for pred in preds]
