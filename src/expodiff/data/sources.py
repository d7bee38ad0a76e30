"""Training data sources: what one training batch is made of, for each kind of training data.

- synthetic noise (``P+g``, ``P+G+r+u``): clean long-exposure patches from the patch store,
  noised per patch with parameters drawn from the camera's noise model;
- ``paired``: real SID (short, long) pairs from the pair store, randomly cropped;
- ``pmn``: the same pairs, dark-shading corrected and shot-noise augmented as PMN does.

Every source returns a ``TrainBatch``; a method's loss reads only that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from expodiff.data.pairs import PairStore
from expodiff.data.patches import PatchStore
from expodiff.data.pmn import DarkShading, sample_sna_strength, shot_noise_augment
from expodiff.errors import ConfigError
from expodiff.physics.noise import NOISE_MODELS, add_noise, k_from_iso, sample_noise_params


def augment(*patches: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """The same random horizontal/vertical flips and transpose for (4,p,p) patches (input and target)."""
    flips = rng.random(3) < 0.5
    out = []
    for patch in patches:
        if flips[0]:
            patch = patch[:, :, ::-1]
        if flips[1]:
            patch = patch[:, ::-1, :]
        if flips[2]:
            patch = patch.transpose(0, 2, 1)
        out.append(np.ascontiguousarray(patch))
    return out


@dataclass(frozen=True)
class TrainBatch:
    clean: torch.Tensor  # (B,4,p,p) ground truth in [0,1]
    x_t: torch.Tensor  # (B,4,p,p) amplified noisy input X_T in [0,1]
    ratio: torch.Tensor  # (B,) exposure ratio
    K: torch.Tensor  # (B,) system gain, DN/e⁻


class SyntheticNoiseSource:
    """Clean long-exposure patches + a noise model with per-patch parameters (P+G or ELD)."""

    def __init__(self, directory, noise: str, camera: dict, training: dict):
        self.store, self.noise, self.camera = PatchStore(directory), noise, camera
        self.K_range, self.ratio_range = tuple(training["K_range"]), tuple(training["ratio_range"])

    def __len__(self) -> int:
        return len(self.store)

    def batch(self, indices, rng: np.random.Generator, generator: torch.Generator) -> TrainBatch:
        clean = torch.from_numpy(np.stack([augment(self.store[i], rng=rng)[0] for i in indices]))
        params = sample_noise_params(self.noise, self.camera, len(indices), K_range=self.K_range,
                                     ratio_range=self.ratio_range, generator=generator)
        x_t = add_noise(self.noise, clean, params, generator)
        return TrainBatch(clean, x_t, params.ratio, params.K)


class PairedSource:
    """Real (short, long) pairs: random crops, X_T = clip(short·r, 0, 1), K from the short's EXIF ISO."""

    def __init__(self, directory, camera: dict, patch_size: int):
        self.store, self.camera, self.size = PairStore(directory), camera, int(patch_size)

    def __len__(self) -> int:
        return len(self.store)

    def batch(self, indices, rng: np.random.Generator, generator: torch.Generator) -> TrainBatch:
        shorts, longs, ratios, Ks = [], [], [], []
        for i in indices:
            short, long = augment(*self.store.crop(i, self.size, rng), rng=rng)
            rec = self.store.pairs[i]
            shorts.append(np.clip(short * rec["ratio"], 0, 1))
            longs.append(long)
            ratios.append(float(rec["ratio"]))
            Ks.append(k_from_iso(rec["iso"], self.camera))
        as_t = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
        return TrainBatch(torch.from_numpy(np.stack(longs)), torch.from_numpy(np.stack(shorts)), as_t(ratios), as_t(Ks))


class PMNSource(PairedSource):
    """Real pairs with PMN's dark-shading correction and shot-noise augmentation (protocol §3).

    X_T = clip(x', 0, 1) as every ExposureDiffusion input; without dark-shading maps the
    correction is skipped (the shot-noise augmentation still runs).
    """

    SIGMAS = (0.25, 0.5)  # SNA strength, drawn once per batch

    def __init__(self, directory, camera: dict, patch_size: int, dark_shading=None):
        super().__init__(directory, camera, patch_size)
        self.dark_shading = DarkShading(dark_shading) if dark_shading else None

    def batch(self, indices, rng: np.random.Generator, generator: torch.Generator) -> TrainBatch:
        sigma = self.SIGMAS[int(rng.integers(len(self.SIGMAS)))]
        inputs, targets, ratios, Ks = [], [], [], []
        for i in indices:
            rec = self.store.pairs[i]
            short_dn, long_dn, (top, left) = self.store.crop_dn(i, self.size, rng)
            if self.dark_shading is not None:  # DSC on both frames in training
                short_dn = short_dn - self.dark_shading.window(rec["iso"], top, left, self.size, self.size)
                long_dn = long_dn - self.dark_shading.window(rec["long_iso"], top, left, self.size, self.size)
            s = self.store.scale(i)
            clean = np.clip(long_dn / s, 0, 1)
            a = sample_sna_strength(rec["ratio"], sigma, rng)
            x, y = shot_noise_augment(short_dn, clean, rec["ratio"], rec["iso"], s, a, rng)
            x, y = augment(np.clip(x, 0, 1), y, rng=rng)
            inputs.append(x)
            targets.append(y)
            ratios.append(float(rec["ratio"]))
            Ks.append(k_from_iso(rec["iso"], self.camera))
        as_t = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
        return TrainBatch(torch.from_numpy(np.stack(targets)), torch.from_numpy(np.stack(inputs)), as_t(ratios), as_t(Ks))


def make_source(data: str, directory, camera: dict, training: dict, patch_size: int | None, dark_shading=None):
    """The training data of a variant: a synthetic noise model on clean patches, or real pairs
    (as they are, or made more learnable as PMN does)."""
    if data in NOISE_MODELS:
        return SyntheticNoiseSource(directory, data, camera, training)
    if data in ("paired", "pmn") and not patch_size:
        raise ConfigError(f"{data} training needs patch_size (config patches.size)")
    if data == "paired":
        return PairedSource(directory, camera, patch_size)
    if data == "pmn":
        return PMNSource(directory, camera, patch_size, dark_shading)
    raise ConfigError(f"unknown training data {data!r}; known: {', '.join([*NOISE_MODELS, 'paired', 'pmn'])}")
