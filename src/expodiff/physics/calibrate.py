"""Sensor noise calibration from dark and flat-field frames (protocol §3, as in the ELD paper).

Per ISO:
- colour bias: per-channel mean of the dark frames above the black level (R, G1, B, G2);
- row noise σ_r: spread of per-row means of the dark frames, minus what pixel noise alone
  contributes to a row mean;
- read noise: the dark frames with bias and row means removed; its Tukey-lambda shape λ
  maximises the probability-plot correlation (PPCC), its scale σ_TL is the slope of that
  probability plot, and σ_g is the standard deviation of the read noise alone;
- system gain K: slope of the photon-transfer curve (variance against mean) of flat-frame
  pairs; the pair difference cancels vignetting and per-pixel response (fixed pattern).
Across ISOs: K linear in ISO gives Kmin and Kmax, K at the lowest and the highest calibrated ISO
(recorded as ``iso_range``; frames at ISO 100 and 6400 give the ELD release's anchors); each scale
gets a line log σ = slope·log K + bias with ``sigma`` the residual standard deviation (natural logs).
Output: the ELD release's parameter dict, the camera's ``sensor`` entry (CFA, levels, bit depth,
DN scale: ``physics.camera``), ``iso_range`` and the per-ISO table; nothing is written if a fit
fails. Frame sets that cannot give a calibration (too few frames at an ISO, frames of several
cameras, sizes or raw formats, non-Bayer files) raise ``CalibrationError`` naming the files.
"""

from __future__ import annotations

import json
import numbers
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import exifread
import numpy as np
from scipy import stats

from expodiff.errors import ConfigError, ExpodiffError, RawReadError
from expodiff.physics.camera import cfa_name, k_range, profile_log_sigma, sensor_from_frame
from expodiff.io.atomic import write_text_atomic
from expodiff.io.raw import RawFrame, bayer_offsets, read_raw

SATURATED_FRACTION = 1e-3  # a flat with more clipped pixels than this cannot measure variance
PPCC_SAMPLES = 200_000  # read-noise samples per ISO used for the PPCC fit
LAMBDA_GRID = np.round(np.linspace(-0.5, 0.5, 101), 4)  # for the PPCC plot
# dark frames per ISO: with one, nothing tells a frame's row noise and colour bias from a one-off
MIN_DARKS = 2
# what docs/CALIBRATE.md recommends: each estimate's error falls as 1/sqrt(frames)
RECOMMENDED_DARKS, RECOMMENDED_FLAT_LEVELS = 4, 3


class CalibrationError(ExpodiffError):
    """The frames cannot give a calibration; the message names the files and what is missing."""


@dataclass
class IsoFit:
    """Everything measured at one ISO (kept for the plots)."""

    iso: float
    K: float
    sigma_r: float
    lam: float
    sigma_tl: float
    sigma_g: float
    color_bias: np.ndarray  # (4,) R, G1, B, G2 in DN above black
    ptc_means: list[float] = field(default_factory=list)
    ptc_vars: list[float] = field(default_factory=list)
    ptc_intercept: float = 0.0
    ppcc_curve: np.ndarray | None = None


def _make_model(path: Path) -> tuple[str, str]:
    """EXIF (Make, Model) of a file; empty strings where absent."""
    with open(path, "rb") as f:
        tags = exifread.process_file(f, details=False, extract_thumbnail=False, stop_tag="Model")
    return str(tags.get("Image Make", "")).strip(), str(tags.get("Image Model", "")).strip()


def _raw_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise CalibrationError(f"calibration frames: folder {folder} is missing (expected dark/ and flat/ raw frames)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise CalibrationError(f"calibration frames: {folder} holds no files")
    return files


def _read_frame(path: Path) -> RawFrame:
    try:
        return read_raw(path)
    except RawReadError as err:  # not raw, not Bayer (X-Trans, 4-colour), no EXIF ISO, ...
        raise CalibrationError(f"calibration frame {err}; calibration reads every file in {path.parent}: "
                               "remove or replace this one (Bayer raw frames with EXIF ISO and exposure time)") from err


def _read_all(files: list[Path], frames_dir: Path) -> list[RawFrame]:
    """Every frame, checked to share one size and one raw format (CFA, black and white levels)."""
    frames = [_read_frame(p) for p in files]
    for what, key in (
        ("sizes", lambda f: f.mosaic.shape),
        ("raw formats", lambda f: f"CFA {cfa_name(f.raw_pattern)}, black {[float(b) for b in f.black_level]}, white {f.white_level}"),
    ):
        groups = defaultdict(list)
        for f in frames:
            groups[key(f)].append(f"{f.path.parent.name}/{f.path.name}")
        if len(groups) > 1:
            raise CalibrationError(
                f"calibration frames of mixed {what} in {frames_dir}: "
                + "; ".join(f"{k}: {', '.join(n[:3])}{' …' if len(n) > 3 else ''}" for k, n in groups.items())
                + ": calibrate the frames of one camera and one raw mode at a time"
            )
    return frames


def _check_counts(dark_by_iso: dict, flat_by_iso: dict, frames_dir: Path) -> None:
    """≥ MIN_DARKS dark frames and ≥ 1 pair of flats (same exposure time) at every ISO."""
    for iso in sorted(dark_by_iso):
        darks = dark_by_iso[iso]
        if len(darks) < MIN_DARKS:
            raise CalibrationError(
                f"ISO {iso:g}: {len(darks)} dark frame ({', '.join(f.path.name for f in darks)}) in "
                f"{frames_dir / 'dark'}; need ≥ {MIN_DARKS} dark frames per ISO ({RECOMMENDED_DARKS} or more recommended)"
            )
        levels = defaultdict(list)
        for f in flat_by_iso[iso]:
            levels[f.exposure_time].append(f.path.name)
        if not any(len(names) >= 2 for names in levels.values()):
            names = ", ".join(n for group in levels.values() for n in group)
            raise CalibrationError(
                f"ISO {iso:g}: no pair of flat frames with the same exposure time in {frames_dir / 'flat'} ({names}); "
                f"need 2 flats per exposure level ({RECOMMENDED_FLAT_LEVELS} or more levels recommended)"
            )


def _dn(frame: RawFrame, bias: np.ndarray | None = None) -> np.ndarray:
    """The mosaic in DN above the black level (and above the colour bias, if given), float64."""
    offsets = bayer_offsets(frame.raw_pattern, frame.path)
    level = np.zeros((2, 2))
    for c, (y, x) in enumerate(offsets):
        level[y, x] = frame.black_level[c] + (0.0 if bias is None else bias[c])
    h, w = frame.mosaic.shape
    return frame.mosaic.astype(np.float64) - np.tile(level, (h // 2 + 1, w // 2 + 1))[:h, :w]


def _channel_means(dn: np.ndarray, frame: RawFrame) -> np.ndarray:
    return np.array([dn[y::2, x::2].mean() for y, x in bayer_offsets(frame.raw_pattern, frame.path)])


def fit_darks(darks: list[RawFrame], rng: np.random.Generator):
    """Colour bias, σ_r, λ, σ_TL, σ_g and the PPCC curve from the dark frames of one ISO."""
    bias = np.mean([_channel_means(_dn(f), f) for f in darks], axis=0)
    row_vars, residuals = [], []
    for f in darks:
        d = _dn(f, bias)
        row_means = d.mean(axis=1)
        residual = d - row_means[:, None]
        # var(row mean) = σ_r² + σ_read²/W: remove the pixel-noise share
        row_vars.append(row_means.var(ddof=1) - residual.var() / d.shape[1])
        residuals.append(residual.ravel())
    read = np.concatenate(residuals)
    sample = rng.choice(read, size=min(PPCC_SAMPLES, read.size), replace=False)
    lam = float(stats.ppcc_max(sample, brack=(-0.5, 0.5), dist="tukeylambda"))
    (_, _), (sigma_tl, _, _) = stats.probplot(sample, sparams=(lam,), dist="tukeylambda", fit=True)
    ppcc = stats.ppcc_plot(sample[:20_000], LAMBDA_GRID[0], LAMBDA_GRID[-1], dist="tukeylambda", N=len(LAMBDA_GRID))
    return bias, float(np.sqrt(max(np.mean(row_vars), 0.0))), lam, float(sigma_tl), float(read.std()), np.asarray(ppcc)


def fit_flats(flats: list[RawFrame], bias: np.ndarray, read_var: float):
    """K from the photon-transfer curve of flat pairs at one ISO (pairs share an exposure time)."""
    by_level = defaultdict(list)
    for f in flats:
        by_level[f.exposure_time].append(f)
    means, variances = [], []
    for level in sorted(by_level):
        group = by_level[level]
        if len(group) < 2:
            continue
        for f in group[:2]:
            if np.mean(f.mosaic >= f.white_level) > SATURATED_FRACTION:
                raise CalibrationError(f"flat frame {f.path} is saturated (over {SATURATED_FRACTION:.1%} of pixels at the white level {f.white_level})")
        a, b = _dn(group[0], bias), _dn(group[1], bias)
        means.append(float(0.5 * (a + b).mean()))
        variances.append(float((a - b).var() / 2))  # the pair difference cancels the fixed pattern
    if not means:
        names = ", ".join(f.path.name for f in flats[:4])
        raise CalibrationError(f"ISO {flats[0].iso:g}: no pair of flat frames with the same exposure time ({names}); need ≥ 2 per level")
    if len(means) >= 2:
        K, intercept = np.polyfit(means, variances, 1)
    else:  # one level: the dark frames give the intercept
        intercept = read_var
        K = (variances[0] - intercept) / means[0]
    if not K > 0:
        raise CalibrationError(f"ISO {flats[0].iso:g}: photon-transfer fit gave K = {K:.4g} ≤ 0 from {len(means)} flat level(s)")
    return float(K), float(intercept), means, variances


def fit_line(log_k: np.ndarray, values) -> dict:
    """log σ = slope·log K + bias, with ``sigma`` the residuals' standard deviation."""
    log_s = np.log(np.asarray(values))
    slope, bias = np.polyfit(log_k, log_s, 1)
    resid = log_s - profile_log_sigma({"slope": slope, "bias": bias}, log_k)
    return {"slope": float(slope), "bias": float(bias), "sigma": float(resid.std(ddof=1) if len(resid) > 2 else resid.std())}


def calibrate(frames_dir, camera: str, out_json, plots_dir=None, seed: int = 0, dn_scale: float | None = None) -> dict:
    """Calibrate ``camera`` from ``frames_dir/dark`` and ``frames_dir/flat``; write the parameter JSON.

    ``dn_scale``: the DN a packed value of 1 stands for, recorded as ``sensor.dn_scale``; default
    white − black of the frames (the original's 15583 keeps an ELD-release camera's numbers).
    """
    frames_dir = Path(frames_dir)
    if dn_scale is not None and (isinstance(dn_scale, bool) or not isinstance(dn_scale, numbers.Real)
                                 or not np.isfinite(dn_scale) or dn_scale <= 0):
        raise ConfigError(f"dn_scale: must be a positive number, got {dn_scale!r}")
    dark_files, flat_files = _raw_files(frames_dir / "dark"), _raw_files(frames_dir / "flat")
    models = defaultdict(list)
    for p in dark_files + flat_files:
        models[_make_model(p)].append(f"{p.parent.name}/{p.name}")
    if len(models) > 1:
        raise CalibrationError(
            f"calibration frames from mixed cameras in {frames_dir}: "
            + "; ".join(f"{' '.join(m).strip() or '(no make/model)'}: {', '.join(n[:3])}{' …' if len(n) > 3 else ''}"
                        for m, n in models.items())
            + ": calibrate one camera at a time"
        )
    frames = _read_all(dark_files + flat_files, frames_dir)
    darks, flats = frames[: len(dark_files)], frames[len(dark_files) :]
    dark_by_iso, flat_by_iso = defaultdict(list), defaultdict(list)
    for f in darks:
        dark_by_iso[f.iso].append(f)
    for f in flats:
        flat_by_iso[f.iso].append(f)
    missing = sorted(set(dark_by_iso) ^ set(flat_by_iso))
    if missing:
        raise CalibrationError(f"ISO(s) {', '.join(f'{i:g}' for i in missing)} have dark frames or flat frames but not both (in {frames_dir})")
    if len(dark_by_iso) < 2:
        raise CalibrationError(f"need frames at ≥ 2 ISOs for the fits across ISO, found {sorted(dark_by_iso)} in {frames_dir}")
    _check_counts(dark_by_iso, flat_by_iso, frames_dir)

    rng = np.random.default_rng(seed)
    fits = []
    for iso in sorted(dark_by_iso):
        bias, sigma_r, lam, sigma_tl, sigma_g, ppcc = fit_darks(dark_by_iso[iso], rng)
        K, intercept, means, variances = fit_flats(flat_by_iso[iso], bias, sigma_g**2 + sigma_r**2)
        fits.append(IsoFit(iso, K, sigma_r, lam, sigma_tl, sigma_g, bias, means, variances, intercept, ppcc))

    isos = np.array([f.iso for f in fits])
    Ks = np.array([f.K for f in fits])
    iso_span = [float(isos.min()), float(isos.max())]  # where Kmin and Kmax hold
    k_min, k_max = k_range(*np.polyfit(isos, Ks, 1), iso_span)
    log_k = np.log(Ks)
    first = frames[0]
    sensor = sensor_from_frame(first, *_make_model(first.path))
    if dn_scale is not None:
        sensor["dn_scale"] = float(dn_scale)
    params = {
        "camera": camera,
        "sensor": sensor,
        "black_level": float(np.mean(first.black_level)),
        "white_level": int(first.white_level),
        "iso_range": iso_span,
        "per_iso": [{"iso": f.iso, "K": f.K, "sigma_r": f.sigma_r, "lambda": f.lam, "sigma_TL": f.sigma_tl, "sigma_g": f.sigma_g} for f in fits],
        "Kmin": k_min,
        "Kmax": k_max,
        "G_shape": [f.lam for f in fits],
        "Profile-1": {
            "G_scale": fit_line(log_k, [f.sigma_tl for f in fits]),
            "g_scale": fit_line(log_k, [f.sigma_g for f in fits]),
            "R_scale": fit_line(log_k, [f.sigma_r for f in fits]),
        },
        "color_bias": [float(v) for v in np.mean([f.color_bias for f in fits], axis=0)],
    }
    if plots_dir is not None:
        from expodiff.physics.calibration_plots import plot_calibration

        plot_calibration(fits, params, plots_dir)
    write_text_atomic(out_json, json.dumps(params, indent=1))
    return params
