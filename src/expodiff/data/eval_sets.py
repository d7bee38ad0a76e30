"""Pack an evaluation set: one ``.npy`` per packed image plus ``index.csv`` (PROTOCOL §7).

Images are stored as packed by ``expodiff.io.raw.pack`` (float32, 4×H×W, in [0, 1]) and are NOT
amplified; evaluation multiplies the input by the ratio. SID uses a 512×512 centre crop of the
packed image, ELD the full image. The index records two ratios per input: ``ratio``, the nominal
whole one the results are grouped by, and ``exposure_ratio``, the measured one (ELD: from EXIF,
need not be whole) that inference derives its amplification and exposure ladder from
(``expodiff.data.eld.input_ratios``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from tqdm import tqdm

from expodiff.data.layout import EvalPair
from expodiff.errors import ConfigError, ExpodiffError
from expodiff.io.atomic import atomic_dir
from expodiff.io.raw import pack, read_raw

INDEX_COLUMNS = [
    "dataset", "camera", "scene", "ratio", "exposure_ratio", "iso", "exposure_time",
    "input_npy", "gt_npy", "input_file", "gt_file",
]  # fmt: skip


def center_crop(img: np.ndarray, size: int | None, path: str | os.PathLike = "") -> np.ndarray:
    """Centre crop of side ``size`` (packed pixels) of a (C, H, W) image; None keeps the full image."""
    if size is None:
        return img
    h, w = img.shape[-2:]
    if size > h or size > w:
        raise ExpodiffError(f"{path}: packed image {h}×{w} is smaller than the {size}×{size} crop")
    top, left = h // 2 - size // 2, w // 2 - size // 2  # as the original: centre ± size/2
    return np.ascontiguousarray(img[..., top : top + size, left : left + size])


def pack_eval_set(pairs: Iterable[EvalPair], out_dir: str | os.PathLike, crop: int | None = None) -> Path:
    """Pack each pair's input and ground truth to ``.npy`` and write ``out_dir/index.csv``.

    Ground truths shared by several inputs (SID: one long exposure for ×100/×250/×300) are packed
    once. ISO and exposure time in the index are the input's EXIF values. Returns ``out_dir``.
    """
    pairs = list(pairs)
    if not pairs:
        raise ExpodiffError(f"{out_dir}: no evaluation pairs to pack")
    if crop is not None and (not isinstance(crop, int) or crop <= 0):
        raise ConfigError(f"crop: expected a positive number of packed pixels or None, got {crop!r}")
    out_dir = Path(out_dir)
    rows, gt_done = [], {}
    with atomic_dir(out_dir, marker="index.csv") as tmp:
        for pair in tqdm(pairs, desc=f"pack {out_dir.name}", unit="pair"):
            frame = read_raw(pair.input)
            input_npy = _save(tmp, "input", pair, pair.input, center_crop(pack(frame), crop, pair.input))
            if pair.gt not in gt_done:
                gt_done[pair.gt] = _save(tmp, "gt", pair, pair.gt, center_crop(pack(read_raw(pair.gt)), crop, pair.gt))
            rows.append(
                dict(
                    dataset=pair.dataset, camera=pair.camera, scene=pair.scene, ratio=int(pair.ratio),
                    exposure_ratio=float(pair.ratio if pair.exposure_ratio is None else pair.exposure_ratio),
                    iso=frame.iso, exposure_time=frame.exposure_time,
                    input_npy=input_npy, gt_npy=gt_done[pair.gt],
                    input_file=str(pair.input), gt_file=str(pair.gt),
                )
            )  # fmt: skip
        pd.DataFrame(rows, columns=INDEX_COLUMNS).to_csv(tmp / "index.csv", index=False)
    return out_dir


def _save(root: Path, kind: str, pair: EvalPair, source: Path, img: np.ndarray) -> str:
    """Save under ``{kind}/{camera}/{scene}/{file stem}.npy``; return the path relative to ``root``."""
    rel = Path(kind, pair.camera, pair.scene, Path(source).stem + ".npy")
    if (root / rel).exists():
        raise ExpodiffError(f"{source}: two evaluation files map to the same packed name {rel}")
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    np.save(root / rel, img.astype(np.float32, copy=False))
    return rel.as_posix()


def read_eval_index(out_dir: str | os.PathLike) -> pd.DataFrame:
    """``index.csv`` of a packed evaluation set, with ``input_npy``/``gt_npy`` made absolute."""
    out_dir = Path(out_dir).resolve()
    index = out_dir / "index.csv"
    if not index.is_file():
        raise ExpodiffError(f"{index}: no evaluation index (run pack_eval_set first)")
    df = pd.read_csv(index, dtype={"scene": str, "camera": str, "dataset": str})
    missing = [c for c in INDEX_COLUMNS if c not in df.columns]
    if missing:
        raise ExpodiffError(f"{index}: missing columns {missing} (packed by an older version: pack it again)")
    for col in ("input_npy", "gt_npy"):
        df[col] = [str(out_dir / p) for p in df[col]]
    return df


def pack_dataset(kind: str, root, camera: str, scenes, ratios, out_dir, crop: int | None = None) -> Path:
    """Select a dataset's evaluation pairs by its layout (``sid`` or ``eld``) and pack them.
    ``scenes`` None (ELD layout): every scene-N folder of ``root/camera``."""
    from expodiff.data.eld import eld_eval_pairs, eld_scenes
    from expodiff.data.sid import sid_eval_pairs

    if kind == "sid":
        pairs = sid_eval_pairs(root, [str(s) for s in scenes], [int(r) for r in ratios])
    elif kind == "eld":
        scenes = eld_scenes(root, camera) if scenes is None else scenes
        pairs = eld_eval_pairs(root, camera, [int(s) for s in scenes], [int(r) for r in ratios])
    else:
        raise ConfigError(f"unknown evaluation dataset kind {kind!r}; known: sid, eld")
    return pack_eval_set(pairs, out_dir, crop=crop)
