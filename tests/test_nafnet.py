"""NAFNet-1/-2: the original's state-dict layout, NAFNet's construction properties, and the
original ExposureDiffusion NAFNet forward (written out below from wyf0912/ExposureDiffusion
models/arch/NAFNet.py as functional calls on the state dict) against our backbone + heads."""

import os
import subprocess
import sys
from importlib.resources import files

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from expodiff.errors import ConfigError
from expodiff.methods import MethodSpec, baseline_forward, ours_forward
from expodiff.nets import build_net
from expodiff.nets.nafnet import NAFBlock, NAFNetConfig

ARCHS = {"naf": "naf1", "naf2": "naf2"}  # the original's --netG → our backbone name
CONFIGS = {
    "baseline": dict(method="baseline"),
    "ours": dict(method="ours"),
    "ours_concat": dict(method="ours", concat_origin=True),
}


# small inputs: one thread is fast, and immune to OpenMP stalls on a busy machine
pytestmark = pytest.mark.usefixtures("one_thread")


def reference_shapes(name: str) -> list[tuple[str, tuple[int, ...]]]:
    text = (files("expodiff") / "resources" / "state_dicts" / f"{name}.tsv").read_text()
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return [(key, tuple(int(d) for d in shape.split("x"))) for key, shape in rows]


def random_state(net, seed=0, scale=0.2):
    """Every tensor random (β and γ too, so no block is the identity)."""
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) * scale for k, v in net.state_dict().items()}


# --------------------------------------------------------------------------------------------
# The original forward, written out. `in_nc` is the per-image channel count (4): the original
# builds intro with in_nc·(1 + with_photon + concat_origin) inputs and, in adaptive mode,
# out_nc = 2·4 + 1 = 9 outputs.


def ref_layernorm(x, w, b, eps=1e-6):
    c = x.shape[1]
    mu = x.mean(1, keepdim=True)
    var = (x - mu).pow(2).mean(1, keepdim=True)
    return w.view(1, c, 1, 1) * ((x - mu) / (var + eps).sqrt()) + b.view(1, c, 1, 1)


def ref_block(sd, p, inp):
    conv = lambda n, t, **kw: F.conv2d(t, sd[f"{p}{n}.weight"], sd[f"{p}{n}.bias"], **kw)  # noqa: E731
    x = ref_layernorm(inp, sd[f"{p}norm1.weight"], sd[f"{p}norm1.bias"])
    x = conv("conv1", x)
    x = conv("conv2", x, padding=1, groups=x.shape[1])
    x1, x2 = x.chunk(2, dim=1)
    x = x1 * x2
    x = x * conv("sca.1", F.adaptive_avg_pool2d(x, 1))
    x = conv("conv3", x)
    y = inp + x * sd[f"{p}beta"]
    x = conv("conv4", ref_layernorm(y, sd[f"{p}norm2.weight"], sd[f"{p}norm2.bias"]))
    x1, x2 = x.chunk(2, dim=1)
    x = conv("conv5", x1 * x2)
    return y + x * sd[f"{p}gamma"]


def ref_stage(sd, prefix, x):
    j = 0
    while f"{prefix}.{j}.beta" in sd:
        x = ref_block(sd, f"{prefix}.{j}.", x)
        j += 1
    return x


def original_nafnet(sd, inp, adaptive, in_nc=4, return_raw=False):
    """NAFNet.forward of the original: returns the (cropped, clipped) image, like its first output
    (and, with ``return_raw``, the output of ``ending`` cropped to the input size)."""
    n_enc = len({k.split(".")[1] for k in sd if k.startswith("downs.")})
    B, C, H, W = inp.shape
    padder = 2**n_enc
    inp = F.pad(inp, (0, (padder - W % padder) % padder, 0, (padder - H % padder) % padder))
    x = F.conv2d(inp, sd["intro.weight"], sd["intro.bias"], padding=1)
    encs = []
    for i in range(n_enc):
        x = ref_stage(sd, f"encoders.{i}", x)
        encs.append(x)
        x = F.conv2d(x, sd[f"downs.{i}.weight"], sd[f"downs.{i}.bias"], stride=2)
    x = ref_stage(sd, "middle_blks", x)
    for i, skip in enumerate(encs[::-1]):
        x = F.pixel_shuffle(F.conv2d(x, sd[f"ups.{i}.0.weight"]), 2)
        x = x + skip
        x = ref_stage(sd, f"decoders.{i}", x)
    x = F.conv2d(x, sd["ending.weight"], sd["ending.bias"], padding=1)
    raw = x[:, :, :H, :W]
    if adaptive:
        out_nc = x.shape[1]  # 9
        mask = torch.sigmoid(x[:, [0], :, :])
        x = x[:, 1:]
        out = x[:, : out_nc // 2]
        resid = x[:, out_nc // 2 :]
        out_by_resid = (resid + inp[:, :in_nc]).clip(0, 1)  # inp[:, :4] is X_l: no residual on the 9 channels
        x = out.clip(0, 1) * mask + out_by_resid * (1 - mask)
    else:
        x = x + inp[:, :in_nc]  # global residual (then the original crashed on `metadata`)
    final = x[:, :, :H, :W].clip(0, 1)
    return (final, raw) if return_raw else final


def original_net_input(x_l, x_t, level, ratio, K, concat_origin):
    """ELDModelIter._forward's input: [X_l, to_photon(X_l, ratio/level, K)/15583, (X_T)]."""
    photon = x_l / (ratio / level) / K * 15583
    parts = [x_l, photon / 15583] + ([x_t] if concat_origin else [])
    return torch.cat(parts, dim=1)


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("arch", list(ARCHS))
def test_state_dict_matches_original_and_loads_strict(arch, config):
    net = MethodSpec(ARCHS[arch], **CONFIGS[config]).build()
    got = [(k, tuple(v.shape)) for k, v in net.state_dict().items()]
    assert got == reference_shapes(f"{arch}_{config}")  # names, shapes and order
    state = random_state(net)
    net.load_state_dict(state, strict=True)
    assert torch.equal(net.intro.weight, state["intro.weight"])


@pytest.mark.parametrize("in_ch,out_ch", [(4, 4), (8, 9), (12, 9)])
@pytest.mark.parametrize("backbone", ["naf1", "naf2"])
def test_build_net_channels(backbone, in_ch, out_ch):
    net = build_net(backbone, in_ch, out_ch)
    assert net(torch.rand(1, in_ch, 32, 32)).shape == (1, out_ch, 32, 32)


def test_naf2_config_is_the_papers():
    cfg = build_net("naf2", 8, 9).config
    assert (cfg.width, cfg.enc_blk_nums, cfg.middle_blk_num, cfg.dec_blk_nums) == (16, (2, 2, 4, 4), 12, (2, 2, 2, 2))
    cfg1 = build_net("naf1", 8, 9).config
    assert (cfg1.width, cfg1.enc_blk_nums, cfg1.middle_blk_num, cfg1.dec_blk_nums) == (16, (), 1, ())
    with pytest.raises(ConfigError, match="dec_blk_nums"):
        NAFNetConfig(enc_blk_nums=(1, 1), dec_blk_nums=(1,))


def test_blocks_are_identity_at_init():
    torch.manual_seed(0)
    block = NAFBlock(16)
    x = torch.randn(2, 16, 9, 11)
    assert torch.equal(block(x), x)
    net = build_net("naf2", 8, 9)
    blocks = [m for m in net.modules() if isinstance(m, NAFBlock)]
    assert len(blocks) == 2 + 2 + 4 + 4 + 12 + 2 + 2 + 2 + 2
    assert all(not b.beta.any() and not b.gamma.any() for b in blocks)
    with torch.no_grad():
        block.beta.fill_(0.5)
    assert not torch.equal(block(x), x)


@pytest.mark.parametrize("backbone,hw", [("naf2", (37, 45)), ("naf2", (16, 33)), ("naf1", (5, 7))])
def test_odd_sizes_are_zero_padded_and_cropped(backbone, hw):
    net = build_net(backbone, 8, 9)
    net.load_state_dict(random_state(net, seed=1))
    x = torch.rand(1, 8, *hw)
    with torch.no_grad():
        out = net(x)
        m = net.padder_size
        padded = F.pad(x, (0, -hw[1] % m, 0, -hw[0] % m))
        assert padded.shape[-1] % m == 0 and padded.shape[-2] % m == 0
        expected = net(padded)[..., : hw[0], : hw[1]]
    assert out.shape == (1, 9, *hw)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("backbone", ["naf1", "naf2"])
def test_baseline_is_global_residual_then_clip(backbone):
    spec = MethodSpec(backbone, "baseline")
    net = spec.build()
    x_t = torch.rand(1, 4, 24, 40) * 1.2  # some pixels above 1 are clipped
    with torch.no_grad():
        net.ending.weight.zero_()
        net.ending.bias.zero_()
        assert torch.equal(baseline_forward(net, spec, x_t), x_t.clamp(0, 1))  # zero output → input back
        net.load_state_dict(random_state(net, seed=2))
        out = baseline_forward(net, spec, x_t)
        assert torch.equal(out, (net(x_t) + x_t).clamp(0, 1))
        assert torch.equal(out, original_nafnet(net.state_dict(), x_t, adaptive=False))
    unet = MethodSpec("unet", "baseline")  # the UNet adds nothing back
    u, x16 = unet.build(), torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(baseline_forward(u, unet, x16), u(x16).clamp(0, 1))


@pytest.mark.parametrize(
    "backbone,concat,hw", [("naf1", False, (20, 28)), ("naf2", False, (37, 45)), ("naf2", True, (32, 48))]
)
def test_ours_forward_equals_original_adaptive_forward(backbone, concat, hw):
    spec = MethodSpec(backbone, "ours", concat_origin=concat)
    net = spec.build().eval()
    net.load_state_dict(random_state(net, seed=3, scale=0.1))
    sd = net.state_dict()
    g = torch.Generator().manual_seed(4)
    ratio, level, K = 100, 34.0, 2.5
    x_t = torch.rand(1, 4, *hw, generator=g)
    x_l = x_t * (0.5 + torch.rand(1, 4, *hw, generator=g))  # a re-exposed level: not clipped
    with torch.no_grad():
        ours = ours_forward(net, spec, x_l, x_t, level, ratio, K)
        net_in = torch.cat([x_l, x_l * level / (ratio * K)] + ([x_t] if concat else []), dim=1)
        ref, ref_raw = original_nafnet(sd, net_in, adaptive=True, return_raw=True)
        assert torch.equal(net(net_in), ref_raw)  # the backbone: bit-identical
    assert 0.05 < ours.mask.mean() < 0.95 and ours.x0.std() > 0.05  # the test exercises both branches
    # the head: identical arithmetic, but the original applies it before cropping, and torch's
    # vectorised and scalar sigmoid differ by an ulp depending on memory layout
    torch.testing.assert_close(ours.final, ref, rtol=0, atol=1e-6)
    # our input is the original's up to rounding (x·l/(r·K) versus x/(r/l)/K·15583/15583); with
    # random weights 24 blocks deep that rounding is amplified, so compare the inputs, not outputs
    torch.testing.assert_close(net_in, original_net_input(x_l, x_t, level, ratio, K, concat), rtol=1e-6, atol=0)


@pytest.mark.parametrize("backbone,method,flags", [("naf2", "ours", ["--concat-origin"]), ("naf1", "baseline", [])])
def test_denoise_cli_runs_with_nafnet(tmp_path, backbone, method, flags):
    spec = MethodSpec(backbone, method, concat_origin=bool(flags))
    net = spec.build()
    ck = tmp_path / "ck.pt"
    torch.save({"netG": random_state(net, seed=5, scale=0.05), "opt_g": {}, "epoch": 0, "iterations": 0}, ck)
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.05, 0.9, size=(4, 40, 56)).astype(np.float32)
    short = np.clip(gt / 100 + rng.normal(0, 0.001, gt.shape), 0, 1).astype(np.float32)
    np.save(tmp_path / "short.npy", short)
    np.save(tmp_path / "gt.npy", gt)
    out = tmp_path / "out.npy"
    res = subprocess.run(
        [sys.executable, "-m", "expodiff.cli", "denoise", "--checkpoint", str(ck), "--backbone", backbone,
         "--method", method, *flags, "--input", str(tmp_path / "short.npy"), "--ratio", "100", "--K", "2.5",
         "--steps", "3", "--gt", str(tmp_path / "gt.npy"), "--output", str(out)],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert res.returncode == 0, res.stderr
    result = np.load(out)
    assert result.shape == (4, 40, 56) and np.isfinite(result).all()
    assert result.min() >= 0 and result.max() <= 1
