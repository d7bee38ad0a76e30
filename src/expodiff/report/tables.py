"""Paper tables (Table 4, 5a) from evaluation summaries, side by side with the paper's numbers.

``build_table`` gives one row per (protocol, table row, method) with, for each ratio and metric,
our value, the paper's value and the difference (ours − paper). The paper reports the oracle
protocol only, so its values and the differences fill the oracle rows; the GT-free rows
(``expodiff.protocols``) hold ours alone. ``write_table`` writes it as CSV (the numbers),
Markdown and LaTeX (for reading: one block per protocol, each oracle cell "ours (paper;
difference)", each GT-free cell "ours").
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Mapping

import pandas as pd
from tabulate import tabulate

from expodiff.errors import ExpodiffError
from expodiff.io.atomic import atomic_path, write_text_atomic
from expodiff.protocols import ORACLE, PROTOCOLS, check_protocols

# the two cells of a paper-table row (config ``tables.*.rows[].baseline|ours``; the ``method``
# column of paper_results.csv), and how the Markdown/LaTeX tables name them, as the paper does
ROLES = {"baseline": "baseline", "ours": "w/ Ours"}
METRICS = ("psnr", "ssim")
DIGITS = {"psnr": 2, "ssim": 3}  # as printed in the paper
NOT_RUN = "not run"
ID_COLUMNS = ["protocol", "label", "backbone", "data", "method", "variant"]
SUMMARY_COLUMNS = ["protocol", "ratio", "n_steps", "step", "psnr", "ssim"]
PAPER_COLUMNS = ["table", "dataset", "ratio", "backbone", "data", "method", "psnr", "ssim"]


def value_column(metric: str, ratio: int, kind: str = "") -> str:
    """Column name: ``psnr_x100`` (ours), ``psnr_x100_paper``, ``psnr_x100_diff``."""
    return f"{metric}_x{ratio}" + (f"_{kind}" if kind else "")


def table_ratios(df: pd.DataFrame) -> list[int]:
    """The ratios of a table built by ``build_table``, in column order."""
    return [int(m.group(1)) for c in df.columns if (m := re.fullmatch(r"psnr_x(\d+)", c))]


def _read_csv(path, columns: list[str], what: str) -> pd.DataFrame:
    """A CSV with the named columns; a clear error naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ExpodiffError(f"{path}: {what} not found")
    df = pd.read_csv(path)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ExpodiffError(f"{path}: {what} lacks column(s) {', '.join(missing)}")
    return df


def _result_steps(summary: pd.DataFrame, steps: int) -> int:
    """The run whose result a table shows: the ``steps``-step one, or for a variant whose
    method always runs once (the baseline: its summary holds only 1-step runs) that run.

    Read from the summary, which records the step counts the evaluation ran as the variant's
    method says (``Method.run_steps``): tables need no torch, hence no ``expodiff.methods``."""
    return 1 if set(summary["n_steps"].astype(int)) == {1} else int(steps)


def _our_values(summary: pd.DataFrame, path, steps: int, ratio: int, protocol: str) -> dict[str, float]:
    """Our PSNR/SSIM for one ratio under ``protocol``: the final prediction of the ``steps``-step
    run (baseline: 1 step)."""
    n_steps = _result_steps(summary, steps)
    rows = summary[(summary["protocol"] == protocol) & (summary["ratio"] == ratio)
                   & (summary["n_steps"] == n_steps) & (summary["step"] == n_steps)]  # fmt: skip
    if len(rows) != 1:
        found = "no row" if rows.empty else f"{len(rows)} rows"
        raise ExpodiffError(f"{path}: {found} for protocol {protocol}, ratio {ratio}, n_steps {n_steps}, "
                            f"step {n_steps} (expected one)")
    return {metric: float(rows[metric].iloc[0]) for metric in METRICS}


def _paper_values(paper: pd.DataFrame, key: dict) -> dict[str, float]:
    """The paper's PSNR/SSIM for one cell, NaN where the paper has no such cell."""
    mask = pd.Series(True, index=paper.index)
    for column, value in key.items():
        mask &= paper[column].astype(str) == str(value)
    rows = paper[mask]
    if len(rows) > 1:
        raise ExpodiffError(f"paper results: {len(rows)} rows for {key}")
    return {metric: float(rows[metric].iloc[0]) if len(rows) else math.nan for metric in METRICS}


def build_table(table_cfg: dict, summaries: Mapping[str, str | os.PathLike], paper_csv,
                protocols=tuple(PROTOCOLS)) -> pd.DataFrame:
    """One row per (protocol, table row, method); per ratio and metric: ours, paper, ours − paper.

    ``table_cfg`` is a ``tables.<name>`` config entry (``paper_table``, ``dataset``, ``steps``,
    ``ratios``, ``rows`` of ``{label, backbone, data, baseline, ours}``); ``summaries`` maps each
    variant named in the rows to its ``summary.csv``. A row's variant that is null is "not run":
    its cells read "not run" (the paper's value is still given, the difference is empty).
    ``protocols`` (config ``evaluation.protocols``): one block of rows each, oracle first. The
    paper's values and the differences are given in the oracle rows only (the paper's protocol);
    in the GT-free rows they are empty.
    """
    protocols = check_protocols(protocols)
    paper = _read_csv(paper_csv, PAPER_COLUMNS, "paper results")
    steps = int(table_cfg["steps"])
    ratios = [int(r) for r in table_cfg["ratios"]]
    loaded: dict[str, pd.DataFrame] = {}
    records = []
    for protocol in protocols:
        for row in table_cfg["rows"]:
            for method in ROLES:
                variant = row[method]
                record = {"protocol": protocol} | {c: row[c] for c in ("label", "backbone", "data")}
                record |= {"method": method, "variant": variant or ""}
                if variant is not None:
                    if variant not in summaries:
                        raise ExpodiffError(f"table row {row['label']!r}: no summary given for variant {variant!r}")
                    if variant not in loaded:
                        loaded[variant] = _read_csv(summaries[variant], SUMMARY_COLUMNS, "evaluation summary")
                for ratio in ratios:
                    key = dict(
                        table=table_cfg["paper_table"], dataset=str(table_cfg["dataset"]).upper(), ratio=ratio,
                        backbone=row["backbone"], data=row["data"], method=method,
                    )  # fmt: skip
                    # the paper reports the oracle protocol: no paper value beside any other
                    theirs = _paper_values(paper, key) if protocol == ORACLE else dict.fromkeys(METRICS, math.nan)
                    ours = (
                        _our_values(loaded[variant], summaries[variant], steps, ratio, protocol)
                        if variant is not None
                        else None
                    )
                    for metric in METRICS:
                        record[value_column(metric, ratio)] = ours[metric] if ours else NOT_RUN
                        record[value_column(metric, ratio, "paper")] = theirs[metric]
                        record[value_column(metric, ratio, "diff")] = (
                            ours[metric] - theirs[metric] if ours else math.nan
                        )
                records.append(record)
    columns = ID_COLUMNS + [
        value_column(metric, ratio, kind) for ratio in ratios for metric in METRICS for kind in ("", "paper", "diff")
    ]
    return pd.DataFrame.from_records(records, columns=columns)


def _number(value, digits: int, signed: bool = False) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return text.replace("-", "−")


def _cell(row: pd.Series, metric: str, ratio: int) -> tuple[str, str, str]:
    """(ours, paper, difference) of one cell as text."""
    digits = DIGITS[metric]
    return (
        _number(row[value_column(metric, ratio)], digits),
        _number(row[value_column(metric, ratio, "paper")], digits),
        _number(row[value_column(metric, ratio, "diff")], digits, signed=True),
    )


def protocol_blocks(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(protocol, its rows) of a table with a ``protocol`` column, in the table's order."""
    return [(str(p), rows) for p, rows in df.groupby("protocol", sort=False)]


def _block_heading(protocol: str) -> str:
    """What a block of a table shows, and what its cells are."""
    cells = "ours (paper; ours − paper)" if protocol == ORACLE else "ours (the paper reports none)"
    return f"{PROTOCOLS[protocol]}. Cells: {cells}."


def to_markdown(df: pd.DataFrame, caption: str) -> str:
    """Caption, then one table per protocol (oracle first, each under its heading) with one
    column per ratio and metric: an oracle cell "ours (paper; ours − paper)", a GT-free one "ours"."""
    ratios = table_ratios(df)
    headers = ["Training data", "Method"] + [f"×{r} {m.upper()}" for r in ratios for m in METRICS]
    parts = [f"**{caption}**"]
    for protocol, rows in protocol_blocks(df):
        body = []
        for _, row in rows.iterrows():
            cells = []
            for ratio in ratios:
                for metric in METRICS:
                    ours, paper, diff = _cell(row, metric, ratio)
                    cells.append(f"{ours} ({paper}; {diff})" if protocol == ORACLE else ours)
            body.append([row["label"], ROLES[row["method"]]] + cells)
        parts.append(f"*{_block_heading(protocol)}*")
        parts.append(tabulate(body, headers=headers, tablefmt="github", disable_numparse=True))
    parts.append(f'"{NOT_RUN}": the variant is not configured.')
    return "\n\n".join(parts) + "\n"


_LATEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"} | {
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}


def latex_escape(text: str) -> str:
    return (
        "".join(_LATEX_SPECIAL.get(c, c) for c in str(text))
        .replace("×", r"$\times$")
        .replace("−", "$-$")
        .replace("–", "--")
    )


def to_latex(df: pd.DataFrame, caption: str, label: str = "") -> str:
    """A booktabs table: ratio groups of PSNR and SSIM, one block of rows per protocol under its
    heading; an oracle cell is ours with (paper, difference) in small type, a GT-free one ours."""
    ratios = table_ratios(df)
    n = len(ratios) * len(METRICS)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(caption)}}}",
    ]
    if label:
        lines.append(rf"\label{{{latex_escape(label)}}}")
    lines += [
        r"\begin{tabular}{ll" + "c" * n + "}",
        r"\toprule",
        " & ".join(["", ""] + [rf"\multicolumn{{2}}{{c}}{{$\times${r}}}" for r in ratios]) + r" \\",
        "".join(rf"\cmidrule(lr){{{3 + 2 * i}-{4 + 2 * i}}}" for i in range(len(ratios))),
        " & ".join(["Training data", "Method"] + [m.upper() for _ in ratios for m in METRICS]) + r" \\",
    ]
    for protocol, rows in protocol_blocks(df):
        lines += [r"\midrule", rf"\multicolumn{{{2 + n}}}{{l}}{{\textit{{{latex_escape(PROTOCOLS[protocol])}}}}} \\"]
        for _, row in rows.iterrows():
            cells = []
            for ratio in ratios:
                for metric in METRICS:
                    ours, paper, diff = (latex_escape(t) for t in _cell(row, metric, ratio))
                    cells.append(rf"{ours} {{\scriptsize ({paper}, {diff})}}" if protocol == ORACLE else ours)
            lines.append(" & ".join([latex_escape(row["label"]), ROLES[row["method"]]] + cells) + r" \\")
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        r"\par\smallskip{\footnotesize Oracle cells: ours (paper, ours $-$ paper); GT-free cells: ours (the paper "
        r"reports none); ``not run'': the variant is not configured.}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def write_table(df: pd.DataFrame, csv, md, tex, caption: str) -> None:
    """Write the table as CSV (full precision), Markdown and LaTeX, each atomically."""
    with atomic_path(csv) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    write_text_atomic(md, to_markdown(df, caption))
    write_text_atomic(tex, to_latex(df, caption, label=f"tab:{Path(tex).stem}"))


# --- plain tables: every variant on one dataset, Table 5b ------------------------------------


def build_variant_table(variants: Mapping[str, dict], summaries: Mapping[str, str | os.PathLike],
                        ratios, steps: int, protocols=tuple(PROTOCOLS)) -> pd.DataFrame:
    """One row per protocol and variant (protocol-major, oracle first; variants in config
    order): PSNR/SSIM per ratio of its final prediction, the ``protocol`` column first.

    ``ours`` and ``ddim`` variants are read at ``steps`` (network evaluations / sampler steps),
    baselines at their one pass. There are no paper values (the ELD-dataset numbers of the paper
    are not public in any source we hold).
    """
    protocols = check_protocols(protocols)
    loaded = {name: _read_csv(summaries[name], SUMMARY_COLUMNS, "evaluation summary") for name in variants}
    records = []
    for protocol in protocols:
        for name, cfg in variants.items():
            record = {"protocol": protocol, "variant": name, "backbone": cfg["backbone"], "data": cfg["data"],
                      "method": cfg["method"]}  # fmt: skip
            for ratio in ratios:
                values = _our_values(loaded[name], summaries[name], steps, int(ratio), protocol)
                for metric in METRICS:
                    record[value_column(metric, int(ratio))] = values[metric]
            records.append(record)
    return pd.DataFrame.from_records(records)


def build_camera_table(variants: Mapping[str, dict], summaries: Mapping[str, Mapping[str, str | os.PathLike]],
                       ratios, steps: int, protocols=tuple(PROTOCOLS)) -> pd.DataFrame:
    """``build_variant_table`` of each camera (``summaries``: camera → variant → summary.csv),
    stacked camera-major with a ``camera`` column after ``protocol``."""
    parts = [build_variant_table(variants, by_variant, ratios, steps, protocols).assign(camera=camera)
             for camera, by_variant in summaries.items()]
    table = pd.concat(parts, ignore_index=True)
    order = ["protocol", "camera"] + [c for c in table.columns if c not in ("protocol", "camera")]
    return table[order].sort_values(["protocol", "camera"], key=lambda c: c.map(
        {v: i for i, v in enumerate(dict.fromkeys(c))}), kind="stable").reset_index(drop=True)


def write_variant_table(df: pd.DataFrame, csv, md, tex, caption: str) -> None:
    """``write_plain_table`` of a ``build_variant_table``, with a note saying what each
    protocol of its ``protocol`` column is."""
    note = "; ".join(f"protocol {p}: {PROTOCOLS[p]}" for p in dict.fromkeys(df["protocol"])) + "."
    write_plain_table(df, csv, md, tex, caption, note=note)


def write_plain_table(df: pd.DataFrame, csv, md, tex, caption: str, digits: Mapping[str, int] | None = None,
                      note: str = "") -> None:
    """CSV (full precision), Markdown and LaTeX of a table whose cells are shown as they are,
    numbers rounded per column prefix (``digits``, e.g. {"psnr": 2, "ssim": 3}); ``note``: a
    line under the Markdown and LaTeX tables."""
    digits = dict(DIGITS if digits is None else digits)

    def shown(column: str, value) -> str:
        if isinstance(value, float):
            places = next((d for prefix, d in digits.items() if column.startswith(prefix)), 4)
            return _number(value, places)
        return str(value)

    body = [[shown(c, v) for c, v in row.items()] for _, row in df.iterrows()]
    with atomic_path(csv) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    markdown = tabulate(body, headers=list(df.columns), tablefmt="github", disable_numparse=True)
    write_text_atomic(md, f"**{caption}**\n\n{markdown}\n" + (f"\n{note}\n" if note else ""))
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(caption)}}}",
             rf"\label{{tab:{latex_escape(Path(tex).stem)}}}", r"\begin{tabular}{" + "l" * len(df.columns) + "}",
             r"\toprule", " & ".join(latex_escape(c) for c in df.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if note:
        lines.append(rf"\par\smallskip{{\footnotesize {latex_escape(note)}}}")
    lines.append(r"\end{table}")
    write_text_atomic(tex, "\n".join(lines) + "\n")
