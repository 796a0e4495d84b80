"""Tests for amodal.evaluation.headroom: least-squares corrections of a fill, by hand and in closed form."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from amodal.evaluation.headroom import FEATURES, FillCorrection, correction_features, fit_fill_correction


def make_item(fill, target, visible, hidden):
    as_map = lambda x: torch.from_numpy(np.asarray(x, np.float32))[None]  # noqa: E731
    observed = np.where(visible, fill, 0.9)
    return {"fill": np.asarray(fill, np.float64), "observed_depth": as_map(observed),
            "amodal_mask": as_map(visible | hidden), "visible_mask": as_map(visible), "target_depth": as_map(target)}


def the_fill(item):
    return item["fill"]


def test_features_of_a_hidden_pixel_by_hand():
    visible = np.zeros((4, 4), bool)
    visible[:, 0] = True
    hidden = np.zeros((4, 4), bool)
    hidden[1, 3] = hidden[2, 1] = True
    fill = np.arange(16, dtype=float).reshape(4, 4) / 16
    observed = np.where(visible, np.array([0.2, 0.4, 0.6, 0.8])[:, None], 0.0)
    got = correction_features(fill, observed, visible, hidden)
    assert got.shape == (2, len(FEATURES))
    f, d = 7 / 16, 3 / 4  # pixel (1, 3): three columns from the visible one
    share = 2 / 6
    np.testing.assert_allclose(got[0], [f, 1, d, d * d, f * d, 1 / 4, 3 / 4, f * f, 0.5, np.std([0.2, 0.4, 0.6, 0.8]),
                                        share, f * share])
    assert got[1, 2] == pytest.approx(1 / 4)
    with pytest.raises(ValueError, match="no visible pixel"):
        correction_features(fill, observed, np.zeros((4, 4), bool), hidden)


def test_a_correction_that_is_in_the_family_is_found_exactly():
    rng = np.random.default_rng(0)
    items = []
    for k in range(5):
        visible = np.zeros((12, 12), bool)
        visible[:, : 3 + k] = True
        hidden = ~visible
        hidden[:, -1] = False  # off the object
        fill = rng.uniform(0.2, 0.8, (12, 12))
        distance = np.maximum(np.arange(12) - (2 + k), 0)[None, :].repeat(12, 0) / 12
        target = np.where(hidden, 0.8 * fill + 0.1 + 0.3 * distance, fill)
        items.append(make_item(fill, target, visible, hidden))
    correction = fit_fill_correction(the_fill, items, count=3)
    np.testing.assert_allclose(correction.weights, [0.8, 0.1, 0.3], atol=1e-9)
    for item in items:
        np.testing.assert_allclose(correction(item), item["target_depth"][0].numpy(), atol=1e-6)


def test_each_item_counts_once_whatever_its_hidden_area():
    # one feature (the fill alone): w = Σ_i (1/n_i) Σ f t / Σ_i (1/n_i) Σ f², in closed form
    visible = np.zeros((8, 8), bool)
    visible[:, 0] = True
    big, small = ~visible, np.zeros((8, 8), bool)
    small[0, 1:3] = True
    fill_a, fill_b = np.full((8, 8), 0.5), np.full((8, 8), 0.4)
    items = [make_item(fill_a, 0.6 * fill_a, visible, big), make_item(fill_b, 0.9 * fill_b, visible, small)]
    expected = (0.5 * 0.3 + 0.4 * 0.36) / (0.25 + 0.16)  # per item: mean f·t over mean f²
    assert fit_fill_correction(the_fill, items, count=1).weights[0] == pytest.approx(expected)


def test_bad_counts_and_nothing_hidden():
    visible = np.ones((4, 4), bool)
    item = make_item(np.full((4, 4), 0.5), np.full((4, 4), 0.5), visible, np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="count"):
        fit_fill_correction(the_fill, [item], count=13)
    with pytest.raises(ValueError, match="no item has hidden pixels"):
        fit_fill_correction(the_fill, [item])
    # a correction leaves the visible pixels as the fill says
    correction = FillCorrection(the_fill, np.array([1.0]))
    np.testing.assert_array_equal(correction(item), item["fill"].astype(np.float32))


def test_the_middlebury_headroom_script_writes_its_table(tmp_path):
    import json
    import subprocess
    import sys

    from amodal.utils.paths import repo_root

    out = tmp_path / "headroom.json"
    run = subprocess.run([sys.executable, str(repo_root() / "scripts" / "middlebury_headroom.py"), "--count", "3",
                          "--features", "1", "5", "--output", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "| none (the harmonic fill) |" in run.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [r["features"] for r in rows] == [0, 1, 5]
    assert [len(r["weights"]) for r in rows[1:]] == [1, 5]
    for row in rows:
        low, high = row["rmse_x100_ci"]
        assert low <= row["rmse_x100"] <= high
