"""`checkpoints: released`: the authors' checkpoint files (released format, loaded strictly) are
evaluated in place of trainings, and tables show the other cells as not run."""

import pandas as pd
import torch

from expodiff.methods import MethodSpec
from test_workflow import copy_workflow, job_counts, overlay, snakemake

RELEASED = {  # file -> (backbone, method, concat_origin) as the original's test commands load them
    "SID_Pg.pt": ("unet", "ours", False),
    "SID_PGru.pt": ("unet", "ours", True),
    "SID_real.pt": ("unet", "ours", True),
    "SID_pg_naf2.pt": ("naf2", "ours", False),
    "SID_PGru_naf2.pt": ("naf2", "ours", True),
}


def _released_folder(folder, wrong=None):
    folder.mkdir()
    torch.manual_seed(0)
    for name, (backbone, method, concat) in RELEASED.items():
        if name == wrong:
            concat = not concat  # 8 instead of 12 input channels, or the reverse
        net = MethodSpec(backbone, method, concat).build()
        torch.save({"netG": net.state_dict(), "opt_g": {}, "epoch": 300, "iterations": 386400}, folder / name)
    return folder


def _overlay(tmp_path, folder):
    return overlay(tmp_path, "released", {
        "checkpoints": "released",
        "released_checkpoints": {"folder": str(folder)},
        "evaluation": {"steps": [3], "datasets": {"sid": {"scenes": ["10185", "20188"]}}},
        "step_plot": {"steps": [3]},
    })


def test_released_checkpoints_fill_the_ours_cells_without_training(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    cfg = _overlay(tmp_path, _released_folder(tmp_path / "ckpt"))
    demo = ["--configfile", "configs/demo.yaml", cfg]
    counts = job_counts(snakemake("-n", *demo, cwd=work, check=True).out)
    assert "train" not in counts and counts["released_checkpoint"] == 5
    snakemake("results/tables/table4.csv", "--cores", "2", *demo, cwd=work, check=True)
    table = pd.read_csv(work / "results" / "tables" / "table4.csv", keep_default_na=False)
    assert list(table["protocol"].unique()) == ["oracle", "gt-free"]
    for protocol in ("oracle", "gt-free"):
        ours = table[(table["method"] == "ours") & (table["protocol"] == protocol)].set_index("label")
        for label in ("P+G", "ELD", "Paired real"):
            assert float(ours.loc[label, "psnr_x100"]) > 0
        assert (ours.loc["PMN", "psnr_x100"] == "not run")
    assert (table[table["method"] == "baseline"]["psnr_x100"] == "not run").all()


def test_a_checkpoint_that_does_not_fit_its_variant_is_named(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    cfg = _overlay(tmp_path, _released_folder(tmp_path / "ckpt", wrong="SID_PGru.pt"))
    proc = snakemake("results/train/unet-eld-ours/model_final.pt", "--cores", "1",
                     "--configfile", "configs/demo.yaml", cfg, cwd=work, check=False)
    log = (work / "logs" / "released_checkpoint" / "unet-eld-ours.log").read_text()
    assert "unet-eld-ours" in log and "conv1_1.weight" in log
    assert not (work / "results" / "train" / "unet-eld-ours" / "model_final.pt").exists()
    assert proc.returncode != 0


def test_missing_released_file_says_where_to_put_it(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    cfg = _overlay(tmp_path, tmp_path / "nowhere")
    proc = snakemake("results/train/unet-pg-ours/model_final.pt", "--cores", "1",
                     "--configfile", "configs/demo.yaml", cfg, cwd=work, check=False)
    assert "SID_Pg.pt not found" in proc.out and "Google Drive" in proc.out
