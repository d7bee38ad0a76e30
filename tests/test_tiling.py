"""Tiled inference (expodiff.tiling, compute.tile_size): the tiles cover the frame once, a
network whose receptive field fits in the overlap gives the whole-frame result, and on the
demo's trained UNet the difference tiling makes is stated (and small)."""

import numpy as np
import pytest
import torch
from torch import nn

from expodiff.device import compute_settings, generator
from expodiff.errors import ConfigError
from expodiff.tiling import GRID, TiledNetwork, windows


@pytest.mark.parametrize("length,tile,overlap", [(160, 64, 32), (64, 64, 16), (48, 64, 0), (208, 48, 16)])
def test_windows_cover_the_frame_once_on_the_grid(length, tile, overlap):
    covered = np.zeros(length, int)
    for w0, w1, c0, c1 in windows(length, tile, overlap):
        assert 0 <= w0 <= c0 < c1 <= w1 <= length
        assert w0 % GRID == 0 and c0 - w0 == min(c0, overlap) and w1 - c1 == min(length - c1, overlap)
        covered[c0:c1] += 1
    assert (covered == 1).all()


def local_net(radius: int) -> nn.Module:
    """``radius`` 3×3 box blurs: each output pixel sees ``radius`` pixels around it, and the
    signal keeps its scale however deep the stack."""
    layers = [nn.Conv2d(4, 4, 3, padding=1) for _ in range(radius)]
    with torch.no_grad():
        for conv in layers:
            conv.weight.fill_(1 / 36)
            conv.bias.zero_()
    return nn.Sequential(*layers).eval()


def test_a_network_within_the_overlap_is_unchanged_by_tiling():
    """Receptive-field radius 6 ≤ overlap 16: every kept output pixel is computed from the same
    inputs as on the whole frame (only the summation order may differ: float32 rounding)."""
    net = local_net(6)
    x = torch.rand(2, 4, 96, 144, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = net(x)
        tiled = TiledNetwork(net, 32, 16)(x)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-6)
    # without the overlap the tile borders change
    with torch.no_grad():
        assert (TiledNetwork(net, 32, 0)(x) - whole).abs().max() > 1e-3


def test_tiling_settings_are_checked():
    assert compute_settings({"tile_size": 64, "tile_overlap": 32}).tile_size == 64
    with pytest.raises(ConfigError, match="compute.tile_size"):
        compute_settings({"tile_size": 100})
    with pytest.raises(ConfigError, match="--tile-overlap"):
        compute_settings(None, tile_overlap=-16)


def test_denoise_flags_refuse_a_tile_off_the_grid(tmp_path):
    import subprocess
    import sys

    np.save(tmp_path / "x.npy", np.zeros((4, 32, 32), np.float32))
    out = subprocess.run([sys.executable, "-m", "expodiff.cli", "denoise", "--checkpoint", str(tmp_path / "none.pt"),
                          "--input", str(tmp_path / "x.npy"), "--ratio", "100", "--K", "1", "--tile-size", "40",
                          "--output", str(tmp_path / "y.npy")], capture_output=True, text=True)
    assert out.returncode == 2 and "--tile-size" in out.stderr and not (tmp_path / "y.npy").exists()


# what tiling (64² tiles, 32 of overlap) may change on the demo's trained UNet at 3 steps on an
# ELD frame (4×128×192 packed); measured 2026-12-01: −0.0001 dB (30.853 dB both); the bound
# leaves room for other trainings of the demo, whose networks differ
DEMO_TILED_PSNR_BOUND_DB = 0.25


@pytest.mark.slow
def test_tiling_on_the_demo_changes_psnr_by_little(demo_run, capsys):
    import json

    from expodiff.checkpoint import load_model
    from expodiff.data.eval_sets import read_eval_index
    from expodiff.inference import enhance
    from expodiff.metrics import psnr_ssim
    from expodiff.physics.noise import k_from_iso

    net, spec = load_model(demo_run / "results/train/unet-pg-ours/model_final.pt")
    camera = json.loads((demo_run / "results/cameras/SonyA7S2.json").read_text())
    rec = next(read_eval_index(demo_run / "results/eval_sets/eld").itertuples())
    short, gt = np.load(rec.input_npy), np.load(rec.gt_npy)
    psnrs = {}
    for tile in (0, 64):
        compute = compute_settings({"tile_size": tile, "tile_overlap": 32})
        pred = enhance(net, spec, short, int(rec.ratio), k_from_iso(float(rec.iso), camera), 3, gt=gt,
                       generator=generator(5), compute=compute)[-1]
        psnrs[tile] = psnr_ssim(gt, pred)[0]
    with capsys.disabled():
        print(f"\ntiling 64/32 on the demo ELD frame {short.shape}: PSNR {psnrs[0]:.3f} dB whole, "
              f"{psnrs[64]:.3f} dB tiled (difference {psnrs[64] - psnrs[0]:+.4f} dB)")
    assert psnrs[64] != psnrs[0]  # tiling did run
    assert abs(psnrs[64] - psnrs[0]) < DEMO_TILED_PSNR_BOUND_DB
