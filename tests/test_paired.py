"""Paired-real training data as the original made it (issue 13): the shot-00 pairs of the SID
train list, checked against the original's 280-pair list on the real SID, and the same fixed
centre patches as the synthetic ground truths, input and target aligned."""

import shutil
from importlib.resources import files

import numpy as np
import pytest

from expodiff.data.pairs import PairStore, build_pair_store, build_sid_pair_store
from expodiff.data.patches import centre_patches
from expodiff.data.sid import PAIRED_REFERENCE, read_pair_list, select_paired_pairs, sid_train_pairs
from expodiff.errors import ConfigError, ExpodiffError
from expodiff.io.raw import pack_dn, read_raw


@pytest.fixture(scope="module")
def bursts(tiny_data, tmp_path_factory):
    """A SID-like tree whose train list holds shots 00, 01 and 02 of every scene at the three
    ratios (shots 01/02: copies of shot 00's real DNGs under burst names)."""
    root = tmp_path_factory.mktemp("bursts") / "SID"
    shutil.copytree(tiny_data / "SID", root)
    lines = []
    for line in (root / "Sony_train_list.txt").read_text().splitlines():
        for shot in ("00", "01", "02"):
            short = line.split()[0]
            burst = short.replace("_00_", f"_{shot}_")
            if shot != "00":
                shutil.copy(root / short.removeprefix("./"), root / burst.removeprefix("./"))
            lines.append(" ".join([burst, *line.split()[1:]]))
    (root / "Sony_train_list.txt").write_text("\n".join(lines) + "\n")
    return root


def test_shot_00_is_selected(bursts):
    pairs = sid_train_pairs(bursts)
    chosen = select_paired_pairs(pairs, "shot-00")
    assert len(pairs) == 3 * len(chosen) and {p.short.stem.split("_")[1] for p in chosen} == {"00"}
    assert sorted({p.ratio for p in chosen}) == [100, 250, 300]
    assert select_paired_pairs(pairs, "all-listed") == pairs


def test_the_bundled_list_is_the_originals_280_pairs():
    pairs = read_pair_list(files("expodiff") / "resources" / PAIRED_REFERENCE)
    exposures = [short.rsplit("_", 1)[1] for short, _ in pairs]
    assert len(pairs) == 280
    assert (exposures.count("0.1s.ARW"), exposures.count("0.04s.ARW"), exposures.count("0.033s.ARW")) == (161, 85, 34)
    assert all(short.split("_")[1] == "00" == long.split("_")[1] for short, long in pairs)


def test_a_selection_that_differs_from_the_reference_fails_loudly(bursts, tmp_path):
    pairs = sid_train_pairs(bursts)
    chosen = select_paired_pairs(pairs, "shot-00")
    same = tmp_path / "same.txt"
    same.write_text("# a comment\n" + "".join(f"{p.short.name} {p.long.name}\n" for p in chosen))
    assert select_paired_pairs(pairs, "shot-00", reference=same) == chosen
    short = tmp_path / "short.txt"
    short.write_text("".join(f"{p.short.name} {p.long.name}\n" for p in chosen[1:]))
    with pytest.raises(ExpodiffError, match=r"Sony_train_list.txt: the shot-00 pairs differ .* 1 not in it"):
        select_paired_pairs(pairs, "shot-00", reference=short, list_file="Sony_train_list.txt")
    # the real-SID check against the bundled 280: the generated tree is not the real SID
    with pytest.raises(ExpodiffError, match=r"0 of its 280 missing|280 missing"):
        build_sid_pair_store(bursts, tmp_path / "store", real=True, crop_hw=(32, 32), patch_size=16)
    assert not (tmp_path / "store").exists()


def test_a_list_without_shot_00_selects_nothing(bursts, tmp_path):
    pairs = [p for p in sid_train_pairs(bursts) if "_00_" not in p.short.name]
    with pytest.raises(ExpodiffError, match="selects no pairs"):
        select_paired_pairs(pairs, "shot-00", list_file=bursts / "Sony_train_list.txt")
    with pytest.raises(ConfigError, match="paired.selection"):
        select_paired_pairs(pairs, "every-other")


def test_centre_patches_are_the_patch_stores_windows_input_and_target_aligned(bursts, tmp_path):
    """8 fixed windows per pair (here 2×2 of 16² from a 32×32 centre crop of the 32×48 packed
    frames): one sample per (pair, window), each the exact packed DN of both frames there."""
    store_dir = build_sid_pair_store(bursts, tmp_path / "pairs", crop_hw=(32, 32), patch_size=16)
    store = PairStore(store_dir)
    chosen = select_paired_pairs(sid_train_pairs(bursts), "shot-00")
    short0 = read_raw(chosen[0].short)
    windows = centre_patches(*pack_dn(short0).shape[1:], (32, 32), 16)
    assert windows == [(0, 8), (0, 24), (16, 8), (16, 24)]
    assert len(store) == len(chosen) * 4 and store.windows == windows
    rng = np.random.default_rng(0)
    for i in (0, 5, len(store) - 1):
        pair = chosen[i // 4]
        assert store.record(i)["short_file"] == str(pair.short)
        top, left = windows[i % 4]
        short, long, at = store.crop_dn(i, 16, rng)
        assert at == (top, left)
        want_short = np.rint(pack_dn(read_raw(pair.short)))[:, top : top + 16, left : left + 16]
        want_long = np.rint(pack_dn(read_raw(pair.long)))[:, top : top + 16, left : left + 16]
        np.testing.assert_array_equal(short, want_short)
        np.testing.assert_array_equal(long, want_long)
    assert rng.random() == np.random.default_rng(0).random()  # fixed windows draw nothing
    with pytest.raises(ConfigError, match="patches.size"):
        store.crop_dn(0, 8, rng)


def test_random_crops_stay_available(bursts, tmp_path):
    pairs = select_paired_pairs(sid_train_pairs(bursts), "all-listed")
    store = PairStore(build_pair_store(pairs, tmp_path / "random", crops="random"))
    assert len(store) == len(pairs) and store.windows is None
    a = store.crop_dn(0, 16, np.random.default_rng(1))[2]
    assert a == store.crop_dn(0, 16, np.random.default_rng(1))[2]


def test_the_pair_store_rule_builds_the_centre_patches(tiny_data, tmp_path):
    """rule pair_store with the demo config: the store holds the centre patches of the shot-00
    pairs, and samples = pairs × patches (what training and the planner read)."""
    import json

    from test_workflow import SNAKEMAKE, copy_workflow, snakemake

    if not SNAKEMAKE.exists():
        pytest.skip("snakemake is not installed beside python")
    work = copy_workflow(tmp_path / "wf")
    snakemake("--cores", "1", "results/pairs/sid_train", "--configfile", "configs/demo.yaml", cwd=work, check=True)
    meta = json.loads((work / "results/pairs/sid_train/meta.json").read_text())
    assert meta["crops"] == "centre-patches" and meta["samples"] == meta["count"] * len(meta["windows"]) > 0
    assert all("_00_" in p["short_file"] for p in meta["pairs"])
