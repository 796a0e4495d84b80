"""Evaluation runs: records and summaries on hand-made items."""
import math

import numpy as np
import pytest
import torch

from amodal.baselines import visible_mean
from amodal.evaluation.predictors import fill_predictor, model_predictor
from amodal.evaluation.scoring import evaluate_items, summarise


def _item(hidden_value=0.5, ratio_cols=6):
    amodal = torch.zeros(1, 8, 8)
    amodal[:, 2:6, 0:8] = 1
    visible = amodal.clone()
    visible[:, :, ratio_cols:] = 0
    observed = torch.full((1, 8, 8), 0.2)
    observed[:, 2:6, ratio_cols:] = 0.9  # the occluder
    target = torch.where((amodal > 0) & (visible == 0), torch.tensor(hidden_value), torch.tensor(0.2))
    return {"image": torch.zeros(3, 8, 8), "amodal_mask": amodal, "visible_mask": visible,
            "observed_depth": observed, "target_depth": target, "id": "a"}


def test_perfect_and_fill_predictions_by_hand():
    items = [_item(0.5, 6), _item(0.5, 2)]  # ratios 0.75 (mid) and 0.25 (hard)
    perfect = evaluate_items(lambda item: item["target_depth"][0].numpy(), items)
    assert [r["bucket"] for r in perfect] == ["mid", "hard"]
    assert perfect[0]["raw"]["rmse"] == 0.0 and perfect[0]["raw"]["delta1"] == 1.0
    filled = evaluate_items(fill_predictor(visible_mean), items)
    # the visible mean is 0.2 against a hidden truth of 0.5: RMSE 0.3, ratio (0.5+1e-5)/(0.2+1e-5) > 1.25
    assert filled[0]["raw"]["rmse"] == pytest.approx(0.3)
    assert filled[0]["raw"]["delta1"] == 0.0
    assert math.isnan(filled[0]["aligned"]["rmse"]) and "constant" in filled[0]["aligned_error"]
    summary = summarise(filled)["raw"]
    assert summary["overall"]["count"] == 2 and summary["easy"]["count"] == 0 and math.isnan(summary["easy"]["rmse"])


def test_model_predictor_runs_the_model_on_the_item():
    class Half(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, image, amodal_mask, observed_depth):
            return observed_depth * 0.5 * self.w

    out = model_predictor(Half())(_item())
    np.testing.assert_allclose(out, _item()["observed_depth"][0].numpy() * 0.5)


def test_bootstrap_interval_matches_the_normal_closed_form():
    """For 4000 draws of N(0, 1) the 95 % interval of the mean is about ±1.96/√n around it."""
    from amodal.evaluation.intervals import bootstrap_ci

    values = np.random.default_rng(0).normal(size=4000)
    low, high = bootstrap_ci(values, resamples=4000)
    half = 1.96 * values.std() / np.sqrt(values.size)
    assert low == pytest.approx(values.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(values.mean() + half, abs=0.1 * half)
    assert all(math.isnan(x) for x in bootstrap_ci([1.0, math.nan]))


def test_report_files(tmp_path):
    import csv
    import json

    from amodal.evaluation.tables import write_evaluation

    items = [_item(0.5, 6), _item(0.4, 6), _item(0.5, 2), _item(0.3, 2)]
    records = evaluate_items(fill_predictor(visible_mean), items)
    summary = write_evaluation(records, tmp_path, name="visible mean")
    rows = list(csv.DictReader(open(tmp_path / "samples.csv")))
    assert len(rows) == 4 and rows[0]["bucket"] == "mid" and float(rows[0]["raw_rmse"]) == pytest.approx(0.3)
    assert "constant" in rows[0]["aligned_error"]
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["samples"] == 4 and saved["summary"]["raw"]["overall"]["count"] == 4
    low, high = summary["raw"]["overall"]["rmse_ci"]
    assert 0.1 <= low <= summary["raw"]["overall"]["rmse"] <= high <= 0.3  # errors are 0.1, 0.2, 0.3 and 0.3
    table = (tmp_path / "table.txt").read_text()
    assert "visible mean (raw)" in table and "Amodal-DAV2-L" in table and "3.418" in table


def test_batched_evaluation_equals_one_by_one():
    from amodal.evaluation.scoring import evaluate_items
    from amodal.models.amodal_dav2 import AmodalDAV2
    from amodal.models.configs import TINY
    from amodal.data.streams import SynthStream

    torch.manual_seed(0)
    model = AmodalDAV2(TINY).eval()
    with torch.no_grad():
        model.encoder.patch_embed_guidance.proj.weight.normal_(0, 0.1)
    stream = SynthStream(seed=5, size=28)
    items = [stream[k] for k in range(5)]
    single = evaluate_items(model_predictor(model), items)
    batched = evaluate_items(model_predictor(model), items, batch_size=3)
    assert [r["id"] for r in batched] == [r["id"] for r in single]
    for a, b in zip(single, batched):
        assert a["raw"]["rmse"] == pytest.approx(b["raw"]["rmse"], abs=1e-6)
