"""Tests for amodal.adiw.objects: each threshold of the complete-object filter, on hand-made masks."""
from __future__ import annotations

import numpy as np
import pytest

from amodal.adiw.objects import ObjectFilter, check_object, ring_behind_fraction, ring_width, select_complete_objects, solidity


def disc(shape=(100, 100), centre=(50, 50), radius=15):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def test_a_clean_disc_passes():
    reason, detail, measures = check_object(disc(), {"predicted_iou": 0.95, "stability_score": 0.97})
    assert reason is None and measures["area"] == disc().sum()
    assert measures["solidity"] > 0.95


@pytest.mark.parametrize(
    "annotation, reason",
    [({"predicted_iou": 0.79}, "low_predicted_iou"), ({"stability_score": 0.79}, "low_stability_score")],
)
def test_quality_thresholds(annotation, reason):
    assert check_object(disc(), annotation)[0] == reason
    # SAM's predicted_iou can exceed 1: that is fine
    assert check_object(disc(), {"predicted_iou": 1.02})[0] is None


def test_area_range():
    assert check_object(disc(radius=3))[0] == "too_small"  # 29 px of 10000 < 0.5 %
    big = np.zeros((100, 100), bool)
    big[5:95, 5:95] = True  # 81 %
    assert check_object(big)[0] == "too_large"
    # the bounds are exactly the documented fractions
    cfg = ObjectFilter(min_area_fraction=29 / 10000)
    assert check_object(disc(radius=3), config=cfg)[0] is None


def test_border_contact():
    assert check_object(disc(centre=(50, 16)))[0] == "touches_border"  # reaches column 1
    assert check_object(disc(centre=(50, 17)))[0] is None  # first column 2 = margin
    # the same margin on every side: rotations of both masks give the same verdicts
    for k in (1, 2, 3):
        assert check_object(np.rot90(disc(centre=(50, 16)), k))[0] == "touches_border"
        assert check_object(np.rot90(disc(centre=(50, 17)), k))[0] is None


def test_fragmented_and_solidity():
    two = disc(centre=(30, 30), radius=10) | disc(centre=(70, 70), radius=10)
    assert check_object(two)[0] == "fragmented"
    ring = disc(radius=20) & ~disc(radius=15)  # one component, but hollow-ish: still convex hull = disc
    assert check_object(ring)[0] == "not_solid"
    # a C shape: area / hull area computed by hand on a box grid
    c = np.zeros((60, 60), bool)
    c[10:50, 10:20] = c[10:20, 10:50] = c[40:50, 10:50] = True
    assert solidity(c) == pytest.approx(c.sum() / (40 * 40), abs=0.02)


def test_ring_test_uses_depth():
    mask = disc()
    near = np.where(mask, 0.8, 0.2)  # the object in front of its surroundings
    far = np.where(mask, 0.2, 0.8)  # a hole: the surroundings are nearer
    assert check_object(mask, depth=near)[0] is None
    assert check_object(mask, depth=far)[0] == "not_in_front"
    # half the ring in front, half behind → fraction 0.5 (hand count on a split plane)
    split = np.where(np.arange(100)[None, :] < 50, 0.9, 0.0) * np.ones((100, 1))
    split = np.where(mask, 0.5, split)
    assert ring_behind_fraction(mask, split, 3, 0.01) == pytest.approx(0.5, abs=0.03)
    # check_object measures on a crop around the mask: same number as on the whole image
    depth = np.random.default_rng(0).random((100, 100)) + 0.5 * mask
    measured = check_object(mask, depth=depth, config=ObjectFilter(min_ring_behind_fraction=0))[2]["ring_behind"]
    assert measured == ring_behind_fraction(mask, depth, ring_width(int(mask.sum())), ObjectFilter().ring_depth_margin)


def test_select_reports_every_input_once():
    masks = [disc(), disc(radius=2), disc(centre=(50, 5)), np.zeros((100, 100), bool)]
    annotations = [{"id": 10 + i, "predicted_iou": 0.9, "stability_score": 0.95} for i in range(4)]
    kept, rejected = select_complete_objects(list(zip(annotations, masks)))
    assert [k.annotation_id for k in kept] == [10]
    assert [(r.annotation_id, r.reason) for r in rejected] == [(11, "too_small"), (12, "touches_border"), (13, "too_small")]
    assert kept[0].bbox == (35, 66, 35, 66)
    # bare masks work too
    kept2, rejected2 = select_complete_objects(masks)
    assert len(kept2) == 1 and kept2[0].annotation_id is None


def test_shape_errors():
    with pytest.raises(ValueError, match="depth has shape"):
        check_object(disc(), depth=np.zeros((5, 5)))
    with pytest.raises(ValueError, match="mask must be"):
        check_object(np.zeros(5, bool))
