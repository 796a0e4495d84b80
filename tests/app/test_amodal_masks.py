"""amodal.app.amodal_masks: prompt points from strokes, the amodal mask cut from a completion."""
import numpy as np
import pytest
import torch

from amodal.app.amodal_masks import (
    SHIPPED_COMPLETER,
    amodal_mask_from_painting,
    clean_mask,
    complete_amodal_mask,
    painting_foreground,
    propose_amodal_mask,
    shipped_completer,
    stroke_points,
    union_of_masks_with_points,
)
from amodal.app.photo import PhotoSession
from amodal.models.mask_completer import MaskCompleter
from amodal.utils.paths import checkpoints_dir


def test_a_small_stroke_gives_its_centroid_and_a_large_one_a_grid():
    strokes = np.zeros((40, 60), bool)
    strokes[2:5, 3:8] = True          # 15 px: its centroid (x 5, y 3)
    strokes[20:32, 10:31] = True      # 252 px: grid points every 10 px inside it
    points = stroke_points(strokes)
    assert points.tolist() == [[5, 3], [10, 20], [20, 20], [30, 20], [10, 30], [20, 30], [30, 30]]
    assert stroke_points(strokes, small=300).tolist() == [[5, 3], [20, 25]]  # both small now: two centroids
    with pytest.raises(ValueError, match="no stroke"):
        stroke_points(np.zeros((4, 4), bool))


def test_the_union_of_masks_that_hold_a_point():
    a, b, c = (np.zeros((10, 10), bool) for _ in range(3))
    a[0:3, 0:3], b[5:8, 5:8], c[0:2, 7:9] = True, True, True
    union = union_of_masks_with_points([a, b, c], [(1, 1), (6, 6), (50, 50)])  # the last point is off the grid
    np.testing.assert_array_equal(union, a | b)
    assert union_of_masks_with_points([c], [(1, 1)]) is None


def test_clean_mask_fills_holes_and_drops_specks():
    mask = np.zeros((30, 30), bool)
    mask[5:25, 5:25] = True
    mask[10:15, 10:15] = False  # a hole
    mask[0, 29] = True          # a speck of 1 px against 400
    expected = np.zeros((30, 30), bool)
    expected[5:25, 5:25] = True
    np.testing.assert_array_equal(clean_mask(mask), expected)
    assert not clean_mask(np.zeros((3, 3), bool)).any()


def test_painting_foreground_finds_the_object_on_a_plain_background():
    rng = np.random.default_rng(0)
    painting = np.full((64, 64, 3), 250, np.uint8)
    rows, cols = np.ogrid[:64, :64]
    disc = (rows - 30) ** 2 + (cols - 34) ** 2 <= 15 ** 2
    painting[disc] = (200, 60, 40)
    noisy = np.clip(painting.astype(int) + rng.integers(-4, 5, painting.shape), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(painting_foreground(noisy), disc)


def test_the_amodal_mask_holds_the_visible_part():
    painting = np.full((40, 40, 3), 1.0)
    painting[10:30, 10:30] = (0.2, 0.5, 0.9)
    visible = np.zeros((40, 40), bool)
    visible[12:20, 5:15] = True  # sticks out of the painted object on the left
    mask = amodal_mask_from_painting(painting, visible)
    assert mask[10:30, 10:30].all() and (mask >= visible).all() and mask.sum() == 400 + visible[:, :10].sum()
    sam_masks = [np.pad(np.ones((20, 20), bool), 10)]
    by_sam = amodal_mask_from_painting(painting, visible, points=[(15, 15)], sam_masks=sam_masks)
    np.testing.assert_array_equal(by_sam, mask)
    with pytest.raises(ValueError, match="visible mask is empty"):
        amodal_mask_from_painting(painting, np.zeros((40, 40), bool))
    with pytest.raises(ValueError, match="differ in size"):
        amodal_mask_from_painting(painting[:30], visible)


def _constant_completer(logit: float) -> MaskCompleter:
    """A completer whose every logit is ``logit``: zero weights, the last bias set."""
    model = MaskCompleter()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.out.bias.fill_(logit)
    return model


def test_proposals_hull_and_completer_by_hand():
    image = np.zeros((40, 40, 3), np.uint8)
    visible = np.zeros((40, 40), bool)
    visible[10:14, 10:14] = True
    visible[20:22, 20:22] = True     # two blocks: the hull joins them
    hull = propose_amodal_mask(image, visible, "hull")
    assert hull[15, 15] and hull[17, 17] and not hull[10, 20] and (hull >= visible).all()
    # a network sure everywhere fills its crop: M_vis spans rows/columns 10–21 (12 px), the crop
    # 12·(1 + 2·0.5) = 24 px centred on 16: rows and columns 4–27
    everything = complete_amodal_mask(image, visible, _constant_completer(10.0))
    expected = np.zeros((40, 40), bool)
    expected[4:28, 4:28] = True
    np.testing.assert_array_equal(everything, expected)
    np.testing.assert_array_equal(propose_amodal_mask(image, visible, "completer", _constant_completer(-10.0)), visible)
    with pytest.raises(ValueError, match="method must be one of"):
        propose_amodal_mask(image, visible, "pix2gestalt")
    with pytest.raises(ValueError, match="nothing to complete"):
        propose_amodal_mask(image, np.zeros((40, 40), bool), "hull")


def test_the_photo_session_adds_the_completers_mask():
    image = np.full((40, 40, 3), 128, np.uint8)
    session = PhotoSession(image, completer=_constant_completer(10.0))
    session.visible_mask[16:24, 16:24] = True   # 8 px: crop of 16 px, rows and columns 12–27
    mask = session.complete_with_completer()
    assert mask.sum() == 16 * 16 and mask[12:28, 12:28].all()


def test_the_shipped_completer_loads_by_default_and_is_small():
    folder = checkpoints_dir() / SHIPPED_COMPLETER
    assert (folder / "MODEL_CARD.md").is_file() and (folder / "model.safetensors").stat().st_size < 10 * 2 ** 20
    model = shipped_completer()
    assert isinstance(model, MaskCompleter) and not model.training
    image = np.full((48, 48, 3), 100, np.uint8)
    visible = np.zeros((48, 48), bool)
    visible[20:30, 10:20] = True
    mask = complete_amodal_mask(image, visible)
    assert mask.shape == visible.shape and (mask >= visible).all()
    np.testing.assert_array_equal(mask, complete_amodal_mask(image, visible, MaskCompleter.from_pretrained(folder)))
