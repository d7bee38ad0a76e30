"""Per-step evaluation on packed SID- and ELD-like sets from real DNG files, under the oracle
and the GT-free protocol."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from expodiff.checkpoint import save_checkpoint
from expodiff.data.eld import eld_eval_pairs
from expodiff.data.eval_sets import pack_eval_set
from expodiff.data.sid import sid_eval_pairs
from expodiff.checkpoint import load_network
from expodiff.data.eval_sets import read_eval_index
from expodiff.evaluate import PER_IMAGE_COLUMNS, evaluate_variant
from expodiff.inference import enhance
from expodiff.metrics import psnr_ssim
from expodiff.methods import MethodSpec
from expodiff.physics.noise import k_from_iso
from expodiff.seeds import evaluation_seed

CAMERA = "src/expodiff/resources/camera_params/SonyA7S2.json"
BOTH = ["oracle", "gt-free"]


@pytest.fixture(scope="module")
def eval_sets(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("evalsets")
    sid = pack_eval_set(sid_eval_pairs(tiny_data / "SID", ["10185", "20188"], [100, 250, 300]), root / "sid", crop=16)
    eld = pack_eval_set(eld_eval_pairs(tiny_data / "ELD", "SonyA7S2", [1], [100, 200]), root / "eld")
    return {"sid": sid, "eld": eld}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    paths = {}
    for method in ("baseline", "ours"):
        net = MethodSpec("unet", method).build()
        paths[method] = root / f"{method}.pt"
        save_checkpoint(paths[method], net, None, epoch=1, iterations=1)
    return paths


def test_metrics_follow_skimage_on_hwc_255():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 1, (4, 24, 24)).astype(np.float32)
    out = np.clip(gt + rng.normal(0, 0.05, gt.shape), 0, 1).astype(np.float32)
    psnr, ssim = psnr_ssim(gt, out)
    expected = peak_signal_noise_ratio(gt.transpose(1, 2, 0) * 255.0, out.transpose(1, 2, 0) * 255.0, data_range=255)
    assert psnr == pytest.approx(expected, rel=1e-9)
    assert 0 < ssim < 1
    assert psnr_ssim(gt, gt)[1] == pytest.approx(1.0)


@pytest.mark.parametrize("dataset,ratios,n_images", [("sid", [100, 250, 300], 6), ("eld", [100, 200], 6)])
def test_per_step_rows_and_summary(eval_sets, checkpoints, tmp_path, dataset, ratios, n_images):
    variant = {"name": "unet-pg-ours", "backbone": "unet", "data": "pg", "method": "ours", "concat_origin": False}
    per_image, summary_csv = tmp_path / "per_image.csv", tmp_path / "summary.csv"
    summary = evaluate_variant(checkpoints["ours"], eval_sets[dataset], variant, [1, 2, 3], BOTH, 2018, CAMERA,
                               per_image, summary_csv)
    rows = pd.read_csv(per_image, dtype={"scene": str})
    assert list(rows.columns) == PER_IMAGE_COLUMNS
    # every image, protocol, run of n steps and step of it: n_images × 2 × (1 + 2 + 3)
    assert len(rows) == n_images * 2 * 6
    assert sorted(rows.ratio.unique()) == ratios
    assert set(zip(rows.n_steps, rows.step)) == {(1, 1), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3)}
    assert np.isfinite(rows.psnr).all() and rows.ssim.between(-1, 1).all()
    on_disk = pd.read_csv(summary_csv)
    assert len(on_disk) == 2 * len(ratios) * 6 and (on_disk["count"] == n_images // len(ratios)).all()
    assert list(on_disk["protocol"]) == ["oracle"] * (len(ratios) * 6) + ["gt-free"] * (len(ratios) * 6)
    for protocol in BOTH:
        mean = rows.query(f"protocol == '{protocol}' and ratio == {ratios[0]} and n_steps == 3 and step == 3").psnr.mean()
        row = on_disk.query(f"protocol == '{protocol}' and ratio == {ratios[0]} and n_steps == 3 and step == 3")
        assert row.psnr.item() == pytest.approx(mean, abs=1e-5)
    assert len(summary) == len(on_disk)


def test_baseline_has_one_step_and_is_seed_free(eval_sets, checkpoints, tmp_path):
    variant = {"name": "unet-pg-base", "backbone": "unet", "data": "pg", "method": "baseline", "concat_origin": False}
    a = evaluate_variant(checkpoints["baseline"], eval_sets["sid"], variant, [1, 2, 3, 4], BOTH, 1, CAMERA,
                         tmp_path / "a.csv", tmp_path / "as.csv")
    b = evaluate_variant(checkpoints["baseline"], eval_sets["sid"], variant, [1, 2, 3, 4], BOTH, 2, CAMERA,
                         tmp_path / "b.csv", tmp_path / "bs.csv")
    assert set(a.n_steps) == {1} and set(a.step) == {1}
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("method", ["ours", "baseline"])
def test_gt_free_rows_are_enhance_without_ground_truth(eval_sets, checkpoints, tmp_path, one_thread, method):
    """Both protocols in one evaluation: the GT-free rows are a direct ``enhance(..., gt=None)``
    with the evaluation's seeds, they differ from the oracle rows, and the oracle rows are those
    of an oracle-only evaluation, bit for bit (the same seeds for both protocols)."""
    variant = {"name": "v", "backbone": "unet", "data": "pg", "method": method, "concat_origin": False}
    steps = [1, 2] if method == "ours" else [1]
    evaluate_variant(checkpoints[method], eval_sets["eld"], variant, steps, BOTH, 7, CAMERA,
                     tmp_path / "both.csv", tmp_path / "both_summary.csv")
    evaluate_variant(checkpoints[method], eval_sets["eld"], variant, steps, ["oracle"], 7, CAMERA,
                     tmp_path / "oracle.csv", tmp_path / "oracle_summary.csv")
    both = pd.read_csv(tmp_path / "both.csv", dtype={"scene": str})
    oracle_only = pd.read_csv(tmp_path / "oracle.csv", dtype={"scene": str})
    assert set(oracle_only["protocol"]) == {"oracle"}
    oracle, free = (both[both.protocol == p].reset_index(drop=True) for p in BOTH)
    pd.testing.assert_frame_equal(oracle, oracle_only, check_exact=True)
    assert (np.abs(free.psnr - oracle.psnr) > 1e-3).all()

    spec = MethodSpec.from_variant(variant)
    net = load_network(checkpoints[method], spec, "variants.v")
    camera = json.loads(Path(CAMERA).read_text())
    expected = []
    for i, rec in enumerate(read_eval_index(eval_sets["eld"]).itertuples()):
        x_short, gt = np.load(rec.input_npy), np.load(rec.gt_npy)
        for n in steps:
            preds = enhance(net, spec, x_short, int(rec.ratio), k_from_iso(float(rec.iso), camera), n, gt=None,
                            generator=torch.Generator().manual_seed(evaluation_seed(7, i, n)))
            expected += [psnr_ssim(gt, pred) for pred in preds]
    assert len(expected) == len(free)
    np.testing.assert_allclose(free[["psnr", "ssim"]].to_numpy(), np.array(expected), atol=2e-6)  # CSV: 6 decimals


@pytest.mark.parametrize("variant,steps_key,dark", [
    ("unet-pg-ddim", "ddim_steps", False), ("unet-pg-base", None, False), ("unet-pmn-ours", "steps", True),
])  # fmt: skip
def test_cli_evaluate_passes_what_the_rule_passes(monkeypatch, tmp_path, variant, steps_key, dark):
    """expodiff evaluate: the method's step counts, the rule's padding, and for a PMN variant
    the dark-shading maps fitted from pmn.dark_frames (as rules dark_shading and evaluate)."""
    from expodiff import cli, evaluate
    from expodiff.config import load_config
    from expodiff.data import pmn
    from expodiff.recipes import eval_padding

    got, fitted = {}, []
    monkeypatch.setattr(evaluate, "evaluate_variant", lambda *a, **kw: got.update(args=a, kw=kw) or pd.DataFrame())
    monkeypatch.setattr(pmn, "fit_dark_shading", lambda frames, out: fitted.append(frames) or out)
    config = ["config.yaml", "configs/demo.yaml"]
    assert cli.main(["evaluate", "--config", *config, "--variant", variant, "--checkpoint", "m.pt",
                     "--eval-set", "sid", "--out", str(tmp_path)]) == 0  # fmt: skip
    merged = load_config(config)
    expected_steps = merged["evaluation"][steps_key] if steps_key else [1]
    assert got["args"][3] == expected_steps
    assert got["args"][4] == merged["evaluation"]["protocols"] == ["oracle", "gt-free"]
    assert got["kw"]["eld_ratio"] == merged["evaluation"]["eld_ratio"] == "original"
    assert got["kw"]["padding"] == eval_padding(merged, variant)  # the variant's recipe's
    assert (got["kw"]["dark_shading"] is not None) == dark
    assert fitted == ([merged["pmn"]["dark_frames"]] if dark else [])
