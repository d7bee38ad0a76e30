"""expodiff.data.sid and expodiff.data.eld: pair listing on the tiny demo tree and on hand-made trees."""

from __future__ import annotations

import shutil

import pytest

from expodiff.data.eld import eld_eval_pairs, nearest_reference
from expodiff.data.sid import sid_eval_pairs, sid_train_gt_files, sid_train_pairs
from expodiff.data.synthetic import PRESETS
from expodiff.errors import ConfigError, ExpodiffError

SCENES = PRESETS["tiny"].sid_eval_scenes


def test_sid_eval_pairs(tiny_data):
    root = tiny_data / "SID"
    pairs = sid_eval_pairs(root, SCENES, (100, 250, 300))
    assert [(p.scene, p.ratio) for p in pairs] == [(s, r) for s in SCENES for r in (100, 250, 300)]
    first = pairs[:3]
    assert [p.input.name for p in first] == ["10185_00_0.1s.dng", "10185_00_0.04s.dng", "10185_00_0.033s.dng"]
    assert {p.gt for p in first} == {root / "Sony" / "long" / "10185_00_10s.dng"}
    assert {(p.dataset, p.camera) for p in pairs} == {("sid", "SonyA7S2")}


def test_sid_real_extension_and_30s_ground_truth(tmp_path):
    # Ratios come from the file names only, so empty files are enough here.
    for rel in ("short/10003_00_0.1s.ARW", "short/10003_00_0.04s.ARW", "long/10003_00_30s.ARW"):
        (tmp_path / "Sony" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "Sony" / rel).touch()
    pairs = sid_eval_pairs(tmp_path, ["10003"], (100, 250))
    assert [p.ratio for p in pairs] == [300, 300]  # 30/0.1 and 30/0.04=750, both capped
    assert pairs[0].gt.name == "10003_00_30s.ARW"


def test_sid_missing_files_are_named(tiny_data, tmp_path):
    with pytest.raises(ExpodiffError, match=r"Sony/short/99999_00_0\.1s\.\*") as err:
        sid_eval_pairs(tiny_data / "SID", ["99999"], (100,))
    assert str(tiny_data / "SID") in str(err.value)
    with pytest.raises(ConfigError, match="ratio 200"):
        sid_eval_pairs(tiny_data / "SID", ["10185"], (200,))
    with pytest.raises(ExpodiffError, match="Sony_train_list.txt"):
        sid_train_gt_files(tmp_path)


def test_sid_train_lists(tiny_data, tmp_path):
    root = tiny_data / "SID"
    n = PRESETS["tiny"].n_train
    assert sid_train_gt_files(root) == [root / "Sony" / "long" / f"{i:05d}_00_10s.dng" for i in range(1, n + 1)]
    pairs = sid_train_pairs(root)
    assert len(pairs) == 3 * n
    assert sorted({p.ratio for p in pairs}) == [100, 250, 300]
    assert all(p.short.is_file() and p.long.is_file() and p.iso >= 100 for p in pairs)

    broken = tmp_path / "SID"
    shutil.copytree(root, broken)
    (broken / "Sony" / "long" / "00001_00_10s.dng").unlink()
    with pytest.raises(ExpodiffError, match=r"Sony_train_list\.txt:1: listed file .*00001_00_10s\.dng"):
        sid_train_gt_files(broken)


def test_eld_eval_pairs(tiny_data):
    pairs = eld_eval_pairs(tiny_data / "ELD", "SonyA7S2", [1], (100, 200))
    got = [(p.ratio, int(p.input.stem[4:]), int(p.gt.stem[4:])) for p in pairs]
    assert got == [(100, 4, 6), (100, 9, 11), (100, 14, 16), (200, 5, 6), (200, 10, 11), (200, 15, 16)]
    assert {(p.dataset, p.camera, p.scene) for p in pairs} == {("eld", "SonyA7S2", "scene-1")}
    ids = (2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 15)
    assert [nearest_reference(i) for i in ids] == [1, 1, 6, 6, 6, 6, 11, 11, 11, 11, 16, 16]


def test_eld_other_extension_and_errors(tiny_data, tmp_path):
    scene = tmp_path / "ELD" / "SonyA7S2" / "scene-3"
    shutil.copytree(tiny_data / "ELD" / "SonyA7S2" / "scene-1", scene)
    for f in scene.glob("*.dng"):
        f.rename(f.with_suffix(".ARW"))  # real ELD Sony files; EXIF is read from the content
    assert len(eld_eval_pairs(tmp_path / "ELD", "SonyA7S2", [3], (100, 200))) == 6

    shutil.copy(scene / "IMG_0002.ARW", scene / "IMG_0004.ARW")  # a ×1 frame where ×100 belongs
    with pytest.raises(ExpodiffError, match=r"IMG_0004\.ARW: EXIF ratio to IMG_0006\.ARW is 1\.00"):
        eld_eval_pairs(tmp_path / "ELD", "SonyA7S2", [3], (100,))
    (scene / "IMG_0016.ARW").unlink()
    with pytest.raises(ExpodiffError, match=r"scene-3/IMG_0016\.\*"):
        eld_eval_pairs(tmp_path / "ELD", "SonyA7S2", [3], (200,))
    with pytest.raises(ConfigError, match="ratio 300"):
        eld_eval_pairs(tmp_path / "ELD", "SonyA7S2", [3], (300,))
