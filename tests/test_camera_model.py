"""Cameras as config entries (issue 15): a camera's parameter file records its own raw format and
ISO span, K from ISO follows that span, the SonyA7S2 entry keeps the original's scale, a camera
model's training noise has the camera's statistics, and the whole `camera_model` target runs at
demo size for a generated camera that differs from the Sony in every respect (12-bit, black 256,
white 4095, GRBG), ending in `expodiff denoise` on its own files."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import rawpy
import torch

from expodiff.config import load_config
from expodiff.data.sources import make_source
from expodiff.data.synthetic import make_camera_data
from expodiff.errors import ConfigError
from expodiff.io.raw import read_raw, unpack, write_dng
from expodiff.physics.calibrate import calibrate
from expodiff.physics.camera import (ORIGINAL_DN_SCALE, cfa_name, check_iso, dn_scale, export_camera_params,
                                     k_from_iso, load_camera_params, with_sensor)
from expodiff.recipes import resolve_K_range
from test_feed import write_store
from test_workflow import REPO, copy_workflow, job_counts, overlay, snakemake

SONY_ENTRY = load_config([REPO / "config.yaml"])["cameras"]["SonyA7S2"]


@pytest.fixture(scope="module")
def gen12(tmp_path_factory):
    """The generated second camera's frames and pairs, and its calibration."""
    root = make_camera_data(tmp_path_factory.mktemp("gen12") / "Gen12", camera="gen12", preset="tiny")
    out = root.parent / "Gen12.json"
    calibrate(root / "calibration", "Gen12", out)
    return root, json.loads(out.read_text())


def test_k_from_iso_follows_the_calibrated_span():
    release = load_camera_params("SonyA7S2")
    # the ELD release's anchors, as the original (PROTOCOL section 3), and any ISO is accepted
    assert k_from_iso(3200, release) == (3200 - 100) / (6400 - 100) * (release["Kmax"] - release["Kmin"]) + release["Kmin"]
    check_iso(25600, release, "a.ARW")
    calibrated = dict(release, Kmin=0.1, Kmax=1.6, iso_range=[200, 3200], camera="MyCam")
    assert [k_from_iso(i, calibrated) for i in (200, 800, 3200)] == pytest.approx([0.1, 0.4, 1.6])
    check_iso(200, calibrated, "a.NEF")
    with pytest.raises(ConfigError, match=r"^b\.NEF: ISO 6400 is outside the range MyCam was calibrated at \(ISO 200–3200\)"):
        check_iso(6400, calibrated, "b.NEF")


def test_sony_entry_keeps_the_original_scale(tmp_path):
    out = export_camera_params("SonyA7S2", tmp_path / "SonyA7S2.json", name="SonyA7S2",
                               sensor=SONY_ENTRY["sensor"], dn_scale=SONY_ENTRY["dn_scale"])
    params, release = json.loads(out.read_text()), load_camera_params("SonyA7S2")
    assert dn_scale(params) == ORIGINAL_DN_SCALE == 15583 == dn_scale(release)
    assert params["sensor"] | {"dn_scale": None} == SONY_ENTRY["sensor"] | {"dn_scale": None, "bit_depth": 14}
    assert all(k_from_iso(iso, params) == k_from_iso(iso, release) for iso in (100, 800, 3200, 6400))
    # without dn_scale the config's sensor gives white - black
    assert dn_scale(with_sensor(release, sensor=SONY_ENTRY["sensor"])) == 16383 - 512


def test_a_file_of_another_camera_is_refused(gen12, tmp_path):
    root, params = gen12
    sony = tmp_path / "sony" / "IMG_0001.dng"
    sony.parent.mkdir()
    write_dng(sony, np.full((32, 48), 600, np.uint16), iso=800, exposure_time=0.01)
    with pytest.raises(ConfigError, match=r"IMG_0001\.dng: not a file of the camera .* describes \(make/model 'Sony ILCE-7SM2'"):
        with_sensor(params, sample_raw=sony, origin="Gen12.json")
    # a folder: its first raw file, here one of the camera's own test pairs
    assert with_sensor(params, sample_raw=root / "pairs")["sensor"] == params["sensor"]


def test_calibrated_K_range_is_the_cameras_span(gen12):
    _, params = gen12
    training = {"K_range": "calibrated", "epochs": 1}
    assert resolve_K_range(training, params) == {"K_range": [params["Kmin"], params["Kmax"]], "epochs": 1}
    assert resolve_K_range({"K_range": [0.1, 30]}, params) == {"K_range": [0.1, 30]}


def test_training_noise_has_the_cameras_statistics(gen12, tmp_path):
    """A camera model's training batch: K in the camera's span; the shot noise at the camera's
    DN scale (3839 DN for a packed 1, not the Sony's 15583, which would make it 4x smaller); and
    ELD row noise shared by the two colours of one mosaic row of its GRBG mosaic."""
    root, params = gen12
    assert params["sensor"]["cfa"] == "GRBG" and params["sensor"]["dn_scale"] == 4095 - 256
    y, size, count = 0.4, 64, 48
    store = write_store(tmp_path / "store", np.full((count, 4, size, size), 512 + round(y * (16383 - 512)), np.uint16))
    y = round(y * (16383 - 512)) / (16383 - 512)
    training = resolve_K_range({"K_range": "calibrated", "ratio_range": [20, 300], "noise_order": "original"}, params)
    gen = torch.Generator().manual_seed(0)
    scale = dn_scale(params)

    pg = make_source("pg", store, params, training, None)
    batch = pg.finish(pg.load(list(range(count)), np.random.default_rng(0)), gen)
    K, r = batch.K.double(), batch.ratio.double()
    assert ((K >= params["Kmin"] * (1 - 1e-6)) & (K <= params["Kmax"] * (1 + 1e-6))).all()
    n = 4 * size * size
    var = (batch.x_t.double() - y).reshape(count, -1).var(dim=1)
    shot = K * r * y / scale  # Var of K·Poisson(yS/(rK))·r/S
    # read noise only adds variance; 6 standard errors of a variance estimate of n samples
    assert (var >= shot * (1 - 6 * math.sqrt(2 / n))).all(), (var / shot).tolist()
    line = params["Profile-1"]["g_scale"]
    sigma_max = torch.exp(line["slope"] * torch.log(K) + line["bias"] + 5 * line["sigma"])
    assert (var <= (shot + (sigma_max * r / scale) ** 2) * (1 + 6 * math.sqrt(2 / n))).all()

    eld = make_source("eld", store, params, training | {"noise_order": "augment-first"}, None)
    x = eld.finish(eld.load(list(range(count)), np.random.default_rng(1)), gen).x_t.double()
    grbg = tmp_path / "grbg.dng"  # a frame of the camera's format and the patches' size
    write_dng(grbg, np.full((2 * size, 2 * size), 256, np.uint16), iso=800, exposure_time=0.01, cfa="GRBG",
              black_level=256, white_level=4095, make="Expodiff", model="Gen12")
    frame = read_raw(grbg)
    # each noisy packed sample put back on the camera's GRBG mosaic
    rows = [unpack(sample.numpy().astype(np.float32), frame).astype(np.float64) for sample in x[:8]]
    even_odd = [np.corrcoef(m[:, 0::2].mean(1), m[:, 1::2].mean(1))[0, 1] for m in rows]
    across = [np.corrcoef(m[0::2, :].mean(1)[:-1], m[1::2, :].mean(1)[:-1])[0, 1] for m in rows]
    assert min(even_odd) > 0.5, even_odd  # both colours of a mosaic row share its offset
    assert max(abs(c) for c in across) < 0.6, across  # neighbouring rows do not


@pytest.fixture(scope="module")
def camera_model_run(tmp_path_factory):
    """The camera_model target at demo size for Gen12 (configs/camera-demo.yaml), in a copy."""
    workdir = copy_workflow(tmp_path_factory.mktemp("camera_model") / "workflow")
    # one epoch of the demo's 64 patches per network (the plumbing, not the learning)
    one_epoch = {name: {"epochs": 1, "lr_schedule": [], "checkpoint_epochs": [1]} for name in ("eld", "exposurediffusion")}
    short = overlay(workdir, "one_epoch", {"recipes": one_epoch})
    snakemake("camera_model", "--cores", "2", "--set-threads", "train_camera_model=1", "evaluate_camera_model=1",
              "--resources", "gpu=2", "--configfile", "configs/demo.yaml", "configs/camera-demo.yaml", short,
              cwd=workdir, check=True)
    return workdir


def test_camera_model_target_runs_and_writes_a_card(camera_model_run):
    root = camera_model_run / "results"
    params = json.loads((root / "cameras" / "Gen12.json").read_text())
    truth = json.loads((root / "data" / "synthetic_cameras" / "Gen12" / "calibration" / "true_params.json").read_text())
    assert {k: params["sensor"][k] for k in ("cfa", "black_level", "white_level", "bit_depth", "dn_scale")} == {
        "cfa": "GRBG", "black_level": [256.0] * 4, "white_level": 4095, "bit_depth": 12, "dn_scale": 3839.0}
    assert params["iso_range"] == truth["iso_range"]
    card = (root / "camera_models" / "Gen12" / "model_card.md").read_text()
    for text in ("# Model card: Gen12", "CFA GRBG, 12 bit", "DN scale 3839", "## Calibration",
                 f"the camera's calibrated span [{params['Kmin']:.4g}, {params['Kmax']:.4g}]",
                 "expodiff denoise --camera Gen12"):
        assert text in card, text
    for variant in ("unet-pg-base", "unet-pg-ours"):
        for protocol in ("oracle", "gt-free"):
            assert f"| {variant} | {1 if variant.endswith('base') else 3} | {protocol} | ×100 |" in card


def test_denoise_the_cameras_own_files_with_its_model(camera_model_run, tmp_path):
    """`expodiff denoise --camera Gen12` on two of its raw files, as a user would after
    camera_model: a PNG and a DNG each, the DNG in the camera's own format."""
    scene = sorted((camera_model_run / "results" / "data" / "synthetic_cameras" / "Gen12" / "pairs").glob("scene-*"))[0]
    pairs = [scene / "IMG_0004.dng", scene / "IMG_0009.dng"]  # two x100 inputs
    checkpoint = camera_model_run / "results" / "camera_models" / "Gen12" / "train" / "unet-pg-ours" / "model_final.pt"
    result = subprocess.run([sys.executable, "-m", "expodiff.cli", "denoise", "--camera", "Gen12", "--checkpoint",
                             str(checkpoint), *map(str, pairs), "--ratio", "100", "--out", str(tmp_path / "out")],
                            cwd=camera_model_run, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for path in pairs:
        with rawpy.imread(str(tmp_path / "out" / f"{path.stem}.dng")) as raw:
            assert cfa_name(raw.raw_pattern) == "GRBG" and raw.white_level == 4095
            assert list(raw.black_level_per_channel) == [256] * 4
        assert (tmp_path / "out" / f"{path.stem}.png").stat().st_size > 0


def test_the_other_eld_cameras_table(camera_model_run, tmp_path):
    """eld_cameras (off by default): planned for the paper config once enabled, the ELD download
    then covering its cameras; its table stacks one variant table per camera."""
    from expodiff.report.tables import build_camera_table

    no_data = overlay(tmp_path, "no_data", {"data": {"sid_root": str(tmp_path / "SID"), "eld_root": str(tmp_path / "ELD")}})
    assert "evaluate_eld_camera" not in job_counts(snakemake("-n", "--configfile", no_data, check=True).out)
    enabled = overlay(no_data.parent, "eld_cameras", {"eld_cameras": {"enabled": True}})
    counts = job_counts(snakemake("-n", "--configfile", no_data, enabled, check=True).out)
    assert counts["evaluate_eld_camera"] == 3 * 4 and counts["eld_cameras_table"] == 1
    assert counts["pack_camera_pairs"] == 3 and counts["install_eld"] == 1
    # the table, from two evaluations of the camera-model run standing for two cameras
    evals = camera_model_run / "results" / "camera_models" / "Gen12" / "eval"
    config = load_config([REPO / "config.yaml"])
    variants = {v: config["variants"][v] for v in ("unet-pg-base", "unet-pg-ours")}
    summaries = {v: evals / v / "summary.csv" for v in variants}
    table = build_camera_table(variants, {"CamA": summaries, "CamB": summaries}, [100, 200], 3)
    assert list(table.columns[:3]) == ["protocol", "camera", "variant"]
    assert table[["protocol", "camera", "variant"]].values.tolist() == [
        [p, c, v] for p in ("oracle", "gt-free") for c in ("CamA", "CamB") for v in variants]
    assert (table[table.camera == "CamA"].drop(columns="camera").values == table[table.camera == "CamB"].drop(columns="camera").values).all()
