"""The ELD layout (PROTOCOL §1): ``{camera}/scene-{k}/IMG_{id:04d}.{ext}``, evaluation only.

Per scene, ids 1, 6, 11, 16 are long-exposure references; ids 4, 9, 14 are ×100 inputs and
5, 10, 15 ×200 inputs. Each input's ground truth is the nearest reference id (as the original
ELD code: ``argmin |id − refs|``). The ratio is read from EXIF as
(ISO·t) of the reference / (ISO·t) of the input; it need not be a whole number.

What the evaluation does with that EXIF ratio (config ``evaluation.eld_ratio``,
``input_ratios``): ``original``, as the original code, multiplies the input by the EXIF ratio
itself and runs the exposure ladder (and the network's ratio conditioning) at ``int(ratio)``,
Python's truncation (99.6 → 99); ``rounded`` rounds it once and uses the whole number for both.
Either way tables and CSVs group the pair by its nominal ratio (×100 or ×200 of its input id).
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
ELD_RATIO_MODES = ("original", "rounded")  # config evaluation.eld_ratio


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
                pairs.append(EvalPair("eld", camera, folder.name, ratio, short, gt, exposure_ratio=exif_ratio))
    return pairs


def eld_scenes(root: str | os.PathLike, camera: str) -> list[int]:
    """The numbers k of every ``scene-k`` folder of ``root/camera`` (a camera's own test pairs,
    whose scenes are not listed in the config)."""
    folder = Path(root) / camera
    scenes = sorted(int(d.name[len("scene-"):]) for d in folder.glob("scene-*")
                    if d.is_dir() and d.name[len("scene-"):].isdigit())
    if not scenes:
        raise ExpodiffError(f"{folder}: no scene-N folders (a camera's test pairs: scene-*/IMG_*.*, ELD's layout)")
    return scenes


def input_ratios(exposure_ratio: float, mode: str = "original") -> tuple[float, int]:
    """(amplification, ladder ratio) of an input whose measured exposure ratio is ``exposure_ratio``.

    ``original``: the input is multiplied by the ratio itself, the exposure ladder runs to
    ``int(ratio)`` (the original's ``int(self.ratio)``: truncation); ``rounded``: both are
    ``round(ratio)``. A whole ratio (SID's, from file names) gives the same under both.
    """
    check_eld_ratio_mode(mode)
    if mode == "original":
        return float(exposure_ratio), int(exposure_ratio)
    return float(round(exposure_ratio)), round(exposure_ratio)


def check_eld_ratio_mode(mode: str) -> None:
    if mode not in ELD_RATIO_MODES:
        raise ConfigError(f"evaluation.eld_ratio: unknown mode {mode!r}; choose one of {', '.join(ELD_RATIO_MODES)}")


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
