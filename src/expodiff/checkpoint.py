"""Checkpoints in the released format: {netG, opt_g, epoch, iterations} (+ our own keys).

Only tensors, numbers, strings, lists and dicts are stored, so ``torch.load(weights_only=True)``
reads them; released checkpoints (which lack our keys) load the same way. The same state gives
the same bytes (``save_checkpoint``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from expodiff.errors import ConfigError, ExpodiffError
from expodiff.io.atomic import atomic_path
from expodiff.model import MethodSpec


def save_checkpoint(path, net: nn.Module, optimizer, epoch: int, iterations: int, **extra) -> None:
    state = {
        "netG": net.state_dict(),
        "opt_g": optimizer.state_dict() if optimizer is not None else {},
        "epoch": int(epoch),
        "iterations": int(iterations),
        **extra,
    }
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


def load_network(path, spec: MethodSpec) -> nn.Module:
    """Rebuild the variant's network and load the checkpoint's weights (strict, shapes checked)."""
    state = load_checkpoint(path)
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
        raise ConfigError(
            f"checkpoint {path} does not match backbone={spec.backbone} method={spec.method} "
            f"concat_origin={spec.concat_origin}: {detail}"
        )
    net.load_state_dict(got, strict=True)
    net.eval()
    return net


def import_checkpoint(source, variant: dict, out) -> None:
    """Copy a released checkpoint to ``out`` after checking that it loads into ``variant``'s
    network (keys and shapes; the error names the variant and the mismatching keys)."""
    import shutil

    try:
        load_network(source, MethodSpec.from_variant(variant))
    except ConfigError as err:
        raise ConfigError(f"variant {variant.get('name')!r}: {err}") from err
    with atomic_path(out) as tmp:
        shutil.copyfile(source, tmp)
