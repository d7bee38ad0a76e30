"""`expodiff denoise` against an independent, literal implementation of the original's
one-step evaluation (functional UNet on the raw state dict, the original's padding and
oracle correction), and its handling of bad input."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from expodiff.methods import MethodSpec

EXPODIFF = [sys.executable, "-m", "expodiff.cli"]


def reference_unet(sd, x):
    """UNetSeeInDark written out as functional calls on the state dict."""
    lrelu = lambda t: torch.max(0.2 * t, t)  # noqa: E731
    conv = lambda n, t: F.conv2d(t, sd[f"{n}.weight"], sd[f"{n}.bias"], padding=sd[f"{n}.weight"].shape[-1] // 2)  # noqa: E731
    skips = []
    for k in range(1, 6):
        x = lrelu(conv(f"conv{k}_2", lrelu(conv(f"conv{k}_1", x))))
        if k < 5:
            skips.append(x)
            x = F.max_pool2d(x, 2)
    for k in range(6, 10):
        x = F.conv_transpose2d(x, sd[f"upv{k}.weight"], sd[f"upv{k}.bias"], stride=2)
        x = torch.cat([x, skips.pop()], 1)
        x = lrelu(conv(f"conv{k}_2", lrelu(conv(f"conv{k}_1", x))))
    return conv("conv10_1", x)


def reference_correct(pred, gt):
    p = pred.clamp(0, 1)
    pc, gc = p[gt != 1], gt[gt != 1]
    return torch.dot(pc, gc) / torch.dot(pc, pc) * p


def reference_one_step(sd, short, gt, ratio, K, concat_origin):
    x = (torch.from_numpy(short)[None] * ratio).clamp(0, 1)
    t = torch.from_numpy(gt)[None]
    _, _, w, h = x.shape  # the original's padding: always 16 - size % 16, split floor/ceil
    h1, w1 = (16 - h % 16) // 2, (16 - w % 16) // 2
    h2, w2 = (16 - h % 16) - h1, (16 - w % 16) - w1
    xp, tp = F.pad(x, [h1, h2, w1, w2], mode="reflect"), F.pad(t, [h1, h2, w1, w2], mode="reflect")
    net_in = [xp, xp / ratio / K * 15583 / 15583] + ([xp] if concat_origin else [])
    out = reference_unet(sd, torch.cat(net_in, 1))
    mask = torch.sigmoid(out[:, [0]])
    final = out[:, 1:5].clamp(0, 1) * mask + (out[:, 5:9] + xp).clamp(0, 1) * (1 - mask)
    final = reference_correct(final, tp)
    final = F.pad(final, [-h1, -h2, -w1, -w2])
    return reference_correct(final, t).clamp(0, 1)[0].numpy()


@pytest.fixture(scope="module")
def released_like(tmp_path_factory):
    """A checkpoint in the released format, short exposure and ground truth as .npy."""
    d = tmp_path_factory.mktemp("denoise")
    torch.manual_seed(0)
    paths = {}
    for concat in (False, True):
        net = MethodSpec("unet", "ours", concat).build()
        ck = d / f"ours_concat{int(concat)}.pt"
        torch.save({"netG": net.state_dict(), "opt_g": {}, "epoch": 300, "iterations": 386400}, ck)
        paths[concat] = ck
    base = MethodSpec("unet", "baseline").build()
    torch.save({"netG": base.state_dict(), "opt_g": {}, "epoch": 1, "iterations": 1}, d / "base.pt")
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.05, 0.9, size=(4, 40, 56)).astype(np.float32)
    gt[0, :3, :3] = 1.0  # saturated pixels are excluded from the correction
    short = np.clip(gt / 100 + rng.normal(0, 0.001, gt.shape), 0, 1).astype(np.float32)
    np.save(d / "short.npy", short)
    np.save(d / "gt.npy", gt)
    return d, paths


def run(*args):
    return subprocess.run([*EXPODIFF, *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize("concat", [False, True])
def test_one_step_with_oracle_matches_original(released_like, concat):
    d, paths = released_like
    out = d / f"out{int(concat)}.npy"
    flags = ["--concat-origin"] if concat else []
    res = run("denoise", "--checkpoint", paths[concat], "--backbone", "unet", "--method", "ours", *flags,
              "--input", d / "short.npy", "--ratio", 100, "--steps", 1, "--K", 2.5, "--gt", d / "gt.npy",
              "--output", out)
    assert res.returncode == 0, res.stderr
    ours = np.load(out)
    sd = torch.load(paths[concat], weights_only=True)["netG"]
    ref = reference_one_step(sd, np.load(d / "short.npy"), np.load(d / "gt.npy"), 100, 2.5, concat)
    assert ours.shape == (4, 40, 56) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-6)


def test_one_step_is_deterministic_and_three_steps_use_the_seed(released_like):
    d, paths = released_like
    common = ["--checkpoint", paths[False], "--backbone", "unet", "--method", "ours",
              "--input", d / "short.npy", "--ratio", 100, "--iso", 3200]
    outs = {}
    for steps, seed in [(1, 1), (1, 2), (3, 1), (3, 2)]:
        outs[steps, seed] = d / f"s{steps}_{seed}.npy"
        assert run("denoise", *common, "--steps", steps, "--seed", seed, "--output", outs[steps, seed]).returncode == 0
    assert np.array_equal(np.load(outs[1, 1]), np.load(outs[1, 2]))
    assert not np.array_equal(np.load(outs[3, 1]), np.load(outs[3, 2]))


def test_png_output_and_baseline(released_like):
    d, _ = released_like
    png = d / "base.png"
    res = run("denoise", "--checkpoint", d / "base.pt", "--backbone", "unet", "--method", "baseline",
              "--input", d / "short.npy", "--ratio", 100, "--K", 1, "--output", png)
    assert res.returncode == 0, res.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"--ratio": "1"}, "--ratio"),
        ({"--input": "missing.npy"}, "missing.npy"),
        ({"--input": "truncated.npy"}, "truncated.npy"),
        ({"--backbone": "resnet"}, "resnet"),
        ({"--checkpoint": "base.pt"}, "conv1_1.weight"),  # a baseline checkpoint for method ours
    ],
)
def test_bad_input_is_named_and_leaves_no_output(released_like, change, needle):
    d, paths = released_like
    (d / "truncated.npy").write_bytes((d / "short.npy").read_bytes()[:100])
    args = {"--checkpoint": str(paths[False]), "--backbone": "unet", "--method": "ours",
            "--input": str(d / "short.npy"), "--ratio": "100", "--K": "1", "--output": str(d / "bad.npy")}
    for key, value in change.items():
        args[key] = value if key in ("--ratio", "--backbone") else str(d / value)
    res = run("denoise", *[x for kv in args.items() for x in kv])
    assert res.returncode == 2
    assert needle in res.stderr
    assert not (d / "bad.npy").exists()
    assert not list(d.glob(".bad*"))


# --- checkpoints that record their network; every method ------------------------------------


def denoise(*args):
    """`expodiff denoise` in-process: (exit status, stderr)."""
    import contextlib
    import io

    from expodiff.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["denoise", *map(str, args)])
    return code, err.getvalue()


def test_a_checkpoint_with_spec_needs_no_flags_and_refuses_other_ones(released_like, tmp_path):
    d, paths = released_like
    state = torch.load(paths[True], weights_only=True)
    described = tmp_path / "described.pt"
    torch.save({**state, "spec": {"backbone": "unet", "method": "ours", "concat_origin": True}}, described)
    common = ["--input", d / "short.npy", "--ratio", 100, "--K", 2.5, "--steps", 2, "--seed", 3]
    assert denoise("--checkpoint", paths[True], "--backbone", "unet", "--method", "ours", "--concat-origin",
                   *common, "--output", tmp_path / "flags.npy")[0] == 0  # fmt: skip
    assert denoise("--checkpoint", described, *common, "--output", tmp_path / "spec.npy")[0] == 0
    assert denoise("--checkpoint", described, "--method", "ours", *common, "--output", tmp_path / "same.npy")[0] == 0
    for name in ("spec.npy", "same.npy"):
        assert (tmp_path / name).read_bytes() == (tmp_path / "flags.npy").read_bytes()
    code, err = denoise("--checkpoint", described, "--method", "baseline", *common, "--output", tmp_path / "x.npy")
    assert code == 2 and "trained as backbone=unet method=ours concat_origin=True; --method baseline" in err
    assert not (tmp_path / "x.npy").exists()
    code, err = denoise("--checkpoint", paths[True], *common, "--output", tmp_path / "x.npy")  # released: no spec
    assert code == 2 and "--backbone and --method" in err


def test_denoise_runs_ddim(tmp_path, released_like):
    from expodiff.inference import enhance

    d, _ = released_like
    torch.manual_seed(0)
    spec = MethodSpec("unet", "ddim")
    net = spec.build().eval()
    torch.save({"netG": net.state_dict(), "opt_g": {}, "epoch": 1, "iterations": 1, "spec": spec.as_dict()},
               tmp_path / "ddim.pt")  # fmt: skip
    code, err = denoise("--checkpoint", tmp_path / "ddim.pt", "--input", d / "short.npy", "--ratio", 100, "--K", 2,
                        "--steps", 3, "--seed", 5, "--output", tmp_path / "ddim.npy")  # fmt: skip
    assert code == 0, err
    expected = enhance(net, spec, np.load(d / "short.npy"), 100, 2.0, 3, generator=torch.Generator().manual_seed(5))
    assert np.array_equal(np.load(tmp_path / "ddim.npy"), expected[-1])


@pytest.mark.parametrize("command", ["denoise", "evaluate"])
def test_every_flag_has_help(command):
    from expodiff.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    missing = [a.dest for a in sub._actions if a.dest != "help" and not a.help]
    assert not missing
    if command == "denoise":
        method = next(a for a in sub._actions if a.dest == "method")
        assert list(method.choices) == ["baseline", "ours", "ddim"]


def test_oracle_correction_of_an_all_zero_prediction_is_zero_not_nan():
    """A weak network's step can clamp to 0 everywhere (the mini's ours at ISO 6400, x250): the
    original's α = 0/0 is NaN, which stops the evaluation; α·0 is 0 for any α. Any other
    prediction is corrected exactly as before."""
    from expodiff.physics.correction import oracle_illumination_correct

    gt = torch.rand(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    pred = torch.stack([torch.full((4, 8, 8), -0.3), torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(1))])
    out = oracle_illumination_correct(pred, gt)
    assert torch.equal(out[0], torch.zeros(4, 8, 8))
    p = pred[1].clamp(0, 1)
    valid = (gt[1] != 1).float()
    assert torch.equal(out[1], ((p * gt[1] * valid).sum() / (p * p * valid).sum()) * p)
