"""The training feed: the CPU part of each iteration's batch made ahead, in DataLoader workers.

Training iteration ``it`` reads the samples its epoch's order puts at its position and draws
its crops and flips from ``seeds.batch_rng(seed, epoch, pos)`` (``Source.load``): the result
depends on ``(seed, it)`` alone, so it is the same in the training process (``workers = 0``,
the CPU-only code path) or in any of N workers, and a resumed run's first batch is the one an
uninterrupted run would have made there. The noise is synthesised afterwards, on the device,
from the iteration's torch generator (``Source.finish``).

With CUDA the loaded tensors are pinned (page-locked) so that ``finish`` copies them
asynchronously; each worker runs one CPU thread (they only read memory-mapped patches and
flip them) and keeps ``prefetch`` batches ready, so the device never waits for the disk.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from expodiff import seeds

PREFETCH = 4  # batches each worker keeps ready


class IterationBatches(Dataset):
    """Item ``it``: the loaded (CPU) part of training iteration ``it``'s batch."""

    def __init__(self, source, seed: int, batch_size: int):
        self.source, self.seed, self.batch_size = source, int(seed), int(batch_size)
        self.per_epoch = math.ceil(len(source) / self.batch_size)
        self._order: tuple[int, np.ndarray] | None = None  # (epoch, its order), kept per process

    def order(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, seeds.epoch_order(self.seed, epoch, len(self.source)))
        return self._order[1]

    def __getitem__(self, it: int) -> dict:
        epoch, pos = divmod(int(it), self.per_epoch)
        indices = self.order(epoch)[pos * self.batch_size : (pos + 1) * self.batch_size]
        return self.source.load(indices, seeds.batch_rng(self.seed, epoch, pos))


def _one_thread(worker_id: int) -> None:
    torch.set_num_threads(1)  # the training process's threads run the network


def iteration_feed(source, seed: int, batch_size: int, start: int, end: int, workers: int = 0,
                   pin_memory: bool = False) -> DataLoader:
    """The loaded batches of iterations ``start .. end-1``, in order, made by ``workers``
    processes (0: in this process, when asked for)."""
    workers = int(workers)
    return DataLoader(
        IterationBatches(source, seed, batch_size),
        batch_size=None,  # an item is a whole batch already
        sampler=range(start, end),
        num_workers=workers,
        pin_memory=pin_memory,
        worker_init_fn=_one_thread if workers else None,
        prefetch_factor=PREFETCH if workers else None,
        persistent_workers=False,
    )
