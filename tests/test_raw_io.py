"""expodiff.io.raw: DNG round trip, packing order, black/white handling, EXIF, errors."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import rawpy

from expodiff.errors import RawReadError
from expodiff.io.raw import load_packed, pack, read_exif, read_raw, write_dng

H, W = 48, 64  # LibRaw rejects images under 22 pixels on a side


def _mosaic(planes: np.ndarray, cfa: str) -> np.ndarray:
    """Lay packed planes (R, G1, B, G2; G1 on R's row) out as a mosaic with the given CFA."""
    r, g1, b, g2 = planes
    cells = {"RGGB": [[r, g1], [g2, b]], "BGGR": [[b, g2], [g1, r]], "GRBG": [[g1, r], [b, g2]]}[cfa]
    m = np.empty((2 * r.shape[0], 2 * r.shape[1]), dtype=np.uint16)
    for y in range(2):
        for x in range(2):
            m[y::2, x::2] = cells[y][x]
    return m


def test_dng_round_trip_is_bit_exact(tmp_path):
    mosaic = np.random.default_rng(1).integers(0, 16384, (H, W)).astype(np.uint16)
    path = tmp_path / "x.dng"
    write_dng(path, mosaic, iso=3200, exposure_time=Fraction(1, 30))
    with rawpy.imread(str(path)) as raw:
        assert np.array_equal(raw.raw_image_visible, mosaic)
    frame = read_raw(path)
    assert np.array_equal(frame.mosaic, mosaic) and frame.mosaic.dtype == np.uint16
    assert frame.black_level.tolist() == [512.0] * 4 and frame.black_level.dtype == np.float32
    assert frame.white_level == 16383
    assert frame.raw_pattern.tolist() == [[0, 1], [3, 2]]
    assert (frame.iso, frame.exposure_time, frame.path) == (3200.0, pytest.approx(1 / 30), path)


def test_generated_dng_reads_back_exactly(tiny_data):
    path = tiny_data / "SID" / "Sony" / "long" / "10185_00_10s.dng"
    frame = read_raw(path)
    with rawpy.imread(str(path)) as raw:
        assert np.array_equal(raw.raw_image_visible, frame.mosaic)
    assert frame.mosaic.shape == (64, 96)
    assert pack(frame).shape == (4, 32, 48) and pack(frame).dtype == np.float32


@pytest.mark.parametrize("cfa", ["BGGR", "GRBG"])
def test_other_cfa_packs_like_rggb(tmp_path, cfa):
    planes = np.random.default_rng(2).integers(512, 16384, (4, H // 2, W // 2)).astype(np.uint16)
    for name in ("RGGB", cfa):
        write_dng(tmp_path / f"{name}.dng", _mosaic(planes, name), iso=100, exposure_time=Fraction(1), cfa=name)
    packed_rggb = pack(read_raw(tmp_path / "RGGB.dng"))
    packed_other = pack(read_raw(tmp_path / f"{cfa}.dng"))
    assert np.array_equal(packed_rggb, packed_other)
    expected = (planes.astype(np.float32) - np.float32(512)) / np.float32(16383 - 512)
    assert np.array_equal(packed_rggb, expected)


def test_per_channel_black_and_white_clipping(tmp_path):
    # Black levels in raster order of a BGGR cell: B=500, G(B row)=510, G(R row)=520, R=530.
    planes = np.full((4, H // 2, W // 2), 1000, dtype=np.uint16)
    planes[:, 0, 0] = [0, 0, 0, 0]  # below black → 0
    planes[:, 0, 1] = [16383, 16383, 16383, 16383]  # white → 1
    path = tmp_path / "bggr.dng"
    write_dng(path, _mosaic(planes, "BGGR"), iso=100, exposure_time=Fraction(1), cfa="BGGR",
              black_level=(500, 510, 520, 530), white_level=16383)  # fmt: skip
    frame = read_raw(path)
    black = np.array([530, 520, 500, 510], dtype=np.float32)  # R, G1, B, G2
    assert frame.black_level.tolist() == black.tolist()
    packed = pack(frame)
    assert packed[:, 0, 0].tolist() == [0.0] * 4
    assert packed[:, 0, 1].tolist() == [1.0] * 4
    np.testing.assert_array_equal(packed[:, 1, 1], (1000 - black) / (16383 - black))


def test_exif_round_trip(tmp_path):
    path = tmp_path / "e.dng"
    write_dng(path, np.zeros((H, W), np.uint16), iso=6400, exposure_time=Fraction(1, 3200))
    assert read_exif(path) == (6400.0, 1 / 3200)


def test_missing_exif_iso_is_an_error(tmp_path):
    path = tmp_path / "noiso.dng"
    write_dng(path, np.zeros((H, W), np.uint16), iso=0, exposure_time=Fraction(1, 10))
    with pytest.raises(RawReadError, match="no EXIF ISO") as err:
        read_raw(path)
    assert str(path) in str(err.value)


def test_truncated_dng_is_an_error(tmp_path, tiny_data):
    data = (tiny_data / "SID" / "Sony" / "long" / "10185_00_10s.dng").read_bytes()
    path = tmp_path / "truncated.dng"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RawReadError) as err:
        read_raw(path)
    assert str(path) in str(err.value)


def test_text_file_and_missing_file_are_errors(tmp_path):
    text = tmp_path / "notes.dng"
    text.write_text("this is not a raw file\n" * 20)
    with pytest.raises(RawReadError, match="not a readable raw file") as err:
        read_raw(text)
    assert str(text) in str(err.value)
    with pytest.raises(RawReadError, match="no such raw file"):
        read_raw(tmp_path / "absent.ARW")


def test_load_packed_raw_and_npy(tmp_path, tiny_data):
    raw_path = tiny_data / "SID" / "Sony" / "short" / "10185_00_0.1s.dng"
    arr, frame = load_packed(raw_path)
    assert frame is not None and np.array_equal(arr, pack(frame))
    np.save(tmp_path / "ok.npy", arr.astype(np.float64))
    arr2, frame2 = load_packed(tmp_path / "ok.npy")
    assert frame2 is None and arr2.dtype == np.float32 and np.array_equal(arr2, arr)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((3, 8, 8), np.float32), "4×H×W"),
        (np.zeros((4, 8), np.float32), "4×H×W"),
        (np.zeros((4, 8, 8), np.uint16), "float"),
        (np.full((4, 8, 8), np.nan, np.float32), "NaN"),
    ],
)
def test_load_packed_rejects_bad_npy(tmp_path, bad, message):
    path = tmp_path / "bad.npy"
    np.save(path, bad)
    with pytest.raises(RawReadError, match=message) as err:
        load_packed(path)
    assert str(path) in str(err.value)
