"""Tests for amodal.adiw.sample: the pseudo-label against a hand-made affine case, clipping, disk format."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from amodal.adiw.sample import (
    AdiwSample,
    decode_masks,
    encode_masks,
    pseudo_label,
    read_manifest,
    read_sample,
    ring_mask,
    write_manifest,
    write_sample,
)


def layout(shape=(30, 40)):
    amodal = np.zeros(shape, bool)
    amodal[8:22, 10:30] = True
    occluder = np.zeros(shape, bool)
    occluder[5:25, 20:36] = True
    return amodal, amodal & ~occluder, occluder


def test_label_recovers_an_exact_affine_relation():
    rng = np.random.default_rng(0)
    amodal, visible, occluder = layout()
    d_b = rng.random(amodal.shape)
    d_o = 0.6 * d_b + 0.1  # the composite's frame
    d_o[occluder] = 0.95  # the occluder is near
    for fit in ("visible", "ring"):
        label, s, t = pseudo_label(d_o, d_b, amodal, visible, fit, occluder)
        assert s == pytest.approx(0.6) and t == pytest.approx(0.1)
        assert np.allclose(label[amodal], 0.6 * d_b[amodal] + 0.1)
        assert np.array_equal(label[~amodal], d_o[~amodal].astype(np.float32))


def test_label_is_clipped_not_wrapped():
    amodal, visible, occluder = layout()
    d_b = np.tile(np.linspace(0, 1, 40), (30, 1))
    d_o = 3.0 * d_b - 1.0  # steep: the aligned hidden part leaves [0, 1]
    label, s, _ = pseudo_label(d_o, d_b, amodal, visible)
    assert s == pytest.approx(3.0)
    assert label[amodal].min() >= 0 and label[amodal].max() <= 1
    hidden = amodal & ~visible
    assert np.allclose(label[hidden], np.clip(3.0 * d_b[hidden] - 1.0, 0, 1))
    assert (label[hidden] == 1.0).any()  # would have wrapped to ~0 in uint16


def test_ring_avoids_the_object_and_the_occluder():
    amodal, _, occluder = layout()
    ring = ring_mask(amodal, occluder, 2)
    assert not (ring & amodal).any() and not (ring & occluder).any()
    assert ring[6, 15] and not ring[3, 15]  # 2 px above the top edge, not 5


def test_label_errors():
    amodal, visible, occluder = layout()
    d = np.random.default_rng(0).random(amodal.shape)
    with pytest.raises(ValueError, match="fit must be"):
        pseudo_label(d, d, amodal, visible, "everywhere")
    with pytest.raises(ValueError, match="occluder"):
        pseudo_label(d, d, amodal, visible, "ring")
    with pytest.raises(ValueError, match="shapes differ"):
        pseudo_label(d, d[:5], amodal, visible)
    with pytest.raises(ValueError, match="valid pixels"):
        pseudo_label(d, d, amodal, np.zeros_like(visible))


def test_mask_encoding_round_trip():
    amodal, visible, _ = layout()
    a, v = decode_masks(encode_masks(amodal, visible))
    assert np.array_equal(a, amodal) and np.array_equal(v, visible)
    with pytest.raises(ValueError):
        decode_masks(np.full((2, 2), 7, np.uint8))


def test_sample_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    amodal, visible, _ = layout()
    sample = AdiwSample(
        "s-00", rng.integers(0, 255, (30, 40, 3), dtype=np.uint8), rng.random((30, 40)).astype(np.float32),
        amodal, visible, rng.random((30, 40)).astype(np.float32), "mid", 0.6, {"source": "x"},
    )
    record = write_sample(tmp_path, sample)
    json.dumps(record)
    back = read_sample(tmp_path, record)
    assert np.array_equal(back.image, sample.image)
    assert np.array_equal(back.amodal_mask, amodal) and np.array_equal(back.visible_mask, visible)
    # float16 on disk: within half a float16 step near 1
    assert np.abs(back.target_depth - sample.target_depth).max() <= 2**-11
    assert not list(tmp_path.glob(".*.tmp"))
    (tmp_path / record["files"]["depth"]).unlink()
    with pytest.raises(FileNotFoundError, match="depth file missing"):
        read_sample(tmp_path, record)


def test_manifest_round_trip(tmp_path):
    path = tmp_path / "manifest.jsonl"
    assert read_manifest(path) == []
    write_manifest(path, [{"a": 1}, {"b": [2]}])
    assert read_manifest(path) == [{"a": 1}, {"b": [2]}]


@pytest.mark.parametrize("defer_fsync", [True, False])
def test_sample_files_reach_the_disk_before_the_manifest(tmp_path, monkeypatch, defer_fsync):
    # A manifest that commits a sample whose bytes a power cut could still lose is no
    # commit: every sample file must be flushed (file and folder) before the manifest is.
    import amodal.adiw.sample
    import amodal.utils.atomic

    flushed = []
    for module in (amodal.utils.atomic, amodal.adiw.sample):
        monkeypatch.setattr(module, "fsync_path", lambda p: flushed.append(Path(p)))
    amodal_mask, visible, _ = layout()
    depth = np.full((30, 40), 0.5, np.float32)
    sample = AdiwSample("s-01", np.zeros((30, 40, 3), np.uint8), depth, amodal_mask, visible, depth, "mid", 0.6)
    record = write_sample(tmp_path, sample, defer_fsync)
    write_manifest(tmp_path / "manifest.jsonl", [record])
    names = [p.name for p in flushed]
    manifest = next(i for i, n in enumerate(names) if n.startswith(".manifest.jsonl."))  # its temporary file
    for name in record["files"].values():
        assert name in names[:manifest] or any(n.startswith(f".{name}.") for n in names[:manifest])
    assert tmp_path.name in names[:manifest]  # the folder too: the renames themselves are durable
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*record["files"].values(), "manifest.jsonl"])


def test_sample_pngs_use_the_fastest_zlib_level(tmp_path):
    # Writing PNGs at Pillow's default level 6 was half of the builder's time. The level
    # is in the zlib header of the first IDAT chunk (RFC 1950: FLEVEL, the top two bits
    # of the FLG byte; 0 means "fastest"). The pixels are the same at any level.
    amodal_mask, visible, _ = layout()
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    depth = np.full((30, 40), 0.5, np.float32)
    record = write_sample(tmp_path, AdiwSample("s-02", image, depth, amodal_mask, visible, depth, "mid", 0.6))
    for key in ("image", "masks"):
        data = (tmp_path / record["files"][key]).read_bytes()
        idat = data.index(b"IDAT")
        flg = data[idat + 5]
        assert flg >> 6 == 0, f"{key}: zlib level class {flg >> 6}"
    assert np.array_equal(read_sample(tmp_path, record).image, image)
