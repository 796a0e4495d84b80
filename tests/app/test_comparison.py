"""amodal.app.comparison: the object's box, error maps on one shared scale, the drawn comparison."""
import matplotlib.pyplot as plt
import numpy as np
import pytest

from amodal.app.comparison import draw_hidden_comparison, hidden_errors, object_box


def test_the_box_grows_by_its_margin_and_stays_inside_the_map():
    mask = np.zeros((40, 50), bool)
    mask[10:20, 5:25] = True  # 10 rows, 20 columns
    assert object_box(mask, 0.0) == (10, 20, 5, 25)
    assert object_box(mask, 0.2) == (8, 22, 1, 29)  # 2 rows and 4 columns each side
    assert object_box(mask, 1.0) == (0, 30, 0, 45)  # cut at the map's edges
    with pytest.raises(ValueError, match="empty"):
        object_box(np.zeros((4, 4), bool))


def test_errors_are_prediction_minus_truth_and_share_the_largest_hidden_error():
    truth = np.full((6, 6), 0.5)
    hidden = np.zeros((6, 6), bool)
    hidden[2:4, 2:4] = True
    a, b = truth.copy(), truth.copy()
    a[2, 2] = 0.8   # +0.3 inside the hidden region
    b[3, 3] = 0.4   # −0.1 inside
    b[0, 0] = 0.0   # −0.5 outside it: not part of the scale
    errors, limit = hidden_errors({"a": a, "b": b}, truth, hidden)
    np.testing.assert_allclose(errors["a"][2, 2], 0.3)
    np.testing.assert_allclose(errors["b"][0, 0], -0.5)
    assert limit == pytest.approx(0.3)


def test_the_figure_has_one_error_panel_per_prediction_on_one_scale_and_a_cross_section():
    truth = np.tile(np.linspace(0.2, 0.8, 40), (30, 1))
    amodal = np.zeros((30, 40), bool)
    amodal[5:25, 5:35] = True
    visible = amodal.copy()
    visible[:, 15:22] = False
    predictions = {"model": truth + 0.02 * amodal, "fill": np.where(amodal & ~visible, 0.5, truth)}
    fig = plt.figure()
    axes = draw_hidden_comparison(fig, predictions, truth, amodal, visible, observed_depth=truth)
    assert set(axes) == {"model", "fill", "cross-section"}
    limits = {axes[name].images[0].get_clim() for name in predictions}
    assert len(limits) == 1  # one shared scale
    low, high = limits.pop()
    assert low == -high and high == pytest.approx(np.abs(predictions["fill"] - truth)[amodal & ~visible].max())
    assert "hidden RMSE×100 2.00" in axes["model"].get_title()
    assert len(axes["cross-section"].lines) == 4  # truth, D_o, and the two predictions
    plt.close(fig)
