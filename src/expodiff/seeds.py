"""Every seed derived from a run's seed, in one place (the numbers are part of the results:
changing a formula here changes every trained network and every evaluated image).

- training iteration ``it``: torch generator ``seed·1 000 003 + it`` (noise, re-exposure),
  Python ``random.Random("seed-it")`` (the sampled exposure ladder), numpy ``[seed, epoch]``
  (the epoch's order) and ``[seed, epoch, pos]`` (crops, flips);
- evaluation of image ``i`` at ``n`` steps: torch generator ``seed·1 000 003 + i·101 + n``.
"""

from __future__ import annotations

import random

import numpy as np

STRIDE = 1_000_003  # a prime: runs of different seeds do not share derived seeds in practice
IMAGE_STRIDE = 101  # evaluation: images apart, so the step counts (≤ 100) of one image never collide


def derive_seed(seed: int, offset: int = 0) -> int:
    """``seed·1 000 003 + offset``: the one formula every torch generator seed comes from."""
    return int(seed) * STRIDE + int(offset)


def training_seed(seed: int, it: int) -> int:
    """Training iteration ``it`` (0-based)."""
    return derive_seed(seed, it)


def evaluation_seed(seed: int, image: int, n_steps: int) -> int:
    """Evaluation of image ``image`` (its row in the evaluation index) with ``n_steps`` steps."""
    return derive_seed(seed, int(image) * IMAGE_STRIDE + int(n_steps))


def training_rng(seed: int, it: int) -> random.Random:
    """Python randomness of training iteration ``it`` (ExposureDiffusion's exposure ladder)."""
    return random.Random(f"{seed}-{it}")


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the ``n`` training samples in ``epoch``."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_rng(seed: int, epoch: int, pos: int) -> np.random.Generator:
    """Numpy randomness of the batch at position ``pos`` of ``epoch`` (crops, flips, PMN's augmentation)."""
    return np.random.default_rng([seed, epoch, pos])
