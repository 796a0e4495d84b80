"""Tests for amodal.adiw.sa1b: RLE decoding against hand-made and numpy references, quirks, errors."""
from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from amodal.adiw.sa1b import (
    annotation_from_mask,
    decode_mask,
    encode_mask,
    load_masks,
    mask_bbox,
    read_sa1b,
    rle_runs,
    write_sa1b,
)


def numpy_runs(mask: np.ndarray) -> list[int]:
    """Reference: COCO runs of a mask (column-major, first run is background, may be 0)."""
    flat = mask.flatten(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    return ([0] + runs) if flat[0] == 1 else runs


def random_masks(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        height, width = rng.integers(1, 40, size=2)
        yield rng.random((height, width)) < rng.random()


def sample_file(tmp_path, annotations=None, image=None):
    mask = np.zeros((6, 9), dtype=bool)
    mask[1:4, 2:7] = True
    image = image or {"image_id": 11, "width": 9, "height": 6, "file_name": "sa_11.jpg"}
    annotations = annotations or [annotation_from_mask(mask, id=1000)]
    path = tmp_path / "sa_11.json"
    path.write_text(json.dumps({"image": image, "annotations": annotations}))
    return path, mask


# --- RLE -----------------------------------------------------------------------------


def test_hand_made_rle_decodes_to_known_mask():
    # 4x5 mask, a 2x3 block; column-major runs 5,2,2,2,2,2,5; from the 4th run on the
    # string stores run[i] - run[i-2]: 5,2,2,0,0,0,3 -> characters chr(48 + v).
    expected = np.zeros((4, 5), dtype=bool)
    expected[1:3, 1:4] = True
    annotation = {"id": 1, "segmentation": {"size": [4, 5], "counts": "5220003"}}
    np.testing.assert_array_equal(decode_mask(annotation), expected)
    assert encode_mask(expected) == {"size": [4, 5], "counts": "5220003"}


def test_hand_made_rle_multi_character_and_negative_delta():
    # 40 = 0b1_01000: low 5 bits 8 with the continuation bit (8 | 32 = 40 -> 'X'), then 1 -> '1'.
    assert rle_runs("X1").tolist() == [40]
    np.testing.assert_array_equal(decode_mask({"id": 2, "segmentation": {"size": [5, 8], "counts": "X1"}}), 0)
    # 1x8 row 0 1 1 1 0 0 1 1: runs 1,3,2,2; the 4th is stored as 2 - 3 = -1 -> 31 + 48 = 'O'.
    assert rle_runs("132O").tolist() == [1, 3, 2, 2]
    expected = np.array([[0, 1, 1, 1, 0, 0, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(decode_mask({"id": 3, "segmentation": {"size": [1, 8], "counts": "132O"}}), expected)


def test_rle_runs_match_numpy_reference():
    for mask in random_masks(100):
        assert rle_runs(encode_mask(mask)["counts"]).tolist() == numpy_runs(mask)


def test_encode_decode_round_trip_random_and_edge_masks():
    masks = list(random_masks(50, seed=1))
    masks += [np.zeros((7, 3), bool), np.ones((7, 3), bool), np.eye(5, dtype=bool)]
    big = np.zeros((300, 400), dtype=bool)
    big[100:250, 50:390] = True  # long runs: multi-character counts
    masks.append(big)
    for mask in masks:
        segmentation = encode_mask(mask)
        assert segmentation["size"] == list(mask.shape)
        assert isinstance(segmentation["counts"], str)
        decoded = decode_mask({"id": 5, "segmentation": segmentation})
        assert decoded.dtype == bool
        np.testing.assert_array_equal(decoded, mask)


def test_uncompressed_rle_list_decodes():
    expected = np.array([[0, 1, 1, 1, 0, 0, 1, 1]], dtype=bool)
    decoded = decode_mask({"id": 4, "segmentation": {"size": [1, 8], "counts": [1, 3, 2, 2]}})
    np.testing.assert_array_equal(decoded, expected)


@pytest.mark.parametrize(
    "counts, reason",
    [
        ("", "cover 0 pixels"),  # pycocotools silently returns garbage for this one
        ("0", "cover 0 pixels"),
        ("52", "cover 7 pixels"),
        ("5220004", "cover 21 pixels"),  # one pixel too many
        ("5220002", "cover 19 pixels"),
        ("522000`", "ends in the middle"),  # continuation bit on the last character
        ("52 0003", "outside"),  # space is not in the alphabet
        ("5220003~", "outside"),
        ("522é003", "not ASCII"),
        ("132L", "negative run"),  # 4th run = 3 + (-4)
        ("ooooooooo1", "longer than any image"),
        ([5, 2, -2, 15], "negative run"),
        ([5, 2], "cover 7 pixels"),
        (12, "string or a list"),
    ],
)
def test_corrupt_rle_raises_naming_file_and_id(counts, reason):
    annotation = {"id": 987654321, "segmentation": {"size": [4, 5], "counts": counts}}
    with pytest.raises(ValueError, match=reason) as error:
        decode_mask(annotation, source="sa_42.json")
    assert "sa_42.json" in str(error.value) and "987654321" in str(error.value)


def test_decode_rejects_bad_segmentation_structure():
    with pytest.raises(ValueError, match="annotation 3"):
        decode_mask({"id": 3, "segmentation": {"counts": "5220003"}})
    with pytest.raises(ValueError, match="size"):
        decode_mask({"id": 3, "segmentation": {"size": [4], "counts": "5220003"}})


def test_encode_rejects_bad_masks():
    with pytest.raises(ValueError, match="shape"):
        encode_mask(np.zeros((2, 3, 4), bool))
    with pytest.raises(ValueError, match="0 and 1"):
        encode_mask(np.full((2, 3), 2))


# --- annotations -----------------------------------------------------------------------


def test_bbox_and_area_against_numpy_and_pycocotools():
    for mask in random_masks(60, seed=2):
        annotation = annotation_from_mask(mask, id=7)
        assert annotation["area"] == int(mask.sum())
        if mask.any():
            ys, xs = np.nonzero(mask)
            expected = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        else:
            expected = [0, 0, 0, 0]
        assert annotation["bbox"] == [float(v) for v in expected]
        assert all(isinstance(v, float) for v in annotation["bbox"])
        rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        np.testing.assert_array_equal(annotation["bbox"], coco_mask.toBbox(rle))
        assert annotation["area"] == int(coco_mask.area(rle))


def test_annotation_fields_and_defaults():
    mask = np.zeros((10, 20), dtype=bool)
    mask[2:6, 4:12] = True
    annotation = annotation_from_mask(mask, id=55, predicted_iou=1.02, stability_score=0.97)
    assert set(annotation) == {
        "bbox", "area", "segmentation", "predicted_iou", "point_coords", "crop_box", "id", "stability_score"
    }
    assert annotation["point_coords"] == [[8.0, 4.0]]  # centre of the box [4, 2, 8, 4]
    assert annotation["crop_box"] == [0.0, 0.0, 20.0, 10.0]
    assert annotation["predicted_iou"] == 1.02
    assert mask_bbox(mask) == [4.0, 2.0, 8.0, 4.0]


# --- files -----------------------------------------------------------------------------


def test_quirks_survive_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    image = {"image_id": 223456, "width": 31, "height": 17, "file_name": "sa_223456.jpg"}
    annotations = []
    for id_ in (12345678901, 12345678950, 99999999999):  # large ids with gaps
        mask = rng.random((17, 31)) < 0.3
        annotation = annotation_from_mask(
            mask, id=id_, predicted_iou=1.0412, stability_score=0.9625,
            point_coords=[[3.5, 2.25]], crop_box=[0.0, 0.0, 15.5, 8.5],
        )
        annotations.append((annotation, mask))
    path = write_sa1b(tmp_path / "sa_223456.json", image, [a for a, _ in annotations])
    text = path.read_text()
    assert '"bbox": [' in text and ".0," in text  # boxes written as floats
    data = read_sa1b(path)
    assert data["image"] == image
    assert data["annotations"] == [a for a, _ in annotations]
    for read_back, (written, mask) in zip(data["annotations"], annotations):
        assert all(isinstance(v, float) for v in read_back["bbox"])
        assert read_back["predicted_iou"] > 1
        assert read_back["id"] == written["id"]
        np.testing.assert_array_equal(decode_mask(read_back, data["source"]), mask)
    info, pairs = load_masks(path)
    assert info == image and [a["id"] for a, _ in pairs] == [12345678901, 12345678950, 99999999999]
    for (_, decoded), (_, mask) in zip(pairs, annotations):
        np.testing.assert_array_equal(decoded, mask)


def test_read_keeps_unknown_fields_and_integer_boxes_as_stored(tmp_path):
    path, mask = sample_file(tmp_path)
    raw = json.loads(path.read_text())
    raw["annotations"][0]["bbox"] = [2, 1, 5, 3]
    raw["annotations"][0]["extra"] = "kept"
    path.write_text(json.dumps(raw))
    annotation = read_sa1b(path)["annotations"][0]
    assert annotation["bbox"] == [2, 1, 5, 3] and annotation["extra"] == "kept"
    np.testing.assert_array_equal(decode_mask(annotation), mask)


def test_write_is_atomic_and_leaves_nothing_behind(tmp_path):
    path, _ = sample_file(tmp_path)
    before = path.read_text()
    image = {"image_id": 11, "width": 9, "height": 6, "file_name": "sa_11.jpg"}
    bad = annotation_from_mask(np.zeros((5, 9), bool), id=3)  # wrong size
    with pytest.raises(ValueError, match="annotation 3"):
        write_sa1b(path, image, [bad])
    unserialisable = annotation_from_mask(np.zeros((6, 9), bool), id=4)
    unserialisable["extra"] = object()
    with pytest.raises(TypeError):
        write_sa1b(path, image, [unserialisable])
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sa_11.json"]


def test_write_is_durable_and_readable_by_all(tmp_path, monkeypatch):
    # The file's bytes are flushed before the rename and the folder after it, and the
    # file is mode 0644 even under a private umask (an annotation file is not a secret).
    import amodal.utils.atomic

    flushed = []
    monkeypatch.setattr(amodal.utils.atomic, "fsync_path", lambda p: flushed.append(os.fspath(p)))
    image = {"image_id": 11, "width": 9, "height": 6, "file_name": "sa_11.jpg"}
    old_umask = os.umask(0o077)
    try:
        path = write_sa1b(tmp_path / "sa_11.json", image, [annotation_from_mask(np.ones((6, 9), bool), id=1)])
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [os.path.basename(p).startswith(".sa_11.json.") for p in flushed] == [True, False]
    assert flushed[1] == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sa_11.json"]


def test_read_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        read_sa1b(tmp_path / "nope.json")


def test_read_invalid_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"image": {')
    with pytest.raises(ValueError, match="broken.json.*not valid JSON"):
        read_sa1b(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.pop("annotations"), "missing top-level keys \\['annotations'\\]"),
        (lambda d: d["image"].pop("height"), "missing keys \\['height'\\]"),
        (lambda d: d["image"].update(width=-9), "width must be a positive integer"),
        (lambda d: d.update(annotations={}), "must be a list"),
        (lambda d: d["annotations"][0].pop("predicted_iou"), "annotation 1000: missing keys \\['predicted_iou'\\]"),
        (lambda d: d["annotations"][0]["segmentation"].pop("counts"), "annotation 1000: segmentation"),
        (lambda d: d["annotations"][0]["segmentation"].update(size=[9, 6]), "annotation 1000: segmentation size \\[9, 6\\] disagrees"),
        (lambda d: d["annotations"][0]["segmentation"].update(counts="zz"), "annotation 1000: corrupt RLE"),
        (lambda d: d["annotations"][0]["segmentation"].update(counts="X1"), "annotation 1000: corrupt RLE: runs cover 40"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2]), "annotation 1000: bbox"),
    ],
)
def test_read_errors_name_file_and_annotation(tmp_path, edit, message):
    path, _ = sample_file(tmp_path)
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=message) as error:
        read_sa1b(path)
    assert "sa_11.json" in str(error.value)


def test_read_can_skip_rle_check_then_decode_still_catches(tmp_path):
    path, _ = sample_file(tmp_path)
    raw = json.loads(path.read_text())
    raw["annotations"][0]["segmentation"]["counts"] = ""
    path.write_text(json.dumps(raw))
    data = read_sa1b(path, check_rle=False)
    with pytest.raises(ValueError, match="sa_11.json, annotation 1000: corrupt RLE"):
        decode_mask(data["annotations"][0], data["source"])
