"""Fill baselines against closed forms and hand-made cases."""
import numpy as np
import pytest

from amodal.baselines import BASELINES, harmonic, nearest_visible, observed, plane, visible_mean


def _strip(w=9):
    """One object row: columns 0-1 and 7-8 visible, 2-6 hidden; an occluder value 0.9 in the hole."""
    amodal = np.zeros((3, w), bool)
    amodal[1] = True
    visible = amodal.copy()
    visible[1, 2:7] = False
    d = np.full((3, w), 0.5)
    d[1, :2], d[1, 7:] = 0.1, 0.7
    d[1, 2:7] = 0.9
    return amodal, d, visible


def test_harmonic_is_linear_interpolation_on_a_strip():
    amodal, d, visible = _strip()
    out = harmonic(None, amodal, d, visible)
    # Laplace in 1-D: a straight line from 0.1 at column 1 to 0.7 at column 7
    np.testing.assert_allclose(out[1, 2:7], 0.1 + 0.1 * np.arange(1, 6), atol=1e-6)
    np.testing.assert_array_equal(out[0], d[0].astype(np.float32))  # outside the object: D_o


def test_harmonic_neumann_outline_and_unreachable_component():
    amodal = np.zeros((5, 5), bool)
    amodal[1:4, 1:4] = True
    visible = np.zeros_like(amodal)
    visible[1:4, 1] = True  # left column visible at 0.2: the only boundary value
    d = np.full((5, 5), 0.9)
    d[visible] = 0.2
    out = harmonic(None, amodal, d, visible)
    np.testing.assert_allclose(out[1:4, 2:4], 0.2, atol=1e-6)  # no flux out: the fill is constant
    far = amodal.copy()
    island = np.zeros_like(amodal)
    island[1:4, 1] = True
    far[:, :] = False
    far[1:4, 1] = True
    far[1, 3] = True  # a hidden pixel not 4-connected to the visible column
    out = harmonic(None, far, d, island)
    assert out[1, 3] == pytest.approx(0.2)  # falls back to the visible mean


def test_plane_is_exact_on_a_plane_and_clipped():
    h, w = 12, 10
    rows, cols = np.mgrid[:h, :w]
    d = 0.02 * cols + 0.03 * rows + 0.1
    amodal = np.ones((h, w), bool)
    visible = cols < 5
    np.testing.assert_allclose(plane(None, amodal, d, visible), d, atol=1e-6)
    steep = 0.2 * cols
    assert plane(None, amodal, steep, visible).max() == 1.0


def test_mean_and_nearest_by_hand():
    amodal, d, visible = _strip()
    assert visible_mean(None, amodal, d, visible)[1, 4] == pytest.approx(0.4)
    near = nearest_visible(None, amodal, d, visible)
    np.testing.assert_allclose(near[1, 2:7], [0.1, 0.1, 0.1, 0.7, 0.7])
    np.testing.assert_array_equal(observed(None, amodal, d, visible), d.astype(np.float32))


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_fill_keeps_d_o_off_the_hidden_part_and_handles_no_visible_pixel(name):
    amodal, d, visible = _strip()
    out = BASELINES[name](None, amodal, d, visible)
    assert out.dtype == np.float32 and out.shape == d.shape
    np.testing.assert_array_equal(out[~(amodal & ~visible)], d[~(amodal & ~visible)].astype(np.float32))
    blind = BASELINES[name](None, amodal, d, np.zeros_like(visible))
    assert np.isfinite(blind).all()
    with pytest.raises(ValueError, match="one \\(H, W\\) shape"):
        BASELINES[name](None, amodal, d[:, :-1], visible)
