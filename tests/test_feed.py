"""The training feed (expodiff.data.feed): batches made in DataLoader worker processes equal
those made in the training process, so a training is the same whatever the worker count,
resumed or not; a killed training leaves no worker behind."""

import os
import signal
import subprocess
import sys
import time
from importlib.resources import files

import numpy as np
import pytest
import torch

from expodiff.checkpoint import load_checkpoint
from expodiff.data.feed import IterationBatches, iteration_feed
from expodiff.data.patches import build_patch_store
from expodiff.data.sid import sid_train_gt_files
from expodiff.data.sources import DATA_KINDS, make_source
from expodiff.data.synthetic import make_demo_data
from expodiff.device import compute_settings
from expodiff.errors import ConfigError
from expodiff.train import train_variant

CAMERA = files("expodiff") / "resources" / "camera_params" / "SonyA7S2.json"
TRAINING = {
    "seed": 2018, "epochs": 2, "lr": 1.0e-4, "lr_schedule": [[1, 5.0e-5]], "batch_size": 2,
    "checkpoint_epochs": [2], "diffusion_steps": 3, "ratio_range": [20, 300], "K_range": [0.1, 30],
    "oracle_correction": True,
}
VARIANT = {"name": "unet-eld-ours", "backbone": "unet", "data": "eld", "method": "ours", "concat_origin": True}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    from expodiff.data.pairs import build_pair_store
    from expodiff.data.sid import sid_train_pairs

    root = tmp_path_factory.mktemp("feed")
    data = make_demo_data(root / "synthetic", seed=0, preset="tiny")
    patches = build_patch_store(sid_train_gt_files(data / "SID"), root / "patches", patch_size=16, crop_hw=(32, 32))
    pairs = build_pair_store(sid_train_pairs(data / "SID"), root / "pairs")
    return {"patches": patches, "pairs": pairs}


def loaded_batches(source, workers, start, end):
    return [{k: v.clone() for k, v in b.items()} for b in iteration_feed(source, 7, 2, start, end, workers=workers)]


@pytest.mark.parametrize("data", list(DATA_KINDS))
def test_worker_batches_equal_in_process_batches(stores, data):
    """Every data kind: the loaded batches of 2 workers (separate processes) equal those made
    here, across an epoch boundary, and so does a feed started mid-way (a resumed run)."""
    import json

    camera = json.loads(CAMERA.read_text())
    store = stores[DATA_KINDS[data].store.name]
    source = make_source(data, store, camera, TRAINING, patch_size=16)
    per_epoch = IterationBatches(source, 7, 2).per_epoch
    end = per_epoch + 3  # into the second epoch
    here = loaded_batches(source, 0, 0, end)
    workers = loaded_batches(source, 2, 0, end)
    resumed = loaded_batches(source, 2, per_epoch - 1, end)
    assert len(here) == len(workers) == end
    for a, b in zip(here, workers):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for a, b in zip(here[per_epoch - 1 :], resumed):
        assert all(torch.equal(a[k], b[k]) for k in a)
    # and the epochs differ (the order and flips are drawn per epoch and position)
    assert not all(torch.equal(here[i]["clean"], here[i + per_epoch]["clean"]) for i in range(3))


def test_training_is_the_same_whatever_the_worker_count(stores, tmp_path, one_thread):
    """Byte-identical checkpoints and equal logs from 0 and 2 workers, and from a 2-worker run
    stopped mid-way and resumed with 1 worker."""
    patches = stores["patches"]
    a = train_variant(VARIANT, TRAINING, patches, CAMERA, tmp_path / "w0", compute={"data_workers": 0})
    b = train_variant(VARIANT, TRAINING, patches, CAMERA, tmp_path / "w2", compute={"data_workers": 2})
    run = tmp_path / "resumed"
    latest = train_variant(VARIANT, TRAINING, patches, CAMERA, run, save_every=2, max_iterations=5,
                           compute={"data_workers": 2})
    assert load_checkpoint(latest)["iterations"] == 5
    c = train_variant(VARIANT, TRAINING, patches, CAMERA, run, compute={"data_workers": 1})
    assert a.read_bytes() == b.read_bytes() == c.read_bytes()
    losses = [(d / "train_log.csv").read_text().splitlines() for d in (tmp_path / "w0", tmp_path / "w2", run)]
    strip = lambda rows: [r.rsplit(",", 1)[0] for r in rows]  # noqa: E731 - the seconds column differs
    assert strip(losses[0]) == strip(losses[1]) == strip(losses[2])


def test_data_workers_setting_is_checked():
    assert compute_settings({"data_workers": 3}).data_workers == 3
    assert compute_settings({"data_workers": 3}).is_default  # it never changes a result
    with pytest.raises(ConfigError, match="compute.data_workers"):
        compute_settings({"data_workers": -1})
    with pytest.raises(ConfigError, match="--data-workers"):
        compute_settings(None, data_workers=1.5)


KILLED = """
import sys
from expodiff.train import train_variant
variant, training = {variant!r}, {training!r}
train_variant(variant, training, {patches!r}, {camera!r}, {out!r}, save_every=1, compute={{"data_workers": 2}})
"""


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_killed_training_leaves_no_worker(stores, tmp_path, one_thread):
    """kill -9 of a training with 2 workers: the workers notice their parent is gone and exit,
    and the run resumes from its last checkpoint to the uninterrupted result."""
    training = {**TRAINING, "epochs": 10}
    code = KILLED.format(variant=VARIANT, training=training, patches=str(stores["patches"]), camera=str(CAMERA),
                         out=str(tmp_path / "run"))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    workers = []
    while time.time() < deadline and not ((tmp_path / "run" / "model_latest.pt").exists() and len(workers) >= 2):
        workers = _children(proc.pid)
        time.sleep(0.2)
    assert proc.poll() is None and len(workers) >= 2, "the training did not start its 2 workers"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 60
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.5)
    assert not any(_alive(w) for w in workers), "a data worker outlived its killed training"
    done = load_checkpoint(tmp_path / "run" / "model_latest.pt")["iterations"]
    assert done > 0
    resumed = train_variant(VARIANT, training, stores["patches"], CAMERA, tmp_path / "run",
                            compute={"data_workers": 2})
    whole = train_variant(VARIANT, training, stores["patches"], CAMERA, tmp_path / "whole")
    assert resumed.read_bytes() == whole.read_bytes()


# --- the order of noise and flips (issue 13: as the original) ----------------------------


def write_store(directory, patches):
    """A patch store holding the (N, 4, p, p) uint16 ``patches`` (black 512, white 16383)."""
    import json

    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "patches.npy", patches.astype(np.uint16))
    count, size = len(patches), patches.shape[-1]
    record = {"file": "made", "iso": 100, "exposure_time": 10.0, "black_level": [512] * 4, "white_level": 16383}
    meta = {"patch_size": size, "crop_hw": [size, size * count], "count": count, "dtype": "uint16",
            "patches": [dict(record, top=0, left=i * size) for i in range(count)]}
    (directory / "meta.json").write_text(json.dumps(meta))
    return directory


def banding(x_t):
    """Per sample: the variance of the row means over that of the column means (row banding ≫ 1)."""
    return (x_t.mean(-1).var(-1) / x_t.mean(-2).var(-1)).mean(-1)


@pytest.mark.parametrize("order,columns", [("original", True), ("augment-first", False)])
def test_eld_noise_banding_orientation(tmp_path, order, columns):
    """ELD noise has row noise. Noise first, as the original: the transposed samples (about half)
    carry column banding, exactly those whose flips say transpose; augment first: all rows.
    On flat patches, row banding = the variance of the row means far above the column means'."""
    import json

    camera = json.loads(CAMERA.read_text())
    source = make_source("eld", write_store(tmp_path / "flat", np.full((32, 4, 256, 256), 512)), camera, {**TRAINING, "noise_order": order}, None)
    loaded = source.load(list(range(32)), np.random.default_rng(3))
    batch = source.finish(loaded, torch.Generator().manual_seed(4))
    ratio = banding(batch.x_t)
    assert ((ratio > 1.5) | (ratio < 1 / 1.5)).all(), "the row noise is not visible"
    column_banded = (ratio < 1).tolist()
    if columns:
        transposed = loaded["flips"][:, 2].tolist()
        assert column_banded == transposed and 8 <= sum(transposed) <= 24
    else:
        assert not any(column_banded)


def test_noise_first_flips_the_pair_as_augment_does(tmp_path):
    """The flips applied after the noise are augment()'s flips: the target of a noise-first
    batch equals the augment-first target patch for patch (same rng)."""
    import json

    camera = json.loads(CAMERA.read_text())
    store = write_store(tmp_path / "random", np.random.default_rng(0).integers(512, 16383, (6, 4, 16, 16)))
    targets = {}
    for order in ("original", "augment-first"):
        source = make_source("pg", store, camera, {**TRAINING, "noise_order": order}, None)
        targets[order] = source.batch(list(range(6)), np.random.default_rng(5), torch.Generator().manual_seed(6)).clean
    assert torch.equal(targets["original"], targets["augment-first"])
    with pytest.raises(ConfigError, match="training.noise_order"):
        make_source("pg", store, camera, {**TRAINING, "noise_order": "sideways"}, None)
