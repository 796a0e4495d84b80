"""Tests for amodal.adiw.pix2gestalt: a tiny tree in pix2gestalt's layout becomes ADIW samples."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from adiw_testdata import BrightnessDepth, disc
from amodal.adiw.shards import manifest_records
from amodal.adiw.pix2gestalt import import_release, release_sources
from amodal.adiw.sample import read_sample
from amodal.adiw.composite import paste_occluder


def make_release(root, ids=("10000015", "10000023")):
    truth = {}
    for folder in ("occlusion", "whole", "whole_mask", "visible_object_mask", "sa1b"):
        (root / folder).mkdir(parents=True)
    for k, sample_id in enumerate(ids):
        shape = (40, 56)
        original = np.zeros((*shape, 3), np.uint8) + np.linspace(10, 60, shape[0]).astype(np.uint8)[:, None, None]
        target, occluder = disc(shape, (20, 20), 9), disc(shape, (20, 40), 8)
        original[target] = (200, 120, 40)
        original[occluder] = (90, 220, 250)
        comp = paste_occluder(original, target, original, occluder, (0.3, 0.8), seed=k)
        Image.fromarray(comp.image).save(root / "occlusion" / f"{sample_id}_occlusion.png")
        Image.fromarray((comp.amodal_mask * 255).astype(np.uint8)).save(root / "whole_mask" / f"{sample_id}_whole_mask.png")
        Image.fromarray((comp.visible_mask * 255).astype(np.uint8)).save(root / "visible_object_mask" / f"{sample_id}_visible_mask.png")
        Image.fromarray(original).save(root / "sa1b" / f"sa_{sample_id}.png")
        truth[sample_id] = (original, comp)
    return truth


def reference_label(observed, background, amodal, visible):
    """The paper's label written out: ``np.linalg.lstsq`` fit of ``s·D_b + t ≈ D_o`` on the
    visible pixels (float64), pasted inside the amodal mask and clipped to [0, 1]."""
    d_o, d_b = np.asarray(observed, np.float64), np.asarray(background, np.float64)
    design = np.stack([d_b[visible], np.ones(int(visible.sum()))], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(design, d_o[visible], rcond=None)
    label = d_o.copy()
    label[amodal] = np.clip(scale * d_b[amodal] + shift, 0.0, 1.0)
    return label


def test_import_matches_the_label_made_by_hand(tmp_path):
    truth = make_release(tmp_path / "release")
    (tmp_path / "release" / "sa1b").rename(tmp_path / "images")
    report = import_release(tmp_path / "release", tmp_path / "images", tmp_path / "out", BrightnessDepth(), progress=False)
    assert report["samples"] == 2 and report["sources"] == {"ok": 2}
    depth = BrightnessDepth()
    for shard, record in manifest_records(tmp_path / "out"):
        if record["type"] != "sample":
            continue
        s = read_sample(shard, record)
        original, comp = truth[record["provenance"]["id"]]
        assert np.array_equal(s.image, comp.image)
        assert np.array_equal(s.amodal_mask, comp.amodal_mask) and np.array_equal(s.visible_mask, comp.visible_mask)
        d_o, d_b = depth.predict([comp.image, original])
        label = reference_label(d_o, d_b, comp.amodal_mask, comp.visible_mask)
        assert np.abs(s.target_depth - label).max() <= 2**-11 + 1e-6  # float16 on disk
        assert s.visible_ratio == pytest.approx(comp.visible_ratio)


def test_missing_original_and_mask_are_reported(tmp_path):
    make_release(tmp_path / "release", ids=("1", "2", "3"))
    (tmp_path / "release" / "sa1b" / "sa_2.png").unlink()
    (tmp_path / "release" / "whole_mask" / "3_whole_mask.png").unlink()
    sources = release_sources(tmp_path / "release", tmp_path / "release" / "sa1b")
    assert [s.name for s in sources] == ["1", "2", "3"]
    report = import_release(tmp_path / "release", tmp_path / "release" / "sa1b", tmp_path / "out", BrightnessDepth(), fit="ring", progress=False)
    assert report["samples"] == 1
    assert report["skipped_sources"] == {"missing_image": 1, "missing_annotations": 1}


def test_masks_of_another_size_or_empty_are_reported(tmp_path):
    make_release(tmp_path / "release", ids=("1", "2", "3"))
    Image.fromarray(np.zeros((20, 28), np.uint8)).save(tmp_path / "release" / "visible_object_mask" / "2_visible_mask.png")
    Image.fromarray(np.zeros((40, 56), np.uint8)).save(tmp_path / "release" / "whole_mask" / "3_whole_mask.png")
    report = import_release(tmp_path / "release", tmp_path / "release" / "sa1b", tmp_path / "out", BrightnessDepth(), progress=False)
    assert report["samples"] == 1
    assert report["skipped_sources"] == {"size_mismatch": 1, "corrupt_annotations": 1}


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="occlusion"):
        release_sources(tmp_path, tmp_path)


def test_a_squashed_composite_of_a_wide_photo_is_registered_by_squashing(tmp_path):
    """The release squashes the whole SA-1B photo to a square: a 40×80 original, a 40×40 composite."""
    from skimage.transform import resize

    root = tmp_path / "release"
    for folder in ("occlusion", "whole_mask", "visible_object_mask", "sa1b"):
        (root / folder).mkdir(parents=True)
    wide = np.zeros((40, 80, 3), np.uint8) + np.linspace(10, 60, 40).astype(np.uint8)[:, None, None]
    square = np.clip(np.rint(resize(wide, (40, 40), order=1, anti_aliasing=True, preserve_range=True)), 0, 255).astype(np.uint8)
    target, occluder = disc((40, 40), (20, 16), 9), disc((40, 40), (20, 30), 7)
    square[target] = (200, 120, 40)
    wide[resize(target.astype(float), (40, 80), order=0) > 0.5] = (200, 120, 40)
    composite = square.copy()
    composite[occluder] = (90, 220, 250)
    Image.fromarray(composite).save(root / "occlusion" / "7_occlusion.png")
    Image.fromarray((target * 255).astype(np.uint8)).save(root / "whole_mask" / "7_whole_mask.png")
    Image.fromarray(((target & ~occluder) * 255).astype(np.uint8)).save(root / "visible_object_mask" / "7_visible_mask.png")
    Image.fromarray(wide).save(root / "sa1b" / "sa_7.png")
    report = import_release(root, root / "sa1b", tmp_path / "out", BrightnessDepth(), fit="ring", progress=False)
    assert report["samples"] == 1 and report["sources"] == {"ok": 1}
    record = next(r for _, r in manifest_records(tmp_path / "out") if r["type"] == "sample")
    assert record["provenance"]["registration"] == {"original_size": [40, 80], "composite_size": [40, 40], "squashed": True}


def test_paper_label_mode_stores_the_official_recipe_at_512(tmp_path):
    from amodal.adiw.paper_label import paper_label

    truth = make_release(tmp_path / "release", ids=("5",))
    report = import_release(tmp_path / "release", tmp_path / "release" / "sa1b", tmp_path / "out", BrightnessDepth(),
                            progress=False, label_mode="paper")
    assert report["samples"] == 1
    shard, record = next((s, r) for s, r in manifest_records(tmp_path / "out") if r["type"] == "sample")
    sample = read_sample(shard, record)
    assert sample.image.shape == (512, 512, 3) and sample.target_depth.shape == (512, 512)
    assert record["provenance"]["label_mode"] == "paper" and record["provenance"]["depth_size"] == 518
    original, comp = truth["5"]
    expected = paper_label(comp.image, original, comp.amodal_mask, comp.visible_mask, BrightnessDepth())
    assert np.abs(sample.target_depth - expected.target_depth).max() <= 2**-11 + 1e-6  # float16 on disk
    with pytest.raises(ValueError, match="label_mode"):
        import_release(tmp_path / "release", tmp_path / "release" / "sa1b", tmp_path / "bad", BrightnessDepth(),
                       progress=False, label_mode="official")
