"""Calibration from dark and flat frames recovers the synthetic sensor's true parameters, and
bad frame sets fail with the files named and no parameter file written."""

import json
import shutil
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from expodiff.physics.calibrate import CalibrationError, calibrate
from expodiff.data.synthetic import make_demo_data
from expodiff.io.raw import write_dng
from expodiff.physics.camera import k_range, validate_camera_params
from expodiff.physics.noise import NoiseParams, add_noise


@pytest.fixture(scope="module")
def demo_calibration(tmp_path_factory):
    root = tmp_path_factory.mktemp("calib")
    frames = make_demo_data(root / "demo", seed=0, preset="demo") / "calibration" / "SonyA7S2"
    out = root / "params.json"
    params = calibrate(frames, "SonyA7S2", out, plots_dir=root / "plots")
    return frames, params, out, root / "plots"


def test_recovers_generator_parameters(demo_calibration):
    frames, params, out, _ = demo_calibration
    truth = json.loads((frames / "true_params.json").read_text())
    assert json.loads(out.read_text()) == params
    assert [p["iso"] for p in params["per_iso"]] == [t["iso"] for t in truth["per_iso"]]
    for est, true in zip(params["per_iso"], truth["per_iso"]):
        assert est["K"] == pytest.approx(true["K"], rel=0.03), est["iso"]
        assert est["sigma_r"] == pytest.approx(true["sigma_r"], rel=0.10), est["iso"]
        assert est["sigma_TL"] == pytest.approx(true["sigma_TL"], rel=0.10), est["iso"]
        assert est["lambda"] == pytest.approx(true["lambda"], abs=0.05), est["iso"]
    np.testing.assert_allclose(params["color_bias"], truth["color_bias"], atol=0.5)
    # the lines across ISO carry the generator's slopes
    for key in ("G_scale", "R_scale"):
        assert params["Profile-1"][key]["slope"] == pytest.approx(truth["Profile-1"][key]["slope"], abs=0.06)


def test_span_and_sensor_keep_the_sony_numbers(demo_calibration):
    """Kmin/Kmax are K at the lowest and highest calibrated ISO; with the demo's ISO 100..6400 they
    are bit for bit what they were when the anchors were fixed at 100 and 6400."""
    _, params, _, _ = demo_calibration
    isos = np.array([r["iso"] for r in params["per_iso"]])
    slope, intercept = np.polyfit(isos, np.array([r["K"] for r in params["per_iso"]]), 1)
    assert params["iso_range"] == [100, 6400]
    assert (params["Kmin"], params["Kmax"]) == (float(slope * 100 + intercept), float(slope * 6400 + intercept))
    assert (params["Kmin"], params["Kmax"]) == k_range(slope, intercept)
    assert params["sensor"] == {"make": "Sony", "model": "ILCE-7SM2", "cfa": "RGGB", "black_level": [512.0] * 4,
                                "white_level": 16383, "bit_depth": 14, "dn_scale": 16383.0 - 512}  # fmt: skip
    validate_camera_params(params, "calibrated SonyA7S2")


def test_output_drives_the_noise_model(demo_calibration):
    import torch

    _, params, _, _ = demo_calibration
    from expodiff.physics.noise import sample_noise_params

    p = sample_noise_params("eld", params, 4, generator=torch.Generator().manual_seed(0))
    x = add_noise("eld", torch.full((4, 4, 16, 16), 0.2), p, torch.Generator().manual_seed(0))
    assert torch.isfinite(x).all()
    assert isinstance(NoiseParams.of(1, K=1.0), NoiseParams)


def test_plots_written(demo_calibration):
    *_, plots = demo_calibration
    for name in ("ptc.png", "ppcc.png", "scales.png"):
        assert (plots / name).read_bytes()[:4] == b"\x89PNG"


def _copy_frames(tiny_data, dst):
    src = tiny_data / "calibration" / "SonyA7S2"
    shutil.copytree(src, dst)
    return dst


def _run_cli(frames, out, *extra):
    return subprocess.run([sys.executable, "-m", "expodiff.cli", "calibrate", "--frames", str(frames),
                           "--camera", "SonyA7S2", "--out", str(out), *extra], capture_output=True, text=True)


def test_cli_on_tiny_frames(tiny_data, tmp_path):
    out = tmp_path / "p.json"
    res = _run_cli(tiny_data / "calibration" / "SonyA7S2", out, "--dn-scale", "15583")
    assert res.returncode == 0, res.stderr
    params = json.loads(out.read_text())
    assert set(params) >= {"camera", "per_iso", "Kmin", "Kmax", "G_shape", "Profile-1", "color_bias", "sensor", "iso_range"}
    assert params["sensor"]["dn_scale"] == 15583  # the original's scale, as the config's SonyA7S2 entry passes


def _break_saturated(frames):
    from expodiff.io.raw import read_exif

    flat = sorted((frames / "flat").iterdir())[0]
    iso, exposure = read_exif(flat)  # keep its pairing with the partner frame
    write_dng(flat, np.full((64, 96), 16383, np.uint16), iso=int(iso), exposure_time=Fraction(exposure))
    return flat.name


def _break_no_iso(frames):
    dark = sorted((frames / "dark").iterdir())[0]
    write_dng(dark, np.full((64, 96), 512, np.uint16), iso=0, exposure_time=Fraction(1, 10))
    return dark.name


def _break_size(frames):
    dark = sorted((frames / "dark").iterdir())[0]
    write_dng(dark, np.full((80, 96), 512, np.uint16), iso=100, exposure_time=Fraction(1, 10))
    return "mixed sizes"


def _break_one_iso(frames):
    for p in list((frames / "dark").iterdir()) + list((frames / "flat").iterdir()):
        if "iso00100" not in p.name:
            p.unlink()
    return "2 ISOs"


def _break_no_flats(frames):
    shutil.rmtree(frames / "flat")
    return "flat"


def _break_one_dark(frames):
    (frames / "dark" / "dark_iso01600_01.dng").unlink()  # tiny: 2 darks per ISO
    return "ISO 1600: 1 dark frame (dark_iso01600_00.dng)"


@pytest.mark.parametrize("breaker", [_break_saturated, _break_no_iso, _break_size, _break_one_iso, _break_no_flats])
def test_bad_frames_named_and_nothing_written(tiny_data, tmp_path, breaker):
    frames = _copy_frames(tiny_data, tmp_path / "frames")
    needle = breaker(frames)
    out = tmp_path / "params.json"
    res = _run_cli(frames, out)
    assert res.returncode == 2
    assert needle in res.stderr, res.stderr
    assert not out.exists()
    with pytest.raises(Exception):
        calibrate(frames, "SonyA7S2", out)
    assert not out.exists()
    assert CalibrationError.__mro__[1].__name__ == "ExpodiffError"


def test_one_dark_frame_is_too_few(tiny_data, tmp_path):
    frames = _copy_frames(tiny_data, tmp_path / "frames")
    needle = _break_one_dark(frames)
    with pytest.raises(CalibrationError, match=r"need ≥ 2 dark frames per ISO \(4 or more recommended\)") as err:
        calibrate(frames, "SonyA7S2", tmp_path / "p.json")
    assert needle in str(err.value) and str(frames / "dark") in str(err.value)
    assert not (tmp_path / "p.json").exists()
