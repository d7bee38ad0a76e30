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


# file suffixes (lower case) of the raw formats LibRaw reads that the datasets and users bring
RAW_SUFFIXES = frozenset({".arw", ".dng", ".nef", ".cr2", ".cr3", ".raf", ".orf", ".rw2", ".pef", ".srw"})


def first_raw_file(folder: str | os.PathLike) -> Path:
    """The first raw file (by path) anywhere below ``folder``: one file that shows a camera's
    raw format."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in RAW_SUFFIXES)
    if not files:
        raise RawReadError(f"{folder}: no raw file ({', '.join(sorted(RAW_SUFFIXES))}) in it or below it")
    return files[0]


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


_TEXT_TAGS = {"make": ("Image Make",), "model": ("Image Model",),
              "datetime_original": ("EXIF DateTimeOriginal", "Image DateTimeOriginal")}
_F_NUMBER_TAGS = ("EXIF FNumber", "Image FNumber")


def read_camera_tags(path: str | os.PathLike) -> dict:
    """What the EXIF says about the camera and shot, beyond ISO and exposure (``read_exif``):
    ``make`` and ``model`` (exifread "Image Make"/"Image Model", stripped; "" when absent),
    ``f_number`` (None when absent) and ``datetime_original`` (text or None)."""
    import exifread

    path = Path(path)
    try:
        with open(path, "rb") as f:
            tags = exifread.process_file(f, details=False, extract_thumbnail=False)
    except OSError as e:
        raise RawReadError(f"{path}: cannot read EXIF ({e})") from e
    except Exception as e:  # exifread raises assorted errors on corrupt headers
        raise RawReadError(f"{path}: corrupt EXIF header ({type(e).__name__}: {e})") from e

    def text(names):
        value = next((str(tags[n].values) for n in names if n in tags), "")
        return value.strip().strip("\x00").strip()

    try:
        f_number = _first_number(tags, _F_NUMBER_TAGS, path)
    except RawReadError:  # an unreadable aperture is no reason to refuse a file
        f_number = None
    return {"make": text(_TEXT_TAGS["make"]), "model": text(_TEXT_TAGS["model"]),
            "f_number": f_number if f_number and f_number > 0 else None,
            "datetime_original": text(_TEXT_TAGS["datetime_original"]) or None}


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
    f_number: Fraction | None = Fraction(8),
    color_matrix: tuple[float, ...] | None = None,
    orientation: int = 1,
    description: str | None = None,
    datetime_original: str | None = None,
) -> None:
    """Write an uncompressed Bayer DNG with pidng that rawpy reads back bit-exactly.

    ``black_level`` is one value or four in mosaic raster order of the 2×2 cell. ISO and exposure
    time go into an EXIF sub-IFD, as cameras write them (exifread: "EXIF ISOSpeedRatings");
    ``exposure_time``/``f_number`` None leave the tag out. ``color_matrix``: the 9 entries of
    the XYZ(D65)→camera matrix (ColorMatrix1, row by row; None: the Sony A7S2's);
    ``orientation`` the TIFF/EXIF Orientation; ``description`` goes into ImageDescription and
    ``datetime_original`` (EXIF "YYYY:MM:DD HH:MM:SS") into the EXIF sub-IFD.
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

    def rational(x: float | Fraction) -> list[int]:
        f = Fraction(x).limit_denominator(1_000_000)
        return [f.numerator, f.denominator]

    t = DNGTags()
    t.set(Tag.ImageWidth, w)
    t.set(Tag.ImageLength, h)
    t.set(Tag.TileWidth, w)  # pidng writes one tile holding the whole image
    t.set(Tag.TileLength, h)
    t.set(Tag.Orientation, int(orientation))
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    t.set(Tag.SamplesPerPixel, 1)
    t.set(Tag.BitsPerSample, 16)
    t.set(Tag.CFARepeatPatternDim, [2, 2])
    t.set(Tag.CFAPattern, _CFA_CODES[cfa])
    if len(blacks) == 4:
        t.set(Tag.BlackLevelRepeatDim, [2, 2])
    t.set(Tag.BlackLevel, blacks)
    t.set(Tag.WhiteLevel, white_level)
    if color_matrix is None:
        t.set(Tag.ColorMatrix1, [[v, 10000] for v in SONY_A7S2_COLOR_MATRIX])
    else:
        if len(color_matrix) != 9 or not all(math.isfinite(v) for v in color_matrix):
            raise ValueError(f"write_dng({path}): color_matrix must be 9 finite numbers, got {color_matrix}")
        t.set(Tag.ColorMatrix1, [[round(float(v) * 10000), 10000] for v in color_matrix])
    t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    t.set(Tag.AsShotNeutral, [rational(v) for v in as_shot_neutral])
    t.set(Tag.Make, make)
    t.set(Tag.Model, model)
    t.set(Tag.UniqueCameraModel, f"{make} {model}")  # pidng adds DNGVersion and Software itself
    if description is not None:
        t.set(Tag.ImageDescription, description)
    exif = dngIFD()
    if exposure_time is not None:
        exposure = Fraction(exposure_time).limit_denominator(1_000_000)
        exif.tags.append(dngTag(Tag.ExposureTime, [[exposure.numerator, exposure.denominator]]))
    if f_number is not None:
        exif.tags.append(dngTag(Tag.FNumber, [rational(f_number)]))
    if iso is not None:  # None: a file without ISO, as some converters write
        exif.tags.append(dngTag(Tag.PhotographicSensitivity, [int(iso)]))  # exifread: ISOSpeedRatings
    if datetime_original is not None:
        exif.tags.append(dngTag(Tag.DateTimeOriginal, datetime_original))
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


def unpack(packed: np.ndarray, frame: RawFrame) -> np.ndarray:
    """The inverse of ``pack``: a packed (4, H/2, W/2) image in [0, 1] back to a uint16 (H, W)
    mosaic at ``frame``'s CFA positions, DN = y·(white − black) + black per channel, rounded and
    clipped to [0, white]. (H, W): the frame's mosaic less an odd last row/column, as packed."""
    packed = np.asarray(packed)
    h2, w2 = frame.mosaic.shape[0] // 2, frame.mosaic.shape[1] // 2
    if packed.shape != (4, h2, w2):
        raise ValueError(f"unpack({frame.path}): a packed image of shape {packed.shape}, "
                         f"the frame packs to {(4, h2, w2)}")
    black = frame.black_level.astype(np.float64)[:, None, None]
    dn = np.clip(np.rint(packed.astype(np.float64) * (frame.white_level - black) + black), 0, frame.white_level)
    mosaic = np.empty((2 * h2, 2 * w2), np.uint16)
    for plane, (y, x) in zip(dn, bayer_offsets(frame.raw_pattern, frame.path)):
        mosaic[y::2, x::2] = plane
    return mosaic


# LibRaw's ``sizes.flip`` → the TIFF/EXIF Orientation it was read from (dcraw's "50132467")
_FLIP_TO_ORIENTATION = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}
# XYZ → linear sRGB (D65), as LibRaw's xyz_rgb inverted
_SRGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                         [0.019334, 0.119193, 0.950227]])


@dataclass(frozen=True, eq=False)
class RawColour:
    """A raw file's colour description as LibRaw reads it, in DNG terms."""

    xyz_to_camera: np.ndarray  # (3, 3): the XYZ(D65)→camera matrix (DNG ColorMatrix)
    as_shot_neutral: np.ndarray  # (3,): camera R, G, B of a neutral grey, green = 1 (DNG AsShotNeutral)
    orientation: int  # TIFF/EXIF Orientation


def read_colour(path: str | os.PathLike) -> RawColour:
    """The colour matrix, as-shot white balance and orientation of a raw file (rawpy).

    The matrix is rawpy's ``rgb_xyz_matrix`` (LibRaw's table or the maker's); LibRaw keeps it
    empty for DNG files, whose matrix is recovered from the camera→sRGB matrix it derived from
    it (``color_matrix`` and the daylight multipliers undo LibRaw's steps). The neutral is
    1/``camera_whitebalance`` normalised to green (the daylight balance when the file has none).
    """
    import rawpy

    path = Path(path)
    try:
        with rawpy.imread(str(path)) as raw:
            xyz_cam = np.array(raw.rgb_xyz_matrix, dtype=np.float64)[:3]
            rgb_cam = np.array(raw.color_matrix, dtype=np.float64)[:, :3]
            daylight = np.array(raw.daylight_whitebalance, dtype=np.float64)[:3]
            as_shot = np.array(raw.camera_whitebalance, dtype=np.float64)[:3]
            flip = int(raw.sizes.flip)
    except rawpy.LibRawError as e:
        raise RawReadError(f"{path}: not a readable raw file ({type(e).__name__}: {e})") from e
    if not np.any(xyz_cam):  # cam_xyz = diag(1/pre_mul) · inverse(rgb_cam) · XYZ→sRGB
        if not (np.all(daylight > 0) and np.linalg.matrix_rank(rgb_cam) == 3):
            raise RawReadError(f"{path}: no colour matrix (LibRaw gives neither rgb_xyz_matrix nor color_matrix)")
        xyz_cam = np.diag(1 / daylight) @ np.linalg.inv(rgb_cam) @ np.linalg.inv(_SRGB_TO_XYZ)
    wb = as_shot if np.all(as_shot > 0) else daylight
    if not np.all(wb > 0):
        raise RawReadError(f"{path}: no white balance (camera_whitebalance {as_shot.tolist()})")
    return RawColour(xyz_cam, wb[1] / wb, _FLIP_TO_ORIENTATION.get(flip, 1))


def render_srgb(path: str | os.PathLike, mosaic: np.ndarray) -> np.ndarray:
    """An 8-bit sRGB (H, W, 3) rendering of ``mosaic`` by LibRaw, with the raw file at ``path``'s
    own white balance, colour matrix, levels and orientation: the file is opened with rawpy, its
    visible mosaic replaced by ``mosaic`` (uint16, the visible size or that less an odd last
    row/column, which is then filled from the row/column two before: the same CFA colours)
    and developed (camera white balance, no auto brightening, the file's white level)."""
    import rawpy

    path = Path(path)
    mosaic = np.asarray(mosaic)
    try:
        with rawpy.imread(str(path)) as raw:
            visible = raw.raw_image_visible
            h, w = mosaic.shape
            if mosaic.dtype != np.uint16 or visible.shape[0] - h not in (0, 1) or visible.shape[1] - w not in (0, 1) \
                    or h % 2 and h != visible.shape[0] or w % 2 and w != visible.shape[1]:
                raise ValueError(f"render_srgb({path}): mosaic {mosaic.dtype} {mosaic.shape} does not fit the "
                                 f"file's {visible.shape}")
            visible[:h, :w] = mosaic  # rawpy's array is LibRaw's buffer: postprocess develops it
            if visible.shape[0] > h:
                visible[h, :w] = mosaic[h - 2]
            if visible.shape[1] > w:
                visible[:, w] = visible[:, w - 2]
            return raw.postprocess(use_camera_wb=True, output_bps=8, no_auto_bright=True, adjust_maximum_thr=0.0)
    except rawpy.LibRawError as e:
        raise RawReadError(f"{path}: not a readable raw file ({type(e).__name__}: {e})") from e
