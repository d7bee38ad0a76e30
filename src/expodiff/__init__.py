"""expodiff: a reproducible pipeline for ExposureDiffusion (Wang et al., ICCV 2023)."""

__version__ = "0.1.0"
