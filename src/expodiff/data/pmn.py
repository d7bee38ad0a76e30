"""PMN training data (Feng et al., ACM MM 2022, protocol §3 "PMN"): real SID pairs made more
learnable by shot-noise augmentation (SNA) and dark-shading correction (DSC).

- DSC: DS(ISO) = k·ISO + b + BLE(ISO) per packed pixel, k and b fitted by least squares over the
  per-ISO mean dark frames, separately for ISO ≤ 1600 and ISO > 1600; BLE(ISO) is the remaining
  global offset at each calibrated ISO (interpolated between them). DS is subtracted from the
  DN above black: in training from the short frame and the ground truth, at test time from the
  short frame only.
- SNA: with μ = y·s/r the clean signal of the short exposure and a ≥ 0 an extra brightness per
  channel, n = K·Poisson(a·μ/K) is added to the real short frame (its read noise is kept):
  x' = r·clip(x·s + n, −512, s)/s, y' = min((1 + a)·y, 1); K = 0.0009563·ISO·(1 + U(±0.01)).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from expodiff.errors import ExpodiffError
from expodiff.io.atomic import atomic_path
from expodiff.io.raw import pack_dn, read_raw

PMN_K_PER_ISO = 0.0009563  # SID Sony system gain per ISO, DN per electron (PMN's value)
PMN_BLACK = 512  # the lower clip of x·s + n (−black level)
ISO_SPLIT = 1600  # DS is fitted separately at and below / above this ISO


def _line_fit(isos: np.ndarray, means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel least squares DS = k·ISO + b over the given ISOs (k = 0 for a single ISO)."""
    if len(isos) == 1:
        return np.zeros_like(means[0]), means[0].copy()
    x = isos - isos.mean()
    k = np.tensordot(x, means - means.mean(0), axes=1) / (x @ x)
    return k.astype(np.float32), (means.mean(0) - k * isos.mean()).astype(np.float32)


def fit_dark_shading(dark_dir, out_npz) -> Path:
    """Fit the dark-shading maps from the raw dark frames in ``dark_dir``; write an ``.npz``."""
    files = sorted(p for p in Path(dark_dir).iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ExpodiffError(f"{dark_dir}: no dark frames for the dark-shading correction")
    by_iso = defaultdict(list)
    for path in files:
        frame = read_raw(path)
        by_iso[frame.iso].append(pack_dn(frame).astype(np.float64))
    scale = (np.float32(frame.white_level) - frame.black_level)[:, None, None]  # DN → [0, 1]
    shapes = {a.shape for frames in by_iso.values() for a in frames}
    if len(shapes) > 1:
        raise ExpodiffError(f"{dark_dir}: dark frames of mixed sizes {sorted(shapes)}")
    isos = np.array(sorted(by_iso), dtype=np.float64)
    means = np.stack([np.mean(by_iso[i], axis=0) for i in isos])  # (n_iso, 4, H, W)
    maps = {}
    for name, sel in (("low", isos <= ISO_SPLIT), ("high", isos > ISO_SPLIT)):
        use = sel if sel.any() else ~sel  # a regime without frames borrows the other's fit
        maps[f"k_{name}"], maps[f"b_{name}"] = _line_fit(isos[use], means[use])
    ble = []
    for mean, iso in zip(means, isos):
        k, b = _select(maps, iso)
        ble.append(float((mean - (k * iso + b)).mean()))
    with atomic_path(out_npz) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, isos=isos, ble=np.array(ble), scale=scale, **maps)
    return Path(out_npz)


def _select(maps, iso: float):
    name = "low" if iso <= ISO_SPLIT else "high"
    return maps[f"k_{name}"], maps[f"b_{name}"]


class DarkShading:
    """DS(ISO) in DN above black, (4, H, W) float32, from ``fit_dark_shading``'s file."""

    def __init__(self, npz):
        self.path = Path(npz)
        if not self.path.is_file():
            raise ExpodiffError(f"{self.path}: dark-shading maps not found")
        with np.load(self.path) as data:
            self.maps = {k: data[k] for k in data.files}

    @property
    def shape(self) -> tuple[int, ...]:
        return self.maps["b_low"].shape

    def __call__(self, iso: float) -> np.ndarray:
        k, b = _select(self.maps, iso)
        ble = np.interp(iso, self.maps["isos"], self.maps["ble"])
        return (k * iso + b + ble).astype(np.float32)

    def window(self, iso: float, top: int, left: int, h: int, w: int) -> np.ndarray:
        if top + h > self.shape[1] or left + w > self.shape[2]:
            raise ExpodiffError(f"{self.path}: maps of size {self.shape[1:]} do not cover the window at ({top}, {left}) of {h}×{w}")
        return self(iso)[:, top : top + h, left : left + w]

    def centre(self, iso: float, h: int, w: int) -> np.ndarray:
        """The centre h×w window (an evaluation set's centre crop, or the full image)."""
        H, W = self.shape[1:]
        return self.window(iso, H // 2 - h // 2, W // 2 - w // 2, h, w)  # as eval_sets.center_crop

    def correct_packed(self, packed: np.ndarray, iso: float) -> np.ndarray:
        """Test-time DSC of a packed short exposure in [0, 1] (a centre crop or the full image)."""
        _, h, w = packed.shape
        return np.clip(packed - self.centre(iso, h, w) / self.maps["scale"], 0, 1).astype(np.float32)


def sample_sna_strength(ratio: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Per-channel extra brightness a (R, G1, B, G2) of one crop (PMN's SNA schedule)."""
    a = np.zeros(4)
    if rng.random() < 0.25:  # no augmentation
        return a
    if ratio > 100:  # ×250 / ×300
        if rng.random() < 0.8:
            u = ratio / 200 - 1
            a_g = np.clip(np.clip(sigma * rng.standard_normal(), -3 * sigma, 3 * sigma) + u, 0, 4 * u)
            a_rb = np.clip((1 + a_g) * (1 + sigma * rng.standard_normal(2)) - 1, 0, 4 * u)
            a[:] = [a_rb[0], a_g, a_rb[1], a_g]
    elif rng.random() < 0.25:  # ×100
        a[:] = np.clip(sigma * rng.standard_normal() + 0.25, 0, 1)
    return a


def shot_noise_augment(short_dn: np.ndarray, clean: np.ndarray, ratio: float, iso: float, s: np.ndarray,
                       a: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x', y'): the amplified input (unclipped) and the brightened target, for one crop.

    ``short_dn``: the short frame in DN above black (after DSC); ``clean``: the ground truth in
    [0,1]; ``s``: (4,1,1) white − black; ``a``: (4,) extra brightness.
    """
    K = PMN_K_PER_ISO * iso * (1 + rng.uniform(-0.01, 0.01))
    a = a[:, None, None]
    mu = clean * s / ratio  # clean short-exposure signal, DN
    n = K * rng.poisson(a * mu / K)
    x = ratio * np.clip(short_dn + n, -PMN_BLACK, s) / s
    return x.astype(np.float32), np.minimum((1 + a) * clean, 1).astype(np.float32)

