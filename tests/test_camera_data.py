"""The second generated camera (Gen12: 12 bit, black 256, GRBG, ISO 200–3200): its files as
rawpy reads them, its calibration against the known truth, and the calibration's refusals of
frame sets it cannot use. Tolerances are a few standard errors of each estimate, computed below
from the truth and the frame geometry (or, for the PPCC fit, measured over seeds)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from scipy.stats import tukeylambda

from expodiff import cli
from expodiff.data import synthetic
from expodiff.data.eld import eld_eval_pairs
from expodiff.data.synthetic import GEN12, make_camera_data
from expodiff.errors import ConfigError, ExpodiffError
from expodiff.io import raw
from expodiff.io.raw import pack, pack_dn, read_exif, read_raw, write_dng
from expodiff.physics.calibrate import CalibrationError, calibrate
from expodiff.physics.camera import cfa_name, k_from_iso, k_range, sensor_from_frame, validate_camera_params
from expodiff.physics.noise import NoiseParams

N_SE = 4  # bounds are 4 standard errors: a correct estimate fails with probability ~1e-4 each
GEN12_SENSOR = {"make": "Expodiff", "model": "Gen12", "cfa": "GRBG", "black_level": [256.0] * 4,
                "white_level": 4095, "bit_depth": 12, "dn_scale": 3839.0}  # fmt: skip


@pytest.fixture(scope="module")
def gen12(tmp_path_factory):
    return make_camera_data(tmp_path_factory.mktemp("gen12") / "data", camera="gen12", seed=0, preset="tiny")


@pytest.fixture(scope="module")
def gen12_calibration(gen12, tmp_path_factory):
    out = tmp_path_factory.mktemp("gen12_calib") / "Gen12.json"
    return calibrate(gen12 / "calibration", "Gen12", out), out


def _truth(root):
    return json.loads((root / "calibration" / "true_params.json").read_text())


# --- the files ----------------------------------------------------------------------------


def test_layout_and_manifest(gen12):
    p = GEN12.presets["tiny"]
    calib = gen12 / "calibration"
    assert len(list((calib / "dark").glob("*.dng"))) == len(p.calib_isos) * p.n_dark
    assert len(list((calib / "flat").glob("*.dng"))) == len(p.calib_isos) * len(p.flat_levels) * 2
    assert sorted(f.name for f in (gen12 / "pairs" / "scene-1").iterdir()) == [f"IMG_{i:04d}.dng" for i in range(1, 17)]
    manifest = json.loads((gen12 / "MANIFEST.json").read_text())
    assert (manifest["generator"], manifest["camera"], manifest["seed"], manifest["preset"]) == (
        "expodiff.data.synthetic.make_camera_data", "gen12", 0, "tiny")  # fmt: skip
    files = sorted(f for f in gen12.rglob("*") if f.is_file() and f.name != "MANIFEST.json")
    assert [e["path"] for e in manifest["files"]] == [f.relative_to(gen12).as_posix() for f in files]


def test_files_are_12_bit_grbg(gen12):
    files = sorted(gen12.rglob("*.dng"))
    for path in files[:: max(1, len(files) // 12)] + [files[-1]]:
        frame = read_raw(path)
        assert cfa_name(frame.raw_pattern) == "GRBG", path
        assert frame.black_level.tolist() == [256.0] * 4 and frame.white_level == 4095
        assert frame.mosaic.max() <= 4095
        assert sensor_from_frame(frame, "Expodiff", "Gen12") == GEN12_SENSOR
    assert _truth(gen12)["sensor"] == GEN12_SENSOR
    assert _truth(gen12)["iso_range"] == [200, 3200]


def test_helpers_place_colours_by_the_cfa():
    """rgb_to_clean_raw and the colour bias follow the camera's mosaic (Sony: RGGB, Gen12: GRBG)."""
    rgb = np.broadcast_to([0.8, 0.5, 0.3], (4, 4, 3)).copy()
    rggb, grbg = synthetic.rgb_to_clean_raw(rgb, 100.0), synthetic.rgb_to_clean_raw(rgb, 100.0, "GRBG")
    for (ys, xs), (yg, xg) in zip(synthetic.cfa_offsets("RGGB"), synthetic.cfa_offsets("GRBG")):
        assert grbg[yg, xg] == rggb[ys, xs]  # R, G1, B, G2 get the same value at their own places
    assert synthetic.cfa_offsets("GRBG") == [(0, 1), (0, 0), (1, 0), (1, 1)]
    quiet = NoiseParams(K=1.0, ratio=1.0, sigma_g=0.0, sigma_r=0.0, sigma_tl=1e-12, lam=0.14)
    dark = synthetic.read_noise((4, 6), quiet, np.random.default_rng(0), GEN12)
    bias = synthetic.true_color_bias(GEN12)
    for (y, x), b in zip(synthetic.cfa_offsets("GRBG"), bias):
        np.testing.assert_allclose(dark[y::2, x::2], b, atol=1e-9)
    assert bias == tuple(synthetic.GEN12_PARAMS["color_bias"][1])  # the median λ's entry


def test_pairs_are_eld_layout_inside_the_span(gen12):
    pairs = eld_eval_pairs(gen12, "pairs", [1])
    assert [p.ratio for p in pairs] == [100] * 3 + [200] * 3
    for pair in pairs:
        assert pair.exposure_ratio == pytest.approx(pair.ratio, rel=1e-9)  # EXIF (ISO·t) ratios are exact
        iso, _ = read_exif(pair.input)
        assert 200 <= iso <= 3200
        assert read_exif(pair.gt) == (200, 2.0)
        # packed R, G1, B, G2 from the GRBG cell; the short holds the long's signal / ratio plus
        # the colour bias. Its mean over 24576 pixels has an SE ≤ 0.1 DN (pixel noise ≤ 4.4 DN,
        # row noise ≤ 1.2 DN over 192 rows): bound 0.5 DN
        long, short = pack_dn(read_raw(pair.gt)), pack_dn(read_raw(pair.input))
        assert long.shape == short.shape == (4, 96, 64) and pack(read_raw(pair.gt)).max() <= 1
        bias = np.array(synthetic.true_color_bias(GEN12))[:, None, None]
        assert (short - bias).mean() == pytest.approx(long.mean() / pair.ratio, abs=0.5)


def test_same_seed_same_bytes_and_bad_arguments(gen12, tmp_path):
    def digests(root):
        return {e["path"]: e["sha256"] for e in json.loads((root / "MANIFEST.json").read_text())["files"]}

    assert digests(make_camera_data(tmp_path / "again", seed=0)) == digests(gen12)
    other = digests(make_camera_data(tmp_path / "other", seed=1))
    assert all(other[k] != v for k, v in digests(gen12).items() if k.endswith(".dng"))
    with pytest.raises(ConfigError, match="camera 'canon'"):
        make_camera_data(tmp_path / "x", camera="canon")
    with pytest.raises(ConfigError, match="preset 'mini'"):
        make_camera_data(tmp_path / "x", preset="mini")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["again", "other"]  # atomic: no leftovers


def test_cli_writes_the_second_camera(tmp_path):
    assert cli.main(["make-demo-data", str(tmp_path / "g"), "--camera", "gen12", "--preset", "tiny"]) == 0
    assert json.loads((tmp_path / "g" / "MANIFEST.json").read_text())["camera"] == "gen12"


# --- calibration recovers the truth ---------------------------------------------------------


def _pixel_var(row: dict) -> float:
    """Variance of one dark pixel about its row: Tukey-lambda read noise + the stored values' rounding."""
    return row["sigma_TL"] ** 2 * tukeylambda(row["lambda"]).var() + 1 / 12


def _k_standard_error(root, row: dict) -> float:
    """SE of the photon-transfer slope: each level's pair variance v over N pixels has variance
    2v²/(N − 1) (Gaussian: shot noise of ≥ 3000 electrons, λ ≈ 0.14 read noise); the
    least-squares slope is Σ c_j v_j with c_j = (m_j − m̄)/Σ(m − m̄)²."""
    means, variances = [], []
    for a in sorted((root / "calibration" / "flat").glob(f"flat_iso{row['iso']:05d}_level*_a.dng")):
        pair = [read_raw(p).mosaic.astype(np.float64) - 256 for p in (a, a.with_name(a.name.replace("_a.", "_b.")))]
        means.append(np.mean(pair))
        # true variance of (a − b)/2: shot, read, row, and the two quantisations (signal and storage)
        variances.append(row["K"] * means[-1] + _pixel_var(row) + row["sigma_r"] ** 2 + 1 / 12)
    m, v, n = np.array(means), np.array(variances), pair[0].size
    c = (m - m.mean()) / ((m - m.mean()) ** 2).sum()
    return float(np.sqrt((c**2 * 2 * v**2 / (n - 1)).sum()))


def _sigma_r_standard_error(row: dict, h: int, w: int, n_dark: int) -> float:
    """SE of σ_r: per dark, var(row means) over h rows estimates σ_r² + σ_pix²/w with relative
    SE sqrt(2/(h − 1)); n_dark frames are averaged; SE(σ) = SE(σ²)/(2σ)."""
    se_var = np.sqrt(2 / (h - 1) / n_dark) * (row["sigma_r"] ** 2 + _pixel_var(row) / w)
    return float(se_var / (2 * row["sigma_r"]))


def test_calibration_recovers_each_iso(gen12, gen12_calibration):
    params, out = gen12_calibration
    truth, p = _truth(gen12), GEN12.presets["tiny"]
    h, w = p.raw_hw
    assert json.loads(out.read_text()) == params
    assert [r["iso"] for r in params["per_iso"]] == [200, 800, 3200]
    for est, row in zip(params["per_iso"], truth["per_iso"]):
        iso = row["iso"]
        assert est["K"] == pytest.approx(row["K"], abs=N_SE * _k_standard_error(gen12, row)), iso
        assert est["sigma_r"] == pytest.approx(row["sigma_r"], abs=N_SE * _sigma_r_standard_error(row, h, w, p.n_dark)), iso
        # σ_g is the std of the residual about each row mean: var (1 − 1/w) of a pixel, whose
        # variance carries the 1/12 of rounding; SE of a std over N = 98304 samples: 1/sqrt(2N) = 0.2 %
        expected_g = np.sqrt((row["sigma_g"] ** 2 + 1 / 12) * (1 - 1 / w))
        assert est["sigma_g"] == pytest.approx(expected_g, rel=0.01), iso
        # The PPCC fit has no closed-form SE: over seeds 0–19 of this preset λ scattered by
        # SD ≤ 0.0032 (largest error 0.008) and σ_TL by SD ≤ 0.55 %, plus +0.7 % at ISO 200 where
        # rounding (variance 1/12 beside 3 DN²) widens the noise; bounds ≈ 6 SD (+ that bias).
        assert est["lambda"] == pytest.approx(row["lambda"], abs=0.02), iso
        assert est["sigma_TL"] == pytest.approx(row["sigma_TL"], rel=0.03), iso


def test_calibration_recovers_colour_bias_and_span(gen12, gen12_calibration):
    params, _ = gen12_calibration
    truth, p = _truth(gen12), GEN12.presets["tiny"]
    h, w = p.raw_hw
    # a channel's mean over n_dark frames of (h/2)·(w/2) pixels: pixel noise averages over all of
    # them, row noise only over the h/2 rows; the recorded bias is the mean over the ISOs
    se = np.sqrt(sum(_pixel_var(r) / (p.n_dark * h * w / 4) + r["sigma_r"] ** 2 / (p.n_dark * h / 2)
                     for r in truth["per_iso"])) / len(truth["per_iso"])  # fmt: skip
    np.testing.assert_allclose(params["color_bias"], truth["color_bias"], atol=N_SE * se)
    assert params["sensor"] == GEN12_SENSOR
    assert params["iso_range"] == [200, 3200]
    # Kmin, Kmax: the fitted line K(ISO) at the ends of the span, and within the per-ISO K
    # standard errors carried through that (linear) fit
    isos = np.array([r["iso"] for r in params["per_iso"]], dtype=float)
    ks = np.array([r["K"] for r in params["per_iso"]])
    assert (params["Kmin"], params["Kmax"]) == k_range(*np.polyfit(isos, ks, 1), (200, 3200))
    design = np.stack([isos, np.ones_like(isos)], axis=1)
    hat = np.array([[200.0, 1.0], [3200.0, 1.0]]) @ np.linalg.pinv(design)  # K at the ends from the K's
    se_k = np.array([_k_standard_error(gen12, r) for r in truth["per_iso"]])
    for est, true, weights in zip((params["Kmin"], params["Kmax"]), (truth["Kmin"], truth["Kmax"]), hat):
        assert est == pytest.approx(true, abs=N_SE * np.sqrt((weights**2 * se_k**2).sum()))
    # the file is a camera file: K from ISO uses its span, and the truth's K at each ISO
    validate_camera_params(params, "calibrated Gen12")
    for row in truth["per_iso"]:
        assert k_from_iso(row["iso"], params) == pytest.approx(row["K"], rel=0.05)


def test_dn_scale_override_and_span_of_the_frames(gen12, tmp_path):
    """A subset at ISO 200 and 800 (two darks, one flat level): the span follows the frames, and
    dn_scale replaces white − black."""
    frames = tmp_path / "frames"
    for kind, keep in (("dark", ("_00.", "_01.")), ("flat", ("_level02_",))):
        (frames / kind).mkdir(parents=True)
        for f in (gen12 / "calibration" / kind).iterdir():
            if "iso03200" not in f.name and any(k in f.name for k in keep):
                shutil.copy(f, frames / kind / f.name)
    params = calibrate(frames, "Gen12", tmp_path / "p.json", dn_scale=4000)
    assert params["iso_range"] == [200, 800]
    assert params["sensor"] == {**GEN12_SENSOR, "dn_scale": 4000.0}
    with pytest.raises(ConfigError, match="dn_scale"):
        calibrate(frames, "Gen12", tmp_path / "q.json", dn_scale=0)
    assert not (tmp_path / "q.json").exists()


# --- refusals ------------------------------------------------------------------------------


def _gen12_dng(path, mosaic=None, **kw):
    """A dark frame in Gen12's format at ISO 200 (keyword overrides for the broken variants)."""
    args = {"iso": 200, "exposure_time": Fraction(1, 100), "cfa": "GRBG", "black_level": 256, "white_level": 4095,
            "make": "Expodiff", "model": "Gen12"}
    write_dng(path, np.full((192, 128), 256, np.uint16) if mosaic is None else mosaic, **{**args, **kw})


def _too_few_darks(frames, tiny_data):
    for f in sorted((frames / "dark").glob("dark_iso00800_*"))[1:]:
        f.unlink()
    return ["ISO 800", "1 dark frame", "dark_iso00800_00.dng", "need ≥ 2"]


def _no_flat_pair(frames, tiny_data):
    for f in (frames / "flat").glob("flat_iso03200_*_b.dng"):
        f.unlink()
    return ["ISO 3200", "no pair of flat frames", str(frames / "flat"), "3 or more levels recommended"]


def _mixed_cameras(frames, tiny_data):
    shutil.copy(min((tiny_data / "calibration" / "SonyA7S2" / "dark").iterdir()), frames / "dark")
    return ["mixed cameras", "Sony ILCE-7SM2: dark/dark_iso00100_00.dng", "Expodiff Gen12"]


def _mixed_sizes(frames, tiny_data):
    _gen12_dng(frames / "dark" / "dark_iso00200_00.dng", np.full((96, 128), 256, np.uint16))
    return ["mixed sizes", "(96, 128): dark/dark_iso00200_00.dng"]


def _mixed_levels(frames, tiny_data):
    _gen12_dng(frames / "dark" / "dark_iso00200_00.dng", black_level=200)
    return ["mixed raw formats", "black [200.0, 200.0, 200.0, 200.0]", "dark/dark_iso00200_00.dng"]


def _four_colour_cfa(frames, tiny_data):
    """A CMYG-like cell (DNG colours 0, 1, 2, 3 = R, G, B, cyan): LibRaw reads 4 colours."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(raw._CFA_CODES, "RGBC", [0, 1, 2, 3])
        _gen12_dng(frames / "flat" / "flat_iso00200_level00_a.dng", cfa="RGBC")
    return ["flat_iso00200_level00_a.dng", "not a Bayer-mosaic raw file", "remove or replace"]


def _non_bayer_cell(frames, tiny_data):
    """An R R / G B cell: three colours, but no Bayer R/G/G/B arrangement (bayer_offsets refuses it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(raw._CFA_CODES, "RRGB", [0, 0, 1, 2])
        _gen12_dng(frames / "dark" / "dark_iso00200_01.dng", cfa="RRGB")
    return ["dark_iso00200_01.dng", "not a Bayer R/G/G/B pattern"]


@pytest.mark.parametrize("breaker", [_too_few_darks, _no_flat_pair, _mixed_cameras, _mixed_sizes, _mixed_levels,
                                     _four_colour_cfa, _non_bayer_cell])  # fmt: skip
def test_bad_frames_are_refused_by_name(gen12, tiny_data, tmp_path, breaker):
    frames = shutil.copytree(gen12 / "calibration", tmp_path / "frames")
    needles = breaker(frames, tiny_data)
    out = tmp_path / "p.json"
    with pytest.raises(CalibrationError) as err:
        calibrate(frames, "Gen12", out)
    for needle in needles:
        assert needle in str(err.value), str(err.value)
    assert isinstance(err.value, ExpodiffError) and not out.exists()


def test_cli_exits_2_naming_the_files(gen12, tiny_data, tmp_path):
    frames = shutil.copytree(gen12 / "calibration", tmp_path / "frames")
    _mixed_cameras(frames, tiny_data)
    out = tmp_path / "p.json"
    res = subprocess.run([sys.executable, "-m", "expodiff.cli", "calibrate", "--frames", str(frames), "--camera",
                          "Gen12", "--out", str(out), "--dn-scale", "3839"], capture_output=True, text=True, check=False)  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "mixed cameras" in res.stderr and "dark_iso00100_00.dng" in res.stderr
    assert not out.exists()
