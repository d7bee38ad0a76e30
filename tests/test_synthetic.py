"""expodiff.data.synthetic: layout, determinism, atomicity, and noise statistics vs the known truth."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from scipy.stats import tukeylambda

from expodiff.data import synthetic
from expodiff.data.synthetic import PRESETS, make_demo_data
from expodiff.errors import ConfigError, ExpodiffError
from expodiff.io.raw import read_exif, read_raw
from expodiff.physics import camera, noise

CAM = camera.load_camera_params("SonyA7S2")


def k_from_iso(iso: float) -> float:
    return camera.k_from_iso(iso, CAM)  # PROTOCOL §3; its end points are pinned in test_noise.py


def test_generator_uses_the_physics_parameters():
    """One parameter class and one K(ISO): the generator's truth is physics.noise.NoiseParams."""
    p = synthetic.true_noise_params(1600)
    assert synthetic.NoiseParams is noise.NoiseParams and isinstance(p, noise.NoiseParams)
    assert p.K == camera.k_from_iso(1600, CAM)
    assert p.sigma_r == pytest.approx(np.exp(camera.profile_log_sigma(CAM["Profile-1"]["R_scale"], np.log(p.K))))


def read_noise_var(row: dict) -> float:
    """Variance of row + Tukey-lambda noise for a true_params.json per-ISO entry."""
    return row["sigma_r"] ** 2 + row["sigma_TL"] ** 2 * tukeylambda(row["lambda"]).var()


def dn(path) -> np.ndarray:
    return read_raw(path).mosaic.astype(np.float64) - 512


def test_tiny_layout(tiny_data):
    p = PRESETS["tiny"]
    sid = tiny_data / "SID"
    scenes = [f"{i:05d}" for i in range(1, p.n_train + 1)] + list(p.sid_eval_scenes)
    for scene in scenes:
        assert (sid / "Sony" / "long" / f"{scene}_00_10s.dng").is_file()
        for exposure in ("0.1", "0.04", "0.033"):
            assert (sid / "Sony" / "short" / f"{scene}_00_{exposure}s.dng").is_file()
    line = re.compile(r"^\./Sony/short/(\d{5})_00_(0\.1|0\.04|0\.033)s\.dng \./Sony/long/\1_00_10s\.dng ISO\d+ F\d+$")
    for split, first in (("train", "0"), ("test", "1"), ("val", "2")):
        lines = (sid / f"Sony_{split}_list.txt").read_text().splitlines()
        assert lines and all(line.match(s) and s.split("/")[3][0] == first for s in lines)
    eld = tiny_data / "ELD" / "SonyA7S2" / "scene-1"
    assert sorted(f.name for f in eld.iterdir()) == [f"IMG_{i:04d}.dng" for i in range(1, 17)]
    calib = tiny_data / "calibration" / "SonyA7S2"
    assert len(list((calib / "dark").glob("*.dng"))) == len(p.calib_isos) * p.n_dark
    assert len(list((calib / "flat").glob("*.dng"))) == len(p.calib_isos) * len(p.flat_levels) * 2
    manifest = json.loads((tiny_data / "MANIFEST.json").read_text())
    assert (manifest["seed"], manifest["preset"]) == (0, "tiny")
    files = sorted(f for f in tiny_data.rglob("*") if f.is_file() and f.name != "MANIFEST.json")
    assert [e["path"] for e in manifest["files"]] == [f.relative_to(tiny_data).as_posix() for f in files]
    assert all(e["bytes"] == (tiny_data / e["path"]).stat().st_size for e in manifest["files"])


def test_true_params_match_camera_file(tiny_data):
    truth = json.loads((tiny_data / "calibration" / "SonyA7S2" / "true_params.json").read_text())
    assert (truth["camera"], truth["black_level"], truth["white_level"]) == ("SonyA7S2", 512, 16383)
    assert [row["iso"] for row in truth["per_iso"]] == list(PRESETS["tiny"].calib_isos)
    assert len(truth["color_bias"]) == 4 and len(truth["G_shape"]) == len(truth["per_iso"])
    for row in truth["per_iso"]:
        assert row["K"] == pytest.approx(k_from_iso(row["iso"]))
        for key, line in (("sigma_TL", "G_scale"), ("sigma_r", "R_scale"), ("sigma_g", "g_scale")):
            prof = truth["Profile-1"][line]
            assert prof == {**prof, "slope": CAM["Profile-1"][line]["slope"], "bias": CAM["Profile-1"][line]["bias"]}
            assert row[key] == pytest.approx(np.exp(prof["slope"] * np.log(row["K"]) + prof["bias"]))


def test_same_seed_same_bytes_other_seed_differs(tmp_path, tiny_data):
    def digests(root):
        return {e["path"]: e["sha256"] for e in json.loads((root / "MANIFEST.json").read_text())["files"]}

    again = digests(make_demo_data(tmp_path / "again", seed=0, preset="tiny"))
    assert again == digests(tiny_data)
    other = digests(make_demo_data(tmp_path / "other", seed=1, preset="tiny"))
    assert other.keys() == again.keys()
    dngs = [k for k in again if k.endswith(".dng")]
    assert all(other[k] != again[k] for k in dngs)


def test_output_is_atomic_and_never_clobbers_foreign_dirs(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(ExpodiffError, match="MANIFEST.json"):
        make_demo_data(foreign, preset="tiny")
    assert [f.name for f in foreign.iterdir()] == ["thesis.tex"]
    out = make_demo_data(tmp_path / "data", preset="tiny")
    make_demo_data(out, seed=1, preset="tiny")  # an earlier demo dataset is replaced
    assert json.loads((out / "MANIFEST.json").read_text())["seed"] == 1
    with pytest.raises(ConfigError, match="preset"):
        make_demo_data(tmp_path / "x", preset="huge")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["data", "mine"]  # no temporary leftovers


def test_eld_exif_ratios_are_exact(tiny_data):
    scene = tiny_data / "ELD" / "SonyA7S2" / "scene-1"
    exif = {i: read_exif(scene / f"IMG_{i:04d}.dng") for i in range(1, 17)}
    refs = {1, 6, 11, 16}
    assert len({exif[i] for i in refs}) == 1
    ref_iso, ref_t = exif[1]
    for ids, ratio in (((4, 9, 14), 100), ((5, 10, 15), 200)):
        for i in ids:
            assert ref_iso * ref_t / (exif[i][0] * exif[i][1]) == pytest.approx(ratio, rel=1e-9)


def test_dark_frames_hold_read_noise_and_colour_bias(tiny_data):
    calib = tiny_data / "calibration" / "SonyA7S2"
    truth = json.loads((calib / "true_params.json").read_text())
    row = truth["per_iso"][0]  # ISO 100: smallest noise, so the bias is measurable on tiny frames
    frames = [dn(f) for f in sorted((calib / "dark").glob(f"dark_iso{row['iso']:05d}_*.dng"))]
    cell = {"R": (0, 0), "G1": (0, 1), "B": (1, 1), "G2": (1, 0)}
    for bias, (y, x) in zip(truth["color_bias"], cell.values()):
        assert np.mean([f[y::2, x::2].mean() for f in frames]) == pytest.approx(bias, abs=0.15)
    var = np.mean([f.var() for f in frames])
    assert var == pytest.approx(read_noise_var(row) + 1 / 12 + np.var(truth["color_bias"]), rel=0.15)


def test_flat_pairs_give_the_true_gain(tiny_data):
    calib = tiny_data / "calibration" / "SonyA7S2"
    truth = json.loads((calib / "true_params.json").read_text())
    for row in truth["per_iso"]:
        means, variances = [], []
        for a_path in sorted((calib / "flat").glob(f"flat_iso{row['iso']:05d}_level*_a.dng")):
            a, b = dn(a_path), dn(a_path.with_name(a_path.name.replace("_a.", "_b.")))
            means.append((a.mean() + b.mean()) / 2)
            variances.append((a - b).var() / 2)  # the pair difference cancels vignetting and PRNU
        slope, intercept = np.polyfit(means, variances, 1)
        assert slope == pytest.approx(row["K"], rel=0.1)


def test_short_exposure_noise_matches_known_parameters(tiny_data):
    sid = tiny_data / "SID" / "Sony"
    long = dn(sid / "long" / "10185_00_10s.dng")  # nearly clean: read noise 1 DN, negligible after /ratio
    for exposure, ratio in (("0.1", 100), ("0.04", 250), ("0.033", 300)):
        path = sid / "short" / f"10185_00_{exposure}s.dng"
        iso, t = read_exif(path)
        assert 10 / t == pytest.approx(ratio)
        k = k_from_iso(iso)
        prof = CAM["Profile-1"]
        row = {
            "sigma_r": np.exp(prof["R_scale"]["slope"] * np.log(k) + prof["R_scale"]["bias"]),
            "sigma_TL": np.exp(prof["G_scale"]["slope"] * np.log(k) + prof["G_scale"]["bias"]),
            "lambda": float(np.median(CAM["G_shape"])),
        }
        signal = long / ratio
        residual = dn(path) - signal
        assert abs(residual.mean()) < 0.1 * np.sqrt(k * signal.mean()) + 2  # only the colour bias remains
        expected = k * signal.mean() + read_noise_var(row) + 1 / 6  # shot + read + two quantisations
        assert residual.var() == pytest.approx(expected, rel=0.15)


# sha256 over (path + sha256) of every file of make_demo_data(seed=0, preset="tiny"), as generated
# before the generator took the camera as a parameter (a second camera, issue 15): the Sony's
# dataset must not change when the generator is generalised. A deliberate change of the demo
# data (or of pidng, scipy or scikit-image's output) updates this pin.
TINY_FILES_DIGEST = "207f72e54c779981d5666f9e7365fe1ed1c320c5a7d7bab4934bf0ada9c64e22"


def test_tiny_dataset_is_byte_identical_to_its_pin(tiny_data):
    import hashlib

    files = json.loads((tiny_data / "MANIFEST.json").read_text())["files"]
    digest = hashlib.sha256("".join(e["path"] + e["sha256"] for e in files).encode()).hexdigest()
    assert digest == TINY_FILES_DIGEST, "the SonyA7S2 demo files changed (compare MANIFEST.json with an earlier one)"


def test_sony_is_the_default_camera_of_every_helper():
    """The generalised helpers with their defaults are the Sony's: RGGB, black 512, white 16383."""
    assert synthetic.camera_file() is synthetic.camera_file(synthetic.SONY)
    assert synthetic.camera_file() == CAM and "sensor" not in synthetic.camera_file()
    assert synthetic.cfa_offsets(synthetic.SONY.cfa) == [(0, 0), (0, 1), (1, 1), (1, 0)]
    assert synthetic.to_raw(np.array([-600.0, 0.4, 20000.0])).tolist() == [0, 512, 16383]
    assert synthetic.to_raw(np.array([-600.0, 0.4, 20000.0]), 256, 4095).tolist() == [0, 256, 4095]
    assert synthetic.SONY.range_dn == synthetic.RANGE_DN
