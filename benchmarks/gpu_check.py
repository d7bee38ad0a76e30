"""The GPU figures of this project in one run of a few minutes (one H200: well under 8).

On a CUDA machine with only torch, numpy, scipy, scikit-image, pandas and tqdm installed:

    PYTHONPATH=src python3 benchmarks/gpu_check.py [--out benchmarks/out/gpu_check.json]

1. which of rawpy, pidng, exifread, snakemake, thop ``import expodiff.methods, expodiff.train,
   expodiff.evaluate`` loads at module level (they should load only when used);
2. the gpu-marked tests (``pytest -m gpu``; skipped if pytest is not installed);
3. ``--iterations`` (200) training iterations of the UNet ExposureDiffusion variant
   (unet/ours, P+g noise) at 512² in fp32 and in bf16, split as benchmarks/train_step.py
   splits them (data, noise, fwd+bwd, step, and iteration/bare);
4. full-frame inference at the ELD size (4×1424×2128 packed, one network evaluation): time and
   peak GPU memory, fp32 and bf16, and the largest |fp32 − bf16| of the outputs (same weights:
   seeded random ones, not a trained network);
5. ``--speed-iterations`` (20) iterations of every backbone × method of the paper's variants
   (unet, naf1, naf2 × baseline, ours; unet/ddim) at 512² in fp32 and bf16: the ``speeds``
   records that ``expodiff plan --speeds`` reads;
6. the paper config's GPU-hours per precision from those speeds (``expodiff.plan.plan(
   ["config.yaml"], speeds=..., precision=...)``; needs pyyaml and jsonschema, else recorded
   as not computed).

Writes one JSON (``--out``) and prints a table. Without CUDA it says that the GPU figures cannot
be measured here, runs a tiny CPU smoke pass (as ``--device cpu --smoke``: a few iterations at
64², a small frame) and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

import train_step  # benchmarks/train_step.py, beside this file

REPO = Path(__file__).resolve().parents[1]
LAZY = ("rawpy", "pidng", "exifread", "snakemake", "thop")
ELD_FRAME = (1424, 2128)  # packed ELD SonyA7S2 frame (4 × H/2 × W/2)


def lazy_imports() -> dict:
    """What importing the training/evaluation modules loads of ``LAZY`` (a fresh interpreter)."""
    code = ("import sys\nimport expodiff.methods, expodiff.train, expodiff.evaluate\n"
            f"print(','.join(m for m in {LAZY!r} if m in sys.modules))")
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"ok": False, "loaded": None, "error": last}
    loaded = [m for m in out.stdout.strip().split(",") if m]
    return {"ok": not loaded, "loaded": loaded, "error": None}


def gpu_tests(timeout_s: int) -> dict:
    if importlib.util.find_spec("pytest") is None:
        return {"ran": False, "why": "pytest is not installed"}
    t = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"],
                             cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"ran": True, "returncode": None, "summary": f"timed out after {timeout_s} s", "seconds": timeout_s}
    lines = out.stdout.strip().splitlines()
    # 5: nothing selected (no gpu-marked tests yet)
    return {"ran": True, "returncode": out.returncode, "summary": lines[-1] if lines else out.stderr[-300:],
            "seconds": round(time.perf_counter() - t, 1)}


def inference(device, frame, precisions=("fp32", "bf16")) -> dict:
    """One network evaluation of unet/ours on a (1,4,H,W) frame per precision, same weights."""
    from expodiff.methods import MethodSpec

    spec = MethodSpec("unet", "ours")
    torch.manual_seed(0)
    net = spec.build()
    x_t = torch.rand(1, 4, *frame, generator=torch.Generator().manual_seed(1)) * 0.5
    out, outputs = {}, {}
    for precision in precisions:
        compute = train_step.compute_for(str(device), precision)
        runner = compute.prepare(net)
        runner.eval()
        x = x_t.to(compute.device)

        def run():
            with torch.no_grad():
                pred = spec.impl.predict(runner, spec, x, 1, 10.0, 100, generator=compute.generator(0))[-1]
            train_step.sync(compute.device)
            return pred

        run()  # warm-up (cuDNN autotuning, allocations)
        if compute.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(compute.device)
        t = time.perf_counter()
        pred = run()
        seconds = time.perf_counter() - t
        peak = torch.cuda.max_memory_allocated(compute.device) / 2**30 if compute.device.type == "cuda" else None
        outputs[precision] = pred.float().cpu()
        out[precision] = {"seconds": round(seconds, 4), "peak_memory_gib": None if peak is None else round(peak, 3)}
    if len(outputs) == 2:
        a, b = outputs.values()
        out["max_abs_diff_fp32_bf16"] = float((a - b).abs().max())
        out["mean_abs_diff_fp32_bf16"] = float((a - b).abs().mean())
    out["shape"] = [1, 4, *frame]
    return out


NETWORKS = (("unet", "baseline"), ("unet", "ours"), ("unet", "ddim"), ("naf1", "baseline"), ("naf1", "ours"),
            ("naf2", "baseline"), ("naf2", "ours"))  # the paper config's backbone × method pairs


def speeds(device, size, iterations, precisions=("fp32", "bf16"), networks=NETWORKS) -> list[dict]:
    """One speed record per network and precision (what ``expodiff plan --speeds`` reads)."""
    out = []
    for backbone, method in networks:
        for precision in precisions:
            r = train_step.measure(str(device), size, method, backbone, "pg", precision, iterations,
                                   warmup=1 if iterations < 5 else 3, print_rows=False)
            out.append({k: r[k] for k in ("backbone", "method", "precision", "size", "batch_size",
                                          "iterations_per_s", "ratio")})
    return out


def gpu_hours(speeds_json: Path, precision: str) -> dict:
    try:
        from expodiff.plan import plan

        text = plan([str(REPO / "config.yaml")], speeds=[speeds_json], precision=precision)
    except Exception as err:  # pyyaml/jsonschema missing, say
        return {"total_gpu_hours": None, "error": f"{type(err).__name__}: {err}",
                "hint": f"elsewhere: expodiff plan config.yaml --speeds {speeds_json} --precision {precision}"}
    total = next((line.split(":", 1)[1].split()[0] for line in text.splitlines() if "total GPU-hours" in line), None)
    return {"total_gpu_hours": None if total is None else float(total), "plan": text}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    ap.add_argument("--smoke", action="store_true", help="a tiny pass (a few iterations at 64², a small frame)")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--speed-iterations", type=int, default=20, help="iterations per network for the speeds")
    ap.add_argument("--pytest-timeout", type=int, default=180, help="seconds for pytest -m gpu")
    ap.add_argument("--out", default=str(REPO / "benchmarks/out/gpu_check.json"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    device = train_step.compute_for(args.device).device
    cuda = device.type == "cuda"
    smoke = args.smoke or not cuda
    if not cuda:
        print(f"no CUDA device here ({device}): the GPU figures cannot be measured here; running a CPU smoke pass only")
    iterations, size, frame = (2, 64, (64, 96)) if smoke else (args.iterations, args.size, ELD_FRAME)

    result = {"device": str(device), "gpu": torch.cuda.get_device_name(device) if cuda else None,
              "gpu_figures_measured": cuda and not smoke, "smoke": smoke, "torch": torch.__version__,
              "cuda": torch.version.cuda, "python": platform.python_version()}
    result["lazy_imports"] = lazy_imports()
    result["gpu_tests"] = gpu_tests(args.pytest_timeout) if cuda and not smoke else {"ran": False, "why": "no CUDA / smoke"}
    result["train"] = {}
    for precision in ("fp32", "bf16"):
        r = train_step.measure(str(device), size, "ours", "unet", "pg", precision, iterations,
                               warmup=0 if smoke else 5, print_rows=False)
        result["train"][precision] = {k: r[k] for k in ("size", "batch_size", "iterations", "mean_s",
                                                        "iterations_per_s", "ratio")}
    result["inference"] = inference(device, frame)
    result["speeds"] = speeds(device, size, 1 if smoke else args.speed_iterations,
                              networks=NETWORKS[:2] if smoke else NETWORKS)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))  # the speeds, for the planner (rewritten below)
    result["gpu_hours"] = {p: gpu_hours(out, p) for p in ("fp32", "bf16")}
    result["seconds"] = round(time.perf_counter() - t0, 1)

    out.write_text(json.dumps(result, indent=1))

    print(f"device {result['device']} {result['gpu'] or ''} ({'smoke pass' if smoke else 'measured'}); torch {torch.__version__}")
    li = result["lazy_imports"]
    print(f"lazy imports: {'ok' if li['ok'] else (li['error'] or 'loaded at import: ' + ', '.join(li['loaded']))}")
    gt = result["gpu_tests"]
    print(f"pytest -m gpu: {gt.get('summary') if gt['ran'] else 'not run (' + gt['why'] + ')'}")
    print(f"\ntraining, unet/ours P+g, batch {result['train']['fp32']['batch_size']}×4×{size}², "
          f"{iterations} iterations (ms per iteration):")
    print(f"  {'precision':<9} " + " ".join(f"{p:>9}" for p in train_step.PARTS)
          + f" {'iteration':>10} {'bare':>9} {'it/s':>7} {'ratio':>6} {'GPU-hours':>9}")
    for p, r in result["train"].items():
        m, hours = r["mean_s"], result["gpu_hours"][p]["total_gpu_hours"]
        print(f"  {p:<9} " + " ".join(f"{m[k] * 1e3:9.1f}" for k in train_step.PARTS)
              + f" {m['iteration'] * 1e3:10.1f} {m['bare'] * 1e3:9.1f} {r['iterations_per_s']:7.2f} {r['ratio']:6.2f} "
              + (f"{hours:9.1f}" if hours is not None else f"{'n/a':>9}"))
    print(f"\nspeeds at {size}² (it/s; `expodiff plan config.yaml --speeds {out}`):")
    for r in result["speeds"]:
        print(f"  {r['backbone']:<5} {r['method']:<9} {r['precision']:<5} {r['iterations_per_s']:8.2f}  ratio {r['ratio']:.2f}")
    inf = result["inference"]
    print(f"\ninference, one network evaluation on {'×'.join(map(str, inf['shape'][1:]))}:")
    for p in ("fp32", "bf16"):
        mem = inf[p]["peak_memory_gib"]
        print(f"  {p:<9} {inf[p]['seconds'] * 1e3:9.1f} ms  peak memory {'n/a (CPU)' if mem is None else f'{mem:.2f} GiB'}")
    print(f"  max |fp32 − bf16| of the outputs: {inf['max_abs_diff_fp32_bf16']:.3e} "
          f"(mean {inf['mean_abs_diff_fp32_bf16']:.3e}; random weights)")
    for p, g in result["gpu_hours"].items():
        if g.get("error"):
            print(f"GPU-hours ({p}): not computed: {g['error']}; {g['hint']}")
    print(f"\nwrote {out} in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
