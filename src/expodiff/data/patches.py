"""Training patch store for synthetic-noise training (PROTOCOL §1–2).

Each long exposure is packed, centre-cropped to ``crop_hw`` (paper: 1024×2048 packed pixels)
and cut into non-overlapping ``patch_size``² patches (paper: 512, 8 per image, 1288 in all).
Patches are stored as uint16 DN above black (exact for 14-bit raw with integer black levels)
in one ``patches.npy`` read memory-mapped; ``PatchStore[i]`` divides by (white − black), which
gives exactly what ``expodiff.io.raw.pack`` gives for the same pixels.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tqdm import tqdm

from expodiff.io.atomic import atomic_dir
from expodiff.errors import ConfigError, ExpodiffError
from expodiff.io.raw import pack, read_raw


def centre_patches(h: int, w: int, crop_hw: Sequence[int], patch_size: int, what="packed image") -> list[tuple[int, int]]:
    """(top, left) in an ``h``×``w`` packed image of each non-overlapping ``patch_size``² patch
    of its centre ``crop_hw`` crop, row by row (paper: 8 patches of 512² from 1024×2048)."""
    crop_h, crop_w = (int(v) for v in crop_hw)
    if patch_size <= 0 or crop_h % patch_size or crop_w % patch_size:
        raise ConfigError(f"patch_size {patch_size} must be positive and divide crop_hw {crop_h}×{crop_w}")
    if h < crop_h or w < crop_w:
        raise ExpodiffError(f"{what}: packed image {h}×{w} is smaller than crop_hw {crop_h}×{crop_w}")
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    return [(top + y, left + x) for y in range(0, crop_h, patch_size) for x in range(0, crop_w, patch_size)]


def build_patch_store(
    gt_files: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    patch_size: int,
    crop_hw: Sequence[int],
) -> Path:
    """Write ``out_dir/patches.npy`` (N, 4, p, p) uint16 and ``out_dir/meta.json``; return ``out_dir``."""
    files = [Path(f) for f in gt_files]
    crop_h, crop_w = (int(v) for v in crop_hw)
    if not files:
        raise ExpodiffError(f"{out_dir}: no ground-truth files to cut into patches")
    per_image = len(centre_patches(crop_h, crop_w, crop_hw, patch_size))
    out_dir = Path(out_dir)
    records = []
    with atomic_dir(out_dir, marker="meta.json") as tmp:
        store = np.lib.format.open_memmap(
            tmp / "patches.npy", mode="w+", dtype=np.uint16, shape=(len(files) * per_image, 4, patch_size, patch_size)
        )
        for n, path in enumerate(tqdm(files, desc=f"patches {out_dir.name}", unit="image")):
            frame = read_raw(path)
            img = pack(frame)
            positions = centre_patches(*img.shape[1:], crop_hw, patch_size, what=str(path))
            # pack() is (DN − black) / (white − black) in float32; undoing it and rounding is exact.
            scale = (np.float32(frame.white_level) - frame.black_level)[:, None, None]
            source = dict(
                file=str(path),
                iso=frame.iso,
                exposure_time=frame.exposure_time,
                black_level=frame.black_level.tolist(),
                white_level=frame.white_level,
            )
            for k, (top, left) in enumerate(positions):
                window = img[:, top : top + patch_size, left : left + patch_size]
                store[n * per_image + k] = np.rint(window * scale).astype(np.uint16)
                records.append(dict(source, top=top, left=left))  # position in the packed image
        store.flush()
        del store  # close the memmap before the directory is renamed
        meta = dict(
            patch_size=patch_size,
            crop_hw=[crop_h, crop_w],
            count=len(records),
            dtype="uint16",
            units="DN above black; divide by (white_level - black_level) per channel",
            channels=["R", "G1", "B", "G2"],
            patches=records,
        )
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    return out_dir


class PatchStore:
    """Read a patch store: ``len(store)``, ``store[i]`` → float32 (4, p, p) in [0, 1], ``store.meta``.

    The array is opened memory-mapped on first access (also after pickling into DataLoader workers).
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        meta_path, self._npy = self.directory / "meta.json", self.directory / "patches.npy"
        for f in (meta_path, self._npy):
            if not f.is_file():
                raise ExpodiffError(f"{f}: patch store file missing (run build_patch_store)")
        self.meta = json.loads(meta_path.read_text())
        patches = self.meta["patches"]
        # (N, 4, 1, 1) float32 divisor, so store[i] matches pack() to the last bit.
        self._scale = np.array(
            [np.float32(p["white_level"]) - np.asarray(p["black_level"], np.float32) for p in patches], np.float32
        )[:, :, None, None]
        self._data = None
        n = len(self._array())
        if n != len(patches):
            raise ExpodiffError(f"{self._npy}: holds {n} patches but meta.json describes {len(patches)}")

    def _array(self) -> np.ndarray:
        if self._data is None:
            self._data = np.load(self._npy, mmap_mode="r")
        return self._data

    def __len__(self) -> int:
        return len(self._scale)

    def __getitem__(self, i: int) -> np.ndarray:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"patch {i} out of range for {n} patches in {self.directory}")
        return self._array()[i].astype(np.float32) / self._scale[i]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_data": None}  # memmaps are reopened, not pickled
