"""The interface every method implements, and ``MethodSpec``: what a variant's network is.

A method is what wraps a backbone (protocol §4): it says how many channels the network takes
and gives, builds it, computes the training loss of one batch and runs the n-step prediction.
The schedulers (``expodiff.schedulers``) stay network-free; a method drives them.
Methods are looked up by name in ``expodiff.methods`` (``get_method``); nothing outside that
package branches on a method's name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from expodiff.errors import ConfigError
from expodiff.physics.camera import ORIGINAL_DN_SCALE


@dataclass(frozen=True)
class MethodSpec:
    """What a variant's network is: enough to rebuild it from a checkpoint."""

    backbone: str
    method: str  # a registered method's name: "baseline", "ours", "ddim", ...
    concat_origin: bool = False  # ours only: X_T concatenated to the input (12 channels)

    def __post_init__(self):
        from expodiff.methods import get_method

        get_method(self.method).check(self)

    @property
    def impl(self) -> "Method":
        """The method object (from the registry)."""
        from expodiff.methods import get_method

        return get_method(self.method)

    @property
    def in_channels(self) -> int:
        return self.impl.in_channels(self)

    @property
    def out_channels(self) -> int:
        return self.impl.out_channels(self)

    def build(self) -> nn.Module:
        return self.impl.build(self)

    def network_module(self) -> str:
        """The module below ``expodiff`` that defines this network, e.g. ``"nets.unet"``."""
        return self.impl.network_module(self)

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return f"backbone={self.backbone} method={self.method} concat_origin={self.concat_origin}"

    @classmethod
    def from_variant(cls, variant: dict) -> "MethodSpec":
        return cls(variant["backbone"], variant["method"], bool(variant.get("concat_origin", False)))


@dataclass(frozen=True)
class Style:
    """How a method's results look in the report."""

    label: str  # table column "method" of the paper tables: "baseline", "w/ Ours"
    linestyle: str  # training curves (matplotlib)


class Method:
    """One method around a backbone. Subclasses set ``name`` and ``style`` and override
    ``in_channels``, ``out_channels``, ``loss`` and ``predict`` (and ``build`` if the network
    is not a plain backbone)."""

    name: str = ""
    style: Style = Style(label="", linestyle=":")
    steps_key: str | None = None  # evaluation.<steps_key>: the step counts run; None: one step
    table_role: str | None = None  # which column of a paper-table row ("baseline"/"ours") it fills

    # --- the network ---------------------------------------------------------------------
    def check(self, spec: MethodSpec) -> None:
        """Raise ConfigError if ``spec`` is not a valid network of this method."""
        if spec.concat_origin:
            raise ConfigError(f"concat_origin applies to method 'ours' only, not {self.name!r}")

    def in_channels(self, spec: MethodSpec) -> int:
        raise NotImplementedError

    def out_channels(self, spec: MethodSpec) -> int:
        raise NotImplementedError

    def build(self, spec: MethodSpec) -> nn.Module:
        """The network, from the backbone family (``expodiff.nets.build_net``)."""
        from expodiff.nets import build_net

        return build_net(spec.backbone, self.in_channels(spec), self.out_channels(spec))

    def network_module(self, spec: MethodSpec) -> str:
        """The module (relative to ``expodiff``) that defines the network, e.g. ``nets.unet``:
        the workflow reruns a variant when that file changes."""
        from expodiff.nets import backbone_module

        return backbone_module(spec.backbone)

    def extra_parameters(self, spec: MethodSpec, training: dict) -> dict[str, nn.Parameter]:
        """Trainable tensors beside the network (trained by the same optimizer, saved in the
        checkpoint under their names, not part of ``netG``)."""
        return {}

    # --- training ------------------------------------------------------------------------
    def loss(self, net: nn.Module, spec: MethodSpec, batch, *, extra: dict, training: dict,
             generator: torch.Generator, rng) -> torch.Tensor:
        """The training loss of one batch (``expodiff.data.sources.TrainBatch``).

        ``extra``: the ``extra_parameters``; ``generator`` (torch) and ``rng`` (``random.Random``)
        are this iteration's randomness."""
        raise NotImplementedError

    # --- inference -----------------------------------------------------------------------
    def predict(self, net: nn.Module, spec: MethodSpec, x_t: torch.Tensor, n_steps: int, K: float, ratio: int,
                gt: torch.Tensor | None = None, generator: torch.Generator | None = None, *,
                dn_scale: float = ORIGINAL_DN_SCALE) -> list[torch.Tensor]:
        """Predictions on the padded batch ``x_t`` (amplified input X_T, (B,4,H,W)), one per
        network evaluation that is a result. ``gt`` (padded): the oracle correction's ground
        truth, applied where the method applies it inside the loop, or None. ``dn_scale``: the
        camera's DN scale S (``physics.camera.dn_scale``), for a method whose steps model photons."""
        raise NotImplementedError

    # --- evaluation ----------------------------------------------------------------------
    def run_steps(self, steps) -> list[int]:
        """The step counts an evaluation runs, given the configured ones."""
        return [int(n) for n in steps] if self.steps_key else [1]

    def eval_steps(self, evaluation: dict) -> list[int]:
        """The step counts run for this method under the config's ``evaluation`` section."""
        return self.run_steps(evaluation[self.steps_key] if self.steps_key else [1])

    def step_labels(self, n_steps: int, preds: list) -> list[int]:
        """The ``step`` column of each prediction of an ``n_steps`` run: by default one
        prediction, the result of the run (step = n_steps)."""
        return [n_steps] * len(preds)

    def __repr__(self) -> str:
        return f"<method {self.name}>"
