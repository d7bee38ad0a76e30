"""Network-free step rules: the exposure diffusion's re-exposure ladder and the DDIM sampler."""
