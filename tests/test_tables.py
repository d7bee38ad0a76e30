"""expodiff.report.tables: our values next to the paper's, "not run" cells, one block per
evaluation protocol (the paper's values beside the oracle one only), Markdown and LaTeX."""

import math
import re
from importlib.resources import files

import pandas as pd
import pytest

from expodiff.errors import ConfigError, ExpodiffError
from expodiff.report.tables import NOT_RUN, build_table, to_latex, to_markdown, write_table

PAPER = files("expodiff") / "resources" / "paper_results.csv"
COLUMNS = "variant,dataset,camera,protocol,ratio,n_steps,step,psnr,ssim,count"
GT_FREE_DROP = 5.0  # the fixture's GT-free values: the oracle ones minus this (PSNR) or /2 (SSIM)
TABLE = {
    "caption": "Table 4: SID, UNet & friends",
    "paper_table": "table4",
    "dataset": "sid",
    "steps": 3,
    "ratios": [100, 250],
    "rows": [
        {"label": "P+G", "backbone": "unet", "data": "pg", "baseline": "base", "ours": "ours"},
        {"label": "PMN", "backbone": "unet", "data": "pmn", "baseline": None, "ours": None},
    ],
}


def write_summary(path, rows):
    """A summary.csv of ``rows`` (without protocol) as the oracle rows, plus the GT-free rows."""
    both = [(*r[:3], "oracle", *r[3:]) for r in rows]
    both += [(*r[:3], "gt-free", *r[3:6], r[6] - GT_FREE_DROP, r[7] / 2, r[8]) for r in rows]
    lines = [COLUMNS] + [",".join(map(str, r)) for r in both]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def summaries(tmp_path):
    base = write_summary(
        tmp_path / "base.csv",
        [
            ("base", "sid", "SonyA7S2", 100, 1, 1, 38.0, 0.88, 15),
            ("base", "sid", "SonyA7S2", 250, 1, 1, 34.5, 0.77, 15),
        ],
    )
    ours_rows = []
    for ratio, psnr in ((100, 39.0), (250, 36.0)):
        for n_steps in (1, 2, 3, 4):
            for step in range(1, n_steps + 1):
                # only (n_steps 3, step 3) carries the value the table must pick
                value = psnr if (n_steps, step) == (3, 3) else 10.0 + n_steps + step
                ours_rows.append(
                    ("ours", "sid", "SonyA7S2", ratio, n_steps, step, value, 0.9 if value == psnr else 0.1, 15)
                )
    ours = write_summary(tmp_path / "ours.csv", ours_rows)
    return {"base": base, "ours": ours}


def test_values_paper_and_difference(summaries):
    df = build_table(TABLE, summaries, PAPER)
    assert list(df["method"]) == ["baseline", "ours", "baseline", "ours"] * 2
    assert list(df["protocol"]) == ["oracle"] * 4 + ["gt-free"] * 4
    ours = df[(df["protocol"] == "oracle") & (df["label"] == "P+G") & (df["method"] == "ours")].iloc[0]
    assert ours["psnr_x100"] == pytest.approx(39.0)  # n_steps == steps and step == n_steps
    assert ours["ssim_x100"] == pytest.approx(0.9)
    assert ours["psnr_x100_paper"] == pytest.approx(38.89)  # table4 SID 100 unet pg ours
    assert ours["ssim_x100_paper"] == pytest.approx(0.902)
    assert ours["psnr_x100_diff"] == pytest.approx(39.0 - 38.89)
    assert ours["ssim_x250_diff"] == pytest.approx(0.9 - 0.832)
    base = df[(df["protocol"] == "oracle") & (df["label"] == "P+G") & (df["method"] == "baseline")].iloc[0]
    assert base["psnr_x250"] == pytest.approx(34.5)
    assert base["psnr_x250_paper"] == pytest.approx(34.39)
    assert base["psnr_x250_diff"] == pytest.approx(34.5 - 34.39)


def test_gt_free_rows_hold_ours_alone(summaries):
    """The paper reports the oracle protocol: no paper value, no difference beside GT-free numbers."""
    df = build_table(TABLE, summaries, PAPER)
    free = df[(df["protocol"] == "gt-free") & (df["label"] == "P+G")].set_index("method")
    assert free.loc["ours", "psnr_x100"] == pytest.approx(39.0 - GT_FREE_DROP)
    assert free.loc["ours", "ssim_x250"] == pytest.approx(0.9 / 2)
    assert free.loc["baseline", "psnr_x250"] == pytest.approx(34.5 - GT_FREE_DROP)
    paper_or_diff = [c for c in df.columns if c.endswith(("_paper", "_diff"))]
    assert df.loc[df["protocol"] == "gt-free", paper_or_diff].isna().all().all()
    pmn = df[(df["protocol"] == "gt-free") & (df["label"] == "PMN")]
    assert (pmn["psnr_x100"] == NOT_RUN).all()
    # one protocol configured: that block alone
    only = build_table(TABLE, summaries, PAPER, protocols=["gt-free"])
    assert set(only["protocol"]) == {"gt-free"} and len(only) == 4
    with pytest.raises(ConfigError, match=r"evaluation\.protocols: unknown protocol 'ideal'"):
        build_table(TABLE, summaries, PAPER, protocols=["oracle", "ideal"])


def test_a_summary_without_the_protocol_names_the_file(summaries, tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("variant,dataset,camera,ratio,n_steps,step,psnr,ssim,count\nbase,sid,SonyA7S2,100,1,1,38,0.9,1\n")
    with pytest.raises(ExpodiffError, match="old.csv: evaluation summary lacks column.s. protocol"):
        build_table(TABLE, {"base": old, "ours": summaries["ours"]}, PAPER)
    gt_free_only = tmp_path / "oracle_only.csv"
    text = summaries["ours"].read_text().splitlines()
    gt_free_only.write_text("\n".join(line for line in text if ",gt-free," not in line) + "\n")
    with pytest.raises(ExpodiffError, match="oracle_only.csv: no row for protocol gt-free, ratio 100"):
        build_table(TABLE, {"base": summaries["base"], "ours": gt_free_only}, PAPER)


def test_not_run_cells_keep_the_paper_value(summaries):
    df = build_table(TABLE, summaries, PAPER)
    pmn = df[(df["protocol"] == "oracle") & (df["label"] == "PMN") & (df["method"] == "ours")].iloc[0]
    assert pmn["psnr_x100"] == NOT_RUN and pmn["ssim_x250"] == NOT_RUN
    assert pmn["psnr_x100_paper"] == pytest.approx(39.80)
    assert pmn["ssim_x250_paper"] == pytest.approx(0.896)
    assert math.isnan(pmn["psnr_x100_diff"])
    assert pmn["variant"] == ""


def test_missing_summary_row_names_the_file(summaries, tmp_path):
    table = dict(TABLE, steps=5)
    with pytest.raises(ExpodiffError, match="ours.csv.*n_steps 5"):
        build_table(table, summaries, PAPER)


def test_missing_variant_summary(summaries):
    with pytest.raises(ExpodiffError, match="'ours'"):
        build_table(TABLE, {"base": summaries["base"]}, PAPER)


def test_markdown_and_latex(summaries):
    df = build_table(TABLE, summaries, PAPER)
    md = to_markdown(df, TABLE["caption"])
    assert md.startswith("**Table 4: SID, UNet & friends**")
    assert "| ×100 PSNR" in md
    assert "39.00 (38.89; +0.11)" in md
    assert "not run (39.80; –)" in md
    # the GT-free block: its own heading after the oracle block, our values without the paper's
    oracle_part, free_part = md.split("*GT-free protocol", 1)
    assert "*oracle protocol (the paper's" in oracle_part and "39.00 (38.89; +0.11)" in oracle_part
    assert "the paper reports none" in free_part.splitlines()[0]
    free_table = free_part.split("\n\n")[1]
    assert "| 34.00 " in free_table and "(" not in free_table
    tex = to_latex(df, TABLE["caption"], label="tab:table4")
    assert r"\caption{Table 4: SID, UNet \& friends}" in tex
    for word in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{llcccc}"):
        assert word in tex
    assert r"39.00 {\scriptsize (38.89, +0.11)}" in tex
    assert r"34.50 {\scriptsize (34.39, +0.11)}" in tex
    assert "×" not in tex and "−" not in tex  # unicode is escaped for LaTeX
    oracle_tex, free_tex = tex.split(r"\textit{GT-free protocol", 1)
    assert r"\multicolumn{6}{l}{\textit{oracle protocol" in oracle_tex
    assert r"P+G & w/ Ours & 34.00 & 0.450 & 31.00 & 0.450 \\" in free_tex  # GT-free: ours only
    assert r"\scriptsize" not in free_tex.split(r"\bottomrule")[0]


def test_write_table(summaries, tmp_path):
    df = build_table(TABLE, summaries, PAPER)
    out = tmp_path / "out"
    write_table(df, out / "t.csv", out / "t.md", out / "t.tex", caption=TABLE["caption"])
    back = pd.read_csv(out / "t.csv", keep_default_na=False)
    assert list(back.columns[:6]) == ["protocol", "label", "backbone", "data", "method", "variant"]
    assert float(back.loc[1, "psnr_x100"]) == pytest.approx(39.0)
    assert back.loc[3, "psnr_x100"] == NOT_RUN
    assert back.loc[5, "protocol"] == "gt-free" and float(back.loc[5, "psnr_x100"]) == pytest.approx(34.0)
    assert back.loc[5, "psnr_x100_paper"] == "" and back.loc[1, "psnr_x100_paper"] != ""
    assert (out / "t.md").read_text().startswith("**Table 4")
    assert r"\label{tab:t}" in (out / "t.tex").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["t.csv", "t.md", "t.tex"]  # no temporaries left


def test_variant_table_reads_each_method_at_its_step(summaries, tmp_path):
    from expodiff.report.tables import build_variant_table, write_variant_table

    variants = {
        "base": {"backbone": "unet", "data": "pg", "method": "baseline", "concat_origin": False},
        "ours": {"backbone": "unet", "data": "pg", "method": "ours", "concat_origin": False},
    }
    table = build_variant_table(variants, summaries, [100, 250], steps=3)
    assert list(table["variant"]) == ["base", "ours"] * 2
    assert list(table["protocol"]) == ["oracle", "oracle", "gt-free", "gt-free"]
    assert list(table.columns[:2]) == ["protocol", "variant"]
    assert table.loc[0, "psnr_x100"] == 38.0 and table.loc[2, "psnr_x100"] == 38.0 - GT_FREE_DROP
    ours = pd.read_csv(summaries["ours"])
    for row, protocol in ((1, "oracle"), (3, "gt-free")):
        final = ours[(ours.protocol == protocol) & (ours.ratio == 250) & (ours.n_steps == 3) & (ours.step == 3)]
        assert table.loc[row, "psnr_x250"] == final.psnr.item()
    out = {ext: tmp_path / f"eld.{ext}" for ext in ("csv", "md", "tex")}
    write_variant_table(table, out["csv"], out["md"], out["tex"], "ELD dataset")
    md = out["md"].read_text()
    assert "38.00" in md and "33.00" in md and r"\toprule" in out["tex"].read_text()
    assert re.search(r"^\| gt-free +\| base ", md, re.M) and "protocol gt-free: GT-free protocol: no ground truth" in md
    assert r"protocol oracle: oracle protocol" in out["tex"].read_text()
    assert pd.read_csv(out["csv"]).shape == table.shape


def test_cost_table_counts_like_thop_and_names_the_device():
    from expodiff.report.cost import build_cost_table

    paper = files("expodiff") / "resources" / "paper_cost.csv"
    table = build_cost_table(["naf1"], paper, count_size=512, time_size=32, repeats=1)
    row = table.iloc[0]
    assert row["params_thop"] == row["params_paper"] == 4697  # the paper's 4.697K
    assert row["macs_g"] == pytest.approx(1.124, abs=5e-4)  # the paper's 1.124G
    assert row["params_all"] == 4793  # thop skips LayerNorm2d and beta/gamma
    assert row["seconds_per_pass"] > 0 and row["seconds_per_3_steps"] == pytest.approx(3 * row["seconds_per_pass"])
    assert "cpu" in row["device"]
