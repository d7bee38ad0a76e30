"""expodiff.report.tables: our values next to the paper's, "not run" cells, Markdown and LaTeX."""

import math
from importlib.resources import files

import pandas as pd
import pytest

from expodiff.errors import ExpodiffError
from expodiff.report.tables import NOT_RUN, build_table, to_latex, to_markdown, write_table

PAPER = files("expodiff") / "resources" / "paper_results.csv"
COLUMNS = "variant,dataset,camera,ratio,n_steps,step,psnr,ssim,count"
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
    lines = [COLUMNS] + [",".join(map(str, r)) for r in rows]
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
    assert list(df["method"]) == ["baseline", "ours", "baseline", "ours"]
    ours = df[(df["label"] == "P+G") & (df["method"] == "ours")].iloc[0]
    assert ours["psnr_x100"] == pytest.approx(39.0)  # n_steps == steps and step == n_steps
    assert ours["ssim_x100"] == pytest.approx(0.9)
    assert ours["psnr_x100_paper"] == pytest.approx(38.89)  # table4 SID 100 unet pg ours
    assert ours["ssim_x100_paper"] == pytest.approx(0.902)
    assert ours["psnr_x100_diff"] == pytest.approx(39.0 - 38.89)
    assert ours["ssim_x250_diff"] == pytest.approx(0.9 - 0.832)
    base = df[(df["label"] == "P+G") & (df["method"] == "baseline")].iloc[0]
    assert base["psnr_x250"] == pytest.approx(34.5)
    assert base["psnr_x250_paper"] == pytest.approx(34.39)
    assert base["psnr_x250_diff"] == pytest.approx(34.5 - 34.39)


def test_not_run_cells_keep_the_paper_value(summaries):
    df = build_table(TABLE, summaries, PAPER)
    pmn = df[(df["label"] == "PMN") & (df["method"] == "ours")].iloc[0]
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
    tex = to_latex(df, TABLE["caption"], label="tab:table4")
    assert r"\caption{Table 4: SID, UNet \& friends}" in tex
    for word in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{llcccc}"):
        assert word in tex
    assert r"39.00 {\scriptsize (38.89, +0.11)}" in tex
    assert r"34.50 {\scriptsize (34.39, +0.11)}" in tex
    assert "×" not in tex and "−" not in tex  # unicode is escaped for LaTeX


def test_write_table(summaries, tmp_path):
    df = build_table(TABLE, summaries, PAPER)
    out = tmp_path / "out"
    write_table(df, out / "t.csv", out / "t.md", out / "t.tex", caption=TABLE["caption"])
    back = pd.read_csv(out / "t.csv", keep_default_na=False)
    assert list(back.columns[:5]) == ["label", "backbone", "data", "method", "variant"]
    assert float(back.loc[1, "psnr_x100"]) == pytest.approx(39.0)
    assert back.loc[3, "psnr_x100"] == NOT_RUN
    assert (out / "t.md").read_text().startswith("**Table 4")
    assert r"\label{tab:t}" in (out / "t.tex").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["t.csv", "t.md", "t.tex"]  # no temporaries left


def test_variant_table_reads_each_method_at_its_step(summaries, tmp_path):
    from expodiff.report.tables import build_variant_table, write_plain_table

    variants = {
        "base": {"backbone": "unet", "data": "pg", "method": "baseline", "concat_origin": False},
        "ours": {"backbone": "unet", "data": "pg", "method": "ours", "concat_origin": False},
    }
    table = build_variant_table(variants, summaries, [100, 250], steps=3)
    assert list(table["variant"]) == ["base", "ours"]
    assert table.loc[0, "psnr_x100"] == 38.0
    ours = pd.read_csv(summaries["ours"])
    final = ours[(ours.ratio == 250) & (ours.n_steps == 3) & (ours.step == 3)]
    assert table.loc[1, "psnr_x250"] == final.psnr.item()
    out = {ext: tmp_path / f"eld.{ext}" for ext in ("csv", "md", "tex")}
    write_plain_table(table, out["csv"], out["md"], out["tex"], "ELD dataset")
    assert "38.00" in out["md"].read_text() and r"\toprule" in out["tex"].read_text()
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
