"""The ELD ratio (config evaluation.eld_ratio): an ELD-like scene whose EXIF ratio is 99.6.

The original amplifies the input by the EXIF ratio itself and runs the exposure ladder at
``int(ratio)`` (its ``int(self.ratio)`` of the dataloader's float64 tensor: truncation, 99);
``rounded`` uses ``round(ratio)`` (100) for both. Tables group by the nominal ×100 either way.
"""

import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from expodiff.checkpoint import load_network, save_checkpoint
from expodiff.data.eld import eld_eval_pairs, input_ratios
from expodiff.data.eval_sets import pack_eval_set, read_eval_index
from expodiff.data.synthetic import BLACK_LEVEL, CAMERA_NEUTRAL, WHITE_LEVEL
from expodiff.errors import ConfigError
from expodiff.evaluate import evaluate_variant
from expodiff.inference import enhance
from expodiff.io.raw import read_exif, read_raw, write_dng
from expodiff.methods import MethodSpec
from expodiff.metrics import psnr_ssim
from expodiff.physics.noise import k_from_iso
from expodiff.seeds import evaluation_seed

CAMERA = "src/expodiff/resources/camera_params/SonyA7S2.json"
EXIF_RATIO = Fraction("99.6")
VARIANT = {"name": "v", "backbone": "unet", "data": "pg", "method": "ours", "concat_origin": False}


@pytest.fixture(scope="module")
def scene(tiny_data, tmp_path_factory):
    """The tiny ELD scene-1 with IMG_0004 (×100, reference IMG_0006) re-written at ISO·t 99.6× dimmer."""
    root = tmp_path_factory.mktemp("eld") / "ELD"
    folder = root / "SonyA7S2" / "scene-1"
    shutil.copytree(tiny_data / "ELD" / "SonyA7S2" / "scene-1", folder)
    ref_iso, ref_t = read_exif(folder / "IMG_0006.dng")
    short = read_raw(folder / "IMG_0004.dng")
    exposure = Fraction(ref_iso) * Fraction(ref_t).limit_denominator() / (EXIF_RATIO * int(short.iso))
    write_dng(folder / "IMG_0004.dng", np.array(short.mosaic), iso=int(short.iso), exposure_time=exposure,
              black_level=BLACK_LEVEL, white_level=WHITE_LEVEL, as_shot_neutral=tuple(CAMERA_NEUTRAL))  # fmt: skip
    return root


def direct_exif_ratio(scene: Path) -> float:
    """(ISO·t) of the reference over (ISO·t) of the input, straight from the files' EXIF."""
    (iso_in, t_in), (iso_gt, t_gt) = (read_exif(scene / "SonyA7S2" / "scene-1" / f"IMG_{i:04d}.dng") for i in (4, 6))
    return (iso_gt * t_gt) / (iso_in * t_in)


@pytest.fixture(scope="module")
def packed(scene, tmp_path_factory):
    return pack_eval_set(eld_eval_pairs(scene, "SonyA7S2", [1], [100]), tmp_path_factory.mktemp("set") / "eld")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "ours.pt"
    save_checkpoint(path, MethodSpec.from_variant(VARIANT).build(), None, epoch=1, iterations=1)
    return path


def test_the_scene_has_a_fractional_exif_ratio(scene):
    ratio = direct_exif_ratio(scene)
    assert ratio == pytest.approx(99.6, abs=1e-9) and not float(ratio).is_integer()
    assert int(ratio) == 99 and round(ratio) == 100  # what the original's int() gives: truncation
    assert int(torch.tensor([ratio], dtype=torch.float64)) == 99  # as its dataloader hands it over


def test_pairs_and_index_keep_the_nominal_and_the_exif_ratio(scene, packed):
    pairs = eld_eval_pairs(scene, "SonyA7S2", [1], [100])
    first = pairs[0]
    assert first.input.name == "IMG_0004.dng" and first.ratio == 100
    assert first.exposure_ratio == direct_exif_ratio(scene)
    assert [p.exposure_ratio for p in pairs[1:]] == [100.0, 100.0]  # the generator's exact ratios
    index = read_eval_index(packed)
    assert list(index["ratio"]) == [100, 100, 100]
    assert index.loc[0, "exposure_ratio"] == direct_exif_ratio(scene)  # bit-exact through index.csv


def test_input_ratios_per_mode():
    assert input_ratios(99.6, "original") == (99.6, 99)
    assert input_ratios(99.6, "rounded") == (100.0, 100)
    assert input_ratios(200.0, "original") == input_ratios(200.0, "rounded") == (200.0, 200)
    assert input_ratios(100.4, "rounded") == (100.0, 100) and input_ratios(100.4, "original") == (100.4, 100)
    with pytest.raises(ConfigError, match=r"^evaluation\.eld_ratio: unknown mode 'floor'; choose one of original, rounded$"):
        input_ratios(99.6, "floor")


@pytest.mark.parametrize("mode,amplification,ladder", [("original", None, 99), ("rounded", 100.0, 100)])
def test_evaluation_amplifies_and_ladders_as_the_mode_says(packed, scene, checkpoint, tmp_path, monkeypatch,
                                                           one_thread, mode, amplification, ladder):
    """What reaches the method (the amplified input X_T, the ladder ratio) and the metrics, against
    a direct computation: X_T = clip(short · 99.6) (original) or · 100 (rounded)."""
    amplification = direct_exif_ratio(scene) if amplification is None else amplification
    seen = []
    impl_type = type(MethodSpec.from_variant(VARIANT).impl)
    predict = impl_type.predict
    monkeypatch.setattr(impl_type, "predict", lambda self, net, spec, x_t, n, K, ratio, **kw: (
        seen.append((x_t.clone(), ratio)) or predict(self, net, spec, x_t, n, K, ratio, **kw)))  # fmt: skip
    evaluate_variant(checkpoint, packed, VARIANT, [2], ["oracle", "gt-free"], 3, CAMERA,
                     tmp_path / "p.csv", tmp_path / "s.csv", eld_ratio=mode)
    rows = pd.read_csv(tmp_path / "p.csv", dtype={"scene": str})
    assert set(rows["ratio"]) == {100}  # grouped by the nominal ratio either way

    rec = read_eval_index(packed).iloc[0]
    x_short, gt = np.load(rec.input_npy), np.load(rec.gt_npy)
    x_t, ratio = seen[0]  # image 0, oracle, on the padded image (8 pixels each side)
    assert ratio == ladder and isinstance(ratio, int)
    expected_x_t = np.clip(x_short * np.float32(amplification), 0, 1)
    np.testing.assert_array_equal(x_t[0, :, 8:-8, 8:-8].numpy(), expected_x_t)
    assert {r for _, r in seen} == {ladder, 100}  # the other two inputs are exactly ×100

    net = load_network(checkpoint, MethodSpec.from_variant(VARIANT), "variants.v")
    K = k_from_iso(float(rec.iso), json.loads(Path(CAMERA).read_text()))
    for protocol, truth in (("oracle", gt), ("gt-free", None)):
        preds = enhance(net, MethodSpec.from_variant(VARIANT), x_short, ladder, K, 2, gt=truth,
                        generator=torch.Generator().manual_seed(evaluation_seed(3, 0, 2)), amplification=amplification)
        got = rows[(rows.protocol == protocol) & (rows.scene == "scene-1")].head(2)
        np.testing.assert_allclose(got[["psnr", "ssim"]].to_numpy(), [psnr_ssim(gt, p) for p in preds], atol=2e-6)


def test_the_modes_give_different_numbers(packed, checkpoint, tmp_path, one_thread):
    for mode in ("original", "rounded"):
        evaluate_variant(checkpoint, packed, VARIANT, [2], ["gt-free"], 3, CAMERA, tmp_path / f"{mode}.csv",
                         tmp_path / f"{mode}_s.csv", eld_ratio=mode)
    original, rounded = (pd.read_csv(tmp_path / f"{m}.csv") for m in ("original", "rounded"))
    assert not np.isclose(original.psnr[0], rounded.psnr[0], atol=1e-4)  # the 99.6 image
    pd.testing.assert_frame_equal(original.iloc[2:], rounded.iloc[2:])  # the ×100 ones: the same


def test_enhance_refuses_bad_ratios():
    net = MethodSpec.from_variant(VARIANT).build()
    spec, x = MethodSpec.from_variant(VARIANT), np.zeros((4, 16, 16), np.float32)
    with pytest.raises(ConfigError, match="ratio must be a whole number > 1, got 99.6"):
        enhance(net, spec, x, 99.6, 1.0, 1)
    for bad in (float("nan"), 1.0, 0.5, float("inf")):
        with pytest.raises(ConfigError, match="amplification must be a finite number > 1"):
            enhance(net, spec, x, 99, 1.0, 1, amplification=bad)
    with pytest.raises(ConfigError, match="evaluation.eld_ratio: unknown mode 'nearest'"):
        evaluate_variant("missing.pt", "nowhere", VARIANT, [1], ["oracle"], 0, CAMERA, "p.csv", "s.csv",
                         eld_ratio="nearest")  # fmt: skip
