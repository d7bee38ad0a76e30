"""Bad numbers, odd output names and missing EXIF at the `expodiff` command line: one clear
error naming the flag or file, exit 2, and nothing written (or exactly the named file)."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch

from expodiff.io.raw import write_dng
from expodiff.methods import MethodSpec

EXPODIFF = [sys.executable, "-m", "expodiff.cli"]


def run(*args):
    return subprocess.run([*EXPODIFF, *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Checkpoints (ours, baseline, one with NaN weights), a short exposure, a 4×1×1 input and
    a DNG without an ISO tag."""
    d = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    for name, method in (("ours", "ours"), ("base", "baseline")):
        net = MethodSpec("unet", method).build()
        torch.save({"netG": net.state_dict(), "opt_g": {}, "epoch": 1, "iterations": 1}, d / f"{name}.pt")
    broken = {k: torch.full_like(v, float("nan")) for k, v in MethodSpec("unet", "baseline").build().state_dict().items()}
    torch.save({"netG": broken, "opt_g": {}, "epoch": 1, "iterations": 1}, d / "nan.pt")
    rng = np.random.default_rng(0)
    np.save(d / "short.npy", rng.uniform(0, 0.01, size=(4, 32, 32)).astype(np.float32))
    np.save(d / "tiny.npy", np.full((4, 1, 1), 0.005, np.float32))
    mosaic = rng.integers(512, 4000, size=(64, 64), dtype=np.uint16)
    write_dng(d / "no_iso.dng", mosaic, iso=None, exposure_time=Fraction(1, 10))
    write_dng(d / "iso.dng", mosaic, iso=3200, exposure_time=Fraction(1, 10))
    return d


def denoise(d, *extra, output="out.npy", checkpoint="ours.pt", method="ours", input="short.npy"):
    return run("denoise", "--checkpoint", d / checkpoint, "--backbone", "unet", "--method", method,
               "--input", d / input, "--output", d / output, *extra)


def assert_refused(res, needle, d, output="out"):
    assert res.returncode == 2, res.stdout + res.stderr
    assert needle in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert not list(d.glob(f"{output}*")) and not list(d.glob(f".{output}*")), "something was written"


@pytest.mark.parametrize(
    "flags,needle",
    [
        (["--ratio", "100", "--K", "0"], "--K"),
        (["--ratio", "100", "--K", "nan"], "--K"),
        (["--ratio", "100", "--K", "-1"], "--K"),
        (["--ratio", "100", "--iso", "-100"], "--iso"),
        (["--ratio", "100", "--iso", "0"], "--iso"),
        (["--ratio", "nan", "--K", "1"], "--ratio"),
        (["--ratio", "inf", "--K", "1"], "--ratio"),
        (["--ratio", "100.7", "--K", "1"], "--ratio: must be a whole number > 1, got 100.7"),
        (["--ratio", "1.5", "--K", "1"], "got 1.5"),
        (["--ratio", "1", "--K", "1"], "--ratio"),
        (["--ratio", "100", "--K", "1", "--steps", "0"], "--steps"),
    ],
)
@pytest.mark.parametrize("steps", ["1", "3"])
def test_denoise_refuses_numbers_it_cannot_use(files, flags, needle, steps):
    flags = flags if "--steps" in flags else [*flags, "--steps", steps]
    assert_refused(denoise(files, *flags), needle, files)


def test_denoise_refuses_an_input_too_small_to_pad(files):
    res = denoise(files, "--ratio", "100", "--K", "1", input="tiny.npy")
    assert_refused(res, "tiny.npy", files)
    assert "too small" in res.stderr


def test_denoise_writes_nothing_when_the_network_output_is_not_finite(files):
    res = denoise(files, "--ratio", "100", "--K", "1", checkpoint="nan.pt", method="baseline", output="nan_out.png")
    assert_refused(res, "not finite", files, output="nan_out")


@pytest.mark.parametrize("output", ["X.NPY", "X.PNG"])
def test_denoise_output_suffix_in_any_case_gives_exactly_that_file(files, output):
    res = denoise(files, "--ratio", "100", "--K", "1", "--steps", "1", output=output)
    assert res.returncode == 0, res.stderr
    written = files / output
    if output.endswith("NPY"):
        assert np.load(written).shape == (4, 32, 32)
    else:
        assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(files.glob(".X*")), "a stray temporary file"
    written.unlink()


def test_denoise_needs_no_exif_iso_when_K_or_iso_is_given(files):
    for flags in (["--K", "1"], ["--iso", "3200"]):
        res = denoise(files, "--ratio", "100", "--steps", "1", *flags, input="no_iso.dng", output="dng_out.npy")
        assert res.returncode == 0, res.stderr
        (files / "dng_out.npy").unlink()
    res = denoise(files, "--ratio", "100", "--steps", "1", input="no_iso.dng", output="dng_out.npy")
    assert_refused(res, "no EXIF ISO", files, output="dng_out")
    assert "no_iso.dng" in res.stderr


@pytest.mark.parametrize("name", ["X.NPY", "packed.npy"])
def test_pack_writes_exactly_the_named_file(files, tmp_path, name):
    res = run("pack", files / "iso.dng", "-o", tmp_path / name)
    assert res.returncode == 0, res.stderr
    assert np.load(tmp_path / name).shape == (4, 32, 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_pack_needs_no_exif(files, tmp_path):
    res = run("pack", files / "no_iso.dng", "-o", tmp_path / "p.npy")
    assert res.returncode == 0, res.stderr
    assert np.load(tmp_path / "p.npy").shape == (4, 32, 32)


@pytest.mark.parametrize(
    "output,flags,needle",
    [
        ("noext", [], "--output must end in .npy"),
        ("folder", [], "is a folder"),
        ("p.npy", ["--crop", "0"], "--crop"),
        ("p.npy", ["--crop", "-4"], "--crop"),
        ("p.npy", ["--crop", "64"], "smaller than the 64×64 crop"),
    ],
)
def test_pack_refuses_bad_output_and_crop(files, tmp_path, output, flags, needle):
    (tmp_path / "folder").mkdir()
    res = run("pack", files / "iso.dng", "-o", tmp_path / output, *flags)
    assert res.returncode == 2 and needle in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]
    assert not any((tmp_path / "folder").iterdir())


@pytest.mark.parametrize(
    "flags,needle",
    [
        (["--ratio", "nan"], "--ratio"),
        (["--ratio", "0.5"], "--ratio"),
        (["--ratio", "50", "--K", "0"], "--K"),
        (["--ratio", "50", "--sigma-g", "-1"], "--sigma-g"),
        (["--ratio", "50", "--lambda", "inf"], "--lambda"),
    ],
)
def test_noise_refuses_numbers_it_cannot_use(files, tmp_path, flags, needle):
    res = run("noise", "--model", "P+G+r+u", "--input", files / "short.npy", "--output", tmp_path / "n.npy", *flags)
    assert res.returncode == 2 and needle in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not any(tmp_path.iterdir())
