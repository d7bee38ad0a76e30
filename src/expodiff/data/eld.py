"""The ELD layout (PROTOCOL §1): ``{camera}/scene-{k}/IMG_{id:04d}.{ext}``, evaluation only.

Per scene, ids 1, 6, 11, 16 are long-exposure references; ids 4, 9, 14 are ×100 inputs and
5, 10, 15 ×200 inputs. Each input's ground truth is the nearest reference id (as the original
ELD code: ``argmin |id − refs|``). The ratio is read from EXIF as
(ISO·t) of the reference / (ISO·t) of the input.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from expodiff.data.layout import EvalPair
from expodiff.data.sid import find_raw
from expodiff.errors import ConfigError, ExpodiffError
from expodiff.io.raw import read_exif

REFERENCE_IDS = (1, 6, 11, 16)
INPUT_IDS_BY_RATIO = {100: (4, 9, 14), 200: (5, 10, 15)}
RATIO_TOLERANCE = 0.05  # EXIF ratio may differ from the nominal one by at most 5 %


def nearest_reference(input_id: int) -> int:
    return min(REFERENCE_IDS, key=lambda ref: abs(ref - input_id))


def eld_eval_pairs(
    root: str | os.PathLike, camera: str, scenes: Iterable[int], ratios: Iterable[int] = (100, 200)
) -> list[EvalPair]:
    """Evaluation pairs, scene-major then ratio then input id; ``root`` holds the camera folders."""
    root = Path(root)
    pairs = []
    for scene in scenes:
        folder = root / camera / f"scene-{int(scene)}"
        for ratio in ratios:
            if ratio not in INPUT_IDS_BY_RATIO:
                raise ConfigError(f"ELD ratio {ratio!r}: expected one of {sorted(INPUT_IDS_BY_RATIO)}")
            for input_id in INPUT_IDS_BY_RATIO[ratio]:
                short = _find(folder, input_id)
                gt = _find(folder, nearest_reference(input_id))
                exif_ratio = _exif_ratio(short, gt)
                if abs(exif_ratio - ratio) > RATIO_TOLERANCE * ratio:
                    raise ExpodiffError(
                        f"{short}: EXIF ratio to {gt.name} is {exif_ratio:.2f}, "
                        f"not the nominal ×{ratio} of id {input_id} (tolerance {RATIO_TOLERANCE:.0%})"
                    )
                pairs.append(EvalPair("eld", camera, folder.name, round(exif_ratio), short, gt))
    return pairs


def _find(folder: Path, image_id: int) -> Path:
    stem = f"IMG_{image_id:04d}"
    found = find_raw(folder, stem)
    if found is None:
        raise ExpodiffError(f"ELD: no raw file {folder}/{stem}.* (.ARW, .nef, .CR2, .dng, ...)")
    return found


def _exif_ratio(short: Path, gt: Path) -> float:
    iso_in, t_in = read_exif(short)
    iso_gt, t_gt = read_exif(gt)
    return (iso_gt * t_gt) / (iso_in * t_in)
