"""Where and in which precision the networks run (config ``compute``, flags ``--device``,
``--precision``, ``--channels-last``).

- device: ``auto`` (CUDA when present, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``;
- precision: ``fp32`` (the default and the paper's), ``tf32`` (TF32 matmuls and convolutions
  on CUDA; nothing changes on the CPU) or ``bf16`` (bfloat16 autocast of the network forward);
- channels_last: the network's weights and inputs in NHWC memory layout;
- data_workers: DataLoader worker processes that read and augment training batches ahead
  (``expodiff.data.feed``; 0: in the training process). Never changes a result;
- tile_size, tile_overlap: inference over overlapping tiles (``expodiff.tiling``; 0: whole
  frames, the default). Changes results slightly, so it is off unless asked for.

Only the network forward runs in reduced precision: its output is cast back to float32 right
after it (``DeviceNetwork``), so noise synthesis, Poisson re-exposure, the illumination
correction and the loss reduction stay float32.

Random streams: on the CPU everything draws from the same CPU generators as before (same seeds,
same order: the CPU results are bit-identical to the CPU-only code). On CUDA the generators are
CUDA generators seeded with the same derived seeds (``generator``); CUDA's kernels give other
streams, so GPU results differ from CPU results (statistically equivalent, not equal), and a
given GPU run is reproducible on the same hardware and software only.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch import nn

from expodiff.errors import ConfigError
from expodiff.tiling import check_tiling

DEVICES = ("auto", "cpu", "cuda", "cuda:N")
PRECISIONS = ("fp32", "tf32", "bf16")
DEFAULT_COMPUTE = {"device": "cpu", "precision": "fp32", "channels_last": False, "data_workers": 0,
                   "tile_size": 0, "tile_overlap": 64}  # library default


def resolve_device(name="cpu", key: str = "compute.device") -> torch.device:
    """``name`` as a torch.device; ``auto`` picks CUDA (device 0) when present. A CUDA device
    that is not there (no CUDA, or an index out of range) is a ConfigError naming ``key``."""
    if isinstance(name, torch.device):
        name = str(name)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{key} must be one of {', '.join(DEVICES)}, got {name!r}")
    name = name.strip().lower()
    if name == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        index = 0
        if name != "cuda":
            text = name.split(":", 1)[1]
            if not text.isdigit():
                raise ConfigError(f"{key} {name!r}: the CUDA device index must be a whole number (cuda:0, cuda:1, ...)")
            index = int(text)
        if not torch.cuda.is_available():
            ranged = f"; device index {index} is out of range" if name != "cuda" else ""
            raise ConfigError(f"{key} {name!r}: CUDA is not available on this machine (0 CUDA devices{ranged}; "
                              f"torch {torch.__version__}, built with CUDA {torch.version.cuda}); use cpu or auto")
        count = torch.cuda.device_count()
        if index >= count:
            raise ConfigError(f"{key} {name!r}: CUDA device index {index} is out of range "
                              f"({count} device(s): cuda:0..cuda:{count - 1})")
        return torch.device("cuda", index)
    raise ConfigError(f"{key} must be one of {', '.join(DEVICES)}, got {name!r}")


def check_precision(precision, device: torch.device, key: str = "compute.precision") -> str:
    """``precision`` if it is known and ``device`` supports it, else a ConfigError naming ``key``."""
    if precision not in PRECISIONS:
        raise ConfigError(f"{key} must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16" and device.type == "cuda":
        with torch.cuda.device(device):
            if not torch.cuda.is_bf16_supported():
                raise ConfigError(f"{key} bf16: {torch.cuda.get_device_name(device)} ({device}) does not support "
                                  "bfloat16; use fp32 or tf32")
    return precision


@contextlib.contextmanager
def network_autocast(device: torch.device, precision: str = "fp32"):
    """The context of a network forward: bf16 autocast (CPU or CUDA); on CUDA, TF32 matmuls and
    cuDNN convolutions on with ``tf32`` and off otherwise (so fp32 is IEEE float32; torch's
    default would let cuDNN use TF32). On the CPU, fp32 and tf32 change nothing."""
    device = torch.device(device)
    if device.type != "cuda" and precision != "bf16":
        yield
        return
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        if device.type == "cuda":
            on = precision == "tf32"
            torch.backends.cuda.matmul.allow_tf32 = on
            torch.backends.cudnn.allow_tf32 = on
        if precision == "bf16":
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``. On the CPU it is exactly
    ``torch.Generator().manual_seed(seed)``; on CUDA a CUDA
    generator with the same seed, whose streams differ from the CPU's."""
    device = torch.device(device)
    if device.type == "cpu":
        return torch.Generator().manual_seed(int(seed))
    return torch.Generator(device=device).manual_seed(int(seed))


@dataclass(frozen=True)
class Compute:
    """Resolved compute settings (``compute_settings`` makes them from the config and flags)."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "fp32"
    channels_last: bool = False
    data_workers: int = 0  # training batches made ahead by this many processes (no effect on results)
    tile_size: int = 0  # inference only: tiles of this size (0: whole frames)
    tile_overlap: int = 64  # inference only: context around each tile

    @property
    def is_default(self) -> bool:
        """CPU, fp32, default layout: exactly the CPU-only code path of the network (whatever
        data_workers; tiling, an inference option, is ``prepare_inference``'s)."""
        return self.device.type == "cpu" and self.precision == "fp32" and not self.channels_last

    def generator(self, seed: int) -> torch.Generator:
        return generator(seed, self.device)

    def autocast(self):
        return network_autocast(self.device, self.precision)

    def prepare(self, net: nn.Module) -> nn.Module:
        """``net`` moved to the device (in place), wrapped to run in this precision and layout.
        With the default settings ``net`` itself; idempotent."""
        if isinstance(net, DeviceNetwork):
            net = net.net
        net.to(self.device)
        if self.is_default:
            return net
        if self.channels_last:
            net.to(memory_format=torch.channels_last)
        return DeviceNetwork(net, self)

    def prepare_inference(self, net: nn.Module) -> nn.Module:
        """``prepare``, then tiled (``expodiff.tiling``) when tile_size is set."""
        from expodiff.tiling import TiledNetwork

        if isinstance(net, TiledNetwork):
            net = net.net
        net = self.prepare(net)
        return TiledNetwork(net, self.tile_size, self.tile_overlap) if self.tile_size else net

    def numerics(self) -> dict:
        """The settings that can change a result (recorded in checkpoints; not data_workers)."""
        return {"device": str(self.device), "precision": self.precision, "channels_last": self.channels_last}

    def as_dict(self) -> dict:
        return {"device": str(self.device), "precision": self.precision, "channels_last": self.channels_last,
                "data_workers": self.data_workers, "tile_size": self.tile_size, "tile_overlap": self.tile_overlap}


class DeviceNetwork(nn.Module):
    """Runs ``net``'s forward under ``compute``'s autocast and layout and returns float32.

    Only for calling: checkpoints save the wrapped ``net`` (``.net``), whose keys are unchanged."""

    def __init__(self, net: nn.Module, compute: Compute):
        super().__init__()
        self.net, self.compute = net, compute

    def forward(self, *args):
        if self.compute.channels_last:
            args = tuple(a.contiguous(memory_format=torch.channels_last)
                         if isinstance(a, torch.Tensor) and a.dim() == 4 else a for a in args)
        with self.compute.autocast():
            out = self.net(*args)
        return out.float().contiguous()


def compute_settings(compute=None, *, device=None, precision=None, channels_last=None, data_workers=None,
                     tile_size=None, tile_overlap=None, section: str = "compute") -> Compute:
    """Resolve ``compute`` (the config section as a dict, a ``Compute``, or None: CPU fp32) with
    the flags ``device``/``precision``/``channels_last``/``data_workers`` overriding it; errors
    name the flag (``--device``, ...) when a flag gave the value, else the config key
    (``compute.device``, ...)."""
    flags = (device, precision, channels_last, data_workers, tile_size, tile_overlap)
    if isinstance(compute, Compute) and all(flag is None for flag in flags):
        return compute
    if isinstance(compute, Compute):
        compute = compute.as_dict()
    if compute is not None and not isinstance(compute, dict):
        raise ConfigError(f"{section} must be a mapping (device, precision, channels_last), got {compute!r}")
    values = DEFAULT_COMPUTE | dict(compute or {})
    unknown = set(values) - set(DEFAULT_COMPUTE)
    if unknown:
        raise ConfigError(f"{section}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(DEFAULT_COMPUTE)}")
    dev_key, prec_key = f"{section}.device", f"{section}.precision"
    if device is not None:
        values["device"], dev_key = device, "--device"
    if precision is not None:
        values["precision"], prec_key = precision, "--precision"
    if channels_last is not None:
        values["channels_last"] = channels_last
    if not isinstance(values["channels_last"], bool):
        raise ConfigError(f"{section}.channels_last must be true or false, got {values['channels_last']!r}")
    workers, workers_key = values["data_workers"], f"{section}.data_workers"
    if data_workers is not None:
        workers, workers_key = data_workers, "--data-workers"
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"{workers_key} must be a whole number ≥ 0 (0: batches made in the training process), "
                          f"got {workers!r}")
    tiling = []
    for name, flag in (("tile_size", tile_size), ("tile_overlap", tile_overlap)):
        value = values[name] if flag is None else flag
        check_tiling(**{name: value}, key="--" if flag is not None else section)
        tiling.append(value)
    dev = resolve_device(values["device"], dev_key)
    return Compute(dev, check_precision(values["precision"], dev, prec_key), values["channels_last"], workers,
                   *tiling)


def peak_memory_message(device: torch.device) -> str | None:
    """The peak memory allocated on a CUDA ``device`` since the last reset, as a sentence (None on the CPU)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    peak = torch.cuda.max_memory_allocated(device)
    return f"peak GPU memory on {device}: {peak / 2**20:.0f} MiB ({torch.cuda.get_device_name(device)})"


def reset_peak_memory(device: torch.device) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def state_to_cpu(obj):
    """``obj`` (a state: dicts, lists, tensors) with every tensor on the CPU and contiguous, or
    ``obj`` itself when that is already so (the same objects: a CPU state saves the same bytes)."""
    if not _needs_move(obj):
        return obj
    return _to_cpu(obj)


def _needs_move(obj) -> bool:
    if isinstance(obj, torch.Tensor):
        return obj.device.type != "cpu" or not obj.is_contiguous()
    if isinstance(obj, dict):
        return any(_needs_move(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_needs_move(v) for v in obj)
    return False


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().contiguous()
    if isinstance(obj, dict):
        return type(obj)((k, _to_cpu(v)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_cpu(v) for v in obj)
    return obj
