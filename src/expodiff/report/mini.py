"""The regression summary of `make mini` (docs/MINI.md): does training learn, and how does the
method compare with the baseline, measured with intervals rather than assumed.

From the per-image evaluations of a baseline and an ``ours`` variant on one SID evaluation set
(``results/eval/{variant}/{dataset}/per_image.csv``), the packed set itself (for the input's
PSNR) and both training logs, per ratio and protocol:

- the amplified input X_T = clip(short · ratio, 0, 1) against the ground truth (under the
  oracle protocol X_T is corrected as every prediction is, α = ⟨X_T, gt⟩ / ⟨X_T, X_T⟩, so the
  gain measures denoising, not brightness; under GT-free it is X_T as it is);
- each network's PSNR and its gain over the input (target ``min_gain_db``);
- ours at ``steps`` minus the baseline, ours at every step count minus the baseline, and ours
  at each step count minus ours at one step;

each as the mean of the paired per-image differences with a 95 % percentile bootstrap interval
(resampling images; each image carries its own evaluation seed, so this resamples the (image,
seed) pairs), seeded and deterministic, beside the paper's deltas (Table 4 for ours − baseline,
the step figure at ×100 for the steps). The training loss is compared between the first and the
last epoch. Plain sentences say where the networks miss the target, where ours does not beat the
baseline or does not improve over steps, and point at the learning curves. The commit and the
config hash record what the numbers came from.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from expodiff.io.atomic import atomic_path, write_text_atomic

SUMMARY_COLUMNS = ["dataset", "protocol", "ratio", "comparison", "a", "b", "psnr_a", "psnr_b", "delta",
                   "ci_low", "ci_high", "n", "paper_delta", "verdict"]  # fmt: skip
INPUT = "input"
CURVES_NAME = "training_curves.png"


# --- statistics ---------------------------------------------------------------------------


def bootstrap_ci(diffs, resamples: int, seed: int, key: str = "", level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs`` (resampling its entries).

    The generator is seeded by (``seed``, crc32(``key``)), so each comparison's interval is the
    same whatever else is computed, and in any order."""
    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng([int(seed), zlib.crc32(key.encode())])
    means = d[rng.integers(0, d.size, size=(int(resamples), d.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def paired(a: pd.Series, b: pd.Series) -> np.ndarray:
    """a − b over the images (index) both have."""
    common = a.index.intersection(b.index)
    return (a.loc[common] - b.loc[common]).to_numpy(dtype=np.float64)


# --- inputs -------------------------------------------------------------------------------


def input_psnr(eval_set, protocols: Sequence[str], eld_ratio: str = "original") -> pd.DataFrame:
    """PSNR of the amplified input against the ground truth, per image and protocol (columns
    ``protocol, scene, ratio, psnr``): under a protocol that uses the ground truth the input is
    corrected as the predictions are (``oracle_illumination_correct``), else it is X_T as is."""
    import torch

    from expodiff.data.eld import input_ratios
    from expodiff.data.eval_sets import read_eval_index
    from expodiff.metrics import psnr_ssim
    from expodiff.physics.correction import oracle_illumination_correct
    from expodiff.protocols import uses_ground_truth

    rows = []
    for rec in read_eval_index(eval_set).itertuples():
        x_short, gt = np.load(rec.input_npy), np.load(rec.gt_npy)
        amplification, _ = input_ratios(float(rec.exposure_ratio), eld_ratio)
        x_t = np.clip(x_short * amplification, 0, 1).astype(np.float32)
        for protocol in protocols:
            x = x_t
            if uses_ground_truth(protocol):
                x = oracle_illumination_correct(torch.from_numpy(x_t)[None], torch.from_numpy(gt)[None])
                x = x.clamp(0, 1)[0].numpy()
            rows.append([protocol, str(rec.scene), int(rec.ratio), psnr_ssim(gt, x)[0]])
    return pd.DataFrame(rows, columns=["protocol", "scene", "ratio", "psnr"])


def _final_rows(per_image: pd.DataFrame, n_steps: int) -> pd.DataFrame:
    """The result of each ``n_steps`` run (its last step), per protocol, ratio and scene."""
    rows = per_image[(per_image["n_steps"] == n_steps) & (per_image["step"] == n_steps)]
    return rows.assign(scene=rows["scene"].astype(str))


def _series(frame: pd.DataFrame, protocol: str, ratio: int) -> pd.Series:
    part = frame[(frame["protocol"] == protocol) & (frame["ratio"] == ratio)]
    return part.set_index("scene")["psnr"].astype(float).sort_index()


def loss_trend(log_csv) -> dict:
    """Mean training loss of the first and the last epoch of a ``train_log.csv`` (a one-epoch
    log: of its first and last tenth of iterations); ``falls``: the last is below the first."""
    log = pd.read_csv(log_csv)
    if log.empty:
        return {"first": float("nan"), "last": float("nan"), "epochs": 0, "iterations": 0, "falls": False}
    by_epoch = log.groupby("epoch")["loss"].mean()
    if by_epoch.size > 1:
        first, last = float(by_epoch.iloc[0]), float(by_epoch.iloc[-1])
    else:
        tenth = max(1, len(log) // 10)
        first, last = float(log["loss"].iloc[:tenth].mean()), float(log["loss"].iloc[-tenth:].mean())
    return {"first": first, "last": last, "epochs": int(by_epoch.size), "iterations": int(log["iteration"].max()),
            "falls": bool(len(log) > 1 and last < first)}  # fmt: skip


def paper_deltas(paper_csv, step_curve_csv, backbone: str = "unet", data: str = "pg") -> dict:
    """{("ours-baseline", ratio): Table 4's ours − baseline (3 steps)} and {("steps", n): the
    step figure's ours at n − ours at 1 (SID ×100)}, {("ours@n-baseline", n): step figure's ours
    at n − Table 4's baseline at ×100}."""
    paper = pd.read_csv(paper_csv)
    rows = paper[(paper["table"] == "table4") & (paper["backbone"] == backbone) & (paper["data"] == data)]
    out: dict = {}
    for ratio, part in rows.groupby("ratio"):
        values = part.set_index("method")["psnr"]
        if {"ours", "baseline"} <= set(values.index):
            out[("ours-baseline", int(ratio))] = float(values["ours"] - values["baseline"])
    curve = pd.read_csv(step_curve_csv)
    ours = curve[curve["method"] == "ours"].set_index("steps")["psnr"]
    base100 = rows[(rows["ratio"] == 100) & (rows["method"] == "baseline")]["psnr"]
    for n, value in ours.items():
        if 1 in ours.index:
            out[("steps", int(n))] = float(value - ours[1])
        if len(base100):
            out[("ours@n-baseline", int(n))] = float(value - base100.iloc[0])
    return out


# --- the summary --------------------------------------------------------------------------


def build_mini_summary(
    baseline: pd.DataFrame,
    ours: pd.DataFrame,
    inputs: pd.DataFrame,
    *,
    baseline_name: str,
    ours_name: str,
    dataset: str,
    protocols: Sequence[str],
    eval_steps: Sequence[int],
    steps: int,
    min_gain_db: float,
    resamples: int,
    seed: int,
    paper: Mapping | None = None,
) -> pd.DataFrame:
    """The summary table (``SUMMARY_COLUMNS``), one row per protocol, ratio and comparison.

    ``baseline``, ``ours``: per-image evaluations (``per_image.csv``); ``inputs``: the input's
    PSNR per image (``input_psnr``). Comparisons: ``input`` (the input's PSNR alone), ``gain``
    (a network at its steps − input), ``ours-baseline`` (ours at each of ``eval_steps`` −
    baseline) and ``steps`` (ours at n − ours at 1). ``verdict``: ``ok``/``below target``
    for a gain, ``better``/``worse``/``not resolved`` (the interval holds 0) for differences."""
    paper = paper or {}
    base = _final_rows(baseline, 1)
    ours_at = {n: _final_rows(ours, n) for n in eval_steps}
    rows = []

    def add(protocol, ratio, comparison, a_name, b_name, a, b, paper_delta=None, target=None):
        d = paired(a, b) if b is not None else a.to_numpy(dtype=np.float64)
        key = f"{protocol}/{ratio}/{comparison}/{a_name}/{b_name}"
        low, high = bootstrap_ci(d, resamples, seed, key)
        mean = float(d.mean()) if d.size else float("nan")
        if b is None:
            verdict = ""
        elif target is not None:
            verdict = "ok" if mean >= target else "below target"
        else:
            verdict = "better" if low > 0 else "worse" if high < 0 else "not resolved"
        common = a.index.intersection(b.index) if b is not None else a.index
        rows.append([dataset, protocol, ratio, comparison, a_name, b_name or "",
                     float(a.loc[common].mean()) if len(common) else float("nan"),
                     float(b.loc[common].mean()) if b is not None and len(common) else float("nan"),
                     mean, low, high, int(d.size), paper_delta, verdict])  # fmt: skip

    ratios = sorted(set(base["ratio"]) | set(inputs["ratio"]))
    for protocol in protocols:
        for ratio in ratios:
            x = _series(inputs, protocol, ratio)
            b = _series(base, protocol, ratio)
            o = {n: _series(frame, protocol, ratio) for n, frame in ours_at.items()}
            add(protocol, ratio, INPUT, INPUT, None, x, None)
            add(protocol, ratio, "gain", baseline_name, INPUT, b, x, target=min_gain_db)
            add(protocol, ratio, "gain", f"{ours_name}@{steps}", INPUT, o[steps], x, target=min_gain_db)
            oracle = protocol == "oracle"
            for n in eval_steps:
                if n == steps:
                    ref = paper.get(("ours-baseline", ratio)) if oracle else None
                else:
                    ref = paper.get(("ours@n-baseline", n)) if oracle and ratio == 100 else None
                add(protocol, ratio, "ours-baseline", f"{ours_name}@{n}", baseline_name, o[n], b, ref)
            for n in eval_steps:
                if n == 1 or 1 not in o:
                    continue
                ref = paper.get(("steps", n)) if oracle and ratio == 100 else None
                add(protocol, ratio, "steps", f"{ours_name}@{n}", f"{ours_name}@1", o[n], o[1], ref)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def findings(summary: pd.DataFrame, losses: Mapping[str, dict], ours_name: str, steps: int,
             min_gain_db: float, curves: str = CURVES_NAME) -> list[str]:  # fmt: skip
    """Plain sentences: what the numbers show where they fall short (empty: nothing to say)."""
    out = []
    for name, trend in losses.items():
        if not trend["falls"]:
            out.append(f"The training loss of {name} does not fall (first {trend['first']:.4g}, last "
                       f"{trend['last']:.4g}): it did not learn at this budget; see the learning curves ({curves}).")
    gains = summary[summary["comparison"] == "gain"]
    for r in gains[gains["verdict"] == "below target"].itertuples():
        out.append(f"At ×{r.ratio} ({r.protocol}), {r.a} is {r.delta:+.2f} dB from the input, short of the "
                   f"+{min_gain_db:g} dB target.")
    head = summary[(summary["comparison"] == "ours-baseline") & (summary["a"] == f"{ours_name}@{steps}")]
    for r in head.itertuples():
        if r.verdict != "better":
            how = "does worse than" if r.verdict == "worse" else "does not clearly beat"
            out.append(f"At ×{r.ratio} ({r.protocol}), ours ({steps} steps) {how} the baseline: "
                       f"{r.delta:+.2f} dB [{r.ci_low:+.2f}, {r.ci_high:+.2f}]"
                       + (f" (the paper: {r.paper_delta:+.2f} dB)." if pd.notna(r.paper_delta) else "."))
    step_rows = summary[summary["comparison"] == "steps"]
    for (protocol, ratio), part in step_rows.groupby(["protocol", "ratio"], sort=False):
        if not (part["delta"] > 0).any():
            out.append(f"At ×{ratio} ({protocol}), ours does not improve over steps: every step count is at or "
                       f"below one step ({', '.join(f'{d:+.2f}' for d in part['delta'])} dB).")
    if any("ours" in s and ("baseline" in s or "steps" in s) for s in out):
        out.append(f"Whether more budget would change this: the learning curves of both ({curves}) show whether "
                   "the losses were still falling when the training stopped.")
    return out


def _fmt(value, spec=".2f", signed=False) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return format(value, ("+" if signed else "") + spec)


def render_markdown(summary: pd.DataFrame, losses: Mapping[str, dict], notes: Sequence[str], *, commit: str,
                    config_sha: str, resamples: int, seed: int, min_gain_db: float, curves: str = CURVES_NAME) -> str:  # fmt: skip
    """The summary as Markdown: provenance, the loss, one table per protocol, the sentences."""
    lines = ["# Mini run summary", "",
             f"- commit: `{commit}`", f"- config SHA-256: `{config_sha}`",
             f"- intervals: 95 % percentile bootstrap of the mean paired difference over images "
             f"({resamples} resamples, seed {seed})",
             f"- target: every network ≥ {min_gain_db:g} dB above the amplified input, at every ratio and protocol",
             "", "## Training loss (mean of the first and the last epoch; one epoch: its first and last tenth)", "",
             "| variant | iterations | epochs | first | last | falls |", "|---|---|---|---|---|---|"]  # fmt: skip
    for name, t in losses.items():
        lines.append(f"| {name} | {t['iterations']} | {t['epochs']} | {_fmt(t['first'], '.4g')} | "
                     f"{_fmt(t['last'], '.4g')} | {'yes' if t['falls'] else 'NO'} |")
    lines += ["", f"Learning curves: `{curves}`.", ""]
    for protocol, part in summary.groupby("protocol", sort=False):
        lines += [f"## Protocol {protocol}", "",
                  "| ratio | comparison | a | b | PSNR a | PSNR b | Δ (a − b) | 95 % interval | images | paper Δ | verdict |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in part.itertuples():
            interval = f"[{_fmt(r.ci_low, signed=True)}, {_fmt(r.ci_high, signed=True)}]"
            if r.comparison == INPUT:
                interval = f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"
            delta = _fmt(r.delta) if r.comparison == INPUT else _fmt(r.delta, signed=True)
            paper = _fmt(r.paper_delta, signed=True) if pd.notna(r.paper_delta) else "–"
            lines.append(f"| ×{r.ratio} | {r.comparison} | {r.a} | {r.b or '–'} | {_fmt(r.psnr_a)} | "
                         f"{_fmt(r.psnr_b)} | {delta} | {interval} | {r.n} | {paper} | {r.verdict or '–'} |")
        lines.append("")
    lines += ["## Findings", ""]
    lines += [f"- {s}" for s in notes] or ["- Every network beats the input by the target, ours beats the baseline "
                                           "and improves over steps at every ratio and protocol."]
    lines += ["", "Paper Δ: Table 4 (UNet, P+G) for ours at 3 steps − baseline; the step figure (SID ×100) for "
              "the other step counts. The oracle protocol's input is corrected as the predictions are."]
    return "\n".join(lines) + "\n"


def write_mini_summary(
    *,
    baseline_csv,
    ours_csv,
    eval_set,
    logs: Mapping[str, str | os.PathLike],
    methods: Mapping[str, str],
    paper_csv,
    step_curve_csv,
    settings: Mapping,
    protocols: Sequence[str],
    eval_steps: Sequence[int],
    eld_ratio: str,
    commit: str,
    config_sha: str,
    md,
    csv,
    curves_png,
) -> pd.DataFrame:
    """Compute the summary (``build_mini_summary``) and write ``md``, ``csv`` and the learning
    curves of both variants (``curves_png``). ``settings``: config ``mini_summary``; ``commit``,
    ``config_sha``: what the run came from (``expodiff.provenance.git_commit``, ``config_hash``)."""
    from expodiff.report.figures import plot_training_curves

    baseline, ours = pd.read_csv(baseline_csv, dtype={"scene": str}), pd.read_csv(ours_csv, dtype={"scene": str})
    boot = settings["bootstrap"]
    summary = build_mini_summary(
        baseline, ours, input_psnr(eval_set, protocols, eld_ratio),
        baseline_name=settings["baseline"], ours_name=settings["ours"], dataset=settings["dataset"],
        protocols=protocols, eval_steps=sorted(eval_steps), steps=int(settings["steps"]),
        min_gain_db=float(settings["min_gain_db"]), resamples=int(boot["resamples"]), seed=int(boot["seed"]),
        paper=paper_deltas(paper_csv, step_curve_csv),
    )  # fmt: skip
    losses = {name: loss_trend(path) for name, path in logs.items()}
    curves = Path(curves_png).name
    notes = findings(summary, losses, settings["ours"], int(settings["steps"]), float(settings["min_gain_db"]), curves)
    text = render_markdown(summary, losses, notes, commit=commit, config_sha=config_sha,
                           resamples=int(boot["resamples"]), seed=int(boot["seed"]),
                           min_gain_db=float(settings["min_gain_db"]), curves=curves)  # fmt: skip
    with atomic_path(csv) as tmp:
        summary.to_csv(tmp, index=False, float_format="%.4f")
    write_text_atomic(md, text)
    plot_training_curves(dict(logs), curves_png, methods=dict(methods))
    return summary
