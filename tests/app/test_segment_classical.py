"""Tests for amodal.app.segment_classical: polygon rasterising, trimap, SAM's stability score, walker."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from segment_anything.utils.amg import calculate_stability_score

from amodal.app.segment_classical import (
    BACKGROUND,
    OBJECT,
    UNKNOWN,
    polygon_mask,
    segment_from_polygon,
    soft_iou,
    stability_score,
    trimap,
)


def test_polygon_mask_square_matches_hand_made():
    mask = polygon_mask([(2, 1), (6, 1), (6, 4), (2, 4)], (6, 8))  # x in 2..6, y in 1..4
    expected = np.zeros((6, 8), bool)
    expected[1:5, 2:7] = True
    np.testing.assert_array_equal(mask, expected)
    with pytest.raises(ValueError, match="3"):
        polygon_mask([(0, 0), (1, 1)], (4, 4))


def test_trimap_bands_follow_euclidean_distance():
    rough = np.zeros((41, 41), bool)
    rough[10:31, 10:31] = True  # 21x21 square
    labels = trimap(rough, band=3)
    assert labels[20, 20] == OBJECT and labels[0, 0] == BACKGROUND
    # inside: distance to the nearest outside pixel > 3 -> 4+ pixels in; outside likewise
    assert labels[20, 12] == UNKNOWN and labels[20, 13] == OBJECT  # columns 10.. are inside
    assert labels[20, 6] == BACKGROUND and labels[20, 7] == UNKNOWN
    with pytest.raises(ValueError, match="band"):
        trimap(rough, band=0)


def test_stability_score_equals_sam_on_logits():
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, size=(3, 32, 32))
    probability = 1.0 / (1.0 + np.exp(-logits))
    expected = calculate_stability_score(torch.from_numpy(logits), 0.0, 1.0).numpy()
    for p, e in zip(probability, expected):
        assert stability_score(p) == pytest.approx(float(e), abs=1e-6)  # SAM divides in float32
    assert stability_score(np.zeros((4, 4))) == 0.0


def test_soft_iou_hand_case():
    probability = np.array([[1.0, 0.5], [0.25, 0.0]])
    mask = np.array([[True, True], [False, False]])
    assert soft_iou(probability, mask) == pytest.approx((1 + 0.5) / (1 + 1 + 0.25))
    assert soft_iou(mask.astype(float), mask) == 1.0


def noisy_disk(noise):
    """A red disk on blue with Gaussian pixel noise, the disk's mask and a rough octagon around it."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:64, :64]
    disk = (yy - 30) ** 2 + (xx - 34) ** 2 <= 14 ** 2
    image = np.where(disk[..., None], [200, 60, 40], [40, 90, 160]).astype(np.float64)
    image = np.clip(image + rng.normal(0, noise, image.shape), 0, 255).astype(np.uint8)
    rough = [(34 + 18 * np.cos(a), 30 + 18 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 8, endpoint=False)]
    return image, disk, rough


def sam_stability_of(probability):
    """SAM's own stability score on the logits of ``probability`` (±inf at 0 and 1)."""
    assert probability.min() >= 0.0 and probability.max() <= 1.0  # else a logit would be NaN
    logits = torch.logit(torch.from_numpy(probability))
    return float(calculate_stability_score(logits[None], 0.0, 1.0)[0])


def test_random_walker_recovers_a_disk_from_a_rough_polygon():
    image, disk, rough = noisy_disk(8)
    result = segment_from_polygon(image, rough, band=6)
    iou = (result.mask & disk).sum() / (result.mask | disk).sum()
    assert iou > 0.95
    assert result.mask.dtype == bool and result.probability.shape == (64, 64)
    assert 0.8 < result.stability_score <= 1.0 and 0.8 < result.predicted_iou <= 1.0
    assert result.stability_score == pytest.approx(sam_stability_of(result.probability), abs=1e-6)
    x, y, w, h = result.crop_box
    assert 0 <= x and 0 <= y and x + w <= 64 and y + h <= 64
    assert disk[int(result.point[1]), int(result.point[0])]


@pytest.mark.filterwarnings("ignore:The probability range is outside")
def test_stability_score_of_an_uncertain_segmentation_is_sam_s():
    # Heavy noise leaves a band of uncertain pixels, so the score is well below 1 and
    # the offset matters: the reported score must be SAM's for these probabilities.
    image, _, rough = noisy_disk(60)
    result = segment_from_polygon(image, rough, band=6)
    assert result.stability_score < 0.95
    assert result.stability_score == pytest.approx(sam_stability_of(result.probability), abs=1e-6)


def test_segment_errors():
    image = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="deeper than band"):
        segment_from_polygon(image, [(5, 5), (8, 5), (8, 8), (5, 8)], band=4)
    with pytest.raises(ValueError, match="no background seed"):
        segment_from_polygon(image, [(-5, -5), (30, -5), (30, 30), (-5, 30)], band=2)
    with pytest.raises(ValueError, match="shape"):
        segment_from_polygon(np.zeros((20, 20, 4)), [(5, 5), (15, 5), (15, 15)], band=1)
