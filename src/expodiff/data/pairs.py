"""Paired real training data: SID (short, long) train pairs, packed once, cropped at train time.

Each packed image is stored as int16 DN above black, not clipped at the black level (PMN's
dark-shading correction needs the negative values), in its own ``.npy`` (a long exposure shared
by several shorts is stored once) and opened memory-mapped, so a random 512² crop reads only
that window. ``meta.json`` records per pair the ratio, the short frame's EXIF ISO and exposure,
and the black/white levels.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm import tqdm

from expodiff.data.sid import SidTrainPair
from expodiff.errors import ExpodiffError
from expodiff.io.atomic import atomic_dir
from expodiff.io.raw import RawFrame, pack_dn, read_raw


def _to_dn(frame: RawFrame) -> np.ndarray:
    return np.rint(pack_dn(frame)).astype(np.int16)  # 14-bit DN minus black: exact in int16


def build_pair_store(pairs: Iterable[SidTrainPair], out_dir) -> Path:
    """Write ``short_NNNN.npy``, ``long_NNNN.npy`` and ``meta.json`` into ``out_dir``."""
    pairs = list(pairs)
    if not pairs:
        raise ExpodiffError(f"{out_dir}: no training pairs to store")
    out_dir = Path(out_dir)
    records, long_ids = [], {}
    with atomic_dir(out_dir, marker="meta.json") as tmp:
        long_isos = {}
        for i, pair in enumerate(tqdm(pairs, desc=f"pairs {out_dir.name}", unit="pair")):
            short = read_raw(pair.short)
            if pair.long not in long_ids:
                long_ids[pair.long] = len(long_ids)
                long_frame = read_raw(pair.long)
                long_isos[pair.long] = long_frame.iso
                np.save(tmp / f"long_{long_ids[pair.long]:04d}.npy", _to_dn(long_frame))
            dn = _to_dn(short)
            long_shape = np.load(tmp / f"long_{long_ids[pair.long]:04d}.npy", mmap_mode="r").shape
            if dn.shape != long_shape:
                raise ExpodiffError(f"{pair.short}: packed size {dn.shape} differs from its ground truth {pair.long} {long_shape}")
            np.save(tmp / f"short_{i:04d}.npy", dn)
            records.append(dict(short=f"short_{i:04d}.npy", long=f"long_{long_ids[pair.long]:04d}.npy",
                                short_file=str(pair.short), long_file=str(pair.long), ratio=int(pair.ratio),
                                iso=short.iso, exposure_time=short.exposure_time, long_iso=long_isos[pair.long],
                                black_level=short.black_level.tolist(), white_level=short.white_level))
        (tmp / "meta.json").write_text(json.dumps({"count": len(records), "pairs": records}, indent=1))
    return out_dir


class PairStore:
    """``len(store)``; ``store.crop(i, size, rng)`` → (short, long) float32 (4, size, size) in [0, 1]."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        meta = self.directory / "meta.json"
        if not meta.is_file():
            raise ExpodiffError(f"{meta}: pair store missing (run build_pair_store)")
        self.pairs = json.loads(meta.read_text())["pairs"]
        self._cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def _open(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = np.load(self.directory / name, mmap_mode="r")
        return self._cache[name]

    def scale(self, i: int) -> np.ndarray:
        """(4,1,1) float32 white − black per channel: DN above black → [0, 1]."""
        rec = self.pairs[i]
        return (np.float32(rec["white_level"]) - np.asarray(rec["black_level"], np.float32))[:, None, None]

    def crop_dn(self, i: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """A random size² window of pair ``i`` in DN above black (unclipped), and its position."""
        rec = self.pairs[i]
        short, long = self._open(rec["short"]), self._open(rec["long"])
        h, w = short.shape[1:]
        if h < size or w < size:
            raise ExpodiffError(f"{rec['short_file']}: packed image {h}×{w} is smaller than the training patch {size}")
        top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        window = (slice(None), slice(top, top + size), slice(left, left + size))
        return short[window].astype(np.float32), long[window].astype(np.float32), (top, left)

    def crop(self, i: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(short, long) float32 (4, size, size) in [0, 1], as ``expodiff.io.raw.pack`` gives them."""
        short, long, _ = self.crop_dn(i, size, rng)
        scale = self.scale(i)
        return np.clip(short / scale, 0, 1), np.clip(long / scale, 0, 1)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cache": {}}
