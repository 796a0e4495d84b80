"""The official layout reader, on a tiny fixture written in that layout."""
import numpy as np
import pytest
import torch
from PIL import Image

from amodal.adiw.official import LAYOUT, OfficialAdiwDataset, read_split, write_official
from amodal.adiw.sample import AdiwSample


def _write(root, sample_id, h=20, w=30, seed=0):
    rng = np.random.default_rng(seed)
    files = {k: root / v.format(id=sample_id) for k, v in LAYOUT.items()}
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(files["image"])
    amodal = np.zeros((h, w), np.uint8)
    amodal[4:16, 5:25] = 255
    visible = amodal.copy()
    visible[:, 15:] = 0  # 10 of 20 columns visible: ratio 0.5, "hard"
    Image.fromarray(amodal).save(files["amodal_mask"])
    Image.fromarray(visible).save(files["visible_mask"])
    depth = {k: rng.integers(0, 65536, (h, w)).astype(np.uint16) for k in ("observed_depth", "target_depth")}
    for key, value in depth.items():
        Image.fromarray(value).save(files[key])  # 16-bit grayscale PNG, as the official labels
    return rgb, amodal > 0, visible > 0, depth


def test_reads_every_raster_exactly(tmp_path):
    rgb, amodal, visible, depth = _write(tmp_path, "6422204")
    item = OfficialAdiwDataset(tmp_path, size=None)[0]
    assert item["id"] == "6422204" and item["bucket"] == "hard" and item["visible_ratio"] == 0.5
    np.testing.assert_array_equal(item["image"].permute(1, 2, 0).numpy(), rgb / np.float32(255))
    np.testing.assert_array_equal(item["amodal_mask"][0].numpy(), amodal)
    np.testing.assert_array_equal(item["visible_mask"][0].numpy(), visible)
    for key in ("observed_depth", "target_depth"):
        np.testing.assert_allclose(item[key][0].numpy(), depth[key] / 65535.0, rtol=1e-6)


def test_split_list_and_paper_squash(tmp_path):
    for i, sid in enumerate(["11", "22"]):
        _write(tmp_path / "data", sid, seed=i)
    split = tmp_path / "val.txt"
    split.write_text("images/sa_22.jpg depth/22_depth.png\n\nimages/sa_11.jpg depth/11_depth.png\n")
    assert read_split(split) == ["22", "11"]
    ds = OfficialAdiwDataset(tmp_path / "data", split, size=14)
    assert len(ds) == 2 and ds[0]["id"] == "22"
    native = OfficialAdiwDataset(tmp_path / "data", split, size=None)[0]
    from torchvision.transforms import InterpolationMode, Resize

    official = Resize(size=(14, 14), interpolation=InterpolationMode.NEAREST_EXACT)
    for key in ("image", "observed_depth", "target_depth", "amodal_mask", "visible_mask"):
        assert torch.equal(ds[0][key], official(native[key])), key


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="official ADIW folder not found"):
        OfficialAdiwDataset(tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="depth_da_update_combine"):
        OfficialAdiwDataset(tmp_path)
    bad = tmp_path / "bad.txt"
    bad.write_text("images/sa_1.jpg depth/1.png\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        read_split(bad)
    _write(tmp_path, "5")
    (tmp_path / LAYOUT["visible_mask"].format(id="5")).unlink()
    with pytest.raises(FileNotFoundError, match="5_visible_mask.png"):
        OfficialAdiwDataset(tmp_path)[0]


def _sample(sample_id, h=12, w=16, seed=0):
    rng = np.random.default_rng(seed)
    amodal = np.zeros((h, w), bool)
    amodal[2:10, 3:13] = True
    visible = amodal.copy()
    visible[:, 8:] = False
    observed = rng.random((h, w)).astype(np.float32)
    target = observed.copy()
    target[amodal] = 1.25       # beyond [0, 1]: the official uint16 cast would wrap it to 0.25
    target[0, 0] = -0.5
    return AdiwSample(sample_id, rng.integers(0, 256, (h, w, 3), dtype=np.uint8), observed, amodal, visible,
                      target, "hard", 0.5)


def test_written_official_files_are_what_the_layout_and_reader_expect(tmp_path):
    samples = [_sample("chelsea-00"), _sample("coffee-01", seed=1)]
    assert write_official(samples, tmp_path, {"train": ["chelsea-00"], "val": ["coffee-01"]}) == ["chelsea-00", "coffee-01"]
    # the files themselves, read with PIL: RGB, 0/255 masks, 16-bit depth = round(clip(d) * 65535)
    s = samples[0]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "occlusion/chelsea-00_occlusion.png")), s.image)
    mask = np.asarray(Image.open(tmp_path / "whole_mask/chelsea-00_whole_mask.png"))
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255} and np.array_equal(mask == 255, s.amodal_mask)
    target = np.asarray(Image.open(tmp_path / "depth_da_update_combine/chelsea-00_depth.png"))
    assert target.dtype.itemsize == 2 and target[5, 5] == 65535 and target[0, 0] == 0
    observed = np.asarray(Image.open(tmp_path / "depth_da_update_occ/chelsea-00_depth.png")).astype(np.int64)
    np.testing.assert_array_equal(observed, np.floor(s.observed_depth.astype(np.float64) * 65535 + 0.5))
    # the split lists in the official line format, and the reader sees the samples through them
    assert (tmp_path / "data_split/sam/val.txt").read_text() == "images/sa_coffee-01.jpg depth/coffee-01_depth.png\n"
    item = OfficialAdiwDataset(tmp_path, tmp_path / "data_split/sam/train.txt", size=None)[0]
    assert item["id"] == "chelsea-00" and item["bucket"] == "hard" and item["visible_ratio"] == 0.5
    np.testing.assert_array_equal(item["visible_mask"][0].numpy(), s.visible_mask)


def test_write_official_refuses_ids_that_cannot_name_files_and_unknown_split_ids(tmp_path):
    with pytest.raises(ValueError, match="cannot name files"):
        write_official([_sample("a b")], tmp_path)
    with pytest.raises(ValueError, match="'val' names samples that were not written: \\['zz'\\]"):
        write_official([_sample("aa")], tmp_path, {"val": ["zz"]})
