"""The embedded demo dataset: real DNG files in the SID, ELD and calibration layouts.

Scenes are natural sRGB images shipped inside scikit-image, turned into linear Bayer raw
(inverse sRGB gamma → inverse colour matrix → divided by white-balance gains → RGGB mosaic).
Short exposures carry the ELD noise model P+G+r+u (PROTOCOL §3) with KNOWN parameters derived
from the bundled SonyA7S2 camera file, so every later stage (calibration, training, evaluation)
can be checked against the truth, which is saved in ``calibration/SonyA7S2/true_params.json``.

A second generated camera (``make_camera_data``, ``GENERATED_CAMERAS``) differs from the Sony in
everything the pipeline reads from a sensor: bit depth and levels, mosaic, make and model, the
ISO span it is calibrated over and its noise parameters (``GEN12_PARAMS``). It writes dark and
flat frames in the layout ``physics.calibrate`` reads and ELD-style short/long pairs, so a
calibration and an evaluation on a non-Sony sensor can be checked against a known truth. The
generator's helpers take the camera (``SyntheticCamera``) as a parameter; the Sony is the default,
and its dataset is byte-identical to what it was before the second camera existed.

All randomness comes from ``seed``: every file has its own generator seeded by
``(seed, crc32(name))``, so the output is byte-identical for a seed and independent of order.

Simplifications, on purpose: long exposures (references) get only a 1-DN Gaussian read noise and
quantisation ("nearly clean"); a SID scene has one ISO for its shorts and its long, as in SID's
list files; flats are lit to the same DN levels at every ISO.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
import skimage.data
import skimage.transform
from scipy.stats import tukeylambda

import expodiff
from expodiff.io.atomic import atomic_dir
from expodiff.errors import ConfigError
from expodiff.io.raw import SONY_A7S2_COLOR_MATRIX, bayer_offsets, write_dng
from expodiff.physics.camera import k_from_iso, load_camera_params, profile_log_sigma, validate_camera_params
from expodiff.physics.noise import NoiseParams, quantise, shot_noise

CAMERA = "SonyA7S2"
BLACK_LEVEL = 512
WHITE_LEVEL = 16383
RANGE_DN = WHITE_LEVEL - BLACK_LEVEL
LONG_READ_SIGMA_DN = 1.0  # read noise of the "nearly clean" long exposures / references
PEAK_RANGE = (0.3, 0.9)  # brightest clean pixel of a long exposure, as a fraction of white − black

# SID: the 15 evaluation scenes (PROTOCOL §1); ids 1xxxx go to the test list, 2xxxx to val.
SID_EVAL_SCENES = (
    "10185", "10187", "10191", "10193", "10198", "10213", "10217", "10226", "10227", "10228",
    "20188", "20201", "20208", "20210", "20211",
)  # fmt: skip
SID_LONG = ("10", Fraction(10))  # (file-name label, EXIF exposure time in s)
# (file-name label, EXIF exposure). "0.033s" is 1/30 s as the camera writes it: the true ratio is
# 300, which is what the pipeline's cap min(int(10/0.033), 300) gives.
SID_SHORTS = (("0.1", Fraction(1, 10)), ("0.04", Fraction(1, 25)), ("0.033", Fraction(1, 30)))
SID_ISOS = (100, 200, 400, 800, 1600, 3200, 6400)
SID_F_NUMBERS = (4, 5, 8, 9, 11)

# ELD: references are ISO 100 for 4 s (ISO·t = 400); other ids are dimmer by an exact ratio.
ELD_REFERENCE = (100, Fraction(4))
ELD_RATIO_BY_ID = {2: 1, 7: 1, 12: 1, 3: 10, 8: 10, 13: 10, 4: 100, 9: 100, 14: 100, 5: 200, 10: 200, 15: 200}
ELD_ISOS_BY_RATIO = {1: (400,), 10: (800, 1600), 100: (800, 1600, 3200, 6400), 200: (800, 1600, 3200, 6400)}

# Natural RGB images bundled in scikit-image's wheel (no download needed).
SOURCES = (
    "astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry",
    "hubble_deep_field", "colorwheel", "retina", "stereo_motorcycle",
)  # fmt: skip

# Colour: sRGB → camera via the camera's XYZ→camera matrix. WB_GAINS make white neutral and CCM
# maps white-balanced camera RGB to linear sRGB (rows sum to 1), as a raw converter would.
_XYZ_FROM_SRGB = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
_CAM_FROM_SRGB = np.reshape(SONY_A7S2_COLOR_MATRIX, (3, 3)) / 10000 @ _XYZ_FROM_SRGB
CAMERA_NEUTRAL = _CAM_FROM_SRGB.sum(1) / _CAM_FROM_SRGB.sum(1)[1]  # raw response to white, G = 1
WB_GAINS = 1 / CAMERA_NEUTRAL  # ≈ (2.77, 1, 1.43)
CCM = np.linalg.inv(_CAM_FROM_SRGB / _CAM_FROM_SRGB.sum(1, keepdims=True))


@dataclass(frozen=True)
class Preset:
    raw_hw: tuple[int, int]  # mosaic size in pixels (even; LibRaw needs ≥ 22)
    n_train: int  # SID train scenes 00001, 00002, ...
    sid_eval_scenes: tuple[str, ...]  # subset of SID_EVAL_SCENES
    n_eld_scenes: int  # ELD scene-1 ... scene-n
    calib_isos: tuple[int, ...]  # ISOs of the dark and flat frames
    n_dark: int  # dark frames per ISO
    flat_levels: tuple[float, ...]  # flat signal as a fraction of white − black; a pair per level
    # a scene's crop of its source image, as a fraction of the largest crop with the raw aspect
    # (drawn uniformly): below ~0.5 a raw pixel holds less than one source pixel, as in a real
    # 12-Mpixel frame, whose pixels are smoother than those of a whole photo shrunk to 384×576
    crop_fraction: tuple[float, float] = (0.45, 1.0)


# ~2.5 s on 2 CPU cores, 209 files, 40 MB
_DEMO = Preset(
    raw_hw=(256, 384),
    n_train=8,
    sid_eval_scenes=SID_EVAL_SCENES,
    n_eld_scenes=2,
    calib_isos=(100, 400, 1600, 3200, 6400),
    n_dark=4,
    flat_levels=(0.02, 0.05, 0.1, 0.2, 0.35, 0.5),
)
PRESETS = {
    "demo": _DEMO,
    # `make mini` (docs/MINI.md): 64 train scenes of 384×576 (192×288 packed, 8 patches of 64² in
    # the 128×256 centre crop: 512 a epoch), zoomed in, the 15 evaluation scenes, one ELD scene
    "mini": replace(_DEMO, raw_hw=(384, 576), n_train=64, n_eld_scenes=1, crop_fraction=(0.25, 0.5)),
    # for unit tests: ~0.3 s, 65 files, 1 MB
    "tiny": Preset(
        raw_hw=(64, 96),
        n_train=2,
        sid_eval_scenes=("10185", "10187", "20188"),
        n_eld_scenes=1,
        calib_isos=(100, 1600, 6400),
        n_dark=2,
        flat_levels=(0.05, 0.2, 0.5),
    ),
}


# --- generated cameras -------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity (it holds dicts)
class SyntheticCamera:
    """A camera the generator writes raw files of: its raw format, its noise truth, its pairs."""

    name: str  # folder, file and "camera" name ("SonyA7S2")
    make: str  # EXIF Make and Model of every file
    model: str
    cfa: str  # the 2×2 mosaic cell in raster order ("RGGB", "GRBG", ...)
    black_level: int  # DN, every channel
    white_level: int  # DN
    params: dict | None  # ELD-format noise parameters; None: the bundled file of ``name``
    pair_reference: tuple[int, Fraction]  # (ISO, exposure in s) of the ELD-style references
    pair_isos_by_ratio: dict[int, tuple[int, ...]]  # ISOs an input of each exposure ratio is drawn from
    presets: dict[str, Preset]

    @property
    def range_dn(self) -> int:
        """White − black: the DN a clean signal can span."""
        return self.white_level - self.black_level

    def sensor(self) -> dict:
        """The ``sensor`` entry of its parameter file, as ``physics.camera.sensor_from_frame``
        reads it from one of its files."""
        return {
            "make": self.make,
            "model": self.model,
            "cfa": self.cfa,
            "black_level": [float(self.black_level)] * 4,
            "white_level": self.white_level,
            "bit_depth": self.white_level.bit_length(),
            "dn_scale": float(self.range_dn),
        }


SONY = SyntheticCamera(
    name=CAMERA, make="Sony", model="ILCE-7SM2", cfa="RGGB", black_level=BLACK_LEVEL, white_level=WHITE_LEVEL,
    params=None, pair_reference=ELD_REFERENCE, pair_isos_by_ratio=ELD_ISOS_BY_RATIO, presets=PRESETS,
)  # fmt: skip

# "Gen12", a made-up 12-bit sensor unlike the Sony in everything the pipeline reads from a camera:
# - format: 12 bit, black 256, white 4095 (dn_scale 3839, not 15583), a GRBG mosaic;
# - span: calibrated at ISO 200–3200 (Kmin at 200, Kmax at 3200; the ELD release's: 100–6400);
# - gain: K = 0.00028·ISO + 0.004, a third of the Sony's at the same ISO (its DN are 4× coarser);
# - read noise: nearly Gaussian (λ ≈ 0.14; the Sony's generated λ: −0.086, heavier tails),
#   σ_TL 1.2–3.0 DN over its span (std 1.45·σ_TL at λ 0.14); σ_g, the std of that read noise,
#   on the same slope; row noise σ_r 0.5–1.2 DN, strong next to it (the Sony's: 0.16–1.4 DN
#   beside a read noise of 1.3–8.5 DN); colour bias of both signs, larger on R and B.
# The ``sigma`` of each line is the scatter a real calibration would show; the generator puts
# every scale on its line.
GEN12_PARAMS = {
    "Kmin": 0.06,  # K at ISO 200
    "Kmax": 0.9,  # K at ISO 3200
    "iso_range": [200, 3200],
    "G_shape": [0.2, 0.14, 0.1],
    "Profile-1": {
        "G_scale": {"slope": 0.34, "bias": 1.13, "sigma": 0.1},
        "g_scale": {"slope": 0.34, "bias": 1.5034, "sigma": 0.1},  # 1.13 + ln 1.453: std of TL(0.14)
        "R_scale": {"slope": 0.32, "bias": 0.22, "sigma": 0.15},
    },
    "color_bias": [[0.9, -0.3, 1.2, -0.4], [0.8, -0.5, 1.1, -0.6], [0.7, -0.6, 1.0, -0.7]],
}

GEN12 = SyntheticCamera(
    name="Gen12", make="Expodiff", model="Gen12", cfa="GRBG", black_level=256, white_level=4095,
    params=GEN12_PARAMS,
    pair_reference=(200, Fraction(2)),  # ISO·t = 400 as the ELD references, at its lowest ISO
    pair_isos_by_ratio={1: (800,), 10: (800, 1600), 100: (800, 1600, 3200), 200: (800, 1600, 3200)},
    presets={
        # for unit tests: frames of 192×128 (tall: more rows for the row noise), 4 darks per ISO,
        # so K (pair variances over 24576 pixels) and σ_r (768 row means) are measured to ~1 %
        # and ~3 %, and its calibration takes ~3 s (the PPCC fit of 98304 samples an ISO);
        # generating: ~0.3 s, 48 files, 2 MB
        "tiny": Preset(
            raw_hw=(192, 128), n_train=0, sid_eval_scenes=(), n_eld_scenes=1,
            calib_isos=(200, 800, 3200), n_dark=4, flat_levels=(0.05, 0.2, 0.5),
        ),
        "demo": Preset(
            raw_hw=(256, 384), n_train=0, sid_eval_scenes=(), n_eld_scenes=2,
            calib_isos=(200, 400, 800, 1600, 3200), n_dark=4, flat_levels=(0.02, 0.05, 0.1, 0.2, 0.35, 0.5),
        ),
    },
)  # fmt: skip

# make_camera_data(camera=...) names: the second camera (the Sony's data is make_demo_data's)
GENERATED_CAMERAS = {"gen12": GEN12}


# --- noise model -------------------------------------------------------------------------
# The parameters, K(ISO), the profile lines and the quantisation and shot-noise formulas are the
# physics modules' (expodiff.physics.camera, expodiff.physics.noise). The random draws stay numpy
# (rng.uniform, rng.poisson, rng.normal, scipy's tukeylambda.rvs, in this order) so that the demo
# dataset stays byte-identical for a seed: torch's generators give other streams, and scipy's
# Box-Cox form of the Tukey-lambda quantile differs in the last bits from physics.noise.tukey_lambda.


def camera_file(camera: SyntheticCamera = SONY) -> dict:
    """The ELD-format parameters the generator takes a camera's truth from: the Sony's are the
    bundled SonyA7S2 file; a camera with its own ``params`` also gets its ``sensor`` entry."""
    if camera.params is None:
        return _bundled_camera_file(camera.name)
    return validate_camera_params({**camera.params, "sensor": camera.sensor()}, f"generated camera {camera.name}")


@lru_cache(maxsize=None)
def _bundled_camera_file(name: str) -> dict:
    return load_camera_params(name)


def _fixed_shape_index(cam: dict) -> int:
    """Index of the (lower) median of G_shape: its λ and the colour bias of the same entry are used."""
    order = np.argsort(cam["G_shape"], kind="stable")
    return int(order[(len(order) - 1) // 2])


def true_noise_params(iso: float, camera: SyntheticCamera = SONY) -> NoiseParams:
    """The generator's noise parameters at ``iso`` (one sample, floats, in DN): K from the ISO, each
    scale on its Profile-1 line without scatter, the median λ. ``ratio`` is 1: the generator scales
    each short exposure's signal itself. σ_g (the P+g model's) is recorded, not used to generate."""
    cam = camera_file(camera)
    k = k_from_iso(iso, cam)

    def line(name: str) -> float:
        return float(np.exp(profile_log_sigma(cam["Profile-1"][name], np.log(k))))

    return NoiseParams(
        K=float(k),
        ratio=1.0,
        sigma_g=line("g_scale"),
        sigma_r=line("R_scale"),
        sigma_tl=line("G_scale"),
        lam=float(cam["G_shape"][_fixed_shape_index(cam)]),
    )


def true_color_bias(camera: SyntheticCamera = SONY) -> tuple[float, float, float, float]:
    """R, G1, B, G2 offsets above black (every ISO): the camera file's entry of the median λ."""
    cam = camera_file(camera)
    return tuple(float(b) for b in cam["color_bias"][_fixed_shape_index(cam)])


def cfa_offsets(cfa: str) -> list[tuple[int, int]]:
    """(row, col) of R, G1, B, G2 in the 2×2 cell of a mosaic named in raster order ("GRBG")."""
    code = {"R": 0, "G": 1, "B": 2}
    return bayer_offsets(np.array([[code[c] for c in cfa[:2]], [code[c] for c in cfa[2:]]]), f"CFA {cfa}")


def read_noise(shape: tuple[int, int], p: NoiseParams, rng: np.random.Generator, camera: SyntheticCamera = SONY) -> np.ndarray:
    """Row + Tukey-lambda + colour-bias noise of the camera's mosaic, in DN (what a dark frame holds)."""
    row = rng.normal(0.0, p.sigma_r, size=(shape[0], 1))  # one draw per mosaic row: R/G1 share, B/G2 share
    tl = tukeylambda.rvs(p.lam, scale=p.sigma_tl, size=shape, random_state=rng)
    cell = np.empty((2, 2))  # the colour bias R, G1, B, G2 at their places in the camera's cell
    for (y, x), b in zip(cfa_offsets(camera.cfa), true_color_bias(camera)):
        cell[y, x] = b
    bias = np.tile(cell, (shape[0] // 2, shape[1] // 2))
    return row + tl + bias


def eld_noise(signal: np.ndarray, p: NoiseParams, rng: np.random.Generator, camera: SyntheticCamera = SONY) -> np.ndarray:
    """P+G+r+u on a clean mosaic in DN above black (PROTOCOL §3 order); returns DN above black."""
    x = quantise(signal, rng.uniform(-0.5, 0.5, signal.shape))
    x = shot_noise(x, p.K, rng.poisson)
    return x + read_noise(signal.shape, p, rng, camera)


def nearly_clean(signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A long exposure: the clean signal plus a tiny Gaussian read noise."""
    return signal + rng.normal(0.0, LONG_READ_SIGMA_DN, signal.shape)


def to_raw(dn: np.ndarray, black_level: int = BLACK_LEVEL, white_level: int = WHITE_LEVEL) -> np.ndarray:
    """DN above black → stored uint16 mosaic: add black, round, clip to [0, white]."""
    return np.clip(np.rint(dn + black_level), 0, white_level).astype(np.uint16)


# --- scenes ------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _source_image(name: str) -> np.ndarray:
    img = getattr(skimage.data, name)()
    img = img[0] if isinstance(img, tuple) else img  # stereo_motorcycle: (left, right, disparity)
    return np.asarray(img[..., :3], dtype=np.float64) / 255.0


def scene_rgb(
    rng: np.random.Generator, source: str, hw: tuple[int, int], crop_fraction: tuple[float, float] = (0.45, 1.0)
) -> np.ndarray:
    """A random crop (``crop_fraction`` of the largest one with the raw aspect) of ``source``, resized to hw."""
    img = _source_image(source)
    h, w = hw
    max_h = min(img.shape[0], img.shape[1] * h / w)
    ch = max_h * rng.uniform(*crop_fraction)
    cw = ch * w / h
    top = int(rng.uniform(0, img.shape[0] - ch))
    left = int(rng.uniform(0, img.shape[1] - cw))
    crop = img[top : top + int(ch), left : left + int(cw)]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return skimage.transform.resize(crop, (h, w, 3), order=1, anti_aliasing=True)


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def rgb_to_clean_raw(rgb: np.ndarray, peak_dn: float, cfa: str = "RGGB") -> np.ndarray:
    """sRGB (H, W, 3) → clean mosaic (``cfa``) in DN above black whose brightest pixel is ``peak_dn``."""
    lin = srgb_to_linear(rgb)
    cam = (lin @ np.linalg.inv(CCM).T) / WB_GAINS  # undo the colour matrix, then the white balance
    cam = np.clip(cam, 0.0, None)  # out-of-gamut colours have no negative raw response
    mosaic = np.empty(rgb.shape[:2])
    for (y, x), channel in zip(cfa_offsets(cfa), (0, 1, 2, 1)):  # R, G1 (R's row), B, G2 (B's row)
        mosaic[y::2, x::2] = cam[y::2, x::2, channel]
    return mosaic * (peak_dn / max(mosaic.max(), 1e-12))


# --- writers -----------------------------------------------------------------------------


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _clean_scene(seed: int, name: str, source_index: int, preset: Preset, camera: SyntheticCamera = SONY):
    """(clean mosaic in DN above black, the item's generator to draw its noise from)."""
    rng = _rng(seed, name)
    rgb = scene_rgb(rng, SOURCES[source_index % len(SOURCES)], preset.raw_hw, preset.crop_fraction)
    return rgb_to_clean_raw(rgb, rng.uniform(*PEAK_RANGE) * camera.range_dn, camera.cfa), rng


def _write(
    path: Path, dn: np.ndarray, iso: int, exposure: Fraction, f_number: int = 8, camera: SyntheticCamera = SONY
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_dng(
        path, to_raw(dn, camera.black_level, camera.white_level), iso=iso, exposure_time=exposure, cfa=camera.cfa,
        black_level=camera.black_level, white_level=camera.white_level, make=camera.make, model=camera.model,
        as_shot_neutral=tuple(CAMERA_NEUTRAL), f_number=Fraction(f_number),
    )  # fmt: skip


def _write_sid(root: Path, preset: Preset, seed: int) -> None:
    train = [f"{i:05d}" for i in range(1, preset.n_train + 1)]
    lists: dict[str, list[str]] = {"train": [], "test": [], "val": []}
    for k, scene in enumerate(train + list(preset.sid_eval_scenes)):
        clean, rng = _clean_scene(seed, f"sid/{scene}", k, preset)
        iso = int(rng.choice(SID_ISOS))  # one ISO per scene, as in SID's list files
        f_number = int(rng.choice(SID_F_NUMBERS))
        p = true_noise_params(iso)
        long_name = f"{scene}_00_{SID_LONG[0]}s.dng"
        _write(root / "Sony" / "long" / long_name, nearly_clean(clean, rng), iso, SID_LONG[1], f_number)
        for label, exposure in SID_SHORTS:
            short_name = f"{scene}_00_{label}s.dng"
            ratio = SID_LONG[1] / exposure  # 100, 250, 300 exactly
            dn = eld_noise(clean / float(ratio), p, rng)
            _write(root / "Sony" / "short" / short_name, dn, iso, exposure, f_number)
            split = {"0": "train", "1": "test", "2": "val"}[scene[0]]
            lists[split].append(f"./Sony/short/{short_name} ./Sony/long/{long_name} ISO{iso} F{f_number}")
    for split, lines in lists.items():
        (root / f"Sony_{split}_list.txt").write_text("".join(line + "\n" for line in lines))


def _write_pairs(
    root: Path, preset: Preset, seed: int, first_source: int, camera: SyntheticCamera = SONY, stream: str = "eld"
) -> None:
    """ELD-layout scenes ``root/scene-{k}/IMG_{id:04d}.dng``: references (ids 1, 6, 11, 16) at the
    camera's reference ISO and exposure, inputs dimmer by the exact ratio of their id, each at an
    ISO drawn from the camera's list for that ratio. ``stream`` names the scenes' generators."""
    ref_iso, ref_t = camera.pair_reference
    for scene in range(1, preset.n_eld_scenes + 1):
        clean, rng = _clean_scene(seed, f"{stream}/{scene}", first_source + scene - 1, preset, camera)
        folder = root / f"scene-{scene}"
        for image_id in range(1, 17):
            ratio = ELD_RATIO_BY_ID.get(image_id)
            if ratio is None:  # reference
                _write(folder / f"IMG_{image_id:04d}.dng", nearly_clean(clean, rng), ref_iso, ref_t, camera=camera)
                continue
            iso = int(rng.choice(camera.pair_isos_by_ratio[ratio]))
            exposure = ref_iso * ref_t / (ratio * iso)  # exact, so EXIF (ISO·t) ratios are exact
            dn = eld_noise(clean / ratio, true_noise_params(iso, camera), rng, camera)
            _write(folder / f"IMG_{image_id:04d}.dng", dn, iso, exposure, camera=camera)


def _write_calibration(
    folder: Path, preset: Preset, seed: int, camera: SyntheticCamera = SONY, stream: str = "calibration"
) -> None:
    """``folder/dark/``, ``folder/flat/`` (the layout ``physics.calibrate`` reads) and
    ``folder/true_params.json``. ``stream`` names the frames' generators."""
    h, w = preset.raw_hw
    rng = _rng(seed, f"{stream}/sensor")
    # Fixed pattern shared by all flats: mild vignetting and 1 % per-pixel response non-uniformity.
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2) / (((h - 1) / 2) ** 2 + ((w - 1) / 2) ** 2)
    gain_map = (1.0 - 0.2 * r2) * (1.0 + rng.normal(0.0, 0.01, (h, w)))
    per_iso = []
    for iso in preset.calib_isos:
        p = true_noise_params(iso, camera)
        rng = _rng(seed, f"{stream}/{iso}")
        for j in range(preset.n_dark):
            dn = read_noise((h, w), p, rng, camera)  # no photons: row + read noise + colour bias
            _write(folder / "dark" / f"dark_iso{iso:05d}_{j:02d}.dng", dn, iso, Fraction(1, 100), camera=camera)
        for level_index, level in enumerate(preset.flat_levels):
            exposure = Fraction(round(level * 1000), 1000)  # exposure ∝ level: one (ISO, t) per pair
            for frame in "ab":
                dn = eld_noise(level * camera.range_dn * gain_map, p, rng, camera)
                name = f"flat_iso{iso:05d}_level{level_index:02d}_{frame}.dng"
                _write(folder / "flat" / name, dn, iso, exposure, camera=camera)
        per_iso.append(
            {"iso": iso, "K": p.K, "sigma_r": p.sigma_r, "lambda": p.lam, "sigma_TL": p.sigma_tl, "sigma_g": p.sigma_g}
        )
    cam = camera_file(camera)
    truth = {
        "camera": camera.name,
        "black_level": camera.black_level,
        "white_level": camera.white_level,
        "per_iso": per_iso,
        "Kmin": cam["Kmin"],
        "Kmax": cam["Kmax"],
        "G_shape": [row["lambda"] for row in per_iso],
        # The generator puts every scale exactly on its line, so the residual spread is 0.
        "Profile-1": {
            name: {"slope": cam["Profile-1"][name]["slope"], "bias": cam["Profile-1"][name]["bias"], "sigma": 0.0}
            for name in ("G_scale", "g_scale", "R_scale")
        },
        "color_bias": list(true_color_bias(camera)),
    }
    # what the camera file says of its sensor and span (the bundled Sony file says neither)
    truth.update({key: cam[key] for key in ("sensor", "iso_range") if key in cam})
    (folder / "true_params.json").write_text(json.dumps(truth, indent=1) + "\n")


def _write_manifest(
    root: Path, seed: int, preset_name: str, preset: Preset, generator: str = "make_demo_data", camera: str | None = None
) -> None:
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        rel = path.relative_to(root).as_posix()
        files.append(dict(path=rel, bytes=len(data), sha256=hashlib.sha256(data).hexdigest()))
    manifest = dict(
        generator=f"expodiff.data.synthetic.{generator}",
        version=expodiff.__version__,
        **({} if camera is None else {"camera": camera}),
        seed=seed,
        preset=preset_name,
        raw_hw=list(preset.raw_hw),
        files=files,
    )
    (root / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")


def make_demo_data(out_dir: str | os.PathLike, *, seed: int = 0, preset: str = "demo") -> Path:
    """Generate the demo dataset under ``out_dir`` (SID/, ELD/, calibration/, MANIFEST.json).

    The tree is built in a temporary sibling directory and renamed into place at the end, so a
    crash leaves no partial dataset. An existing ``out_dir`` is replaced only if it is empty or
    an earlier demo dataset (has MANIFEST.json). Returns ``out_dir``.
    """
    if preset not in PRESETS:
        raise ConfigError(f"preset {preset!r}: expected one of {sorted(PRESETS)}")
    seed, p = _check_seed(seed), PRESETS[preset]
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, marker="MANIFEST.json") as tmp:
        _write_sid(tmp / "SID", p, seed)
        _write_pairs(tmp / "ELD" / CAMERA, p, seed, first_source=p.n_train + len(p.sid_eval_scenes))
        _write_calibration(tmp / "calibration" / CAMERA, p, seed)
        _write_manifest(tmp, seed, preset, p)
    return out_dir


def make_camera_data(out_dir: str | os.PathLike, *, camera: str = "gen12", seed: int = 0, preset: str = "tiny") -> Path:
    """Generate a dataset of a second camera (``GENERATED_CAMERAS``) under ``out_dir``:

    - ``calibration/dark/*.dng``, ``calibration/flat/*.dng``: the frames ``physics.calibrate``
      reads, at the preset's ISOs (inside the camera's span), and ``calibration/true_params.json``
      (its noise truth, with the ``sensor`` entry and ``iso_range``);
    - ``pairs/scene-{k}/IMG_{id:04d}.dng``: ELD-layout short/long pairs in the camera's format
      (``data.eld.eld_eval_pairs(out_dir, "pairs", ...)`` reads them), at ISOs inside its span;
    - ``MANIFEST.json``: seed, preset, camera and the sha256 of every file.

    Built in a temporary sibling and renamed into place, as ``make_demo_data``; the same seed gives
    the same bytes. Returns ``out_dir``.
    """
    if camera not in GENERATED_CAMERAS:
        raise ConfigError(f"camera {camera!r}: expected one of {sorted(GENERATED_CAMERAS)}")
    cam = GENERATED_CAMERAS[camera]
    if preset not in cam.presets:
        raise ConfigError(f"preset {preset!r} of camera {camera}: expected one of {sorted(cam.presets)}")
    seed, p = _check_seed(seed), cam.presets[preset]
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, marker="MANIFEST.json") as tmp:
        _write_calibration(tmp / "calibration", p, seed, cam, stream=f"{camera}/calibration")
        _write_pairs(tmp / "pairs", p, seed, first_source=0, camera=cam, stream=f"{camera}/pairs")
        _write_manifest(tmp, seed, preset, p, generator="make_camera_data", camera=camera)
    return out_dir


def _check_seed(seed) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed {seed!r}: expected a non-negative integer")
    return int(seed)
