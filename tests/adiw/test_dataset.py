"""Tests for amodal.adiw.dataset: sizes, mask semantics after resizing, flips."""
from __future__ import annotations

import pytest
import torch

from adiw_testdata import BrightnessDepth, write_sources
from amodal.adiw.build import build, BuildConfig
from amodal.adiw.sources import find_sources
from amodal.adiw.dataset import AdiwDataset


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("adiw")
    write_sources(root / "src", 2)
    build(find_sources(root / "src/images", root / "src/sa1b"), root / "out", BrightnessDepth(), BuildConfig(samples_per_image=3), progress=False)
    return root / "out"


def test_items_are_resized_tensors(built):
    ds = AdiwDataset(built, size=32)
    assert len(ds) > 0
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    for key in ("observed_depth", "target_depth", "amodal_mask", "visible_mask"):
        assert item[key].shape == (1, 32, 32)
    for key in ("amodal_mask", "visible_mask"):
        assert set(item[key].unique().tolist()) <= {0.0, 1.0}
    assert (item["visible_mask"] <= item["amodal_mask"]).all()
    assert 0 <= item["target_depth"].min() and item["target_depth"].max() <= 1


def test_native_size_matches_the_files(built):
    ds = AdiwDataset(built, size=None)
    item = ds[0]
    assert item["image"].shape == (3, 48, 64)


def test_flip_flips_everything(built):
    plain = AdiwDataset(built, size=32)[1]
    flipping = AdiwDataset(built, size=32, hflip=True)
    seen = set()
    for seed in range(20):
        torch.manual_seed(seed)
        item = flipping[1]
        flipped = torch.equal(item["image"], plain["image"].flip(-1)) and not torch.equal(item["image"], plain["image"])
        same = torch.equal(item["image"], plain["image"])
        assert flipped or same
        for key in ("observed_depth", "target_depth", "amodal_mask", "visible_mask"):
            assert torch.equal(item[key], plain[key].flip(-1) if flipped else plain[key])
        seen.add(flipped)
    assert seen == {True, False}


def test_bucket_filter_and_missing_folder(built, tmp_path):
    all_items = AdiwDataset(built, size=16)
    hard = AdiwDataset(built, size=16, buckets=["hard"])
    assert len(hard) == sum(r["bucket"] == "hard" for _, r in all_items.items)
    with pytest.raises(FileNotFoundError):
        AdiwDataset(tmp_path / "nothing")


def test_paper_mode_is_a_nearest_exact_squash_of_the_files(built):
    """The default mode reads what the official loader reads: every raster squashed with nearest-exact."""
    from torchvision.transforms import InterpolationMode, Resize

    native = AdiwDataset(built, size=None)[0]
    item = AdiwDataset(built, size=20)[0]
    official = Resize(size=(20, 20), interpolation=InterpolationMode.NEAREST_EXACT)
    for key in ("image", "observed_depth", "target_depth", "amodal_mask", "visible_mask"):
        assert torch.equal(item[key], official(native[key])), key
    wide = AdiwDataset(built, size=24, mode="keep-aspect")[0]
    assert wide["image"].shape == (3, 24, 24)


def test_open_dataset_tells_the_layouts_apart(built, tmp_path):
    from amodal.adiw.dataset import open_dataset
    from amodal.adiw.official import OfficialAdiwDataset

    assert isinstance(open_dataset(built, size=16), AdiwDataset)
    (tmp_path / "official" / "whole_mask").mkdir(parents=True)
    (tmp_path / "official" / "depth_da_update_combine").mkdir()
    assert isinstance(open_dataset(tmp_path / "official", size=16), OfficialAdiwDataset)
    with pytest.raises(FileNotFoundError, match="neither ADIW shards"):
        open_dataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        open_dataset(tmp_path / "none")
