"""Reading the workflow's config files outside Snakemake (for the CLI)."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

from expodiff.errors import ConfigError


def deep_merge(base: dict, overlay: dict) -> dict:
    """Overlay ``overlay`` on ``base`` recursively, as Snakemake merges --configfile files."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(paths, schema_path: str | Path | None = None) -> dict:
    """Merge config files in order and validate against the workflow's JSON schema.

    The schema defaults to ``schemas/config.schema.yaml`` beside the first file.
    """
    paths = [Path(p) for p in paths]
    config: dict = {}
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from err
        config = deep_merge(config, loaded)
    schema_path = Path(schema_path) if schema_path else paths[0].parent / "schemas" / "config.schema.yaml"
    if schema_path.is_file():
        schema = yaml.safe_load(schema_path.read_text())
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.path))
        if errors:
            err = errors[0]
            key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
            raise ConfigError(f"config key {key}: {err.message} (in {', '.join(map(str, paths))})")
    return config


def get_variant(config: dict, name: str) -> dict:
    variants = config.get("variants", {})
    if name not in variants:
        raise ConfigError(f"unknown variant {name!r}; config variants: {', '.join(sorted(variants))}")
    return {"name": name, **variants[name]}
