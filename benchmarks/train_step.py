"""Where a training iteration's time goes: data, noise, forward+backward, optimiser step.

One iteration is timed as ``expodiff.train`` runs it, in four parts: waiting for data (the
batch's clean patches read from a patch store, augmented, stacked and moved to the device),
synthesising noise (the noise model's parameters and ``add_noise``, on the device), the
method's loss forward and its backward (``expodiff.methods``: for ours this includes the
re-exposure draws between ladder steps), and the Adam step. After each iteration the same
network passes are replayed bare (the inputs the network saw, no data, no noise, no loss
terms) and timed forward+backward; the last line is the ratio of the two totals:

    iteration/bare ratio: X.XX      (target ≤ 1.2: CPU at 128², GPU at 512²)

The patch store is generated: random uint16 patches in PatchStore format (``patches.npy`` +
``meta.json``) in a temporary folder, so no dataset and no raw reader are needed.

    PYTHONPATH=src python benchmarks/train_step.py [--device cpu|cuda|cuda:N] [--size 512]
        [--method ours] [--backbone unet] [--data pg] [--precision fp32|tf32|bf16] [--iterations 20]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from expodiff import seeds
from expodiff.data.feed import IterationBatches
from expodiff.device import compute_settings
from expodiff.methods import MethodSpec, get_method

# config.yaml's training section, what a training iteration reads (tests/test_benchmarks.py
# holds the two equal), so that this runs without pyyaml
TRAINING = {"seed": 2018, "lr": 1.0e-4, "batch_size": 1, "diffusion_steps": 3, "ratio_range": [20, 300],
            "K_range": [0.1, 30], "oracle_correction": True}
PRECISIONS = ("fp32", "tf32", "bf16")
WHITE, BLACK = 16383, 512  # a 14-bit sensor (SonyA7S2)




def compute_for(device="auto", precision="fp32", channels_last=False):
    """An ``expodiff.device.Compute`` for the flags."""
    return compute_settings(device=device, precision=precision, channels_last=channels_last)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- data ---------------------------------------------------------------------------------


def write_patch_store(directory: Path, count: int, size: int, seed: int = 0) -> Path:
    """A PatchStore-format folder of ``count`` random (4, size, size) uint16 patches."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    patches = np.lib.format.open_memmap(directory / "patches.npy", mode="w+", dtype=np.uint16,
                                        shape=(count, 4, size, size))
    for i in range(count):  # dim-to-bright patches, as long exposures are
        patches[i] = rng.integers(0, int((WHITE - BLACK) * rng.uniform(0.05, 1.0)), (4, size, size))
    patches.flush()
    del patches
    record = {"file": "random", "iso": 100, "exposure_time": 10.0, "black_level": [BLACK] * 4, "white_level": WHITE}
    meta = {"patch_size": size, "crop_hw": [size, size * count], "count": count, "dtype": "uint16",
            "patches": [dict(record, top=0, left=i * size) for i in range(count)]}
    (directory / "meta.json").write_text(json.dumps(meta))
    return directory


def split_batch(feed, it, source, generator, device, timer):
    """Iteration ``it``'s batch in its two parts (``expodiff.data.sources.Source``), each timed:
    the feed's item (``expodiff.data.feed.IterationBatches``: reading, crops, flips, in
    DataLoader workers in a training with compute.data_workers > 0) moved to the device (data),
    and what ``finish`` makes there from the torch generator (noise; real pairs: nothing left
    but the copy)."""
    from expodiff.data.sources import to_device

    with timer("data"):
        loaded = to_device(feed[it], device)
    with timer("noise"):
        return source.finish(loaded, generator)


class Timer:
    def __init__(self, device):
        self.device, self.parts = device, {}

    @contextlib.contextmanager
    def __call__(self, name):
        sync(self.device)
        t = time.perf_counter()
        yield
        sync(self.device)
        self.add(name, time.perf_counter() - t)

    def add(self, name, seconds):
        self.parts[name] = self.parts.get(name, 0.0) + seconds


PARTS = ("data", "noise", "fwd+bwd", "step")


def measure(device="cpu", size=128, method="ours", backbone="unet", data="pg", precision="fp32",
            iterations=5, warmup=1, concat_origin=False, channels_last=False, store_dir=None,
            print_rows=True) -> dict:
    """Time ``iterations`` training iterations (after ``warmup``); a dict of per-iteration
    seconds per part, the bare fwd+bwd and the ratio (see the module docstring)."""
    from expodiff.data.sources import make_source
    from expodiff.physics.camera import load_camera_params

    compute = compute_for(device, precision, channels_last)
    device = compute.device
    training = dict(TRAINING)
    spec = MethodSpec(backbone, method, concat_origin)
    impl = get_method(method)
    with contextlib.ExitStack() as stack:
        if store_dir is None:
            store_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="expodiff-bench-"))
        batch_size = int(training["batch_size"])
        count = max(8, 2 * batch_size)
        store = write_patch_store(Path(store_dir) / f"store{size}", count, size)
        source = make_source(data, store, load_camera_params("SonyA7S2"), training, patch_size=size)

        torch.manual_seed(int(training["seed"]))
        net = spec.build()  # on the CPU, then to the device, as expodiff.train does
        runner = compute.prepare(net)
        extra = {k: torch.nn.Parameter(v.detach().to(device)) for k, v in impl.extra_parameters(spec, training).items()}
        optimizer = torch.optim.Adam(list(net.parameters()) + list(extra.values()), lr=float(training["lr"]))
        runner.train()
        recorded: list[tuple] = []
        runner.register_forward_pre_hook(lambda m, args: recorded.append(
            tuple(a.detach() if torch.is_tensor(a) else a for a in args)))

        seed = int(training["seed"])
        rows = []
        if print_rows:
            print(f"device {device}; {backbone}/{method} data {data}; {precision}; "
                  f"batch {batch_size}×4×{size}²; times in ms")
            print(f"{'iter':>5} " + " ".join(f"{p:>9}" for p in PARTS) + f" {'iteration':>10} {'bare':>9} {'passes':>6}")
        feed = IterationBatches(source, seed, batch_size)  # what the training's feed makes
        for it in range(warmup + iterations):
            generator = compute.generator(seeds.training_seed(seed, it))
            timer = Timer(device)
            recorded.clear()
            batch = split_batch(feed, it, source, generator, device, timer)
            with timer("fwd+bwd"):
                loss = impl.loss(runner, spec, batch, extra=extra, training=training, generator=generator,
                                 rng=seeds.training_rng(seed, it))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            with timer("step"):
                optimizer.step()
            passes = list(recorded)
            with timer("bare"):  # the same network passes: no data, no noise, no loss terms
                out = sum(runner(*args).float().mean() for args in passes)
                out.backward()
            optimizer.zero_grad(set_to_none=True)
            recorded.clear()
            row = {p: timer.parts.get(p, 0.0) for p in (*PARTS, "bare")}
            row["iteration"], row["passes"] = sum(row[p] for p in PARTS), len(passes)
            if it < warmup:
                continue
            rows.append(row)
            if print_rows:
                print(f"{it - warmup + 1:>5} " + " ".join(f"{row[p] * 1e3:9.1f}" for p in PARTS)
                      + f" {row['iteration'] * 1e3:10.1f} {row['bare'] * 1e3:9.1f} {row['passes']:>6}")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in (*PARTS, "iteration", "bare")}
    ratio = sum(r["iteration"] for r in rows) / sum(r["bare"] for r in rows)
    return {"device": str(device), "size": size, "backbone": backbone, "method": method,
            "data": data, "precision": precision, "batch_size": int(training["batch_size"]), "iterations": iterations,
            "mean_s": mean, "iterations_per_s": 1.0 / mean["iteration"], "ratio": ratio, "rows": rows}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="cpu, cuda or cuda:N (default: cuda if there is one)")
    ap.add_argument("--size", type=int, default=128, help="patch side (the paper trains at 512)")
    ap.add_argument("--method", default="ours", help="baseline, ours or ddim")
    ap.add_argument("--backbone", default="unet")
    ap.add_argument("--data", default="pg", choices=["pg", "eld"], help="synthetic noise model")
    ap.add_argument("--precision", default="fp32", choices=PRECISIONS)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    ap.add_argument("--concat-origin", action="store_true")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--json", default=None, metavar="OUT",
                    help="also write the result (a speed record that `expodiff plan --speeds` reads) to OUT")
    args = ap.parse_args(argv)
    if args.iterations < 1:
        ap.error("--iterations must be at least 1")
    result = measure(args.device, args.size, args.method, args.backbone, args.data, args.precision,
                     args.iterations, args.warmup, args.concat_origin, args.channels_last)
    m = result["mean_s"]
    print("mean  " + " ".join(f"{m[p] * 1e3:9.1f}" for p in PARTS) + f" {m['iteration'] * 1e3:10.1f} {m['bare'] * 1e3:9.1f}")
    print("share of the iteration: " + ", ".join(f"{p} {m[p] / m['iteration']:.1%}" for p in PARTS)
          + f"; {result['iterations_per_s']:.3g} it/s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))
    print(f"iteration/bare ratio: {result['ratio']:.2f}")


if __name__ == "__main__":
    main()
