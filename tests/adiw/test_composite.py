"""Tests for amodal.adiw.composite: the overlap map against brute force, ranges, masks, seeds."""
from __future__ import annotations

import numpy as np
import pytest

from amodal.adiw.composite import BUCKET_RANGES, paste_occluder, visible_ratio_map


def disc(shape, centre, radius):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def scene():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(80, 90, 3), dtype=np.uint8)
    return image, disc((80, 90), (40, 30), 14), disc((80, 90), (40, 70), 10)


def test_ratio_map_matches_brute_force():
    rng = np.random.default_rng(1)
    target = rng.random((12, 15)) < 0.4
    occ = rng.random((4, 5)) < 0.6
    ratios = visible_ratio_map(target, occ)
    assert ratios.shape == (9, 11)
    for top in range(9):
        for left in range(11):
            placed = np.zeros_like(target)
            placed[top : top + 4, left : left + 5] = occ
            assert ratios[top, left] == pytest.approx((target & ~placed).sum() / target.sum(), abs=1e-12)


@pytest.mark.parametrize("bucket", list(BUCKET_RANGES))
def test_visible_ratio_lands_in_range(bucket):
    image, target, occluder = scene()
    low, high = BUCKET_RANGES[bucket]
    c = paste_occluder(image, target, image, occluder, (low, high), seed=3)
    assert c is not None and low < c.visible_ratio <= high
    assert np.array_equal(c.visible_mask, target & ~c.occluder_mask)
    assert c.visible_ratio == pytest.approx(c.visible_mask.sum() / target.sum())
    assert np.array_equal(c.amodal_mask, target) and (c.hidden_mask == (target & c.occluder_mask)).all()
    # outside the occluder the image is untouched
    assert np.array_equal(c.image[~c.occluder_mask], image[~c.occluder_mask])
    p = c.placement
    assert c.occluder_mask[: p.top].sum() == 0 and c.occluder_mask[:, : p.left].sum() == 0


def test_pasted_pixels_come_from_the_occluder_at_scale_one():
    image, target, occluder = scene()
    other = np.full_like(image, 7)
    other[occluder] = 200
    c = paste_occluder(image, target, other, occluder, (0.3, 0.9), seed=0, scale_range=(1.0, 1.0))
    # scale_range is relative to the size with the target's area
    assert c.placement.scale == pytest.approx(np.sqrt(target.sum() / occluder.sum()))
    assert (c.image[c.occluder_mask] > 150).all()


def test_same_seed_same_composite():
    image, target, occluder = scene()
    a = paste_occluder(image, target, image, occluder, seed=5)
    b = paste_occluder(image, target, image, occluder, seed=5)
    assert a.placement == b.placement and np.array_equal(a.image, b.image)


def test_impossible_request_returns_none():
    image, target, occluder = scene()
    # a tiny occluder cannot hide 90 % of the target
    assert paste_occluder(image, target, image, occluder, (0.0, 0.1), seed=0, scale_range=(0.1, 0.2)) is None


def test_errors():
    image, target, occluder = scene()
    with pytest.raises(ValueError, match="target mask is empty"):
        paste_occluder(image, np.zeros_like(target), image, occluder)
    with pytest.raises(ValueError, match="visible_range"):
        paste_occluder(image, target, image, occluder, (0.8, 0.2))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        paste_occluder(image[..., 0], target, image, occluder)
