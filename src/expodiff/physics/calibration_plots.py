"""Calibration figures: photon-transfer curves, PPCC against λ, and the log σ – log K lines."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from expodiff.io.atomic import atomic_path  # noqa: E402

def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_calibration(fits, params: dict, out_dir) -> list[Path]:
    """Write ptc.png, ppcc.png and scales.png into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(fits)))
    paths = [out_dir / "ptc.png", out_dir / "ppcc.png", out_dir / "scales.png"]

    fig, ax = plt.subplots(figsize=(6, 4))
    for f, c in zip(fits, colors):
        ax.plot(f.ptc_means, f.ptc_vars, "o", color=c)
        x = np.linspace(0, max(f.ptc_means) * 1.05, 50)
        ax.plot(x, f.K * x + f.ptc_intercept, "-", color=c, label=f"ISO {f.iso:g}: K = {f.K:.3f}")
    ax.set(xlabel="mean signal (DN above black)", ylabel="variance (DN²), from pair differences", title="Photon-transfer curves")
    ax.legend(fontsize=7)
    _save(fig, paths[0])

    fig, ax = plt.subplots(figsize=(6, 4))
    for f, c in zip(fits, colors):
        lam, r = f.ppcc_curve
        ax.plot(lam, r, color=c, label=f"ISO {f.iso:g}: λ = {f.lam:.3f}")
        ax.axvline(f.lam, color=c, lw=0.6, ls=":")
    ax.set(xlabel="Tukey-lambda shape λ", ylabel="probability-plot correlation", title="PPCC of the read noise")
    ax.legend(fontsize=7)
    _save(fig, paths[1])

    fig, ax = plt.subplots(figsize=(6, 4))
    log_k = np.log([f.K for f in fits])
    x = np.linspace(log_k.min() - 0.2, log_k.max() + 0.2, 20)
    for key, attr, label in (("G_scale", "sigma_tl", "σ_TL"), ("g_scale", "sigma_g", "σ_g"), ("R_scale", "sigma_r", "σ_r")):
        line = params["Profile-1"][key]
        pts = ax.plot(log_k, np.log([getattr(f, attr) for f in fits]), "o", label=f"{label}")[0]
        ax.plot(x, line["slope"] * x + line["bias"], "-", color=pts.get_color(),
                label=f"{key}: {line['slope']:.3f}·log K + {line['bias']:.3f} (σ {line['sigma']:.3f})")
    ax.set(xlabel="log K", ylabel="log σ", title="Noise scales against system gain")
    ax.legend(fontsize=7)
    _save(fig, paths[2])
    return paths
