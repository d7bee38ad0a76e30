#!/usr/bin/env bash
# Post-deploy script of every envs/*.yaml (torch, rawio, report are links to this file):
# installs expodiff from this repository into the freshly created conda env, editable and
# without dependencies (each env pins the ones its rules need). Snakemake runs it in the
# workflow's working directory, which must be the repository root (no --directory).
set -euo pipefail
if ! grep -qs '^name = "expodiff"' pyproject.toml; then
    echo "post-deploy: run snakemake from the expodiff repository root (no pyproject.toml in $PWD)" >&2
    exit 1
fi
python -m pip install --no-deps -e .
