"""Network cost for Table 5b (protocol §4, §8): parameters and MACs as thop counts them, and
inference time.

thop (``pip install expodiff[test]``, pinned 0.1.1.post2209072238) hooks only the module types it
knows (Conv2d, ConvTranspose2d, AdaptiveAvgPool2d, ...): parameters held by other modules (NAFNet's
LayerNorm2d weights, a NAFBlock's β and γ) are not in ``thop_params``, and element-wise products and
additions outside hooked modules are not in ``thop_macs``. ``params_numel`` counts every parameter.
The paper's Table 5b is thop on a 1×8×512×512 input with the 9-channel head (config "ours").
"""

from __future__ import annotations

import copy
import platform
import statistics
import time

import torch
from torch import nn

from expodiff.errors import ExpodiffError
from expodiff.nets import build_net


def _import_thop():
    try:
        import thop
    except ImportError as err:
        raise ExpodiffError(
            "counting MACs needs thop (pip install 'thop==0.1.1.post2209072238', part of the 'test' extra)"
        ) from err
    return thop


def count_cost(backbone: str, in_channels: int, out_channels: int, size: int = 512) -> dict:
    """thop parameters and MACs of one network pass on a 1×in_channels×size×size input.

    thop leaves ``total_ops``/``total_params`` buffers on modules it does not hook, so the count
    runs on a network built for the purpose and then thrown away.
    """
    thop = _import_thop()
    net = build_net(backbone, in_channels, out_channels)  # throwaway: thop adds buffers to it
    x = torch.zeros(1, in_channels, size, size)  # MACs do not depend on the values
    macs, params = thop.profile(net, inputs=(x,), verbose=False)
    return {
        "backbone": backbone,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "size": size,
        "thop_params": int(params),
        "thop_macs": int(macs),
        "params_numel": sum(p.numel() for p in net.parameters()),
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


@torch.no_grad()
def measure_inference_time(
    net: nn.Module,
    in_channels: int,
    size: int = 512,
    repeats: int = 10,
    warmup: int = 3,
    device: str | torch.device = "cpu",
    n_steps: int = 3,
) -> dict:
    """Wall-clock seconds of one network pass on a 1×in_channels×size×size input (mean and
    median of ``repeats`` timed passes after ``warmup`` untimed ones), and of an ``n_steps`` run
    (n_steps passes; the element-wise head and re-exposure between passes are not timed).

    The network is copied to ``device`` in eval mode; the caller's network is left as it was.
    On CUDA every pass is bracketed by ``torch.cuda.synchronize``.
    """
    if repeats < 1 or warmup < 0:
        raise ExpodiffError(f"repeats must be ≥ 1 and warmup ≥ 0, got repeats={repeats}, warmup={warmup}")
    device = torch.device(device)
    model = copy.deepcopy(net).to(device).eval()
    x = torch.rand(1, in_channels, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        model(x)
        sync()
        times.append(time.perf_counter() - start)
    mean = sum(times) / len(times)
    return {
        "device": _device_name(device),
        "size": size,
        "in_channels": in_channels,
        "repeats": repeats,
        "warmup": warmup,
        "seconds_per_pass": mean,
        "seconds_per_pass_median": statistics.median(times),
        "n_steps": n_steps,
        "seconds_per_run": n_steps * mean,
    }


def build_cost_table(backbones, paper_cost_csv, *, count_size: int = 512, time_size: int = 512,
                     repeats: int = 5, n_steps: int = 3, device: str = "auto"):
    """Table 5b: per backbone with the 8→9-channel ExposureDiffusion head, thop parameters and
    MACs (on 1×8×count_size²), all parameters, and measured time per pass and per n-step run,
    beside the paper's numbers."""
    import pandas as pd

    paper = pd.read_csv(paper_cost_csv).set_index("backbone")
    if device == "auto":  # time where the networks would run: the GPU if there is one
        device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    for backbone in backbones:
        counts = count_cost(backbone, 8, 9, size=count_size)
        timing = measure_inference_time(build_net(backbone, 8, 9), 8, size=time_size, repeats=repeats,
                                        device=device, n_steps=n_steps)
        ref = paper.loc[backbone] if backbone in paper.index else None
        macs_g = counts["thop_macs"] / 1e9
        rows.append({
            "backbone": backbone,
            "params_thop": counts["thop_params"],
            "params_paper": int(ref["params"]) if ref is not None else None,
            "params_all": counts["params_numel"],
            "macs_g": macs_g,
            "macs_g_paper": float(ref["macs_g"]) if ref is not None else None,
            "macs_g_diff": macs_g - float(ref["macs_g"]) if ref is not None else None,
            "count_input": f"1x8x{count_size}x{count_size}",
            "seconds_per_pass": timing["seconds_per_pass"],
            f"seconds_per_{n_steps}_steps": timing["seconds_per_run"],
            "seconds_per_pass_paper": float(ref["inference_time_s"]) if ref is not None else None,
            "time_input": f"1x8x{time_size}x{time_size}",
            "device": timing["device"],
        })
    return pd.DataFrame(rows)
