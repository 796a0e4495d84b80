"""amodal.evaluation.completed_masks: hidden RMSE with a guessed M_a, against a hand computation."""
import math

import numpy as np
import pytest
import torch

from amodal.evaluation.completed_masks import (
    depth_with_completed_masks,
    format_depth_with_masks,
    summarise_depth_with_masks,
)
from amodal.evaluation.mask_completion import visible_as_is


def _item(visible_columns: int, name: str) -> dict:
    """One row of 6 pixels: the object is columns 0–3 at disparity 0.3, the first
    ``visible_columns`` of them seen; the occluder (0.8) covers the rest of the object and beyond."""
    amodal = np.zeros((1, 1, 6), np.float32)
    amodal[..., :4] = 1
    visible = np.zeros_like(amodal)
    visible[..., :visible_columns] = 1
    target = np.full_like(amodal, 0.3)
    observed = np.where(visible > 0, 0.3, 0.8).astype(np.float32)
    return {"image": torch.full((3, 1, 6), 0.5), "amodal_mask": torch.from_numpy(amodal),
            "visible_mask": torch.from_numpy(visible), "observed_depth": torch.from_numpy(observed),
            "target_depth": torch.from_numpy(target), "bucket": "hard" if visible_columns <= 2 else "mid", "id": name}


def _constant(item):
    return np.full(item["amodal_mask"].shape[-2:], 0.5, np.float32)  # a "model" that says 0.5 everywhere


def _one_more_column(image, visible_mask):
    """Adds the first hidden column: half of a 2-column hidden part."""
    mask = visible_mask.copy()
    mask[:, np.flatnonzero(mask.any(0)).max() + 1] = True
    return mask


def test_hidden_rmse_with_each_mask_by_hand():
    items = [_item(2, "a"), _item(2, "b")]
    results = depth_with_completed_masks(_constant, {"true": None, "visible": visible_as_is, "half": _one_more_column},
                                         items)
    # true M_a: both hidden pixels get the model's 0.5 against 0.3 → RMSE 0.2
    # M_vis:    both hidden pixels keep D_o = 0.8 → RMSE 0.5
    # half:     one at 0.5, one at 0.8 → sqrt((0.2² + 0.5²) / 2)
    expected = {"true": 0.2, "visible": 0.5, "half": math.sqrt((0.04 + 0.25) / 2)}
    for name, rmse in expected.items():
        assert [r["raw"]["rmse"] for r in results[name]] == pytest.approx([rmse, rmse], abs=1e-6)
    assert [r["mask_hidden_share"] for r in results["half"]] == [0.5, 0.5]
    assert results["true"][0]["mask_hidden_share"] == 1.0 and results["visible"][0]["mask_hidden_share"] == 0.0

    summary = summarise_depth_with_masks(results, resamples=50)
    assert summary["visible"]["overall"]["rmse_x100"] == pytest.approx(50.0)
    assert summary["visible"]["hard"]["minus_reference"] == pytest.approx(30.0)
    assert summary["half"]["overall"]["minus_reference"] == pytest.approx(100 * expected["half"] - 20.0)
    assert "minus_reference" not in summary["true"]["overall"] and "mid" not in summary["true"]
    table = format_depth_with_masks(summary, groups=("overall", "hard"))
    assert "| visible | 50.00 [50.00, 50.00] | 50.00 [50.00, 50.00] |" in table


def test_the_mask_is_scored_on_the_true_hidden_region_and_summaries_split_buckets():
    items = [_item(2, "hard"), _item(3, "mid")]
    overshoot = lambda image, visible: np.ones_like(visible)  # noqa: E731 — paints the background too
    results = depth_with_completed_masks(_constant, {"true": None, "all": overshoot}, items)
    # painting the background costs nothing on the hidden region: the same records as the true mask
    assert [r["raw"]["rmse"] for r in results["all"]] == pytest.approx([r["raw"]["rmse"] for r in results["true"]])
    summary = summarise_depth_with_masks(results, resamples=50)
    assert summary["all"]["mid"]["count"] == 1 and summary["all"]["overall"]["count"] == 2
    with pytest.raises(ValueError, match="reference 'nope'"):
        summarise_depth_with_masks(results, reference="nope")
