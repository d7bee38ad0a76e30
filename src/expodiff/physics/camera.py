"""Camera noise parameters in the ELD release format (PROTOCOL section 3).

A parameter file is a JSON object with ``Kmin``, ``Kmax`` (system gain at ISO 100 and 6400),
``G_shape`` (Tukey-lambda shapes), ``Profile-1`` (``G_scale``, ``g_scale``, ``R_scale``, each a
line ``{slope, bias, sigma}`` of log σ against log K) and ``color_bias``. The ELD release's files
are bundled as ``expodiff/resources/camera_params/{camera}.json``. What Kmin/Kmax and a profile
line mean is written here once (``k_from_iso``, ``k_range``, ``profile_log_sigma``): the torch noise
model, the demo-data generator and the calibration use these.
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
ISO_KMIN, ISO_KMAX = 100, 6400  # the ISOs at which a camera file's Kmin and Kmax hold


def k_from_iso(iso: float, camera: dict) -> float:
    """System gain K (DN per electron) at an ISO, linear between the camera's Kmin (ISO 100) and Kmax (ISO 6400)."""
    return (iso - ISO_KMIN) / (ISO_KMAX - ISO_KMIN) * (camera["Kmax"] - camera["Kmin"]) + camera["Kmin"]


def k_range(slope: float, intercept: float) -> tuple[float, float]:
    """(Kmin, Kmax) of the line K = slope·ISO + intercept (a calibration's fit), for the camera file."""
    return float(slope * ISO_KMIN + intercept), float(slope * ISO_KMAX + intercept)


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
    profile = params["Profile-1"]
    for scale in PROFILE_SCALES:
        line = profile.get(scale) if isinstance(profile, dict) else None
        if not isinstance(line, dict) or any(k not in line for k in LINE_KEYS):
            raise ConfigError(f"{origin}: Profile-1.{scale} must have keys {', '.join(LINE_KEYS)}")
    return params


def export_camera_params(name_or_path: str | os.PathLike, out_json: str | os.PathLike) -> Path:
    """Write the validated parameters of a bundled camera ("SonyA7S2") or a JSON file to ``out_json``."""
    write_text_atomic(out_json, json.dumps(load_camera_params(name_or_path), indent=1, sort_keys=True) + "\n")
    return Path(out_json)


def load_camera_params(name_or_path: str | os.PathLike) -> dict:
    """The validated parameters of a bundled camera ("SonyA7S2") or of a path to a .json file."""
    params, origin = _read(name_or_path)
    return validate_camera_params(params, origin)
