"""Paired real training data: SID (short, long) train pairs, packed once, cut at train time.

Each packed image is stored as int16 DN above black, not clipped at the black level (PMN's
dark-shading correction needs the negative values), in its own ``.npy`` (a long exposure shared
by several shorts is stored once) and opened memory-mapped, so a 512² window reads only that
window. ``meta.json`` records per pair the ratio, the short frame's EXIF ISO and exposure, and
the black/white levels, and how training windows are taken (``crops``):

- ``centre-patches`` (the original's paired data code, the default): the same fixed patches as
  the synthetic ground truths, the ``patch_size``² grid of each frame's centre ``crop_hw`` crop
  (paper: 8 of 512² from 1024×2048), input and target aligned: one training sample per
  (pair, patch), 280 × 8 = 2,240 per epoch;
- ``random``: one sample per pair, a window drawn anywhere in the frame at each visit (this
  project's behaviour before issue 13).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm import tqdm

from expodiff.data.sid import SidTrainPair
from expodiff.data.patches import centre_patches
from expodiff.errors import ConfigError, ExpodiffError
from expodiff.io.atomic import atomic_dir
from expodiff.io.raw import RawFrame, pack_dn, read_raw


def _to_dn(frame: RawFrame) -> np.ndarray:
    return np.rint(pack_dn(frame)).astype(np.int16)  # 14-bit DN minus black: exact in int16


CROPS = ("centre-patches", "random")


def build_pair_store(pairs: Iterable[SidTrainPair], out_dir, crops: str = "random", crop_hw=None,
                     patch_size: int | None = None) -> Path:
    """Write ``short_NNNN.npy``, ``long_NNNN.npy`` and ``meta.json`` into ``out_dir``.

    ``crops``: "centre-patches" (needs ``crop_hw`` and ``patch_size``: the fixed windows, the
    same in every frame, which must then all have one size) or "random" (module docstring)."""
    pairs = list(pairs)
    if not pairs:
        raise ExpodiffError(f"{out_dir}: no training pairs to store")
    if crops not in CROPS:
        raise ConfigError(f"paired.crops must be one of {', '.join(CROPS)}, got {crops!r}")
    if crops == "centre-patches" and (crop_hw is None or not patch_size):
        raise ConfigError("paired.crops centre-patches needs patches.crop and patches.size")
    out_dir = Path(out_dir)
    windows = None
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
            if crops == "centre-patches":
                here = centre_patches(*dn.shape[1:], crop_hw, patch_size, what=str(pair.short))
                if windows is not None and here != windows:
                    raise ExpodiffError(f"{pair.short}: packed size {dn.shape[1:]} differs from the first pair's: "
                                        "centre patches need frames of one size (or paired.crops: random)")
                windows = here
            np.save(tmp / f"short_{i:04d}.npy", dn)
            records.append(dict(short=f"short_{i:04d}.npy", long=f"long_{long_ids[pair.long]:04d}.npy",
                                short_file=str(pair.short), long_file=str(pair.long), ratio=int(pair.ratio),
                                iso=short.iso, exposure_time=short.exposure_time, long_iso=long_isos[pair.long],
                                black_level=short.black_level.tolist(), white_level=short.white_level))
        samples = len(records) * len(windows) if windows else len(records)  # training samples per epoch
        meta = {"count": len(records), "samples": samples, "crops": crops, "pairs": records}
        if windows is not None:
            meta |= {"patch_size": int(patch_size), "crop_hw": [int(v) for v in crop_hw], "windows": windows}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    return out_dir


def build_sid_pair_store(root, out_dir, selection: str = "shot-00", crops: str = "centre-patches", crop_hw=None,
                         patch_size: int | None = None, real: bool = False) -> Path:
    """The pair store of the SID tree at ``root`` (rule pair_store): the pairs of its train list
    that ``selection`` keeps (``expodiff.data.sid.select_paired_pairs``; with ``real``, the
    real SID, the shot-00 selection is checked against the original's bundled list), windowed
    as ``crops`` says."""
    from importlib.resources import files

    from expodiff.data.sid import PAIRED_REFERENCE, select_paired_pairs, sid_train_pairs

    reference = files("expodiff") / "resources" / PAIRED_REFERENCE if real else None
    pairs = select_paired_pairs(sid_train_pairs(root), selection, reference, Path(root) / "Sony_train_list.txt")
    return build_pair_store(pairs, out_dir, crops, crop_hw, patch_size)


class PairStore:
    """``len(store)``: training samples (pairs × fixed windows, or pairs with random crops);
    ``store.record(i)``: sample ``i``'s pair record; ``store.crop(i, size, rng)`` → (short,
    long) float32 (4, size, size) in [0, 1]."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        meta_path = self.directory / "meta.json"
        if not meta_path.is_file():
            raise ExpodiffError(f"{meta_path}: pair store missing (run build_pair_store)")
        meta = json.loads(meta_path.read_text())
        self.pairs = meta["pairs"]
        # fixed (top, left) windows of every pair, or None: a random window per visit
        self.windows = [tuple(w) for w in meta["windows"]] if meta.get("windows") else None
        self.patch_size = meta.get("patch_size")
        self._cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.pairs) * len(self.windows) if self.windows else len(self.pairs)

    def _pair(self, i: int) -> int:
        return i // len(self.windows) if self.windows else i

    def record(self, i: int) -> dict:
        """The pair record (ratio, iso, files, levels) of training sample ``i``."""
        return self.pairs[self._pair(i)]

    def _open(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = np.load(self.directory / name, mmap_mode="r")
        return self._cache[name]

    def scale(self, i: int) -> np.ndarray:
        """(4,1,1) float32 white − black per channel of sample ``i``: DN above black → [0, 1]."""
        rec = self.record(i)
        return (np.float32(rec["white_level"]) - np.asarray(rec["black_level"], np.float32))[:, None, None]

    def crop_dn(self, i: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """Sample ``i``'s size² window in DN above black (unclipped), and its position: its
        fixed window (``rng`` unused), or one drawn from ``rng``."""
        rec = self.record(i)
        short, long = self._open(rec["short"]), self._open(rec["long"])
        h, w = short.shape[1:]
        if self.windows:
            if size != self.patch_size:
                raise ConfigError(f"{self.directory}: the pair store holds {self.patch_size}² centre patches but "
                                  f"training asks for {size}² (patches.size): rebuild the store")
            top, left = self.windows[i % len(self.windows)]
        else:
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
