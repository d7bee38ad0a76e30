"""The SID Sony layout (PROTOCOL §1): ``Sony/{short,long}/{scene}_{shot:02d}_{exposure}s.{ext}``.

Ratios come from the exposures in the file names, as in SID and the original code:
``min(int(T_long / T_short), 300)``, so ``0.033s`` against ``10s`` (303) becomes 300.
"""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Iterable, NamedTuple

from expodiff.data.layout import EvalPair
from expodiff.errors import ConfigError, ExpodiffError
from expodiff.io.raw import RAW_SUFFIXES

CAMERA = "SonyA7S2"
MAX_RATIO = 300
# Short exposure of each evaluation ratio (shot 00), and the long exposures SID uses.
SHORT_EXPOSURE_BY_RATIO = {100: "0.1", 250: "0.04", 300: "0.033"}
LONG_EXPOSURES = ("10", "30")
_NAME = re.compile(r"^(?P<scene>\d+)_(?P<shot>\d+)_(?P<exposure>\d+(?:\.\d+)?)s$")


class SidTrainPair(NamedTuple):
    """One paired-real training sample of ``Sony_train_list.txt``."""

    short: Path
    long: Path
    ratio: int  # min(int(T_long / T_short), 300) from the file names
    iso: int  # from the list file's ``ISO{n}`` field


def find_raw(folder: Path, stem: str) -> Path | None:
    """The raw file ``folder/stem.<raw extension>`` (any case), None if absent; error if ambiguous."""
    hits = sorted(p for p in folder.glob(f"{stem}.*") if p.suffix.lower() in RAW_SUFFIXES)
    if len(hits) > 1:
        raise ExpodiffError(f"{folder}: several raw files for {stem}: {[p.name for p in hits]}")
    return hits[0] if hits else None


def exposure_from_name(path: Path) -> Fraction:
    """Exposure time written in a SID file name (``10185_00_0.1s.ARW`` → 1/10), exact."""
    m = _NAME.match(Path(path).stem)
    if not m:
        raise ExpodiffError(f"{path}: not a SID file name ({{scene}}_{{shot}}_{{exposure}}s.ext)")
    return Fraction(m["exposure"])  # Fraction("0.04") is exact, so 10/0.04 is 250, not 249.99…


def sid_ratio(short: Path, long: Path) -> int:
    return min(int(exposure_from_name(long) / exposure_from_name(short)), MAX_RATIO)


def sid_eval_pairs(
    root: str | os.PathLike, scenes: Iterable[str], ratios: Iterable[int] = (100, 250, 300)
) -> list[EvalPair]:
    """Evaluation pairs, scene-major: input ``{scene}_00_{0.1|0.04|0.033}s``, gt ``{scene}_00_{10|30}s``.

    ``scenes`` are SID ids as strings ("10185"). Each returned ratio is computed from the file names.
    """
    root = Path(root)
    pairs = []
    for scene in scenes:
        scene = str(scene)
        for ratio in ratios:
            if ratio not in SHORT_EXPOSURE_BY_RATIO:
                raise ConfigError(f"SID ratio {ratio!r}: expected one of {sorted(SHORT_EXPOSURE_BY_RATIO)}")
            short_stem = f"{scene}_00_{SHORT_EXPOSURE_BY_RATIO[ratio]}s"
            short = find_raw(root / "Sony" / "short", short_stem)
            if short is None:
                raise ExpodiffError(f"SID: no raw file Sony/short/{short_stem}.* under SID root {root}")
            long = _find_long(root, scene)
            pairs.append(EvalPair("sid", CAMERA, scene, sid_ratio(short, long), short, long))
    return pairs


def _find_long(root: Path, scene: str) -> Path:
    for exposure in LONG_EXPOSURES:
        found = find_raw(root / "Sony" / "long", f"{scene}_00_{exposure}s")
        if found is not None:
            return found
    pattern = "|".join(LONG_EXPOSURES)
    raise ExpodiffError(f"SID: no raw file Sony/long/{scene}_00_{{{pattern}}}s.* under SID root {root}")


def sid_train_pairs(root: str | os.PathLike) -> list[SidTrainPair]:
    """All (short, long, ratio, iso) lines of ``Sony_train_list.txt``, paths resolved under ``root``."""
    root = Path(root)
    list_file = root / "Sony_train_list.txt"
    if not list_file.is_file():
        raise ExpodiffError(f"{list_file}: SID train list not found (SID root {root})")
    pairs = []
    for lineno, line in enumerate(list_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) < 3 or not re.fullmatch(r"ISO\d+", fields[2]):
            raise ExpodiffError(f"{list_file}:{lineno}: expected 'SHORT LONG ISO<n> F<n>', got {line!r}")
        short, long = (_listed_file(root, f, list_file, lineno) for f in fields[:2])
        pairs.append(SidTrainPair(short, long, sid_ratio(short, long), int(fields[2][3:])))
    if not pairs:
        raise ExpodiffError(f"{list_file}: lists no training pairs")
    return pairs


def sid_train_gt_files(root: str | os.PathLike) -> list[Path]:
    """The unique long exposures of ``Sony_train_list.txt`` (sorted): the synthetic-noise ground truths."""
    return sorted({p.long for p in sid_train_pairs(root)})


def _listed_file(root: Path, entry: str, list_file: Path, lineno: int) -> Path:
    path = root / Path(entry.removeprefix("./"))  # list entries look like ./Sony/long/X.ARW
    if not path.is_file():
        raise ExpodiffError(f"{list_file}:{lineno}: listed file {path} does not exist")
    return path


# --- the paired-real training selection (PROTOCOL §1) --------------------------------------

SELECTIONS = ("shot-00", "all-listed")
# the original's paired training list (resources/SOURCES.md)
PAIRED_REFERENCE = "sid_paired_train_280.txt"


def read_pair_list(path) -> set[tuple[str, str]]:
    """(short name, long name) per line of a pair list such as ``sid_paired_train_280.txt``
    (``#`` lines are comments)."""
    lines = Path(path).read_text().splitlines()
    return {tuple(line.split()[:2]) for line in lines if line.strip() and not line.startswith("#")}


def select_paired_pairs(pairs: list[SidTrainPair], selection: str = "shot-00", reference=None,
                        list_file="Sony_train_list.txt") -> list[SidTrainPair]:
    """The paired-real training pairs among ``Sony_train_list.txt``'s.

    ``selection``: "shot-00" (the original's: the first shot of every scene and exposure, 280
    pairs of the real list) or "all-listed" (every burst frame, ≈6.7× more; this project's
    behaviour before issue 13). ``reference``: a pair list (the original's, bundled) that the
    shot-00 selection must equal, by file name; given when the data is the real SID, where a
    difference means another release of the list. Selecting nothing is an error naming
    ``list_file``."""
    if selection not in SELECTIONS:
        raise ConfigError(f"paired.selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
    chosen = pairs if selection == "all-listed" else [p for p in pairs if _NAME.match(p.short.stem)
                                                      and _NAME.match(p.short.stem)["shot"] == "00"]
    if not chosen:
        raise ExpodiffError(f"{list_file}: paired.selection {selection} selects no pairs "
                            f"(of {len(pairs)} listed; shot-00 keeps names like 00001_00_0.1s)")
    if reference is not None and selection == "shot-00":
        want, got = read_pair_list(reference), {(p.short.name, p.long.name) for p in chosen}
        if got != want:
            missing, extra = sorted(want - got), sorted(got - want)
            raise ExpodiffError(
                f"{list_file}: the shot-00 pairs differ from the original's paired training list {reference}: "
                f"{len(missing)} of its {len(want)} missing (e.g. {' '.join(missing[0]) if missing else '-'}), "
                f"{len(extra)} not in it (e.g. {' '.join(extra[0]) if extra else '-'}); "
                "check the SID download, or set paired.selection: all-listed")
    return chosen
