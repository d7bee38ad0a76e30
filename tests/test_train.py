"""Real training steps on tiny patches: both methods learn, checkpoints are in the released
format, and a run stopped mid-way resumes to the same result as an uninterrupted one."""

import csv
from importlib.resources import files

import pytest
import torch

from expodiff.checkpoint import load_checkpoint
from expodiff.data.patches import build_patch_store
from expodiff.data.sid import sid_train_gt_files
from expodiff.data.synthetic import make_demo_data
from expodiff.errors import ConfigError
from expodiff.train import lr_at, train_variant

CAMERA = files("expodiff") / "resources" / "camera_params" / "SonyA7S2.json"
TRAINING = {
    "seed": 2018, "epochs": 2, "lr": 1.0e-4, "lr_schedule": [[1, 5.0e-5]], "batch_size": 1,
    "checkpoint_epochs": [1, 2], "diffusion_steps": 3, "ratio_range": [20, 300], "K_range": [0.1, 30],
    "oracle_correction": True,
}


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    data = make_demo_data(root / "synthetic", seed=0, preset="tiny")
    out = root / "patches"
    build_patch_store(sid_train_gt_files(data / "SID"), out, patch_size=16, crop_hw=(32, 32))
    return out


def test_lr_schedule_like_paper():
    schedule = [[150, 5e-5], [270, 1e-5]]
    assert [lr_at(e, 1e-4, schedule) for e in (0, 149, 150, 269, 270, 299)] == [1e-4, 1e-4, 5e-5, 5e-5, 1e-5, 1e-5]


@pytest.mark.parametrize("method", ["baseline", "ours"])
def test_training_writes_released_format_and_log(patches, tmp_path, method):
    variant = {"name": f"unet-pg-{method}", "backbone": "unet", "data": "pg", "method": method, "concat_origin": False}
    final = train_variant(variant, TRAINING, patches, CAMERA, tmp_path)
    state = torch.load(final, weights_only=True)
    assert {"netG", "opt_g", "epoch", "iterations"} <= set(state)
    assert state["epoch"] == 2
    rows = list(csv.DictReader(open(tmp_path / "train_log.csv")))
    assert len(rows) == state["iterations"] > 0
    assert all(float(r["loss"]) > 0 for r in rows)
    assert float(rows[-1]["lr"]) == 5e-5 and float(rows[0]["lr"]) == 1e-4
    assert (tmp_path / "model_001.pt").exists() and (tmp_path / "model_002.pt").exists()
    in_channels = state["netG"]["conv1_1.weight"].shape[1]
    assert in_channels == (4 if method == "baseline" else 8)


def test_resume_equals_uninterrupted(patches, tmp_path, one_thread):
    variant = {"name": "unet-pg-ours", "backbone": "unet", "data": "pg", "method": "ours", "concat_origin": False}
    full = train_variant(variant, TRAINING, patches, CAMERA, tmp_path / "full")
    partial_dir = tmp_path / "partial"
    latest = train_variant(variant, TRAINING, patches, CAMERA, partial_dir, save_every=3, max_iterations=5)
    assert latest.name == "model_latest.pt" and not (partial_dir / "model_final.pt").exists()
    assert load_checkpoint(latest)["iterations"] == 5
    resumed = train_variant(variant, TRAINING, patches, CAMERA, partial_dir)
    a, b = torch.load(full, weights_only=True), torch.load(resumed, weights_only=True)
    assert a["iterations"] == b["iterations"]
    for key in a["netG"]:
        torch.testing.assert_close(a["netG"][key], b["netG"][key], rtol=0, atol=0)
    log = list(csv.DictReader(open(partial_dir / "train_log.csv")))
    assert [int(r["iteration"]) for r in log] == list(range(1, a["iterations"] + 1))


def test_unknown_training_data_is_named(patches, tmp_path):
    variant = {"name": "unet-xx-ours", "backbone": "unet", "data": "xx", "method": "ours"}
    with pytest.raises(ConfigError, match="unet-xx-ours"):
        train_variant(variant, TRAINING, patches, CAMERA, tmp_path)


def test_paired_real_training(tiny_data, tmp_path):
    from expodiff.data.pairs import PairStore, build_pair_store
    from expodiff.data.sid import sid_train_pairs

    pairs = sid_train_pairs(tiny_data / "SID")
    store_dir = build_pair_store(pairs, tmp_path / "pairs")
    store = PairStore(store_dir)
    assert len(store) == len(pairs)
    short, long = store.crop(0, 16, __import__("numpy").random.default_rng(0))
    assert short.shape == long.shape == (4, 16, 16) and 0 <= short.max() <= 1
    assert short.mean() < long.mean()  # the short exposure is darker before amplification
    variant = {"name": "unet-paired-ours", "backbone": "unet", "data": "paired", "method": "ours", "concat_origin": True}
    final = train_variant(variant, {**TRAINING, "epochs": 1}, store_dir, CAMERA, tmp_path / "run", patch_size=16)
    state = torch.load(final, weights_only=True)
    assert state["netG"]["conv1_1.weight"].shape[1] == 12
    with pytest.raises(ConfigError, match="patch_size"):
        train_variant(variant, TRAINING, store_dir, CAMERA, tmp_path / "run2")


BASELINE = {"name": "unet-pg-base", "backbone": "unet", "data": "pg", "method": "baseline", "concat_origin": False}


def iterations_logged(path) -> list[int]:
    return [int(r["iteration"]) for r in csv.DictReader(open(path))]


def test_identical_trainings_give_identical_checkpoint_bytes(patches, tmp_path, one_thread):
    """torch.save to a path names the zip records after the (random) temporary file: saved
    through a file object, the same training gives the same bytes."""
    for run in ("a", "b"):
        train_variant(BASELINE, {**TRAINING, "epochs": 1, "checkpoint_epochs": [1]}, patches, CAMERA, tmp_path / run)
    for name in ("model_final.pt", "model_latest.pt", "model_001.pt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_log_survives_the_declared_log_being_deleted(patches, tmp_path, one_thread):
    """Snakemake deletes train_log.csv (a declared output) before rerunning a killed training:
    the resumed run still logs every iteration once, from the resumable log beside the checkpoint."""
    training = {**TRAINING, "epochs": 1, "checkpoint_epochs": []}
    log_csv = tmp_path / "declared" / "train_log.csv"
    latest = train_variant(BASELINE, training, patches, CAMERA, tmp_path / "run", log_csv=log_csv,
                           save_every=3, max_iterations=5)
    assert load_checkpoint(latest)["iterations"] == 5
    log_csv.unlink()
    final = train_variant(BASELINE, training, patches, CAMERA, tmp_path / "run", log_csv=log_csv)
    total = load_checkpoint(final)["iterations"]
    assert iterations_logged(log_csv) == list(range(1, total + 1))
    assert not (tmp_path / "run" / "train_log.partial.csv").exists()  # removed once finished


def test_resumable_log_is_cut_back_to_the_checkpoint(patches, tmp_path, one_thread):
    """Rows logged after the last checkpoint (the kill came between saves) are redone once."""
    training = {**TRAINING, "epochs": 1, "checkpoint_epochs": []}
    run = tmp_path / "run"
    train_variant(BASELINE, training, patches, CAMERA, run, save_every=3, max_iterations=5)
    partial = run / "train_log.partial.csv"
    lines = partial.read_text().splitlines()
    # as if killed at iteration 7 (checkpoint at 5) while writing row 8
    partial.write_text("\n".join(lines + ["6,0,0.0001,0.5,1.0", "7,0,0.0001,0.5,1.0", "8,0,0.00"]) + "\n")
    final = train_variant(BASELINE, training, patches, CAMERA, run)
    assert iterations_logged(run / "train_log.csv") == list(range(1, load_checkpoint(final)["iterations"] + 1))


def test_killed_during_the_final_save_does_not_retrain(patches, tmp_path, one_thread, monkeypatch):
    """model_latest.pt at the last iteration without model_final.pt (killed while the final
    checkpoint was written): the rerun writes it and the log from it, without training."""
    from expodiff import train
    from expodiff.data import sources

    training = {**TRAINING, "epochs": 1, "checkpoint_epochs": [1]}
    expected = train_variant(BASELINE, training, patches, CAMERA, tmp_path / "uninterrupted")
    run = tmp_path / "run"
    real_save = train.save_checkpoint

    def killed_at_final(path, *args, **kwargs):
        if path.name == "model_final.pt":
            raise KeyboardInterrupt("killed while saving model_final.pt")
        real_save(path, *args, **kwargs)

    monkeypatch.setattr(train, "save_checkpoint", killed_at_final)
    with pytest.raises(KeyboardInterrupt):
        train_variant(BASELINE, training, patches, CAMERA, run)
    total = load_checkpoint(run / "model_latest.pt")["iterations"]
    assert total == load_checkpoint(expected)["iterations"] and not (run / "model_final.pt").exists()
    monkeypatch.setattr(train, "save_checkpoint", real_save)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again from a complete model_latest.pt")

    monkeypatch.setattr(sources.SyntheticNoiseSource, "batch", no_training)
    final = train_variant(BASELINE, training, patches, CAMERA, run)
    assert final == run / "model_final.pt" and final.read_bytes() == expected.read_bytes()
    assert iterations_logged(run / "train_log.csv") == list(range(1, total + 1))
    with open(run / "train_log.csv") as a, open(tmp_path / "uninterrupted" / "train_log.csv") as b:
        assert [r["loss"] for r in csv.DictReader(a)] == [r["loss"] for r in csv.DictReader(b)]


def test_finished_run_rerun_trains_anew(patches, tmp_path, monkeypatch):
    """A finished run whose outputs are deleted (Snakemake reruns it after a code change) does
    not take the old model_latest.pt as its result: it trains again from iteration 0."""
    from expodiff.data import sources

    training = {**TRAINING, "epochs": 1, "checkpoint_epochs": []}
    final = train_variant(BASELINE, training, patches, CAMERA, tmp_path)
    total = load_checkpoint(final)["iterations"]
    final.unlink()
    (tmp_path / "train_log.csv").unlink()
    batches = []
    real_finish = sources.SyntheticNoiseSource.finish
    monkeypatch.setattr(sources.SyntheticNoiseSource, "finish",
                        lambda self, *a: batches.append(1) or real_finish(self, *a))  # fmt: skip
    train_variant(BASELINE, training, patches, CAMERA, tmp_path)
    assert len(batches) == total
    assert iterations_logged(tmp_path / "train_log.csv") == list(range(1, total + 1))


def test_save_every_and_max_iterations_must_be_positive(patches, tmp_path):
    with pytest.raises(ConfigError, match="save_every"):
        train_variant(BASELINE, TRAINING, patches, CAMERA, tmp_path, save_every=0)
    with pytest.raises(ConfigError, match="max_iterations"):
        train_variant(BASELINE, TRAINING, patches, CAMERA, tmp_path, max_iterations=0)


def test_save_every_comes_from_the_training_settings(patches, tmp_path, monkeypatch):
    """training.save_every (config) sets the resumable checkpoints; it is not part of the
    run's fingerprint, so changing it still resumes the run."""
    from expodiff import train

    saved = []
    real_save = train.save_checkpoint
    monkeypatch.setattr(train, "save_checkpoint",
                        lambda path, *a, **kw: (saved.append((path.name, kw["iterations"])), real_save(path, *a, **kw)))
    train_variant(BASELINE, {**TRAINING, "save_every": 2}, patches, CAMERA, tmp_path, max_iterations=5)
    assert [it for name, it in saved if name == "model_latest.pt"] == [2, 4, 5]
    assert train.fingerprint(BASELINE, {**TRAINING, "save_every": 2}) == train.fingerprint(BASELINE, TRAINING)


@pytest.mark.parametrize("flag", ["--save-every", "--max-iterations"])
@pytest.mark.parametrize("value", ["0", "-3", "x"])
def test_train_flags_must_be_positive_integers(flag, value, tmp_path, capsys):
    from expodiff.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--variant", "unet-pg-base", "--patches", str(tmp_path), "--out", str(tmp_path), flag, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: must be a whole number ≥ 1, got " in err and value in err
    assert "Traceback" not in err and not (tmp_path / "model_latest.pt").exists()


def test_cli_save_every_defaults_to_the_config(tmp_path, monkeypatch):
    """expodiff train passes training.save_every unless --save-every overrides it."""
    from pathlib import Path

    from expodiff import cli, train

    repo = Path(__file__).resolve().parents[1]
    got = []
    monkeypatch.setattr(train, "train_variant", lambda *a, **kw: got.append(kw["save_every"]) or tmp_path / "x.pt")
    args = ["train", "--config", str(repo / "config.yaml"), str(repo / "configs" / "demo.yaml"),
            "--variant", "unet-pg-base", "--patches", str(tmp_path), "--out", str(tmp_path)]
    assert cli.main(args) == 0 and cli.main(args + ["--save-every", "7"]) == 0
    assert got == [32, 7]  # configs/demo.yaml's, then the flag's


def test_a_diverging_training_stops_with_a_clear_error(patches, tmp_path):
    """A learning rate far too large makes the weights NaN: the run stops naming the iteration
    and what to change, and no checkpoint holds the broken network."""
    from expodiff.errors import ExpodiffError

    variant = {"name": "unet-pg-ours", "backbone": "unet", "data": "pg", "method": "ours", "concat_origin": False}
    training = {**TRAINING, "lr": 1.0e4, "lr_schedule": [], "checkpoint_epochs": [1, 2]}
    with pytest.raises(ExpodiffError, match=r"^variant unet-pg-ours: training diverged by iteration \d+ \(.*\); "
                                            r"the checkpoints before it are kept: lower the learning rate"):
        train_variant(variant, training, patches, CAMERA, tmp_path, save_every=2)
    assert not (tmp_path / "model_final.pt").exists()
    for path in tmp_path.glob("model_*.pt"):
        assert all(torch.isfinite(t).all() for t in load_checkpoint(path)["netG"].values()), path
