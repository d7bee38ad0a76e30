"""Records shared by the dataset layouts (SID, ELD)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EvalPair:
    """One evaluation: a short exposure, its ground truth and the exposure ratio between them."""

    dataset: str  # "sid" or "eld"
    camera: str  # e.g. "SonyA7S2"
    scene: str  # SID scene id ("10185") or ELD scene ("scene-1")
    ratio: int  # nominal exposure ratio, what tables group by (SID: from the file names; ELD: of the input id)
    input: Path  # short exposure raw file
    gt: Path  # long exposure raw file
    # the measured ratio (ELD: EXIF ISO·t of the reference / of the input, need not be whole);
    # None: exactly ``ratio``. expodiff.data.eld.input_ratios turns it into what inference uses
    exposure_ratio: float | None = None
