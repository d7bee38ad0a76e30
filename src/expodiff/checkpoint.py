"""Checkpoints in the released format: {netG, opt_g, epoch, iterations} (+ our own keys).

Our own keys describe the checkpoint: ``spec`` (backbone, method, concat_origin: what network
it is), ``variant`` (the config entry), ``training`` (the resolved training settings),
``run_id`` and the method's extra tensors (ours: ``step_weights``). A checkpoint with a
``spec`` is rebuilt from it, and a config or flags that say otherwise are refused
(``load_model``); a released checkpoint (no ``spec``) loads by the spec it is given.

Only tensors, numbers, strings, lists and dicts are stored, so ``torch.load(weights_only=True)``
reads them; released checkpoints (which lack our keys) load the same way. The same state gives
the same bytes (``save_checkpoint``). Saved tensors are always CPU tensors (a network trained
on a GPU is moved to the CPU for saving), and checkpoints load onto the CPU
(``map_location="cpu"``) and then go to the device asked for, so any checkpoint loads anywhere.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from expodiff.device import state_to_cpu
from expodiff.errors import ConfigError, ExpodiffError
from expodiff.io.atomic import atomic_path
from expodiff.methods import MethodSpec


def save_checkpoint(path, net: nn.Module, optimizer, epoch: int, iterations: int, **extra) -> None:
    state = {
        "netG": net.state_dict(),
        "opt_g": optimizer.state_dict() if optimizer is not None else {},
        "epoch": int(epoch),
        "iterations": int(iterations),
        **extra,
    }
    # CPU tensors only (a GPU training's state is copied over; a CPU state is saved as it is)
    state = state_to_cpu(state)
    # through an open file: torch.save(obj, path) names the zip records after the (random)
    # temporary file, so identical states would give different bytes; a file object gets the
    # fixed prefix "archive/" and identical trainings identical checkpoint files
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(state, f)


def load_checkpoint(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ExpodiffError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or foreign files
        raise ExpodiffError(f"cannot read checkpoint {path}: {err}") from err
    if not isinstance(state, dict) or "netG" not in state:
        raise ExpodiffError(f"{path} is not a checkpoint: no 'netG' state dict")
    return state


def checkpoint_spec(state: dict, path="checkpoint") -> MethodSpec | None:
    """The spec a checkpoint records (None for released checkpoints, which record none)."""
    recorded = state.get("spec")
    if recorded is None:
        return None
    try:
        return MethodSpec(recorded["backbone"], recorded["method"], bool(recorded.get("concat_origin", False)))
    except (KeyError, TypeError) as err:
        raise ExpodiffError(f"checkpoint {path}: its spec {recorded!r} is not backbone/method/concat_origin") from err
    except ConfigError as err:
        raise ConfigError(f"checkpoint {path}: {err}") from err


def spec_mismatch(path, trained: MethodSpec, expected: MethodSpec, source: str) -> ConfigError:
    """The error for a checkpoint whose recorded spec is not the one ``source`` asks for."""
    wanted = expected.as_dict()
    differs = " ".join(f"{k}={v}" for k, v in wanted.items() if trained.as_dict()[k] != v)
    return ConfigError(f"checkpoint {path} was trained as {trained.describe()}; {source} says {differs}")


def network_from_state(state: dict, spec: MethodSpec, path="checkpoint", device=None) -> nn.Module:
    """Build ``spec``'s network and load the checkpoint's weights (strict, shapes checked), on
    the CPU, then move it to ``device`` (a torch.device; None: stays on the CPU)."""
    net = spec.build()
    expected = net.state_dict()
    got = state["netG"]
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = [k for k in expected if k in got and tuple(got[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        detail = "; ".join(
            part
            for part in (
                f"missing keys {missing[:3]}" if missing else "",
                f"unexpected keys {unexpected[:3]}" if unexpected else "",
                ", ".join(f"{k}: {tuple(got[k].shape)} in file, {tuple(expected[k].shape)} expected" for k in wrong[:3]),
            )
            if part
        )
        raise ConfigError(f"checkpoint {path} does not match {spec.describe()}: {detail}")
    net.load_state_dict(got, strict=True)
    net.eval()
    if device is not None:
        net.to(device)
    return net


def load_model(path, spec: MethodSpec | None = None, source: str = "the caller",
               device=None) -> tuple[nn.Module, MethodSpec]:
    """The checkpoint's network and spec, rebuilt from the spec it records.

    ``spec``: what the config or flags (named by ``source``, e.g. "variants.unet-pg-ours") say
    the network is. A checkpoint that records a different spec is refused, naming both; a
    released checkpoint (no spec recorded) is built as ``spec``, which it then needs.
    ``device``: where the network goes (loaded on the CPU first); None: the CPU.
    """
    state = load_checkpoint(path)
    trained = checkpoint_spec(state, path)
    if trained is None and spec is None:
        raise ConfigError(f"checkpoint {path} records no spec (a released checkpoint?): "
                          "say which network it is (backbone and method)")
    if trained is not None and spec is not None and trained != spec:
        raise spec_mismatch(path, trained, spec, source)
    spec = trained or spec
    return network_from_state(state, spec, path, device), spec


def load_network(path, spec: MethodSpec | None = None, source: str = "the caller", device=None) -> nn.Module:
    """``load_model`` without the spec: the network, in eval mode (on ``device``; None: the CPU)."""
    return load_model(path, spec, source, device)[0]


def import_checkpoint(source, variant: dict, out) -> None:
    """Copy a released checkpoint to ``out`` after checking that it loads into ``variant``'s
    network (keys and shapes; the error names the variant and the mismatching keys)."""
    import shutil

    try:
        load_network(source, MethodSpec.from_variant(variant), f"variants.{variant.get('name')}")
    except ConfigError as err:
        raise ConfigError(f"variant {variant.get('name')!r}: {err}") from err
    with atomic_path(out) as tmp:
        shutil.copyfile(source, tmp)
