"""amodal.metrics against hand-computed values and the protocol's rules."""
import math

import numpy as np
import pytest
import torch

from amodal.metrics import (
    aggregate_metrics,
    evaluate_sample,
    format_table,
    paper_units,
    sample_metrics,
    visible_ratio,
    visible_ratio_bucket,
)


def test_hand_computed_values():
    # Two pixels in the mask: (p, g) = (0.5, 0.4) and (0.2, 0.2); the third is outside.
    pred = np.array([[0.5, 0.2, 0.9]])
    target = np.array([[0.4, 0.2, 0.1]])
    mask = np.array([[1, 1, 0]], bool)
    got = sample_metrics(pred, target, mask)
    e = 1e-5
    p1, g1, p2, g2 = 0.5 + e, 0.4 + e, 0.2 + e, 0.2 + e
    assert got["rmse"] == pytest.approx(math.sqrt(((p1 - g1) ** 2 + (p2 - g2) ** 2) / 2), rel=1e-12)
    assert got["rmse"] == pytest.approx(math.sqrt(0.01 / 2), rel=1e-9)
    # 0.5/0.4 = 1.25 is not < 1.25 (up to the offset it is 1.249994 < 1.25): the offset matters.
    assert got["delta1"] == pytest.approx(1.0)
    assert got["absrel"] == pytest.approx((abs(p1 - g1) / g1 + 0) / 2, rel=1e-12)
    assert got["log10"] == pytest.approx(abs(math.log10(p1) - math.log10(g1)) / 2, rel=1e-12)


def test_delta1_threshold_is_strict():
    pred = np.array([[0.30, 0.10]])
    target = np.array([[0.10, 0.10]])
    got = sample_metrics(pred, target, np.ones((1, 2), bool))
    assert got["delta1"] == pytest.approx(0.5)  # ratio ~3 fails, ratio 1 passes


def test_torch_and_batch_shaped_inputs_agree_with_numpy():
    rng = np.random.default_rng(0)
    pred, target = rng.random((2, 16, 16))
    mask = rng.random((16, 16)) < 0.5
    ref = sample_metrics(pred, target, mask)
    got = sample_metrics(torch.from_numpy(pred)[None, None], torch.from_numpy(target)[None], torch.from_numpy(mask))
    assert got == pytest.approx(ref)


def test_empty_mask_gives_nan_and_is_skipped():
    rng = np.random.default_rng(1)
    pred, target = rng.random((2, 8, 8))
    empty = sample_metrics(pred, target, np.zeros((8, 8), bool))
    assert all(math.isnan(v) for v in empty.values())
    full = sample_metrics(pred, target, np.ones((8, 8), bool))
    agg = aggregate_metrics([{"bucket": "hard", "raw": empty}, {"bucket": "hard", "raw": full}])
    assert agg["raw"]["overall"]["count"] == 1
    assert agg["raw"]["hard"]["rmse"] == pytest.approx(full["rmse"])
    assert agg["raw"]["easy"]["count"] == 0 and math.isnan(agg["raw"]["easy"]["rmse"])


def test_aggregate_means_over_samples_not_pixels():
    records = [
        {"bucket": "easy", "raw": {"rmse": 0.1, "delta1": 1.0, "absrel": 0.2, "log10": 0.01}},
        {"bucket": "mid", "raw": {"rmse": 0.3, "delta1": 0.5, "absrel": 0.4, "log10": 0.03}},
        {"bucket": "mid", "raw": {"rmse": 0.5, "delta1": 0.0, "absrel": 0.6, "log10": 0.05}},
    ]
    agg = aggregate_metrics(records)["raw"]
    assert agg["overall"]["rmse"] == pytest.approx(0.3)
    assert agg["overall"]["count"] == 3
    assert agg["mid"]["delta1"] == pytest.approx(0.25)
    assert agg["easy"]["absrel"] == pytest.approx(0.2)
    flat = aggregate_metrics([dict(r["raw"], bucket=r["bucket"]) for r in records])
    assert flat["raw"]["overall"]["rmse"] == pytest.approx(0.3)


def test_buckets_follow_the_paper_thresholds():
    assert visible_ratio_bucket(0.76) == "easy"
    assert visible_ratio_bucket(0.75) == "mid"
    assert visible_ratio_bucket(0.51) == "mid"
    assert visible_ratio_bucket(0.5) == "hard"
    assert visible_ratio_bucket(0.0) == "hard"
    with pytest.raises(ValueError):
        visible_ratio_bucket(1.5)
    amodal = np.zeros((4, 4), bool)
    amodal[:, :2] = True
    visible = np.zeros((4, 4), bool)
    visible[:3, :] = True  # visible pixels outside the amodal mask do not count
    assert visible_ratio(amodal, visible) == pytest.approx(6 / 8)
    with pytest.raises(ValueError, match="empty"):
        visible_ratio(np.zeros((2, 2)), np.ones((2, 2)))


def test_evaluate_sample_aligned_variant_recovers_affine_prediction():
    rng = np.random.default_rng(2)
    target = rng.uniform(0.2, 0.8, (20, 20))
    observed = target.copy()
    amodal = np.zeros((20, 20), bool)
    amodal[4:16, 4:16] = True
    visible = amodal.copy()
    visible[4:10, 4:16] = False  # half hidden: r = 0.5, hard
    pred = 0.5 * target + 0.1  # right shape, wrong scale and shift
    result = evaluate_sample(pred, target, amodal, visible, observed)
    assert result["bucket"] == "hard" and result["visible_ratio"] == pytest.approx(0.5)
    assert result["aligned"]["rmse"] == pytest.approx(0.0, abs=1e-9)
    assert result["aligned"]["delta1"] == 1.0
    hidden = amodal & ~visible
    assert result["raw"]["rmse"] == pytest.approx(np.sqrt(np.mean((pred - target)[hidden] ** 2)), rel=1e-6)


def test_bad_input_errors():
    good = np.full((4, 4), 0.5)
    mask = np.ones((4, 4), bool)
    with pytest.raises(ValueError, match="same shape"):
        sample_metrics(good, np.full((4, 5), 0.5), mask)
    bad = good.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sample_metrics(bad, good, mask)
    bad[0, 0] = -0.2
    with pytest.raises(ValueError, match="negative"):
        sample_metrics(good, bad, mask)
    with pytest.raises(ValueError, match="one map"):
        sample_metrics(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match="unknown bucket"):
        aggregate_metrics([{"bucket": "medium", "rmse": 0, "delta1": 0, "absrel": 0, "log10": 0}])


def test_paper_units_and_table():
    row = {"rmse": 0.03682, "delta1": 0.93251, "absrel": 0.1, "log10": 0.01, "count": 3}
    converted = paper_units(row)
    assert converted["rmse"] == pytest.approx(3.682) and converted["delta1"] == pytest.approx(93.251)
    assert converted["absrel"] == 0.1
    agg = aggregate_metrics([{"bucket": "easy", "raw": row}])
    text = format_table(agg)
    assert "3.682" in text and "93.251" in text and "overall" in text


def test_undetermined_alignment_gives_nan_aligned_metrics_not_an_error():
    """A fully hidden target, or a prediction constant on M_vis: aligned NaN with the reason, raw kept."""
    import math

    from amodal.metrics import aggregate_metrics, evaluate_sample

    amodal = np.zeros((6, 6), bool)
    amodal[1:5, 1:5] = True
    target = np.full((6, 6), 0.4)
    observed = np.full((6, 6), 0.3)
    hidden_only = evaluate_sample(np.full((6, 6), 0.4), target, amodal, np.zeros_like(amodal), observed)
    assert hidden_only["bucket"] == "hard" and hidden_only["raw"]["rmse"] == pytest.approx(0.0)
    assert math.isnan(hidden_only["aligned"]["rmse"]) and "aligned_error" in hidden_only
    visible = amodal.copy()
    visible[:, 3:] = False
    constant = evaluate_sample(np.full((6, 6), 0.5), target, amodal, visible, observed)
    assert constant["raw"]["rmse"] == pytest.approx(0.1) and math.isnan(constant["aligned"]["delta1"])
    summary = aggregate_metrics([hidden_only, constant])
    assert summary["raw"]["overall"]["count"] == 2 and summary["aligned"]["overall"]["count"] == 0


def test_the_other_official_metrics_by_hand():
    """p = (0.5, 0.25), g = (0.25, 0.5): every ratio is 2, every log difference ±ln 2."""
    from amodal.metrics import METRICS, sample_metrics

    pred = np.array([[0.5, 0.25]]) - 1e-5  # cancel the +1e-5 offset so the numbers are round
    target = np.array([[0.25, 0.5]]) - 1e-5
    m = sample_metrics(pred, target, np.ones((1, 2), bool))
    assert set(m) == set(METRICS)
    assert m["sqrel"] == pytest.approx((0.0625 / 0.25 + 0.0625 / 0.5) / 2)  # 0.1875
    assert m["rmse_log"] == pytest.approx(np.log(2))
    assert m["silog_rmse"] == pytest.approx(100 * np.log(2))  # mean(d) = 0, mean(d²) = ln²2
    assert m["irmse"] == pytest.approx(2.0)  # 1/p − 1/g = ∓2
    assert (m["delta1"], m["delta2"], m["delta3"]) == (0.0, 0.0, 0.0)  # 2 ≥ 1.25, 1.5625 and 1.953125
    ratio_1_5 = sample_metrics(np.array([[0.3]]) - 1e-5, np.array([[0.2]]) - 1e-5, np.ones((1, 1), bool))
    assert (ratio_1_5["delta1"], ratio_1_5["delta2"], ratio_1_5["delta3"]) == (0.0, 1.0, 1.0)
    same = sample_metrics(np.full((2, 2), 0.3), np.full((2, 2), 0.3), np.ones((2, 2), bool))
    assert same["silog_rmse"] == 0.0 and same["irmse"] == 0.0 and same["delta3"] == 1.0
