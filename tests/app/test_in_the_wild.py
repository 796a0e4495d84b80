"""amodal.app.in_the_wild: prompt points → M_vis → M_a → D_o → amodal depth → fit on M_vis → paste, each stage kept."""
import numpy as np
import pytest
import torch

from amodal.app.amodal_masks import stroke_points
from amodal.app.in_the_wild import amodal_depth_from_points, fit_and_paste, prompt_points
from amodal.app.photo import outline_clicks
from amodal.models.amodal_dav2 import AmodalDAV2
from amodal.models.configs import TINY


def _scene(size=64):
    """A red square (rows/cols 16..47) behind a dark vertical bar (cols 28..35) on a grey ramp; its visible part."""
    rows = np.linspace(60, 200, size)[:, None, None]
    image = np.broadcast_to(rows, (size, size, 3)).astype(np.uint8).copy()
    whole = np.zeros((size, size), bool)
    whole[16:48, 16:48] = True
    bar = np.zeros((size, size), bool)
    bar[:, 28:36] = True
    image[whole] = (220, 40, 40)
    image[bar] = (20, 20, 20)
    return image, whole, whole & ~bar


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return AmodalDAV2(TINY).eval()


def test_the_fit_recovers_an_affine_map_on_the_visible_part_and_pastes_inside_the_mask():
    rng = np.random.default_rng(0)
    observed = rng.uniform(0, 1, (20, 30))
    amodal = np.zeros((20, 30), bool)
    amodal[5:15, 5:25] = True
    visible = amodal.copy()
    visible[:, 12:18] = False
    raw = (observed - 0.3) / 2.5  # the network's map, off by scale 2.5 and shift 0.3
    raw[~amodal] = 7.0  # outside the object it does not count
    messages = []
    fitted, depth, scale, shift = fit_and_paste(raw, observed, amodal, visible, messages)
    assert scale == pytest.approx(2.5, abs=1e-9) and shift == pytest.approx(0.3, abs=1e-9)
    np.testing.assert_allclose(fitted[amodal], observed[amodal], atol=1e-6)
    np.testing.assert_array_equal(fitted[~amodal], observed[~amodal].astype(np.float32))
    inner = np.zeros_like(amodal)
    inner[7:13, 7:23] = True  # two pixels in from the outline: no seam blending there
    np.testing.assert_allclose(depth[inner], observed[inner], atol=1e-6)
    assert "scale 2.500, shift +0.300" in messages[-1]


def test_an_undetermined_fit_pastes_the_raw_map_and_says_why():
    observed = np.linspace(0, 1, 100).reshape(10, 10)
    amodal = np.zeros((10, 10), bool)
    amodal[2:8, 2:8] = True
    visible = np.zeros((10, 10), bool)
    visible[4, 4] = True
    raw = np.full((10, 10), 0.5)
    messages = []
    fitted, _, scale, shift = fit_and_paste(raw, observed, amodal, visible, messages)
    assert np.isnan(scale) and np.isnan(shift)
    assert "only 1 visible pixel(s)" in messages[-1] and "pasted unfitted" in messages[-1]
    np.testing.assert_array_equal(fitted[amodal], 0.5)
    visible[2:5, 2:5] = True
    fit_and_paste(raw, observed, amodal, visible, messages)
    assert "the prediction is constant on the visible part" in messages[-1]


def test_prompt_points_come_given_or_from_strokes_as_the_demo_makes_them():
    strokes = np.zeros((60, 60), bool)
    strokes[10:40, 10:40] = True
    np.testing.assert_array_equal(prompt_points(strokes=strokes), stroke_points(strokes))
    np.testing.assert_array_equal(prompt_points(points=[(1, 2), (3, 4)]), [[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="one of the two"):
        prompt_points()
    with pytest.raises(ValueError, match="no prompt point"):
        prompt_points(points=[])


def test_the_chain_from_clicks_with_the_classical_segmenter_and_the_hull(model):
    image, whole, visible_truth = _scene()
    observed = np.linspace(0.2, 0.9, 64 * 64, dtype=np.float32).reshape(64, 64)
    clicks = outline_clicks(whole, count=8)  # corners around the object, as a person clicks
    result = amodal_depth_from_points(image, model, points=clicks, amodal="hull", base=observed)
    assert result.visible_mask.shape == (64, 64) and result.visible_mask.any()
    # the polygon holds the bar's middle too, which the walker may keep: most of the visible part is found
    recall = (result.visible_mask & visible_truth).sum() / visible_truth.sum()
    assert recall > 0.9, recall
    assert (result.amodal_mask >= result.visible_mask).all()
    assert result.hidden_mask.sum() > 0  # the hull spans the bar
    assert result.completion is None and result.base_note is None
    far = np.ones((64, 64), bool)
    rows, cols = np.nonzero(result.amodal_mask)
    far[rows.min() - 1:rows.max() + 2, cols.min() - 1:cols.max() + 2] = False
    np.testing.assert_array_equal(result.depth[far], observed[far])
    np.testing.assert_array_equal(result.observed_depth, observed)
    assert set(result.seconds) == {"visible mask", "amodal mask", "base depth", "amodal depth", "fit and paste"}
    assert all(s >= 0 for s in result.seconds.values())
    assert any(m.startswith("visible mask: random walker") for m in result.messages)


def test_a_toy_base_depth_is_labelled_and_given_masks_skip_their_stages(model):
    image, whole, visible = _scene()
    result = amodal_depth_from_points(image, model, visible_mask=visible, amodal=whole, base="row-prior")
    assert result.base_note.startswith("D_o: toy row prior")
    np.testing.assert_array_equal(result.amodal_mask, whole)
    np.testing.assert_array_equal(result.observed_depth, np.repeat(np.linspace(0, 1, 64, dtype=np.float32)[:, None], 64, 1))
    assert "visible mask" not in result.seconds and "amodal mask" not in result.seconds
    with pytest.raises(ValueError, match="unknown amodal mask source 'magic'"):
        amodal_depth_from_points(image, model, visible_mask=visible, amodal="magic")
    with pytest.raises(ValueError, match="needs a pix2gestalt model"):
        amodal_depth_from_points(image, model, visible_mask=visible, amodal="pix2gestalt")
    with pytest.raises(ValueError, match="give at least 3"):
        amodal_depth_from_points(image, model, points=[(20, 20)])
    with pytest.raises(ValueError, match="visible mask is empty"):
        amodal_depth_from_points(image, model, visible_mask=np.zeros((64, 64), bool))


@pytest.mark.slow
def test_pix2gestalt_and_sam_in_the_chain_with_tiny_random_weights(model):
    from segment_anything import SamAutomaticMaskGenerator

    from amodal.adiw.sam_masks import tiny_sam
    from amodal.models.pix2gestalt import tiny_pix2gestalt

    image, whole, visible = _scene()
    sam = SamAutomaticMaskGenerator(tiny_sam(64), points_per_side=4)
    result = amodal_depth_from_points(image, model, points=[(20, 20), (40, 40)], amodal="pix2gestalt",
                                      pix2gestalt=tiny_pix2gestalt(), sam=sam, base=np.full((64, 64), 0.5, np.float32),
                                      pix2gestalt_steps=2)
    assert result.completion.shape == (256, 256, 3) and result.completion.dtype == np.uint8
    assert (result.amodal_mask >= result.visible_mask).all() and result.visible_mask.any()
    assert result.messages[0].startswith("visible mask: SAM from 2 point(s)")


def test_amodal_depthfm_runs_the_chain_with_its_aligned_draws():
    from amodal.models.depthfm import tiny_amodal_depthfm

    image, whole, visible = _scene(32)
    observed = np.tile(np.linspace(0.1, 0.9, 32, dtype=np.float32), (32, 1))
    result = amodal_depth_from_points(image, tiny_amodal_depthfm(), visible_mask=visible, amodal=whole, base=observed,
                                      samples=2, steps=1)
    assert result.depth.shape == (32, 32) and np.isfinite(result.depth).all()
    np.testing.assert_array_equal(result.raw_depth[~whole], observed[~whole])


def test_the_chain_takes_the_completers_amodal_mask(model):
    from amodal.app.amodal_masks import complete_amodal_mask

    image, whole, visible_truth = _scene()
    observed = np.linspace(0.2, 0.9, 64 * 64, dtype=np.float32).reshape(64, 64)
    result = amodal_depth_from_points(image, model, visible_mask=visible_truth, amodal="completer", base=observed)
    # the shipped completer's mask, as complete_amodal_mask gives it, is the mask the chain used
    np.testing.assert_array_equal(result.amodal_mask, complete_amodal_mask(image, visible_truth))
    assert (result.amodal_mask >= visible_truth).all() and "amodal mask: completer" in " ".join(result.messages)
    with pytest.raises(ValueError, match="unknown amodal mask source 'gestalt'"):
        amodal_depth_from_points(image, model, visible_mask=visible_truth, amodal="gestalt", base=observed)
