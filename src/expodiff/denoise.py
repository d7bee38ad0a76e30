"""Enhance a person's own raw files with a checkpoint (``expodiff denoise INPUT... --out DIR``).

For each raw file (any Bayer format rawpy reads: ARW, NEF, CR2/CR3, DNG, ...) the GT-free
enhancement of ``inference.enhance`` (no oracle correction: there is no ground truth), with K
from the file's ISO and the camera's parameters, written as two files named after the input:

- ``<stem>.dng``: the denoised mosaic, linear, in the source's CFA layout, black and white
  levels, with its colour matrix, as-shot white balance, orientation, make and model and its
  EXIF ISO, exposure time and f-number as they were (the applied ratio is in ImageDescription),
  so a raw developer (darktable, Lightroom) opens it as the camera's own file;
- ``<stem>.png``: that mosaic developed by LibRaw with the file's own white balance and colour
  matrix (``io.raw.render_srgb``): the source file's visible mosaic replaced by the denoised one.

Every input is checked before anything is written (readable, a Bayer mosaic, an ISO, the
camera's sensor, an ISO inside the camera's calibrated range, unique output names): a bad input
is one error naming the file, and DIR is left as it was.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from expodiff.errors import ConfigError, ExpodiffError
from expodiff.physics.camera import (cfa_name, check_iso, dn_scale, k_from_iso, load_camera_params, sensor_differences,
                                     sensor_from_frame)

CALIBRATE_HINT = "calibrate this camera (docs/CALIBRATE.md) or pass the right --camera"


@dataclass(frozen=True)
class DenoiseInput:
    """One checked input and what will be written for it."""

    path: Path
    iso: float | None  # the ISO used: --iso, else the EXIF one (None only when K is given)
    exif_iso: float | None  # the file's own EXIF ISO (written to the DNG as it was)
    exposure_time: float | None  # the file's EXIF exposure time, seconds
    K: float  # system gain, DN/e-
    tags: dict  # io.raw.read_camera_tags: make, model, f_number, datetime_original
    png: Path
    dng: Path


@dataclass(frozen=True)
class DenoisedFile:
    """What ``denoise_files`` wrote for one input."""

    input: Path
    png: Path
    dng: Path
    iso: float | None
    K: float
    ratio: int
    shape: tuple[int, int]  # the denoised mosaic's (H, W)


def resolve_camera(name_or_path: str | os.PathLike, cameras_dir: str | os.PathLike | None = None) -> tuple[dict, str]:
    """A camera's parameters and where they came from: a path to a .json parameter file; else
    ``cameras_dir/NAME.json`` when it exists (the workflow's ``results/cameras``, which carries
    the camera's ``sensor`` block); else a bundled camera name."""
    text = os.fspath(name_or_path)
    is_path = isinstance(name_or_path, os.PathLike) or text.endswith(".json") or "/" in text or os.sep in text
    if not is_path and cameras_dir is not None:
        written = Path(cameras_dir) / f"{text}.json"
        if written.is_file():
            return load_camera_params(written), str(written)
    return load_camera_params(name_or_path), text if is_path else f"bundled {text}"


def sensor_mismatches(camera: dict, frame, tags: dict) -> list[str]:
    """How a raw file (``io.raw.RawFrame`` and ``read_camera_tags``) differs from the camera
    file's ``sensor`` block (``physics.camera.sensor_differences``); [] when it matches or the
    camera file has no sensor block (the ELD release's files)."""
    sensor = camera.get("sensor")
    if not sensor:
        return []
    return sensor_differences(sensor, sensor_from_frame(frame, tags.get("make", ""), tags.get("model", "")))


def check_inputs(camera: dict, inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                 iso: float | None = None, K: float | None = None, padding: str = "original") -> list[DenoiseInput]:
    """Check every input before anything is written; the first problem is one error naming the
    file. ``iso`` overrides each file's EXIF ISO; ``K`` overrides the gain from the ISO."""
    from expodiff.inference import Padding
    from expodiff.io.raw import read_camera_tags, read_colour, read_raw

    out_dir = Path(out_dir)
    if not inputs:
        raise ConfigError("no input files given")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: exists and is not a folder")
    name = camera.get("camera", "the camera")
    if K is not None and not (math.isfinite(K) and K > 0):
        raise ConfigError(f"--K must be a finite number > 0, got {K}")
    checked, stems = [], {}
    for given in inputs:
        path = Path(given)
        frame = read_raw(path, require_exif=False)  # readable, a Bayer mosaic (X-Trans is refused here)
        tags = read_camera_tags(path)
        differs = sensor_mismatches(camera, frame, tags)
        if differs:
            raise ConfigError(f"{path}: not a raw file of {name}: {'; '.join(differs)}: {CALIBRATE_HINT}")
        read_colour(path)  # a colour matrix and white balance to write into the DNG
        h2, w2 = frame.mosaic.shape[0] // 2, frame.mosaic.shape[1] // 2
        try:
            Padding.for_shape(h2, w2, padding).check_fits(h2, w2)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from err
        used_iso = iso if iso is not None else frame.iso
        if K is None:
            if used_iso is None:
                raise ConfigError(f"{path}: no EXIF ISO: give --iso (or --K)")
            check_iso(used_iso, camera, where=f"{path}" + (" (--iso)" if iso is not None else ""))
            gain = k_from_iso(used_iso, camera)
            if not (math.isfinite(gain) and gain > 0):
                raise ConfigError(f"{path}: ISO {used_iso:g} gives K = {gain:.4g} for {name}: outside its gain range")
        else:
            gain = K
        key = path.stem.casefold()
        if key in stems:
            raise ConfigError(f"{path} and {stems[key]} would both write {out_dir / path.stem}.png/.dng: "
                              "rename one, or denoise them into different --out folders")
        stems[key] = path
        png, dng = out_dir / f"{path.stem}.png", out_dir / f"{path.stem}.dng"
        for out in (png, dng):
            if out.exists() and out.resolve() == path.resolve():
                raise ConfigError(f"{path}: its output {out} is the input itself: choose another --out folder")
        checked.append(DenoiseInput(path, used_iso, frame.iso, frame.exposure_time, float(gain), tags, png, dng))
    return checked


def denoise_files(
    camera: dict | str | os.PathLike,
    checkpoint: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    ratio: int,
    out_dir: str | os.PathLike,
    *,
    iso: float | None = None,
    K: float | None = None,
    steps: int = 3,
    seed: int = 0,
    compute=None,
    padding: str = "original",
    spec=None,
    report: Callable[[DenoisedFile], None] | None = None,
) -> list[DenoisedFile]:
    """Denoise raw files into ``out_dir`` (``<stem>.png`` and ``<stem>.dng`` each, atomically).

    ``camera``: parameters (a dict, a bundled name or a .json: ``resolve_camera``) for K from
    ISO, the DN scale of the re-exposure and the sensor check. ``checkpoint``: a checkpoint
    that records its network, or a released one with ``spec`` (``methods.MethodSpec``).
    ``iso``: instead of each file's EXIF ISO; ``K``: instead of K from the ISO. Every file is
    enhanced GT-free with a generator seeded ``seed`` (``compute.generator``), so its result
    does not depend on the other files. ``padding``: as ``inference.enhance``. ``report``: called
    with each file's record when it is written (the CLI prints a line).
    """
    from tqdm import tqdm

    from expodiff.checkpoint import load_model
    from expodiff.device import compute_settings

    if not isinstance(camera, dict):
        camera = load_camera_params(camera)
    if not (math.isfinite(ratio) and ratio > 1 and float(ratio).is_integer()):
        raise ConfigError(f"--ratio must be a whole number > 1, got {ratio}")
    if not (isinstance(steps, int) and steps >= 1):
        raise ConfigError(f"--steps must be a whole number ≥ 1, got {steps}")
    compute = compute_settings(compute)
    planned = check_inputs(camera, inputs, out_dir, iso=iso, K=K, padding=padding)
    net, spec = load_model(checkpoint, spec, source="--backbone/--method")
    scale = dn_scale(camera)
    done = []
    for item in tqdm(planned, desc="denoise", unit="file"):
        try:
            done.append(_denoise_one(item, net, spec, int(ratio), steps, seed, compute, padding, scale, camera,
                                     Path(checkpoint)))
        except ExpodiffError as err:
            raise type(err)(f"{item.path}: {err}") from err
        if report is not None:
            report(done[-1])
    return done


def _denoise_one(item: DenoiseInput, net, spec, ratio: int, steps: int, seed: int, compute, padding: str,
                 scale: float, camera: dict, checkpoint: Path) -> DenoisedFile:
    from fractions import Fraction

    from expodiff.inference import enhance
    from expodiff.io.raw import bayer_offsets, pack, read_colour, read_raw, render_srgb, unpack, write_dng

    frame = read_raw(item.path, require_exif=False)
    preds = enhance(net, spec, pack(frame), ratio, item.K, steps, generator=compute.generator(seed),
                    padding=padding, compute=compute, dn_scale=scale)
    mosaic = unpack(preds[-1], frame)

    colour = read_colour(item.path)
    cell = [0] * 4  # black levels in raster order of the 2×2 cell, as write_dng takes them
    for black, (y, x) in zip(frame.black_level, bayer_offsets(frame.raw_pattern, item.path)):
        cell[2 * y + x] = round(float(black))
    description = (f"expodiff denoise of {item.path.name}: {spec.describe()} ({checkpoint.name}), {steps} step(s), "
                   f"seed {seed}; exposure ratio {ratio} applied (brightness x{ratio}; exposure time and ISO "
                   f"are the source's); K {item.K:.4f} DN/e-, camera {camera.get('camera', 'parameters given')}")
    tags = item.tags
    iso = item.exif_iso if item.exif_iso is not None else item.iso  # the source's; else the ISO used
    write_dng(item.dng, mosaic, iso=None if iso is None else round(iso),
              exposure_time=None if item.exposure_time is None else Fraction(item.exposure_time),
              cfa=cfa_name(frame.raw_pattern), black_level=tuple(cell), white_level=int(frame.white_level),
              make=tags["make"] or "unknown", model=tags["model"] or "unknown",
              as_shot_neutral=tuple(float(v) for v in colour.as_shot_neutral),
              f_number=None if tags["f_number"] is None else Fraction(tags["f_number"]),
              color_matrix=tuple(float(v) for v in colour.xyz_to_camera.ravel()), orientation=colour.orientation,
              description=description, datetime_original=tags["datetime_original"])
    _write_png(item.png, render_srgb(item.path, mosaic))
    return DenoisedFile(item.path, item.png, item.dng, item.iso, item.K, ratio, tuple(mosaic.shape))


def _write_png(path: Path, rgb) -> None:
    import skimage.io

    from expodiff.io.atomic import atomic_path

    try:
        with atomic_path(path) as tmp:
            skimage.io.imsave(tmp, rgb, check_contrast=False)
    except OSError as err:
        raise ExpodiffError(f"{path}: cannot write ({err})") from err
