# expodiff: the two everyday commands are `make demo` and `make test`.
# Everything runs in ./.venv (no conda needed); `snakemake --use-conda` is the
# alternative for machines with conda (see README.md).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# extra arguments for pytest, e.g. make test PYTEST_ARGS='-m "not slow"'
PYTEST_ARGS ?=
# extra arguments for snakemake, e.g. make demo SNAKEMAKE_ARGS=-n
SNAKEMAKE_ARGS ?=

.PHONY: venv demo mini test slurm-local lint dag

venv: $(STAMP)

# torch first (the CPU build is the pinned 2.13.0), then the package with the workflow and
# test tools; re-run only when pyproject.toml changes
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[workflow,test]'
	touch $@

demo: venv
	$(BIN)/snakemake --cores all --workflow-profile profiles/demo $(SNAKEMAKE_ARGS) demo

# the scaled reproduction that shows training learns (docs/MINI.md): CPU by default; DEVICE=cuda
# (or cuda:N) adds configs/mini-gpu.yaml (a larger budget on the GPU, one training at a time)
DEVICE ?= cpu
MINI_GPU_ARGS = --configfile configs/mini.yaml configs/mini-gpu.yaml --config 'compute={device: "$(DEVICE)"}' --resources gpu=1

mini: venv
	$(BIN)/snakemake --cores all --workflow-profile profiles/mini $(if $(filter cuda%,$(DEVICE)),$(MINI_GPU_ARGS)) $(SNAKEMAKE_ARGS) mini

# tests/test_slurm.py needs the one-node SLURM test cluster of scripts/slurm-local.sh: with
# SLURM_LOCAL=auto (the default) `make test` starts it first when it can (as root with apt-get:
# about 10 s the first time, installing slurm-wlm and munge, then 1 s) and leaves it running
# (scripts/slurm-local.sh stop); otherwise, or with SLURM_LOCAL=no, those tests skip
SLURM_LOCAL ?= auto

test: venv slurm-local
	$(BIN)/python -m pytest $(PYTEST_ARGS)

slurm-local:
	@if [ "$(SLURM_LOCAL)" = auto ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		scripts/slurm-local.sh start || echo "no SLURM test cluster: tests/test_slurm.py will skip"; \
	fi

lint: venv
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .

dag: venv
	@if command -v dot >/dev/null; then \
		mkdir -p results && $(BIN)/snakemake --dag $(SNAKEMAKE_ARGS) | dot -Tsvg > results/dag.svg && echo "wrote results/dag.svg"; \
	else \
		$(BIN)/snakemake --dag $(SNAKEMAKE_ARGS); \
	fi

