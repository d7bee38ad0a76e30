"""Read Bayer raw files (rawpy + exifread), pack them to 4 channels, write DNGs (pidng).

Packing follows PROTOCOL §2: the visible mosaic becomes 4 planes in R, G1, B, G2 order, where
G1 is the green on R's mosaic row and G2 the green on B's row (so row noise is shared by R/G1
and by B/G2), each minus its black level and divided by (white − black), clipped to [0, 1].
Positions come from rawpy's ``raw_pattern``, so RGGB, BGGR, GRBG and GBRG files of one scene
pack identically.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

# rawpy, exifread and pidng are imported where a file is read or written: training and
# evaluation on packed arrays (a GPU machine's bare image, say) need none of them
from expodiff.errors import RawReadError
from expodiff.io.atomic import atomic_path

# rawpy / LibRaw colour indices in ``raw_pattern``: 0 = R, 1 = G, 2 = B, 3 = second G.
_R, _B, _GREENS = 0, 2, (1, 3)

# exifread names a tag "<IFD> <name>". Cameras put ISO and exposure time in the EXIF sub-IFD;
# TIFF/EP-style writers (and DNGs that skip the sub-IFD) put them in IFD0 ("Image").
_ISO_TAGS = ("EXIF ISOSpeedRatings", "Image ISOSpeedRatings")
# EXIF 2.3 writes 65535 in ISOSpeedRatings when the ISO does not fit; the real value is here.
_ISO_OVERFLOW_TAGS = ("EXIF RecommendedExposureIndex", "EXIF ISOSpeed")
_EXPOSURE_TAGS = ("EXIF ExposureTime", "Image ExposureTime")


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no scalar ==; identity is enough
class RawFrame:
    """One raw capture as read from disk (arrays are read-only)."""

    mosaic: np.ndarray  # uint16 (H, W): rawpy ``raw_image_visible``
    black_level: np.ndarray  # float32 (4,): per packed channel R, G1, B, G2, in DN
    white_level: int  # saturation DN
    raw_pattern: np.ndarray  # int (2, 2): rawpy colour indices of the top-left 2×2 block
    iso: float | None  # EXIF ISO (None only when read with require_exif=False and absent)
    exposure_time: float | None  # EXIF exposure time, seconds (likewise)
    path: Path


def bayer_offsets(raw_pattern: np.ndarray, path: str | os.PathLike = "") -> list[tuple[int, int]]:
    """(row, col) offsets inside the 2×2 Bayer cell of R, G1, B, G2 (G1 on R's row)."""
    pattern = np.asarray(raw_pattern)
    if pattern.shape != (2, 2):
        raise RawReadError(f"{path}: CFA pattern {pattern.tolist()} is not a 2×2 Bayer pattern")
    where = {int(c): (y, x) for (y, x), c in np.ndenumerate(pattern) if c in (_R, _B)}
    greens = [(y, x) for (y, x), c in np.ndenumerate(pattern) if c in _GREENS]
    if set(where) != {_R, _B} or len(greens) != 2 or where[_R][0] == where[_B][0]:
        raise RawReadError(f"{path}: CFA pattern {pattern.tolist()} is not a Bayer R/G/G/B pattern")
    r, b = where[_R], where[_B]
    g1 = next(g for g in greens if g[0] == r[0])
    g2 = next(g for g in greens if g[0] == b[0])
    return [r, g1, b, g2]


def read_exif(path: str | os.PathLike, required: bool = True) -> tuple[float | None, float | None]:
    """(ISO, exposure time in seconds) from the file's EXIF, via exifread.

    ``required=False``: a missing or unreadable value is None instead of an error (for callers
    that are given the ISO another way, or do not need it).
    """
    import exifread

    path = Path(path)
    try:
        with open(path, "rb") as f:
            tags = exifread.process_file(f, details=False, extract_thumbnail=False)
        iso = _first_number(tags, _ISO_TAGS, path)
        if iso == 65535:
            iso = _first_number(tags, _ISO_OVERFLOW_TAGS, path) or iso
        exposure = _first_number(tags, _EXPOSURE_TAGS, path)
    except OSError as e:
        raise RawReadError(f"{path}: cannot read EXIF ({e})") from e
    except RawReadError:
        if required:
            raise
        return None, None
    except Exception as e:  # exifread raises assorted errors on corrupt headers
        if not required:
            return None, None
        raise RawReadError(f"{path}: corrupt EXIF header ({type(e).__name__}: {e})") from e
    if not required:
        return (iso if iso and iso > 0 else None), (exposure if exposure and exposure > 0 else None)
    if iso is None or iso <= 0:
        raise RawReadError(f"{path}: no EXIF ISO (looked for {', '.join(_ISO_TAGS)})")
    if exposure is None or exposure <= 0:
        raise RawReadError(f"{path}: no EXIF exposure time (looked for {', '.join(_EXPOSURE_TAGS)})")
    return iso, exposure


def _first_number(tags: dict, names: tuple[str, ...], path: Path) -> float | None:
    """The first value of the first present tag as a float (exifread gives int or Ratio)."""
    for name in names:
        if name in tags and tags[name].values:
            try:
                value = float(tags[name].values[0])
            except (TypeError, ValueError, ZeroDivisionError) as e:  # e.g. a "0/0" Ratio
                raise RawReadError(f"{path}: EXIF tag {name!r} is not a number ({tags[name]})") from e
            return value if math.isfinite(value) else None
    return None


def read_raw(path: str | os.PathLike, require_exif: bool = True) -> RawFrame:
    """Read a Bayer raw file (ARW, NEF, CR2, DNG, ...) and its EXIF ISO and exposure time.

    ``require_exif=False``: a file without them still reads (``iso``/``exposure_time`` None).
    """
    import rawpy

    path = Path(path)
    if not path.is_file():
        raise RawReadError(f"{path}: no such raw file")
    try:
        with rawpy.imread(str(path)) as raw:
            # raw_image_visible unpacks the data: truncated files fail here, not at open.
            mosaic = raw.raw_image_visible.copy()
            black_by_colour = np.asarray(raw.black_level_per_channel, dtype=np.float32)
            white = int(raw.white_level)
            pattern = None if raw.raw_pattern is None else np.array(raw.raw_pattern, dtype=np.int64)
            is_bayer = raw.raw_type == rawpy.RawType.Flat and raw.num_colors == 3
    except rawpy.LibRawError as e:
        msg = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
        raise RawReadError(f"{path}: not a readable raw file ({type(e).__name__}: {msg})") from e
    if not is_bayer or pattern is None:
        raise RawReadError(f"{path}: not a Bayer-mosaic raw file (e.g. X-Trans or linear DNG)")
    offsets = bayer_offsets(pattern, path)
    black = np.array([black_by_colour[pattern[y, x]] for y, x in offsets], dtype=np.float32)
    if mosaic.dtype != np.uint16 or mosaic.ndim != 2 or min(mosaic.shape) < 2:
        raise RawReadError(f"{path}: unexpected mosaic {mosaic.dtype} {mosaic.shape}")
    if not np.all(black < white):
        raise RawReadError(f"{path}: black level {black.tolist()} is not below white level {white}")
    iso, exposure = read_exif(path, required=require_exif)
    for a in (mosaic, black, pattern):
        a.setflags(write=False)
    return RawFrame(mosaic, black, white, pattern, iso, exposure, path)


def pack_dn(frame: RawFrame) -> np.ndarray:
    """float32 (4, H/2, W/2): R, G1, B, G2 in DN above the black level, not clipped (negative
    values kept, as dark-shading correction needs them)."""
    h2, w2 = frame.mosaic.shape[0] // 2, frame.mosaic.shape[1] // 2  # an odd last row/col is dropped
    planes = [frame.mosaic[y : 2 * h2 : 2, x : 2 * w2 : 2] for y, x in bayer_offsets(frame.raw_pattern, frame.path)]
    return np.stack(planes).astype(np.float32) - frame.black_level[:, None, None]


def pack(frame: RawFrame) -> np.ndarray:
    """float32 (4, H/2, W/2) in [0, 1]: R, G1, B, G2 minus black, divided by (white − black)."""
    out = pack_dn(frame) / (np.float32(frame.white_level) - frame.black_level[:, None, None])
    return np.clip(out, 0.0, 1.0, out=out)


def load_packed(path: str | os.PathLike, require_exif: bool = True) -> tuple[np.ndarray, RawFrame | None]:
    """A packed float32 (4, H, W) image from a raw file, or from a ``.npy`` that already holds one.

    The ``.npy`` form has no metadata, so the frame is None; the raw form returns the frame too.
    """
    path = Path(path)
    if path.suffix.lower() != ".npy":
        frame = read_raw(path, require_exif=require_exif)
        return pack(frame), frame
    if not path.is_file():
        raise RawReadError(f"{path}: no such .npy file")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise RawReadError(f"{path}: not a readable .npy file ({e})") from e
    if arr.ndim != 3 or arr.shape[0] != 4:
        raise RawReadError(f"{path}: expected a packed 4×H×W array, got shape {arr.shape}")
    if arr.dtype.kind != "f":
        raise RawReadError(f"{path}: expected a float array, got {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise RawReadError(f"{path}: array holds NaN or infinite values")
    return arr.astype(np.float32, copy=False), None


# --- writing -----------------------------------------------------------------------------

# Sony ILCE-7SM2 XYZ(D65)→camera matrix as in Adobe DNG Converter / LibRaw (×10000).
SONY_A7S2_COLOR_MATRIX = (5838, -1430, -246, -3497, 11477, 2297, -748, 1885, 5778)
_CFA_CODES = {"RGGB": [0, 1, 1, 2], "BGGR": [2, 1, 1, 0], "GRBG": [1, 0, 2, 1], "GBRG": [1, 2, 0, 1]}


def write_dng(
    path: str | os.PathLike,
    mosaic: np.ndarray,
    *,
    iso: int | None,
    exposure_time: Fraction,
    cfa: str = "RGGB",
    black_level: int | tuple[int, int, int, int] = 512,
    white_level: int = 16383,
    make: str = "Sony",
    model: str = "ILCE-7SM2",
    as_shot_neutral: tuple[float, float, float] = (1.0, 1.0, 1.0),
    f_number: Fraction = Fraction(8),
) -> None:
    """Write an uncompressed Bayer DNG with pidng that rawpy reads back bit-exactly.

    ``black_level`` is one value or four in mosaic raster order of the 2×2 cell. ISO and exposure
    time go into an EXIF sub-IFD, as cameras write them (exifread: "EXIF ISOSpeedRatings").
    Samples are stored as 16 bit: pidng's 14-bit packer is not read back correctly by LibRaw.
    LibRaw rejects images smaller than 22 pixels on a side.
    """
    from pidng.core import RAW2DNG
    from pidng.defs import CalibrationIlluminant, PhotometricInterpretation
    from pidng.dng import DNGTags, Tag, dngIFD, dngTag

    class _SubIFDTag(dngTag):
        # pidng 4.0.9 builds IFD-pointer tags with a str placeholder and fails (str + bytes).
        def setValue(self, value):
            self.Value = b"\x00\x00\x00\x00"
            self.subIFD = value[0]

    mosaic = np.ascontiguousarray(mosaic)
    if mosaic.dtype != np.uint16 or mosaic.ndim != 2:
        raise ValueError(f"write_dng({path}): mosaic must be a 2-D uint16 array, got {mosaic.dtype} {mosaic.shape}")
    h, w = mosaic.shape
    blacks = [int(black_level)] if np.isscalar(black_level) else [int(b) for b in black_level]
    exposure = Fraction(exposure_time).limit_denominator(1_000_000)

    def rational(x: float | Fraction) -> list[int]:
        f = Fraction(x).limit_denominator(1_000_000)
        return [f.numerator, f.denominator]

    t = DNGTags()
    t.set(Tag.ImageWidth, w)
    t.set(Tag.ImageLength, h)
    t.set(Tag.TileWidth, w)  # pidng writes one tile holding the whole image
    t.set(Tag.TileLength, h)
    t.set(Tag.Orientation, 1)
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    t.set(Tag.SamplesPerPixel, 1)
    t.set(Tag.BitsPerSample, 16)
    t.set(Tag.CFARepeatPatternDim, [2, 2])
    t.set(Tag.CFAPattern, _CFA_CODES[cfa])
    if len(blacks) == 4:
        t.set(Tag.BlackLevelRepeatDim, [2, 2])
    t.set(Tag.BlackLevel, blacks)
    t.set(Tag.WhiteLevel, white_level)
    t.set(Tag.ColorMatrix1, [[v, 10000] for v in SONY_A7S2_COLOR_MATRIX])
    t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    t.set(Tag.AsShotNeutral, [rational(v) for v in as_shot_neutral])
    t.set(Tag.Make, make)
    t.set(Tag.Model, model)
    t.set(Tag.UniqueCameraModel, f"{make} {model}")  # pidng adds DNGVersion and Software itself
    exif = dngIFD()
    exif.tags.append(dngTag(Tag.ExposureTime, [[exposure.numerator, exposure.denominator]]))
    exif.tags.append(dngTag(Tag.FNumber, [rational(f_number)]))
    if iso is not None:  # None: a file without ISO, as some converters write
        exif.tags.append(dngTag(Tag.PhotographicSensitivity, [int(iso)]))  # exifread: ISOSpeedRatings
    exif.tags.append(dngTag(Tag.ExifVersion, list(b"0230")))
    t.__tags__[Tag.EXIF_IFD] = _SubIFDTag(Tag.EXIF_IFD, [exif])  # DNGTags.set would wrap it again

    writer = RAW2DNG()
    writer.options(t, path="", compress=False)  # uncompressed: exact round trip, no ljpeg module
    data = writer.convert(mosaic)  # no filename: returns the bytes
    with atomic_path(path) as tmp:
        tmp.write_bytes(bytes(data))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it and restore it
    os.umask(mask)
    return mask
