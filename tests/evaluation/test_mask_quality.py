"""Mask perturbations by hand, and the study's bookkeeping on predictors with known answers."""
import numpy as np
import pytest
import torch

from amodal.evaluation.mask_quality import given_mask, mask_quality_study, perturb_mask


def _square():
    amodal = np.zeros((20, 20), bool)
    amodal[5:15, 5:15] = True
    visible = amodal.copy()
    visible[:, 10:] = False
    return amodal, visible


def test_erode_dilate_by_hand():
    amodal, visible = _square()
    assert perturb_mask(amodal, visible, "erode", 1).sum() == 8 * 8  # a disk of radius 1 is the cross
    dilated = perturb_mask(amodal, visible, "dilate", 1)
    assert dilated.sum() == 10 * 10 + 4 * 10  # one more pixel on each side, corners not filled
    assert np.array_equal(perturb_mask(amodal, visible, "clean"), amodal)
    assert np.array_equal(perturb_mask(amodal, visible, "erode", 0), amodal)


def test_convex_hull_of_an_l_shaped_visible_part():
    amodal = np.zeros((12, 12), bool)
    amodal[2:10, 2:10] = True
    visible = np.zeros_like(amodal)
    visible[2:10, 2:4] = True
    visible[8:10, 2:10] = True  # an L: its hull is the triangle below the diagonal
    hull = perturb_mask(amodal, visible, "convex_hull")
    assert hull[visible].all() and hull[9, 9] and not hull[2, 9]


def test_jitter_moves_the_outline_about_by_the_amount():
    amodal = np.zeros((64, 64), bool)
    amodal[16:48, 16:48] = True
    small, large = (perturb_mask(amodal, amodal, "jitter", k, seed=1) for k in (1, 4))
    assert (small ^ amodal).sum() < (large ^ amodal).sum()
    assert np.array_equal(perturb_mask(amodal, amodal, "jitter", 2, seed=3), perturb_mask(amodal, amodal, "jitter", 2, seed=3))
    assert perturb_mask(amodal, amodal, "jitter", 2, seed=3)[32, 32]  # the inside stays inside
    with pytest.raises(ValueError, match="kind"):
        perturb_mask(amodal, amodal, "blur", 1)


def _item():
    amodal, visible = _square()
    target = np.where(amodal, 0.8, 0.2)
    observed = np.where(visible | ~amodal, target, 0.95)  # the occluder over the hidden part
    as_map = lambda x: torch.from_numpy(np.asarray(x, np.float32))[None]
    return {"image": torch.zeros(3, 20, 20), "amodal_mask": as_map(amodal), "visible_mask": as_map(visible),
            "observed_depth": as_map(observed), "target_depth": as_map(target)}


def test_a_perfect_predictor_loses_exactly_what_the_mask_leaves_out():
    item = _item()
    perfect = lambda it: it["target_depth"][0].numpy()
    rows = mask_quality_study({"perfect": perfect}, [item], settings=(("clean", 0), ("erode", 2)))
    clean, eroded = rows
    assert clean["rmse"] == pytest.approx(0.0, abs=1e-6)
    # eroded by 2: the hidden pixels outside the eroded mask keep D_o = 0.95 against a truth of 0.8
    mask = perturb_mask(item["amodal_mask"][0].numpy() > 0.5, None, "erode", 2)
    hidden = (item["amodal_mask"][0].numpy() > 0.5) & ~(item["visible_mask"][0].numpy() > 0.5)
    lost = (hidden & ~mask).sum()
    expected = 100 * np.sqrt(lost * (0.95 - 0.8) ** 2 / hidden.sum())
    assert eroded["rmse"] == pytest.approx(expected, rel=1e-4) and eroded["delta"] == pytest.approx(expected, rel=1e-4)


def test_the_predictor_sees_the_given_mask():
    item = dict(_item(), given_mask=np.zeros((20, 20), bool))
    item["given_mask"][0, 0] = True
    seen = {}
    out = given_mask(lambda it: np.full((20, 20), 0.5) + 0 * seen.setdefault("mask", it["amodal_mask"])[0].numpy())(item)
    assert seen["mask"].sum() == 1 and out[0, 0] == 0.5 and out[10, 10] == item["observed_depth"][0, 10, 10]
