"""expodiff.data.eval_sets and expodiff.data.patches: round trips through the files they write."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from expodiff.data.eld import eld_eval_pairs
from expodiff.data.eval_sets import INDEX_COLUMNS, center_crop, pack_eval_set, read_eval_index
from expodiff.data.patches import PatchStore, build_patch_store
from expodiff.data.sid import sid_eval_pairs, sid_train_gt_files
from expodiff.data.synthetic import PRESETS
from expodiff.errors import ConfigError, ExpodiffError
from expodiff.io.raw import pack, read_exif, read_raw


def test_sid_eval_set_round_trip(tiny_data, tmp_path):
    pairs = sid_eval_pairs(tiny_data / "SID", PRESETS["tiny"].sid_eval_scenes, (100, 250, 300))
    out = pack_eval_set(pairs, tmp_path / "eval" / "sid", crop=16)
    raw_index = (out / "index.csv").read_text().splitlines()
    assert raw_index[0] == ",".join(INDEX_COLUMNS)
    df = read_eval_index(out)
    assert len(df) == len(pairs) and list(df.columns) == INDEX_COLUMNS
    assert df["gt_npy"].nunique() == len(PRESETS["tiny"].sid_eval_scenes)  # one gt per scene, shared
    for pair, row in zip(pairs, df.itertuples()):
        assert (row.dataset, row.scene, row.ratio) == ("sid", pair.scene, pair.ratio)
        assert (row.iso, row.exposure_time) == pytest.approx(read_exif(pair.input))
        x, gt = np.load(row.input_npy), np.load(row.gt_npy)
        assert x.dtype == np.float32 and x.shape == (4, 16, 16)
        np.testing.assert_array_equal(x, pack(read_raw(pair.input))[:, 8:24, 16:32])  # centre of 32×48
        np.testing.assert_array_equal(gt, pack(read_raw(pair.gt))[:, 8:24, 16:32])
        assert x.mean() < gt.mean() / 10  # stored as captured, not amplified
    stored = pd.read_csv(out / "index.csv")
    assert all(p.startswith(("input/", "gt/")) for p in [*stored["input_npy"], *stored["gt_npy"]])  # relative


def test_eld_eval_set_full_images(tiny_data, tmp_path):
    pairs = eld_eval_pairs(tiny_data / "ELD", "SonyA7S2", [1], (100, 200))
    df = read_eval_index(pack_eval_set(pairs, tmp_path / "eld"))
    assert len(df) == 6 and df["gt_npy"].nunique() == 3
    assert all(np.load(p).shape == (4, 32, 48) for p in df["input_npy"])
    assert df["scene"].tolist() == ["scene-1"] * 6 and df["ratio"].tolist() == [100] * 3 + [200] * 3


def test_eval_set_errors(tiny_data, tmp_path):
    pairs = sid_eval_pairs(tiny_data / "SID", ["10185"], (100,))
    with pytest.raises(ExpodiffError, match=r"10185_00_0\.1s\.dng: packed image 32×48 is smaller than the 64×64"):
        pack_eval_set(pairs, tmp_path / "sid", crop=64)
    assert not (tmp_path / "sid").exists() and list(tmp_path.iterdir()) == []  # nothing half-written
    with pytest.raises(ExpodiffError, match="index.csv"):
        read_eval_index(tmp_path)
    with pytest.raises(ConfigError, match="crop"):
        pack_eval_set(pairs, tmp_path / "sid", crop=0)
    assert center_crop(np.zeros((4, 5, 7)), None).shape == (4, 5, 7)


def test_patch_store_round_trip(tiny_data, tmp_path):
    files = sid_train_gt_files(tiny_data / "SID")
    out = build_patch_store(files, tmp_path / "patches", patch_size=8, crop_hw=(16, 32))
    raw = np.load(out / "patches.npy", mmap_mode="r")
    assert raw.dtype == np.uint16 and raw.shape == (len(files) * 8, 4, 8, 8)
    store = PatchStore(out)
    assert len(store) == len(files) * 8
    assert store.meta["patch_size"] == 8 and store.meta["count"] == len(store)
    for n, path in enumerate(files):
        frame = read_raw(path)
        img = pack(frame)[:, 8:24, 8:40]  # centre 16×32 of 32×48
        for k in range(8):
            y, x = divmod(k, 4)
            i = n * 8 + k
            assert store[i].dtype == np.float32
            np.testing.assert_array_equal(store[i], img[:, 8 * y : 8 * y + 8, 8 * x : 8 * x + 8])
            m = store.meta["patches"][i]
            assert (m["file"], m["top"], m["left"]) == (str(path), 8 + 8 * y, 8 + 8 * x)
            assert (m["iso"], m["exposure_time"], m["white_level"]) == (frame.iso, frame.exposure_time, 16383)
            assert m["black_level"] == [512.0] * 4
    np.testing.assert_array_equal(store[-1], store[len(store) - 1])
    with pytest.raises(IndexError):
        store[len(store)]
    clone = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(clone[3], store[3])


def test_patch_store_errors(tiny_data, tmp_path):
    files = sid_train_gt_files(tiny_data / "SID")
    with pytest.raises(ExpodiffError, match=r"00001_00_10s\.dng: packed image 32×48 is smaller than crop_hw 64×32"):
        build_patch_store(files, tmp_path / "p", patch_size=16, crop_hw=(64, 32))
    with pytest.raises(ConfigError, match="patch_size 12"):
        build_patch_store(files, tmp_path / "p", patch_size=12, crop_hw=(16, 32))
    with pytest.raises(ExpodiffError, match="no such raw file"):
        build_patch_store([files[0], tmp_path / "gone.ARW"], tmp_path / "p", patch_size=8, crop_hw=(16, 16))
    assert list(tmp_path.iterdir()) == []  # atomic: no partial store, no temporary directory
    with pytest.raises(ExpodiffError, match="meta.json"):
        PatchStore(tmp_path)
    out = build_patch_store(files[:1], tmp_path / "p", patch_size=8, crop_hw=(16, 16))
    assert len(PatchStore(build_patch_store(files, out, patch_size=8, crop_hw=(16, 16)))) == 4 * len(files)  # rebuilt
