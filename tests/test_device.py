"""Device and precision (expodiff.device, config ``compute``, --device/--precision/--channels-last).

On the CPU the device code path, asked for explicitly (``device="cpu"``), gives exactly what the
default gives (the CPU-only code's results); bf16 autocast trains within a stated tolerance of
fp32; bad devices and precisions are errors naming the flag or key. The ``gpu`` tests run
training, evaluation and noise synthesis on CUDA and are skipped without it.
"""

from __future__ import annotations

import csv
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from expodiff.checkpoint import load_checkpoint, save_checkpoint
from expodiff.cli import main
from expodiff.config import load_config
from expodiff.data.eval_sets import pack_eval_set
from expodiff.data.patches import build_patch_store
from expodiff.data.sid import sid_eval_pairs, sid_train_gt_files
from expodiff.device import (Compute, DeviceNetwork, check_precision, compute_settings, generator, network_autocast,
                             resolve_device, state_to_cpu)
from expodiff.errors import ConfigError
from expodiff.evaluate import evaluate_variant
from expodiff.inference import enhance
from expodiff.methods import MethodSpec
from expodiff.physics.noise import add_noise, sample_noise_params
from expodiff.train import train_variant

REPO = Path(__file__).resolve().parents[1]
CAMERA = files("expodiff") / "resources" / "camera_params" / "SonyA7S2.json"
TRAINING = {
    "seed": 2018, "epochs": 2, "lr": 1.0e-4, "lr_schedule": [[1, 5.0e-5]], "batch_size": 1,
    "checkpoint_epochs": [2], "diffusion_steps": 3, "ratio_range": [20, 300], "K_range": [0.1, 30],
    "oracle_correction": True,
}
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine (torch.cuda.is_available() is False)")
no_cuda = pytest.mark.skipif(CUDA, reason="checks the error of a machine without CUDA; this one has CUDA")


def variant(method="baseline", data="pg"):
    return {"name": f"unet-{data}-{method}", "backbone": "unet", "data": data, "method": method,
            "concat_origin": False}


@pytest.fixture(scope="module")
def patches(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("device") / "patches"
    build_patch_store(sid_train_gt_files(tiny_data / "SID"), out, patch_size=16, crop_hw=(32, 32))
    return out


@pytest.fixture(scope="module")
def eval_set(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("device_eval")
    return pack_eval_set(sid_eval_pairs(tiny_data / "SID", ["10185"], [100, 300]), root / "sid", crop=16)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("device_ckpt")
    torch.manual_seed(0)
    paths = {}
    for method in ("baseline", "ours", "ddim"):
        paths[method] = root / f"{method}.pt"
        save_checkpoint(paths[method], MethodSpec("unet", method).build(), None, epoch=1, iterations=1)
    return paths


def losses(log_csv) -> list[float]:
    return [float(r["loss"]) for r in csv.DictReader(open(log_csv))]


# --- settings ---------------------------------------------------------------------------


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if CUDA else "cpu")
    with pytest.raises(ConfigError, match="compute.device"):
        resolve_device("tpu")
    with pytest.raises(ConfigError, match="--device.*whole number"):
        resolve_device("cuda:x", "--device")


@no_cuda
def test_cuda_without_cuda_names_the_key():
    with pytest.raises(ConfigError, match=r"compute.device 'cuda': CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match=r"--device 'cuda:7'.*out of range"):
        resolve_device("cuda:7", "--device")


def test_cuda_index_out_of_range():
    with pytest.raises(ConfigError, match="out of range"):
        resolve_device(f"cuda:{torch.cuda.device_count() + 7}", "--device")


def test_precision_checks_and_flags_override_the_config():
    with pytest.raises(ConfigError, match="compute.precision must be one of fp32, tf32, bf16, got 'fp16'"):
        check_precision("fp16", torch.device("cpu"))
    with pytest.raises(ConfigError, match="--precision"):
        compute_settings({"device": "cpu", "precision": "fp32"}, precision="fp16")
    with pytest.raises(ConfigError, match="compute.precision"):
        compute_settings({"device": "cpu", "precision": "fp16"})
    with pytest.raises(ConfigError, match="compute: unknown key"):
        compute_settings({"devices": "cpu"})
    c = compute_settings({"device": "auto", "precision": "fp32", "channels_last": False},
                         device="cpu", precision="bf16", channels_last=True)
    assert c == Compute(torch.device("cpu"), "bf16", True) and not c.is_default
    assert compute_settings(None).is_default and compute_settings({"device": "cpu"}).is_default


def test_autocast_is_for_the_network_only():
    conv = torch.nn.Conv2d(4, 4, 3, padding=1)
    x = torch.rand(1, 4, 8, 8)
    with network_autocast(torch.device("cpu"), "bf16"):
        assert conv(x).dtype == torch.bfloat16
    with network_autocast(torch.device("cpu"), "fp32"):
        assert conv(x).dtype == torch.float32
    net = Compute(torch.device("cpu"), "bf16", channels_last=True).prepare(conv)
    assert isinstance(net, DeviceNetwork) and net.net is conv
    out = net(x)
    assert out.dtype == torch.float32 and out.is_contiguous()  # float32 again before anything else
    assert Compute().prepare(conv) is conv  # the default: the network itself


def test_state_to_cpu_keeps_a_cpu_state_as_it_is():
    state = {"netG": {"w": torch.ones(2, 3)}, "opt_g": {"state": {0: {"exp_avg": torch.zeros(2)}}}, "epoch": 1}
    assert state_to_cpu(state) is state
    moved = state_to_cpu({"w": torch.ones(3, 2).t()})  # non-contiguous: copied contiguous
    assert moved["w"].is_contiguous() and torch.equal(moved["w"], torch.ones(2, 3))


def test_schema_has_the_compute_section(tmp_path):
    config = load_config([str(REPO / "config.yaml")])
    assert config["compute"] == {"device": "auto", "precision": "fp32", "channels_last": False, "data_workers": 4,
                                 "tile_size": 0, "tile_overlap": 64}
    assert load_config([str(REPO / "config.yaml"), str(REPO / "configs/demo.yaml")])["compute"]["device"] == "cpu"
    overlay = tmp_path / "bad.yaml"
    overlay.write_text(yaml.safe_dump({"compute": {"precision": "fp16"}}))
    with pytest.raises(ConfigError, match="compute.*precision"):
        load_config([str(REPO / "config.yaml"), str(overlay)])


# --- the CPU path, explicitly: what the default gives -----------------------------------


def test_add_noise_on_the_cpu_device_equals_the_default():
    clean = torch.rand(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    camera = __import__("json").loads(CAMERA.read_text())
    for model in ("pg", "eld"):
        outs = []
        for g in (torch.Generator().manual_seed(7), generator(7, "cpu")):
            params = sample_noise_params(model, camera, 2, generator=g)
            outs.append(add_noise(model, clean, params, g))
        assert torch.equal(*outs)


def test_train_variant_on_cpu_explicitly_equals_the_default(patches, tmp_path, one_thread):
    for method in ("baseline", "ours"):
        default = train_variant(variant(method), TRAINING, patches, CAMERA, tmp_path / method / "default",
                                max_iterations=3)
        explicit = train_variant(variant(method), TRAINING, patches, CAMERA, tmp_path / method / "cpu",
                                 max_iterations=3, compute={"device": "cpu", "precision": "fp32"})
        assert default.read_bytes() == explicit.read_bytes()


def test_evaluate_and_enhance_on_cpu_explicitly_equal_the_default(eval_set, checkpoints, tmp_path, one_thread):
    for method, steps in (("baseline", [1]), ("ours", [1, 2]), ("ddim", [2])):
        outs = []
        for name, compute in (("default", None), ("cpu", {"device": "cpu"})):
            evaluate_variant(checkpoints[method], eval_set, variant(method), steps, ["oracle"], 2018, CAMERA,
                             tmp_path / f"{method}_{name}_per_image.csv", tmp_path / f"{method}_{name}.csv",
                             compute=compute)
            outs.append((tmp_path / f"{method}_{name}_per_image.csv").read_bytes())
        assert outs[0] == outs[1]
    spec = MethodSpec("unet", "ours")
    net = MethodSpec("unet", "ours").build().eval()
    x = np.random.default_rng(0).uniform(0, 0.01, (4, 24, 24)).astype(np.float32)
    a = enhance(net, spec, x, 100, 2.0, 2, generator=torch.Generator().manual_seed(3))
    b = enhance(net, spec, x, 100, 2.0, 2, generator=generator(3, "cpu"), compute=Compute())
    assert all(np.array_equal(p, q) for p, q in zip(a, b))


def test_denoise_cli_on_cpu_explicitly(checkpoints, tmp_path, capsys):
    x = np.random.default_rng(0).uniform(0, 0.01, (4, 24, 24)).astype(np.float32)
    np.save(tmp_path / "in.npy", x)
    base = ["denoise", "--checkpoint", str(checkpoints["ours"]), "--backbone", "unet", "--method", "ours",
            "--input", str(tmp_path / "in.npy"),
            "--ratio", "100", "--iso", "3200", "--steps", "2"]
    assert main(base + ["--output", str(tmp_path / "a.npy")]) == 0
    assert main(base + ["--output", str(tmp_path / "b.npy"), "--device", "cpu", "--precision", "fp32"]) == 0
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()
    assert main(base + ["--output", str(tmp_path / "c.npy"), "--device", "cpu", "--precision", "bf16",
                        "--channels-last"]) == 0
    assert np.isfinite(np.load(tmp_path / "c.npy")).all()
    capsys.readouterr()
    assert main(base + ["--output", str(tmp_path / "d.npy"), "--device", f"cuda:{torch.cuda.device_count() + 7}"]) == 2
    assert "--device" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # argparse: choices
        main(base + ["--output", str(tmp_path / "e.npy"), "--precision", "fp16"])
    assert exit_.value.code == 2 and "--precision" in capsys.readouterr().err


@no_cuda
def test_cuda_here_is_an_error_naming_the_flag_or_key(checkpoints, patches, tmp_path, capsys):
    x = np.zeros((4, 24, 24), np.float32)
    np.save(tmp_path / "in.npy", x)
    args = ["denoise", "--checkpoint", str(checkpoints["baseline"]), "--backbone", "unet", "--method", "baseline",
            "--input", str(tmp_path / "in.npy"),
            "--ratio", "100", "--iso", "3200", "--output", str(tmp_path / "o.npy"), "--device", "cuda"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--device 'cuda'" in err and "CUDA is not available" in err
    # a config overlay: the job (here the CLI's train) says compute.device when it starts
    overlay = tmp_path / "cuda.yaml"
    overlay.write_text(yaml.safe_dump({"compute": {"device": "cuda"}}))
    assert main(["train", "--config", str(REPO / "config.yaml"), str(overlay), "--variant", "unet-pg-ours",
                 "--data", str(patches), "--out", str(tmp_path / "t")]) == 2
    assert "compute.device 'cuda'" in capsys.readouterr().err
    # the library, as the rules call it (the dry run resolves nothing)
    with pytest.raises(ConfigError, match="compute.device 'cuda'"):
        train_variant(variant(), TRAINING, patches, CAMERA, tmp_path / "lib", compute={"device": "cuda"})
    with pytest.raises(ConfigError, match="compute.device 'cuda'"):
        evaluate_variant(checkpoints["baseline"], tmp_path, variant(), [1], ["oracle"], 0, CAMERA, tmp_path / "a.csv",
                         tmp_path / "b.csv", compute={"device": "cuda"})


# --- precision --------------------------------------------------------------------------


def test_bf16_training_stays_close_to_fp32(patches, tmp_path, one_thread):
    """10 iterations of the UNet baseline and of ExposureDiffusion on the tiny patch store, fp32
    and bf16 autocast (CPU), from the same initial weights and the same batches.

    Tolerance: bf16 keeps 8 significant bits, unit roundoff 2^-8 ≈ 0.4%. Autocast rounds each
    convolution's inputs and weights to bf16 (accumulating in float32), so each layer adds a
    relative error of about 0.4%; the UNet has ~20 convolution layers, so the output error is at
    worst ~20 × 0.4% ≈ 8% if every layer's errors added up in the same direction, and about
    √20 × 0.4% ≈ 2% when they are independent. The L1 loss is a mean over all pixels, which does
    not add error; the 10 Adam steps (lr 1e-4) move the weights by ~1e-3 and their bf16-made
    differences stay far smaller. Hence: every iteration within 10% (the worst case with margin),
    the mean within 5% (the typical case with margin)."""
    for method in ("baseline", "ours"):
        runs = {}
        for precision in ("fp32", "bf16"):
            out = tmp_path / method / precision
            train_variant(variant(method), {**TRAINING, "epochs": 20}, patches, CAMERA, out, max_iterations=10,
                          compute={"device": "cpu", "precision": precision})
            runs[precision] = np.array(losses(out / "train_log.csv"))
        assert len(runs["fp32"]) == len(runs["bf16"]) == 10 and np.isfinite(runs["bf16"]).all()
        rel = np.abs(runs["bf16"] - runs["fp32"]) / runs["fp32"]
        assert rel.mean() < 0.05 and rel.max() < 0.10, (method, rel)
        assert not np.array_equal(runs["bf16"], runs["fp32"])  # bf16 did run in bf16
        state = load_checkpoint(tmp_path / method / "bf16" / "model_latest.pt")
        assert state["compute"]["precision"] == "bf16"
        assert all(t.dtype == torch.float32 and t.device.type == "cpu" for t in state["netG"].values()
                   if t.is_floating_point())


# --- CUDA -------------------------------------------------------------------------------


@pytest.mark.gpu
@needs_cuda
def test_noise_on_cuda():
    camera = __import__("json").loads(CAMERA.read_text())
    clean = torch.full((4, 4, 64, 64), 0.5, device="cuda")
    for model in ("pg", "eld"):
        g = generator(11, "cuda")
        params = sample_noise_params(model, camera, 4, generator=g, K=2.0, ratio_range=(100, 100.001))
        assert params.K.device.type == "cuda"
        noisy = add_noise(model, clean, params, g)
        assert noisy.device.type == "cuda" and torch.isfinite(noisy).all()
        again = add_noise(model, clean, params, generator(11, "cuda"))  # same seed: same draws
        g_cpu = generator(11, "cpu")
        cpu = add_noise(model, clean.cpu(), sample_noise_params(model, camera, 4, generator=g_cpu, K=2.0,
                                                                ratio_range=(100, 100.001)), g_cpu)
        assert torch.isfinite(again).all()
        # other streams than the CPU's, the same distribution: the means agree within noise
        assert abs(noisy.mean().item() - cpu.mean().item()) < 0.02


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16"])
def test_train_and_evaluate_on_cuda(patches, eval_set, tmp_path, capsys, precision):
    for method in ("baseline", "ours", "ddim"):
        out = tmp_path / method
        final = train_variant(variant(method), {**TRAINING, "epochs": 1}, patches, CAMERA, out,
                              compute={"device": "cuda", "precision": precision})
        state = load_checkpoint(final)
        assert all(t.device.type == "cpu" for t in state["netG"].values())
        assert np.isfinite(losses(out / "train_log.csv")).all()
        steps = [1, 2]
        summary = evaluate_variant(final, eval_set, variant(method), steps, ["oracle", "gt-free"], 2018, CAMERA,
                                   out / "per_image.csv", out / "summary.csv", compute={"device": "cuda",
                                                                                        "precision": precision})
        assert np.isfinite(summary["psnr"]).all()
        assert "peak GPU memory" in capsys.readouterr().err
        # the GPU-trained checkpoint evaluates on the CPU too
        evaluate_variant(final, eval_set, variant(method), steps, ["oracle"], 2018, CAMERA, out / "cpu_per_image.csv",
                         out / "cpu_summary.csv")


@pytest.mark.gpu
@needs_cuda
def test_bf16_training_on_cuda_stays_close_to_fp32(patches, tmp_path):
    """As test_bf16_training_stays_close_to_fp32, on CUDA (same tolerance and reasoning)."""
    runs = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        train_variant(variant(), {**TRAINING, "epochs": 20}, patches, CAMERA, out, max_iterations=10,
                      compute={"device": "cuda", "precision": precision})
        runs[precision] = np.array(losses(out / "train_log.csv"))
    rel = np.abs(runs["bf16"] - runs["fp32"]) / runs["fp32"]
    assert rel.mean() < 0.05 and rel.max() < 0.10, rel
