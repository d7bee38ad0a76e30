"""`expodiff denoise INPUT... --out DIR` on real raw files of a camera that is not the Sony (12-bit,
black 256, white 4095, GRBG, "Expodiff Gen12"): the DNG and PNG it writes, that the result is
GT-free `enhance` and nothing else, and that every bad input stops it before anything is written."""

import contextlib
import io
import json
import subprocess
import sys
from fractions import Fraction

import exifread
import numpy as np
import pytest
import rawpy
import skimage.io
import torch

from expodiff.denoise import denoise_files, resolve_camera
from expodiff.errors import ConfigError, RawReadError
from expodiff.inference import enhance
from expodiff.io.raw import pack, read_colour, read_raw, write_dng
from expodiff.methods import MethodSpec
from expodiff.physics.camera import cfa_name, dn_scale, k_from_iso, load_camera_params, sensor_from_frame

BLACK, WHITE = 256, 4095
GEN12 = {"cfa": "GRBG", "black_level": BLACK, "white_level": WHITE, "make": "Expodiff", "model": "Gen12",
         "as_shot_neutral": (0.45, 1.0, 0.7), "f_number": Fraction(28, 10),
         "color_matrix": (0.71, -0.21, -0.05, -0.42, 1.19, 0.21, -0.1, 0.26, 0.61)}
ISOS = {"a": 800, "b": 1600, "c": 3200}
SHAPES = {"a": (64, 96), "b": (64, 96), "c": (65, 97)}  # c: an odd last row and column
RATIO, STEPS, SEED = 100, 3, 0


def dark_mosaic(shape, seed):
    """A dark scene (~1/100 of full scale) with shot and read noise, in Gen12 DN."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    scene = 0.002 + 0.008 * (xx / shape[1]) * (0.5 + 0.5 * np.cos(yy / 7.0))
    dn = scene * (WHITE - BLACK) + BLACK + rng.normal(0, 2.0, shape)
    return np.clip(np.rint(dn), 0, WHITE).astype(np.uint16)


@pytest.fixture(scope="module")
def gen12(tmp_path_factory):
    d = tmp_path_factory.mktemp("gen12")
    raw = d / "raw"
    raw.mkdir()
    files = []
    for i, (stem, iso) in enumerate(ISOS.items()):
        path = raw / f"{stem}.dng"
        write_dng(path, dark_mosaic(SHAPES[stem], i), iso=iso, exposure_time=Fraction(1, 50), **GEN12,
                  datetime_original="2024:05:06 07:08:09")
        files.append(path)
    camera = load_camera_params("SonyA7S2")
    camera.update(camera="Gen12", iso_range=[200, 3200],
                  sensor=sensor_from_frame(read_raw(files[0]), "Expodiff", "Gen12"))
    camera_json = d / "Gen12.json"
    camera_json.write_text(json.dumps(camera))
    torch.manual_seed(0)  # an untrained network that records its spec
    spec = MethodSpec("unet", "ours")
    net = spec.build().eval()
    checkpoint = d / "ours.pt"
    torch.save({"netG": net.state_dict(), "opt_g": {}, "epoch": 1, "iterations": 1, "spec": spec.as_dict()}, checkpoint)
    return {"dir": d, "files": files, "camera": load_camera_params(camera_json), "camera_json": camera_json,
            "checkpoint": checkpoint, "net": net, "spec": spec}


def expected_packed(gen12, path):
    """GT-free enhance on the packed file, as the library is asked to run it."""
    camera = gen12["camera"]
    K = k_from_iso(read_raw(path).iso, camera)
    return enhance(gen12["net"], gen12["spec"], pack(read_raw(path)), RATIO, K, STEPS,
                   generator=torch.Generator().manual_seed(SEED), padding="original", dn_scale=dn_scale(camera))[-1]


def expected_mosaic(packed):
    """Packed R, G1, B, G2 back to the GRBG mosaic, written out for this test's camera."""
    dn = np.clip(np.rint(packed.astype(np.float64) * (WHITE - BLACK) + BLACK), 0, WHITE).astype(np.uint16)
    h, w = packed.shape[1:]
    mosaic = np.empty((2 * h, 2 * w), np.uint16)
    mosaic[0::2, 1::2], mosaic[0::2, 0::2], mosaic[1::2, 0::2], mosaic[1::2, 1::2] = dn  # GRBG: G1 R / B G2
    return mosaic


def cli(*args):
    """`expodiff` in-process: (exit status, stdout, stderr); argparse's exits are caught too."""
    from expodiff.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main([*map(str, args)])
        except SystemExit as stop:
            code = stop.code
    return code, out.getvalue(), err.getvalue()


def many(gen12, out, *inputs, extra=()):
    return cli("denoise", "--camera", gen12["camera_json"], "--checkpoint", gen12["checkpoint"], *inputs,
               "--ratio", RATIO, "--steps", STEPS, "--seed", SEED, "--out", out, *extra)


@pytest.fixture(scope="module")
def denoised(gen12):
    out = gen12["dir"] / "out"
    code, stdout, stderr = many(gen12, out, *gen12["files"])
    assert code == 0, stderr
    return out, stdout


def test_three_files_give_dngs_of_their_camera_and_pngs(gen12, denoised):
    out, stdout = denoised
    assert sorted(p.name for p in out.iterdir()) == ["a.dng", "a.png", "b.dng", "b.png", "c.dng", "c.png"]
    for path in gen12["files"]:
        dng, png = out / f"{path.stem}.dng", out / f"{path.stem}.png"
        assert f"ISO {ISOS[path.stem]}" in stdout and str(dng) in stdout and str(png) in stdout
        with rawpy.imread(str(dng)) as raw:
            assert cfa_name(raw.raw_pattern) == "GRBG"
            assert list(raw.black_level_per_channel) == [BLACK] * 4 and raw.white_level == WHITE
            mosaic = raw.raw_image_visible.copy()
        h, w = SHAPES[path.stem]
        assert mosaic.shape == (h // 2 * 2, w // 2 * 2)  # the packed area: an odd last row/column is dropped
        assert np.array_equal(mosaic, expected_mosaic(expected_packed(gen12, path)))
        with open(dng, "rb") as f:
            tags = exifread.process_file(f, details=False)
        assert str(tags["Image Make"]) == "Expodiff" and str(tags["Image Model"]) == "Gen12"
        assert int(str(tags["EXIF ISOSpeedRatings"])) == ISOS[path.stem]
        assert str(tags["EXIF ExposureTime"]) == "1/50" and str(tags["EXIF DateTimeOriginal"]) == "2024:05:06 07:08:09"
        assert f"exposure ratio {RATIO} applied" in str(tags["Image ImageDescription"])
        source, written = read_colour(path), read_colour(dng)  # the file's own colour, carried over
        np.testing.assert_allclose(written.xyz_to_camera, source.xyz_to_camera, atol=2e-4)
        np.testing.assert_allclose(written.as_shot_neutral, [0.45, 1.0, 0.7], atol=1e-6)
        rgb = skimage.io.imread(png)
        assert rgb.shape == (h, w, 3) and rgb.dtype == np.uint8
        with rawpy.imread(str(dng)) as raw:  # developed as LibRaw develops the DNG itself
            again = raw.postprocess(use_camera_wb=True, output_bps=8, no_auto_bright=True, adjust_maximum_thr=0.0)
        assert np.abs(rgb[: mosaic.shape[0], : mosaic.shape[1]].astype(int) - again).mean() < 1.0


def test_the_result_is_gt_free_enhance_and_nothing_else(gen12, denoised):
    out, _ = denoised
    for path in gen12["files"]:
        expected = expected_packed(gen12, path)
        again = pack(read_raw(out / f"{path.stem}.dng"))  # the written DNG, packed by the reader
        assert np.abs(again - expected).max() <= 0.5 / (WHITE - BLACK) + 1e-6
    # the same call as a library function, one file at a time: each file's result is its own
    [one] = denoise_files(gen12["camera"], gen12["checkpoint"], gen12["files"][1:2], RATIO, gen12["dir"] / "one",
                          steps=STEPS, seed=SEED)
    assert one.K == pytest.approx(k_from_iso(1600, gen12["camera"])) and one.iso == 1600
    assert (gen12["dir"] / "one" / "b.dng").read_bytes() == (out / "b.dng").read_bytes()


def bad_inputs(gen12, tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    sony = d / "sony.dng"
    write_dng(sony, dark_mosaic((64, 96), 5) + 256, iso=800, exposure_time=Fraction(1, 50))  # write_dng's defaults
    high = d / "high.dng"
    write_dng(high, dark_mosaic((64, 96), 6), iso=6400, exposure_time=Fraction(1, 50), **GEN12)
    no_iso = d / "noiso.dng"
    write_dng(no_iso, dark_mosaic((64, 96), 7), iso=None, exposure_time=Fraction(1, 50), **GEN12)
    (d / "again").mkdir()
    twin = d / "again" / "a.dng"
    twin.write_bytes(gen12["files"][0].read_bytes())
    corrupt = d / "corrupt.dng"
    corrupt.write_bytes(gen12["files"][1].read_bytes()[:3000])
    return {"sony": sony, "high": high, "noiso": no_iso, "twin": twin, "corrupt": corrupt}


@pytest.mark.parametrize("bad,needles", [
    ("sony", ["sony.dng", "not a raw file of Gen12", "'Sony ILCE-7SM2'", "CFA RGGB", "black level [512.0",
              "white level 16383", "docs/CALIBRATE.md", "--camera"]),
    ("high", ["high.dng", "ISO 6400", "200–3200"]),
    ("noiso", ["noiso.dng", "no EXIF ISO", "--iso"]),
    ("twin", ["a.dng", "would both write"]),
    ("corrupt", ["corrupt.dng", "not a readable raw file"]),
])
def test_a_bad_input_is_one_error_and_nothing_is_written(gen12, tmp_path, bad, needles):
    files = bad_inputs(gen12, tmp_path)
    out = tmp_path / "out"
    code, _, err = many(gen12, out, *gen12["files"], files[bad])  # the good files come first
    assert code == 2, err
    assert err.count("error:") == 1 and all(n in err for n in needles), err
    assert not out.exists()
    with pytest.raises(RawReadError if bad == "corrupt" else ConfigError):
        denoise_files(gen12["camera"], gen12["checkpoint"], [*gen12["files"], files[bad]], RATIO, out)
    assert not out.exists()


def test_iso_flag_gives_a_file_without_exif_its_iso_and_exit_status_2_from_the_command(gen12, tmp_path):
    files = bad_inputs(gen12, tmp_path)
    out = tmp_path / "out"
    [done] = denoise_files(gen12["camera"], gen12["checkpoint"], [files["noiso"]], RATIO, out, iso=400, steps=1)
    assert done.iso == 400 and done.K == pytest.approx(k_from_iso(400, gen12["camera"]))
    with open(done.dng, "rb") as f:
        assert int(str(exifread.process_file(f, details=False)["EXIF ISOSpeedRatings"])) == 400
    res = subprocess.run([sys.executable, "-m", "expodiff.cli", "denoise", "--camera", str(gen12["camera_json"]),
                          "--checkpoint", str(gen12["checkpoint"]), str(files["sony"]), "--ratio", "100",
                          "--out", str(tmp_path / "cli")], capture_output=True, text=True, check=False)
    assert res.returncode == 2 and "sony.dng" in res.stderr and "docs/CALIBRATE.md" in res.stderr
    assert not (tmp_path / "cli").exists()


def test_camera_from_the_workflow_folder_before_the_bundled_one(gen12, tmp_path):
    cameras = tmp_path / "results" / "cameras"
    cameras.mkdir(parents=True)
    (cameras / "Gen12.json").write_text(gen12["camera_json"].read_text())
    camera, origin = resolve_camera("Gen12", cameras)
    assert camera["sensor"]["cfa"] == "GRBG" and origin == str(cameras / "Gen12.json")
    assert "sensor" not in resolve_camera("SonyA7S2", cameras)[0]  # none written: the bundled file
    assert resolve_camera(gen12["camera_json"], cameras)[1] == str(gen12["camera_json"])
    with pytest.raises(ConfigError, match="Gen13"):
        resolve_camera("Gen13", cameras)


@pytest.mark.parametrize("flags,needle", [
    (["--out", "D", "--output", "x.png", "f.dng"], "exclusive"),
    (["--out", "D", "--input", "f.dng"], "--input is the one-file form"),
    (["--output", "x.png", "f.dng", "g.dng"], "many-files form"),
    (["--out", "D"], "--out needs the raw files"),
    (["f.dng"], "give --input FILE --output"),
    (["--out", "D", "f.dng", "--gt", "g.npy"], "GT-free"),
])
def test_the_two_forms_do_not_mix(gen12, flags, needle):
    code, _, err = cli("denoise", "--camera", "SonyA7S2", "--checkpoint", gen12["checkpoint"], "--ratio", 100, *flags)
    assert code == 2 and needle in err, err
    code, _, err = cli("denoise", "--checkpoint", gen12["checkpoint"], "f.dng", "--ratio", 100, "--out", "D")
    assert code == 2 and "--out needs --camera" in err
