"""Methods around a backbone, one module each, behind one interface (``base.Method``).

``get_method(name)`` is the only place a method's name is resolved; a new method is one
module with a ``Method`` subclass plus ``register_method``.
"""

from __future__ import annotations

from expodiff.errors import ConfigError
from expodiff.methods.base import Method, MethodSpec, Style
from expodiff.methods.baseline import Baseline, baseline_forward
from expodiff.methods.ddim import DDIM, ddim_loss, ddim_sample
from expodiff.methods.ours import AdaptiveOutput, Ours, ours_forward, ours_loss

METHODS: dict[str, Method] = {}  # name → method object, in registration order


def register_method(method: Method, replace: bool = False) -> Method:
    """Add ``method`` to the registry (under ``method.name``); returns it."""
    if not method.name:
        raise ConfigError(f"{method!r} has no name")
    if method.name in METHODS and not replace:
        raise ConfigError(f"method {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def unregister_method(name: str) -> None:
    METHODS.pop(name, None)


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")
    return METHODS[name]


for _method in (Baseline(), Ours(), DDIM()):
    register_method(_method)

__all__ = ["METHODS", "AdaptiveOutput", "Method", "MethodSpec", "Style", "baseline_forward", "ddim_loss",
           "ddim_sample", "get_method", "ours_forward", "ours_loss", "register_method", "unregister_method"]
