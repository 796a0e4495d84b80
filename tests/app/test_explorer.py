"""amodal.app.explorer: the sample table, overlays, the colour scale, cross-sections, points, the browser."""
import math

import numpy as np
import pytest
import torch

from amodal.app.explorer import (EXPLORER_SEED, Explorer, SampleBrowser, SampleTable, cross_section, depth_scale, item_maps,
                                 line_ends, line_through_hidden, predictors_for, read_samples_csv)
from amodal.app.figures import LAYER_COLOURS, object_points, overlay
from amodal.data.items import evaluation_items
from amodal.inference import load_model
from amodal.models.configs import TINY

CSV = """id,bucket,visible_ratio,raw_rmse,raw_delta1,aligned_error
a,easy,0.9,0.02,0.99,
b,hard,0.3,0.10,0.70,
c,hard,0.4,,0.80,no visible pixel
d,mid,0.6,0.05,0.95,
"""


def test_samples_csv_reads_numbers_and_empty_cells(tmp_path):
    (tmp_path / "samples.csv").write_text(CSV)
    rows = read_samples_csv(tmp_path)  # the evaluation's folder is enough
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]
    assert rows[1]["raw_rmse"] == 0.10 and math.isnan(rows[2]["raw_rmse"]) and rows[2]["aligned_error"] == "no visible pixel"
    with pytest.raises(FileNotFoundError, match="python -m amodal evaluate"):
        read_samples_csv(tmp_path / "nowhere")
    (tmp_path / "other.csv").write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match="id and bucket"):
        read_samples_csv(tmp_path / "other.csv")


def test_table_filters_and_sorts_worst_first_with_missing_values_last(tmp_path):
    (tmp_path / "samples.csv").write_text(CSV)
    table = SampleTable.from_csv(tmp_path / "samples.csv")
    assert table.metrics == ["visible_ratio", "raw_rmse", "raw_delta1"]
    assert table.select("all", "raw_rmse") == ["b", "d", "a", "c"]
    assert table.select("all", "raw_rmse", worst_first=False) == ["a", "d", "b", "c"]
    assert table.select("all", "raw_delta1") == ["b", "c", "d", "a"]  # δ1: smaller is worse
    assert table.select("hard", "raw_rmse") == ["b", "c"]
    assert table.select("mid") == ["d"]
    with pytest.raises(ValueError, match="cannot sort"):
        table.select("all", "nope")


def test_overlay_blends_each_layer_by_hand():
    image = np.full((6, 7, 3), 0.5)
    amodal = np.zeros((6, 7), bool)
    amodal[1:5, 1:6] = True
    visible = amodal.copy()
    visible[1:5, 4:6] = False
    masks = {"amodal": amodal, "visible": visible, "hidden": amodal & ~visible, "occluder": None}
    out = overlay(image, masks, ["visible", "hidden"])
    np.testing.assert_allclose(out[2, 2], 0.55 * 0.5 + 0.45 * np.array(LAYER_COLOURS["visible"]))
    np.testing.assert_allclose(out[2, 5], 0.55 * 0.5 + 0.45 * np.array(LAYER_COLOURS["hidden"]))
    np.testing.assert_array_equal(out[0, 0], [0.5, 0.5, 0.5])
    with_outline = overlay(image, masks, ["amodal"])
    np.testing.assert_array_equal(with_outline[1, 1], [1, 1, 1])  # a corner of M_a: on the outline
    np.testing.assert_array_equal(with_outline[2, 2], [0.5, 0.5, 0.5])  # inside, not on it
    np.testing.assert_array_equal(overlay(image, masks, []), image)


def test_depth_scale_is_the_percentiles_of_all_maps_together():
    a, b = np.arange(0, 50, dtype=float), np.arange(50, 101, dtype=float)  # together 0..100
    assert depth_scale(a, b) == pytest.approx((1.0, 99.0))
    assert depth_scale(np.full(4, 0.3))[1] > 0.3  # never an empty range
    assert depth_scale(np.full(3, np.nan)) == (0.0, 1.0)


def test_line_through_hidden_and_its_ends():
    hidden = np.zeros((8, 10), bool)
    hidden[3, 2:7] = True
    hidden[5, 1:3] = True
    hidden[2:8, 8] = True
    assert line_through_hidden(hidden, "row") == 3
    assert line_through_hidden(hidden, "column") == 8
    assert line_through_hidden(np.zeros((8, 10), bool), "row") == 4
    assert line_ends((8, 10), "row", 3) == ((0.0, 3.0), (9.0, 3.0))
    assert line_ends((8, 10), "column", 2) == ((2.0, 0.0), (2.0, 7.0))
    with pytest.raises(ValueError, match="orientation"):
        line_ends((8, 10), "diagonal", 0)


def test_cross_section_of_a_plane_is_exact_and_masks_stay_boolean():
    rows, cols = np.mgrid[0:10, 0:12].astype(float)
    plane = 2 * cols + 3 * rows  # bilinear interpolation is exact on a plane
    mask = cols >= 6
    distance, values = cross_section({"plane": plane, "mask": mask}, (1.0, 1.0), (4.0, 5.0))
    assert len(distance) == 6 and distance[-1] == pytest.approx(5.0)  # length 5 → 6 samples
    t = np.linspace(0, 1, 6)
    np.testing.assert_allclose(values["plane"], 2 * (1 + 3 * t) + 3 * (1 + 4 * t))
    assert values["mask"].dtype == bool and not values["mask"].any()
    _, along_row = cross_section({"mask": mask}, (0.0, 2.0), (11.0, 2.0))
    np.testing.assert_array_equal(along_row["mask"], mask[2])


def test_object_points_split_visible_and_hidden_and_thin_out():
    depth = np.full((20, 20), 0.5)
    amodal = np.zeros((20, 20), bool)
    amodal[5:15, 5:15] = True
    visible = amodal.copy()
    visible[5:15, 10:15] = False
    points = object_points(depth, amodal, visible)
    assert len(points["visible"]) == 50 and len(points["hidden"]) == 50
    np.testing.assert_allclose(points["visible"][:, 2], 1 / (0.5 + 0.1), rtol=1e-6)  # z = 1 / (d + 0.1)
    thin = object_points(depth, amodal, visible, most=30)
    assert len(thin["visible"]) + len(thin["hidden"]) <= 30


@pytest.fixture(scope="module")
def items():
    return evaluation_items("synth", 4, 56, seed=EXPLORER_SEED, with_occluder=True)


def test_synth_items_carry_occluders(items):
    assert [i["id"] for i in items] == [f"synth-99-{k}" for k in range(4)]
    maps = item_maps(items[1])
    assert maps["image"].shape == (56, 56, 3) and maps["occluder"].dtype == bool
    assert (maps["hidden"] <= maps["occluder"]).all() and maps["hidden"].any()


def test_explorer_scores_filters_and_views(items):
    explorer = Explorer(items, predictors_for(None, ("harmonic", "observed")))
    assert list(explorer.predictors) == ["fill: harmonic", "fill: observed"]
    assert sorted(explorer.ids()) == sorted(i["id"] for i in items)
    hard = explorer.ids("hard", "raw_rmse")
    assert hard and all(explorer.table.rows[i]["bucket"] == "hard" for i in hard)
    worst = explorer.ids("all", "raw_rmse")
    errors = [explorer.table.rows[i]["raw_rmse"] for i in worst]
    assert errors == sorted(errors, reverse=True)
    sample = worst[0]
    view = explorer.view(sample, "fill: observed")
    maps = view.maps
    np.testing.assert_array_equal(view.prediction, maps["observed"])  # the "observed" fill is D_o
    assert np.isnan(view.error[~maps["amodal"]]).all()
    np.testing.assert_allclose(view.error[maps["amodal"]], np.abs(maps["observed"] - maps["target"])[maps["amodal"]])
    assert view.orientation == "row" and view.position == line_through_hidden(maps["hidden"])
    assert {"truth", "fill: observed", "D_o", "hidden", "harmonic", "plane"} <= set(view.profiles)
    np.testing.assert_allclose(view.profiles["truth"], maps["target"][view.position], atol=1e-6)  # a row: exact pixels
    assert view.scale[0] < view.scale[1] and view.error_range == (0.0, view.scale[1] - view.scale[0])
    stretched = explorer.view(sample, "fill: observed", error_scale="stretch")
    assert stretched.error_range[1] == pytest.approx(np.nanpercentile(view.error, 99))
    column = explorer.view(sample, "fill: harmonic", "column", 10)
    assert column.position == 10 and len(column.distance) == 56
    assert len(view.points["hidden"]) == maps["hidden"].sum()
    with pytest.raises(ValueError, match="unknown prediction source"):
        explorer.prediction(sample, "nope")
    with pytest.raises(ValueError, match="no sample"):
        explorer.view("nope")


def test_explorer_takes_an_evaluation_table_and_a_model(items, tmp_path):
    from amodal.evaluation.predictors import fill_predictor
    from amodal.evaluation.scoring import evaluate_items
    from amodal.evaluation.tables import write_evaluation
    from amodal.baselines import BASELINES

    write_evaluation(evaluate_items(fill_predictor(BASELINES["plane"]), items), tmp_path, resamples=10)
    table = SampleTable.from_csv(tmp_path / "samples.csv")
    torch.manual_seed(0)
    from amodal.models.amodal_dav2 import AmodalDAV2

    model = load_model(AmodalDAV2(TINY).train())
    assert not model.training
    explorer = Explorer(items, predictors_for(model), table)
    assert list(explorer.predictors)[0] == "Amodal-DAV2" and explorer.table is table
    view = explorer.view(items[0]["id"])
    assert view.source == "Amodal-DAV2" and view.prediction.shape == (56, 56)
    assert view.row["raw_rmse"] == table.rows[items[0]["id"]]["raw_rmse"]




def test_sample_browser_mean_spread_and_stepping():
    rng = np.random.default_rng(0)
    samples = rng.random((5, 1, 4, 6)).astype(np.float32)
    browser = SampleBrowser(torch.from_numpy(samples))
    reference = samples[:, 0].astype(np.float64)
    np.testing.assert_allclose(browser.mean, reference.mean(0), atol=1e-6)
    np.testing.assert_allclose(browser.spread, reference.std(0, ddof=0), atol=1e-6)
    assert len(browser) == 5 and browser.index == 0
    np.testing.assert_array_equal(browser.step(-1), samples[4, 0])  # wraps around
    np.testing.assert_array_equal(browser.step(2), samples[1, 0])
    assert browser.index == 1
    assert SampleBrowser(samples[:, None]).samples.shape == (5, 4, 6)  # (n, 1, 1, H, W) as the sampler gives
    with pytest.raises(ValueError, match="one input"):
        SampleBrowser(rng.random((5, 2, 4, 6)))
