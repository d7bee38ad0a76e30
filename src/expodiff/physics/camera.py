"""Camera noise parameters in the ELD release format (PROTOCOL section 3).

A parameter file is a JSON object with ``Kmin``, ``Kmax`` (system gain at ISO 100 and 6400),
``G_shape`` (Tukey-lambda shapes), ``Profile-1`` (``G_scale``, ``g_scale``, ``R_scale``, each a
line ``{slope, bias, sigma}`` of log σ against log K) and ``color_bias``. The ELD release's files
are bundled as ``expodiff/resources/camera_params/{camera}.json``. What Kmin/Kmax and a profile
line mean is written here once (``k_from_iso``, ``k_range``, ``profile_log_sigma``): the torch noise
model, the demo-data generator and the calibration use these.

Two optional keys make a file describe its own sensor (issue 15; the ELD release's files have
neither, and then mean what they meant in the original):

- ``iso_range``: [ISO_lo, ISO_hi], the ISOs at which ``Kmin`` and ``Kmax`` hold, i.e. the span a
  calibration measured. Without it: 100 and 6400, the ELD release's anchors, and any ISO is
  extrapolated as the original does; with it an ISO outside the span is refused (``check_iso``).
- ``sensor``: what the camera's raw files say about themselves (``sensor_from_frame``):
  ``make``, ``model``, ``cfa`` (the 2×2 cell in raster order, from rawpy's ``raw_pattern``),
  ``black_level`` (R, G1, B, G2 in DN), ``white_level``, ``bit_depth`` and ``dn_scale``, the DN
  that a packed value of 1 stands for in the noise model (``dn_scale``). Without it: the
  original's 15583 (16383 − 800), which the shipped SonyA7S2 entry keeps.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from expodiff.errors import ConfigError
from expodiff.io.atomic import write_text_atomic

REQUIRED_KEYS = ("Kmin", "Kmax", "G_shape", "Profile-1", "color_bias")
PROFILE_SCALES = ("G_scale", "g_scale", "R_scale")
LINE_KEYS = ("slope", "bias", "sigma")
ISO_KMIN, ISO_KMAX = 100, 6400  # the ISOs at which an ELD release file's Kmin and Kmax hold
# the original's signal scale, used for every camera there: "white level" 16383 minus 800
ORIGINAL_DN_SCALE = 16383 - 800
SENSOR_KEYS = ("make", "model", "cfa", "black_level", "white_level", "bit_depth", "dn_scale")
# rawpy / LibRaw colour indices of raw_pattern (3: the second green) → CFA letters
_CFA_LETTERS = {0: "R", 1: "G", 2: "B", 3: "G"}


def iso_range(camera: dict) -> tuple[float, float]:
    """(ISO_lo, ISO_hi): the ISOs at which the camera's Kmin and Kmax hold."""
    lo, hi = camera.get("iso_range", (ISO_KMIN, ISO_KMAX))
    return lo, hi


def k_from_iso(iso: float, camera: dict) -> float:
    """System gain K (DN per electron) at an ISO, linear between Kmin and Kmax at the camera's
    ``iso_range`` (the ELD release's ISO 100 and 6400 when the file has none)."""
    lo, hi = iso_range(camera)
    return (iso - lo) / (hi - lo) * (camera["Kmax"] - camera["Kmin"]) + camera["Kmin"]


def check_iso(iso: float, camera: dict, where: str) -> None:
    """Refuse an ISO outside a calibrated camera's ``iso_range`` (K would be extrapolated from a
    line fitted elsewhere); files without the key (the ELD release's) accept any ISO, as the
    original does. ``where``: what gave the ISO (a file or flag), for the message."""
    if "iso_range" not in camera:
        return
    lo, hi = iso_range(camera)
    if not lo <= iso <= hi:
        name = camera.get("camera", "the camera")
        raise ConfigError(f"{where}: ISO {iso:g} is outside the range {name} was calibrated at "
                          f"(ISO {lo:g}–{hi:g}): add dark and flat frames at this ISO and calibrate "
                          "again (docs/CALIBRATE.md), or give --K")


def dn_scale(camera: dict) -> float:
    """The DN that a packed value of 1 stands for in the noise model: the camera's recorded
    ``sensor.dn_scale`` (white − black for a calibrated camera), else the original's 15583."""
    return float(camera.get("sensor", {}).get("dn_scale", ORIGINAL_DN_SCALE))


def cfa_name(raw_pattern) -> str:
    """"RGGB", "GRBG", ...: the 2×2 cell of rawpy's ``raw_pattern`` in raster order."""
    return "".join(_CFA_LETTERS[int(c)] for c in list(raw_pattern[0]) + list(raw_pattern[1]))


def sensor_from_frame(frame, make: str = "", model: str = "") -> dict:
    """The ``sensor`` entry of a camera file from one of its raw frames (``io.raw.RawFrame``):
    levels and CFA as rawpy reads them, the bit depth that holds the white level, and
    ``dn_scale`` = white − mean black (the whole range of the packed [0, 1] scale)."""
    black = [float(b) for b in frame.black_level]
    white = int(frame.white_level)
    return {
        "make": make,
        "model": model,
        "cfa": cfa_name(frame.raw_pattern),
        "black_level": black,
        "white_level": white,
        "bit_depth": int(white).bit_length(),
        "dn_scale": range_dn(black, white),
    }


def range_dn(black_level, white_level) -> float:
    """White − mean black (one level or R, G1, B, G2): the DN range a packed [0, 1] spans."""
    black = [black_level] if isinstance(black_level, (int, float)) else list(black_level)
    return float(white_level - sum(black) / len(black))


def k_range(slope: float, intercept: float, isos: tuple[float, float] = (ISO_KMIN, ISO_KMAX)) -> tuple[float, float]:
    """(Kmin, Kmax) of the line K = slope·ISO + intercept (a calibration's fit) at the ISOs
    ``isos`` (its ``iso_range``; default the ELD release's 100 and 6400), for the camera file."""
    return float(slope * isos[0] + intercept), float(slope * isos[1] + intercept)


def profile_log_sigma(line: dict, log_k):
    """log σ on a Profile-1 line {slope, bias, ...} at log K (natural logs); numbers, numpy or torch."""
    return line["slope"] * log_k + line["bias"]


def bundled_cameras() -> list[str]:
    """Names of the cameras whose parameters ship with expodiff."""
    folder = resources.files("expodiff") / "resources" / "camera_params"
    return sorted(f.name.removesuffix(".json") for f in folder.iterdir() if f.name.endswith(".json"))


def _is_path(name_or_path: str | os.PathLike) -> bool:
    text = os.fspath(name_or_path)
    return isinstance(name_or_path, os.PathLike) or text.endswith(".json") or os.sep in text or "/" in text


def camera_params_path(name_or_path: str | os.PathLike) -> Path:
    """The parameter file of a bundled camera name (e.g. "SonyA7S2") or of a path to a .json."""
    if _is_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(f"{path}: camera parameter file not found")
        return path
    name = str(name_or_path)
    resource = resources.files("expodiff") / "resources" / "camera_params" / f"{name}.json"
    if not resource.is_file():
        raise ConfigError(
            f"camera parameters {name!r}: not a bundled camera ({', '.join(bundled_cameras())}) "
            "nor a path to a .json file"
        )
    return Path(str(resource))


def _read(name_or_path: str | os.PathLike) -> tuple[dict, str]:
    """The parameter object and a description of where it came from (for messages)."""
    path = camera_params_path(name_or_path)
    text = path.read_text()
    origin = str(path) if _is_path(name_or_path) else f"bundled {path.name}"
    try:
        params = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{origin}: not valid JSON ({err})") from None
    return params, origin


def validate_camera_params(params: dict, origin: str = "camera parameters") -> dict:
    """Check the ELD-format keys; raise ConfigError naming the file and the key."""
    if not isinstance(params, dict):
        raise ConfigError(f"{origin}: expected a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in params]
    if missing:
        raise ConfigError(f"{origin}: missing key(s) {', '.join(missing)}")
    for key in ("Kmin", "Kmax"):
        if not isinstance(params[key], (int, float)) or params[key] <= 0:
            raise ConfigError(f"{origin}: {key} must be a positive number, got {params[key]!r}")
    if params["Kmax"] <= params["Kmin"]:
        raise ConfigError(f"{origin}: Kmax ({params['Kmax']}) must exceed Kmin ({params['Kmin']})")
    if not isinstance(params["G_shape"], list) or not params["G_shape"]:
        raise ConfigError(f"{origin}: G_shape must be a non-empty list")
    if "iso_range" in params:
        span = params["iso_range"]
        if (not isinstance(span, list) or len(span) != 2 or not all(isinstance(v, (int, float)) for v in span)
                or not 0 < span[0] < span[1]):
            raise ConfigError(f"{origin}: iso_range must be [ISO_lo, ISO_hi] with 0 < ISO_lo < ISO_hi, got {span!r}")
    if "sensor" in params:
        sensor = params["sensor"]
        missing = [k for k in SENSOR_KEYS if not isinstance(sensor, dict) or k not in sensor]
        if missing:
            raise ConfigError(f"{origin}: sensor is missing key(s) {', '.join(missing)}")
        if not isinstance(sensor["dn_scale"], (int, float)) or sensor["dn_scale"] <= 0:
            raise ConfigError(f"{origin}: sensor.dn_scale must be a positive number, got {sensor['dn_scale']!r}")
    profile = params["Profile-1"]
    for scale in PROFILE_SCALES:
        line = profile.get(scale) if isinstance(profile, dict) else None
        if not isinstance(line, dict) or any(k not in line for k in LINE_KEYS):
            raise ConfigError(f"{origin}: Profile-1.{scale} must have keys {', '.join(LINE_KEYS)}")
    return params


def export_camera_params(
    name_or_path: str | os.PathLike,
    out_json: str | os.PathLike,
    *,
    name: str | None = None,
    sensor: dict | None = None,
    sample_raw: str | os.PathLike | None = None,
    dn_scale: float | None = None,
) -> Path:
    """Write the validated parameters of a bundled camera ("SonyA7S2") or a JSON file to
    ``out_json``, with the camera's ``sensor`` block (``with_sensor``) when one is given."""
    params = with_sensor(load_camera_params(name_or_path), name=name, sensor=sensor, sample_raw=sample_raw,
                         dn_scale=dn_scale, origin=str(name_or_path))
    write_text_atomic(out_json, json.dumps(params, indent=1, sort_keys=True) + "\n")
    return Path(out_json)


def with_sensor(
    params: dict,
    *,
    name: str | None = None,
    sensor: dict | None = None,
    sample_raw: str | os.PathLike | None = None,
    dn_scale: float | None = None,
    origin: str = "camera parameters",
) -> dict:
    """``params`` with its ``sensor`` block completed from what the camera entry gives.

    In order: the block ``params`` already has (a calibration's, from its frames), else one read
    from ``sample_raw`` (a raw file of the camera, or a folder holding some: levels, CFA and
    EXIF make/model), else
    ``sensor`` as written in the config (the raw format of a camera none of whose files is read;
    its ``dn_scale`` defaults to white − mean black). ``dn_scale`` overrides the scale (the
    SonyA7S2 entry's 15583). When both a recorded block and ``sample_raw`` exist they must
    describe the same camera. None of them: ``params`` as they are (the original's scale).
    """
    out = dict(params)
    if name is not None:
        out["camera"] = name
    block = dict(out["sensor"]) if "sensor" in out else None
    if sample_raw is not None:
        if Path(sample_raw).is_dir():  # a folder of the camera's files (its test pairs)
            from expodiff.io.raw import first_raw_file

            sample_raw = first_raw_file(sample_raw)
        read = sensor_of_file(sample_raw)
        if block is not None:
            differs = sensor_differences(block, read)
            if differs:
                raise ConfigError(f"{sample_raw}: not a file of the camera {origin} describes ({'; '.join(differs)})")
        else:
            block = read
    if block is None and sensor is not None:
        block = dict(sensor)
        if "dn_scale" not in block:
            block["dn_scale"] = range_dn(block["black_level"], block["white_level"])
    if block is not None and dn_scale is not None:
        block["dn_scale"] = float(dn_scale)
    if block is not None:
        out["sensor"] = block
    return validate_camera_params(out, origin)


def sensor_of_file(path: str | os.PathLike) -> dict:
    """The ``sensor`` block of one raw file (rawpy levels and CFA, EXIF make and model)."""
    from expodiff.io.raw import read_camera_tags, read_raw

    tags = read_camera_tags(path)
    return sensor_from_frame(read_raw(path, require_exif=False), tags["make"], tags["model"])


# a file's black and white levels may differ this much (a fraction of the camera's DN scale, at
# least 1 DN) from its camera's: some makers measure the black level per shot from masked pixels
LEVEL_TOLERANCE = 0.01


def _same_text(a: str, b: str) -> bool:
    return " ".join(str(a).split()).casefold() == " ".join(str(b).split()).casefold()


def sensor_differences(expected: dict, found: dict) -> list[str]:
    """How a raw file's ``sensor`` block (``sensor_from_frame``) differs from its camera's, as
    phrases (empty: the same camera): make/model (case and spacing aside; an empty expected one
    is not compared), CFA, black and white level (within ``LEVEL_TOLERANCE``)."""
    out = []
    want = (expected.get("make", ""), expected.get("model", ""))
    got = (found.get("make", ""), found.get("model", ""))
    if any(want) and not all(_same_text(w, g) for w, g in zip(want, got) if w):
        out.append(f"make/model {' '.join(got).strip() or '(none in EXIF)'!r} "
                   f"(the camera's: {' '.join(want).strip()!r})")
    if found["cfa"] != expected["cfa"]:
        out.append(f"CFA {found['cfa']} (the camera's: {expected['cfa']})")
    tolerance = max(1.0, LEVEL_TOLERANCE * float(expected.get("dn_scale", expected["white_level"])))
    black, want_black = list(found["black_level"]), list(expected["black_level"])
    if len(want_black) != 4 or any(abs(b - w) > tolerance for b, w in zip(black, want_black)):
        out.append(f"black level {[round(b, 1) for b in black]} (the camera's: {want_black})")
    if abs(float(found["white_level"]) - float(expected["white_level"])) > tolerance:
        out.append(f"white level {found['white_level']} (the camera's: {expected['white_level']})")
    return out


def load_camera_params(name_or_path: str | os.PathLike) -> dict:
    """The validated parameters of a bundled camera ("SonyA7S2") or of a path to a .json file."""
    params, origin = _read(name_or_path)
    return validate_camera_params(params, origin)
