"""amodal.app.figures: layout conversions and overlays (figures drawn headless)."""
import numpy as np
import torch

from amodal.app.figures import image_grid, mask_overlay, show_depth, to_hwc


def test_to_hwc_moves_channels_and_drops_batch():
    chw = np.zeros((3, 5, 7))
    assert to_hwc(chw).shape == (5, 7, 3)
    assert to_hwc(torch.zeros(1, 3, 5, 7)).shape == (5, 7, 3)
    assert to_hwc(torch.zeros(1, 1, 5, 7)).shape == (5, 7)
    assert to_hwc(np.zeros((5, 7, 3))).shape == (5, 7, 3)


def test_mask_overlay_tints_only_inside_the_mask():
    image = np.full((4, 4, 3), 0.5)
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    out = mask_overlay(image, [mask], alpha=0.5)
    np.testing.assert_array_equal(out[~mask], image[~mask])
    assert not np.allclose(out[mask], 0.5)
    uint8 = mask_overlay((image * 255).astype(np.uint8), [mask], alpha=0.0)
    np.testing.assert_allclose(uint8, image, atol=1 / 255)


def test_image_grid_and_show_depth_draw():
    depth = np.linspace(0, 1, 16).reshape(4, 4)
    fig = image_grid([np.zeros((4, 4, 3)), depth, depth > 0.5], ["rgb", "depth", "mask"], ncols=2,
                     depth=[False, True, False])
    assert len(fig.axes) == 4
    handle = show_depth(fig.axes[3], depth, "masked", mask=depth > 0.5)
    drawn = handle.get_array()
    assert np.isnan(np.asarray(drawn.filled(np.nan))[0, 0])
