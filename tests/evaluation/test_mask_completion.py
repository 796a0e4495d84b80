"""amodal.evaluation.mask_completion: hidden-part IoU by hand, the baselines, summaries and paired gains."""
import numpy as np
import pytest

from amodal.evaluation.intervals import bootstrap_ci
from amodal.evaluation.mask_completion import (
    BASELINE_COMPLETERS,
    amodal_iou,
    format_completion_table,
    hidden_iou,
    paired_gain,
    score_completers,
    summarise_completion,
)


def _case():
    visible = np.zeros((4, 4), bool)
    visible[0] = True                       # 4 visible pixels
    amodal = np.zeros((4, 4), bool)
    amodal[0:2] = True                      # hidden: row 1, 4 pixels
    predicted = visible.copy()
    predicted[1:3, 0:2] = True              # guessed hidden: (1,0) (1,1) (2,0) (2,1)
    return visible, amodal, predicted


def test_hidden_iou_by_hand():
    visible, amodal, predicted = _case()
    # guessed hidden ∧ true hidden = (1,0), (1,1): 2; union = 4 + 4 − 2 = 6
    assert hidden_iou(predicted, visible, amodal) == pytest.approx(2 / 6)
    # whole masks: 8 predicted, 8 true, 6 shared → 6 / 10
    assert amodal_iou(predicted, amodal) == pytest.approx(0.6)
    assert hidden_iou(visible, visible, amodal) == 0.0   # nothing guessed
    assert hidden_iou(amodal, visible, amodal) == 1.0    # the truth
    assert hidden_iou(visible, visible, visible) == 1.0  # nothing hidden, nothing guessed
    with pytest.raises(ValueError, match="one shape"):
        hidden_iou(predicted[:3], visible, amodal)


def test_baselines():
    visible = np.zeros((6, 12), bool)
    visible[1:4, 0:3] = True
    visible[1:4, 8:11] = True  # a bar whose middle is hidden
    amodal = np.zeros((6, 12), bool)
    amodal[1:4, 0:11] = True
    image = np.zeros((6, 12, 3), np.uint8)
    assert hidden_iou(BASELINE_COMPLETERS["visible"](image, visible), visible, amodal) == 0.0
    assert hidden_iou(BASELINE_COMPLETERS["convex_hull"](image, visible), visible, amodal) == 1.0


def test_scores_summaries_and_paired_gains():
    visible, amodal, predicted = _case()
    items = [{"image": np.zeros((4, 4, 3), np.uint8), "visible_mask": visible, "amodal_mask": amodal,
              "bucket": bucket, "id": str(k)} for k, bucket in enumerate(["easy", "hard", "hard"])]
    guess = {"guess": lambda image, vis: predicted, **BASELINE_COMPLETERS}
    records = score_completers(guess, items)
    assert [r["guess"]["hidden_iou"] for r in records] == pytest.approx([1 / 3] * 3)
    assert records[0]["visible_ratio"] == 0.5 and records[1]["convex_hull"]["hidden_iou"] == 0.0
    summary = summarise_completion(records, resamples=50)
    assert summary["guess"]["hard"]["count"] == 2 and summary["guess"]["overall"]["count"] == 3
    assert summary["guess"]["overall"]["hidden_iou"] == pytest.approx(1 / 3)
    assert summary["guess"]["overall"]["amodal_iou"] == pytest.approx(0.6)
    assert "mid" not in summary["guess"]
    gain = paired_gain(records, "guess", "visible", resamples=50)
    assert gain["overall"]["mean"] == pytest.approx(1 / 3) and gain["hard"]["wins"] == 1.0
    table = format_completion_table(summary)
    assert "| guess | 0.333 [" in table and table.count("\n") == 4


def test_summary_intervals_are_the_bootstrap_of_the_item_scores():
    rng = np.random.default_rng(0)
    records = [{"id": str(k), "bucket": "mid", "m": {"hidden_iou": float(v), "amodal_iou": 1.0}}
               for k, v in enumerate(rng.random(30))]
    summary = summarise_completion(records, resamples=300)
    values = [r["m"]["hidden_iou"] for r in records]
    assert summary["m"]["mid"]["hidden_iou_ci"] == list(bootstrap_ci(values, 300))
    assert summary["m"]["overall"]["hidden_iou"] == pytest.approx(np.mean(values))


def test_a_completer_that_drops_visible_pixels_or_changes_shape_is_refused():
    visible, amodal, _ = _case()
    item = {"image": np.zeros((4, 4, 3)), "visible_mask": visible, "amodal_mask": amodal, "bucket": "easy", "id": "a"}
    with pytest.raises(ValueError, match="left out part of M_vis"):
        score_completers({"bad": lambda image, vis: np.zeros_like(vis)}, [item])
    with pytest.raises(ValueError, match="of shape"):
        score_completers({"bad": lambda image, vis: np.ones((3, 3), bool)}, [item])
