"""The evaluation protocols (config ``evaluation.protocols``; PROTOCOL section 7).

``oracle``: the paper's protocol. The ground truth enters inference: the oracle illumination
correction rescales every intermediate prediction and the final output to the ground truth's
brightness. ``gt-free``: the same evaluation with no correction anywhere, what a user without
ground truth gets. Both run with the same seeds, so they differ only by the correction.

Torch-free, so that the tables and figures (envs/report.yaml) can name the protocols too.
"""

from __future__ import annotations

from expodiff.errors import ConfigError

ORACLE = "oracle"
GT_FREE = "gt-free"
# name -> how tables and figures label it; the order is the order of CSV rows and table blocks
PROTOCOLS = {
    ORACLE: "oracle protocol (the paper's): the ground truth corrects the illumination inside inference",
    GT_FREE: "GT-free protocol: no ground truth anywhere in inference",
}
SHORT_LABELS = {ORACLE: "oracle", GT_FREE: "GT-free"}


def protocol_errors(protocols, key: str = "evaluation.protocols") -> list[str]:
    """Messages naming ``key`` for a value that is not a non-empty list of distinct known names."""
    if isinstance(protocols, str) or not isinstance(protocols, (list, tuple)):
        return [f"{key}: expected a list of protocol names ({', '.join(PROTOCOLS)}), got {protocols!r}"]
    if not protocols:
        return [f"{key}: empty; name at least one protocol of {', '.join(PROTOCOLS)}"]
    errors = [f"{key}: unknown protocol {p!r}; known: {', '.join(PROTOCOLS)}" for p in protocols if p not in PROTOCOLS]
    if len(set(map(str, protocols))) != len(protocols):
        errors.append(f"{key}: {list(protocols)} names a protocol twice")
    return errors


def check_protocols(protocols, key: str = "evaluation.protocols") -> list[str]:
    """The protocols in the canonical order (oracle first); ConfigError naming ``key`` if bad."""
    errors = protocol_errors(protocols, key)
    if errors:
        raise ConfigError("; ".join(errors))
    return [p for p in PROTOCOLS if p in protocols]


def uses_ground_truth(protocol: str) -> bool:
    """Whether inference under ``protocol`` sees the ground truth (the oracle correction)."""
    return protocol == ORACLE
