"""expodiff.report.plots: the step figure is written as valid PNG and PDF, draws each evaluation
protocol (oracle solid, GT-free dashed), and checks its inputs."""

from importlib.resources import files

import pandas as pd
import pytest

from expodiff.errors import ExpodiffError
from expodiff.report.plots import plot_step_curve, step_curve

STEP_CSV = files("expodiff") / "resources" / "step_curve.csv"
COLUMNS = ["variant", "dataset", "camera", "protocol", "ratio", "n_steps", "step", "psnr", "ssim", "count"]
DROP = {"oracle": 0.0, "gt-free": 3.0}  # the fixture's GT-free PSNRs are 3 dB lower


@pytest.fixture
def summaries(tmp_path):
    ours = [
        ("ours", "sid", "SonyA7S2", p, ratio, n, s, 30.0 + ratio / 100 + n + s / 10 - DROP[p], 0.7 + s / 100, 15)
        for p in DROP
        for ratio in (100, 250)
        for n in (1, 2, 3, 4)
        for s in range(1, n + 1)
    ]
    base = [("base", "sid", "SonyA7S2", p, ratio, 1, 1, 33.0 - DROP[p], 0.75, 15) for p in DROP for ratio in (100, 250)]
    paths = {"ours": tmp_path / "ours.csv", "base": tmp_path / "base.csv"}
    pd.DataFrame(ours, columns=COLUMNS).to_csv(paths["ours"], index=False)
    pd.DataFrame(base, columns=COLUMNS).to_csv(paths["base"], index=False)
    return paths


def test_step_curve_takes_the_final_step_of_each_run(summaries):
    curve = step_curve(pd.read_csv(summaries["ours"]), ratio=100)
    assert list(curve["n_steps"]) == [1, 2, 3, 4]
    assert list(curve["step"]) == [1, 2, 3, 4]
    assert curve["psnr"].tolist() == pytest.approx([32.1, 33.2, 34.3, 35.4])
    assert list(step_curve(pd.read_csv(summaries["ours"]), ratio=100, steps=[2, 3])["n_steps"]) == [2, 3]
    free = step_curve(pd.read_csv(summaries["ours"]), ratio=100, protocol="gt-free")
    assert free["psnr"].tolist() == pytest.approx([29.1, 30.2, 31.3, 32.4])


def test_both_protocols_are_drawn_solid_and_dashed(summaries, tmp_path):
    fig = plot_step_curve(summaries["ours"], summaries["base"], STEP_CSV, 100, tmp_path / "s.png", tmp_path / "s.pdf")
    for ax in fig.axes:
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert lines["ours (this run, oracle)"].get_linestyle() == "-"
        assert lines["ours (this run, GT-free)"].get_linestyle() == "--"
        assert lines["baseline (this run, oracle)"].get_linestyle() == "-"
        assert lines["baseline (this run, GT-free)"].get_linestyle() == "--"
        assert lines["paper: ExposureDiffusion (oracle)"].get_linestyle() == ":"
    psnr = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert list(psnr["ours (this run, GT-free)"].get_ydata()) == pytest.approx([29.1, 30.2, 31.3, 32.4])
    assert list(psnr["baseline (this run, GT-free)"].get_ydata()) == pytest.approx([30.0, 30.0])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "ours (this run, GT-free)" in legend and "ours (this run, oracle)" in legend
    assert "dashed: GT-free" in fig.get_suptitle()
    only = plot_step_curve(summaries["ours"], summaries["base"], STEP_CSV, 100, tmp_path / "o.png",
                           tmp_path / "o.pdf", protocols=["oracle"])  # fmt: skip
    assert not [line for line in only.axes[0].get_lines() if "GT-free" in line.get_label()]


def test_png_and_pdf_are_valid(summaries, tmp_path):
    png, pdf = tmp_path / "plots" / "steps.png", tmp_path / "plots" / "steps.pdf"
    plot_step_curve(summaries["ours"], summaries["base"], STEP_CSV, 100, png, pdf, steps=[1, 2, 3, 4])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.read_bytes().rstrip().endswith(b"%%EOF")
    assert sorted(p.name for p in png.parent.iterdir()) == ["steps.pdf", "steps.png"]


def test_missing_ratio_or_steps_name_the_file(summaries, tmp_path):
    png, pdf = tmp_path / "s.png", tmp_path / "s.pdf"
    with pytest.raises(ExpodiffError, match="ours.csv.*protocol oracle, ratio 300"):
        plot_step_curve(summaries["ours"], summaries["base"], STEP_CSV, 300, png, pdf)
    with pytest.raises(ExpodiffError, match=r"ours.csv.*n_steps \[5\]"):
        plot_step_curve(summaries["ours"], summaries["base"], STEP_CSV, 100, png, pdf, steps=[1, 5])
    oracle_only = tmp_path / "base_oracle.csv"
    base = pd.read_csv(summaries["base"])
    base[base["protocol"] == "oracle"].to_csv(oracle_only, index=False)
    with pytest.raises(ExpodiffError, match=r"base_oracle.csv: expected one row for protocol gt-free"):
        plot_step_curve(summaries["ours"], oracle_only, STEP_CSV, 100, png, pdf)
    assert not png.exists() and not pdf.exists()
