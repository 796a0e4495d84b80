"""amodal.evaluation.cascade: paint the object alone, a plain depth model on the painting, the fit to D_o on M_vis."""
import numpy as np
import pytest
import torch

from amodal.adiw.depth import normalise_disparity
from amodal.cli import main
from amodal.evaluation.cascade import cascade_predictor, paint_biharmonic
from amodal.inference import load_predictor
from amodal.models.amodal_dav2 import DepthAnythingV2
from amodal.models.configs import TINY


@pytest.fixture(scope="module")
def dav2(tmp_path_factory):
    torch.manual_seed(0)
    model = DepthAnythingV2(TINY).eval()
    with torch.no_grad():  # a random ReLU head outputs zeros; lift the bias so the depth varies
        model.head.scratch.output_conv2[2].bias.fill_(1.0)
    folder = tmp_path_factory.mktemp("dav2") / "dav2"
    model.save_pretrained(folder)
    return model, folder


def _item(size=56):
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (3, size, size)).astype(np.float32)
    amodal = np.zeros((size, size), bool)
    amodal[10:46, 10:46] = True
    visible = amodal.copy()
    visible[:, 24:32] = False
    observed = np.tile(np.linspace(0.1, 0.9, size, dtype=np.float32), (size, 1))

    def as_map(x):
        return torch.from_numpy(np.asarray(x, np.float32))[None]

    return {"image": torch.from_numpy(image), "amodal_mask": as_map(amodal), "visible_mask": as_map(visible),
            "observed_depth": as_map(observed), "target_depth": as_map(observed), "bucket": "mid", "id": "x-0"}


def test_the_painting_keeps_the_visible_object_whitens_the_rest_and_continues_a_constant_colour():
    image = np.zeros((20, 20, 3))
    image[..., 0] = 0.8  # a red object ...
    image[6:14, 9:12] = (0.1, 0.2, 0.9)  # ... behind a blue patch
    amodal = np.zeros((20, 20), bool)
    amodal[4:16, 4:16] = True
    visible = amodal.copy()
    visible[6:14, 9:12] = False  # hidden inside the object: every neighbour of the hole is the object
    painted = paint_biharmonic(image, visible, amodal)
    np.testing.assert_array_equal(painted[visible], image[visible])
    assert (painted[~amodal] == 1.0).all()
    np.testing.assert_allclose(painted[amodal & ~visible], np.tile([0.8, 0.0, 0.0], (24, 1)), atol=1e-6)  # the harmonic extension of a constant


def test_the_cascade_is_the_depth_of_the_painting_fitted_to_d_o_on_the_visible_part(dav2):
    model, _ = dav2
    item = _item()
    prediction = cascade_predictor(model)(item)
    amodal, visible = item["amodal_mask"][0].numpy() > 0.5, item["visible_mask"][0].numpy() > 0.5
    observed = item["observed_depth"][0].numpy().astype(np.float64)
    painting = paint_biharmonic(item["image"].permute(1, 2, 0).numpy(), visible, amodal)
    depth = normalise_disparity(model.infer_image(np.rint(painting * 255).astype(np.uint8))).astype(np.float64)
    design = np.stack([depth[visible], np.ones(visible.sum())], 1)  # least squares in float64, by numpy
    (scale, shift), *_ = np.linalg.lstsq(design, observed[visible], rcond=None)
    np.testing.assert_allclose(prediction[amodal], (scale * depth + shift)[amodal], atol=1e-5)
    np.testing.assert_array_equal(prediction[~amodal], observed[~amodal].astype(np.float32))


def test_cascade_specs_are_checked(dav2):
    _, folder = dav2
    with pytest.raises(ValueError, match="unknown inpainter 'paint'"):
        load_predictor("cascade:paint", cascade_depth=str(folder))
    with pytest.raises(ValueError, match="needs the depth model"):
        load_predictor("cascade:biharmonic")
    with pytest.raises(ValueError, match="needs --pix2gestalt"):
        load_predictor("cascade:pix2gestalt", cascade_depth=str(folder))
    assert callable(load_predictor("cascade:biharmonic", cascade_depth=str(folder)))


def test_evaluate_scores_the_cascade_beside_a_fill(dav2, tmp_path):
    _, folder = dav2
    assert main(["evaluate", "--model", "cascade:biharmonic", "baseline:harmonic", "--cascade-depth", str(folder),
                 "--data", "synth", "--count", "3", "--size", "56", "--output", str(tmp_path / "eval"), "--quiet"]) == 0
    tables = sorted(p.parent.name for p in (tmp_path / "eval").rglob("samples.csv"))
    assert len(tables) == 2 and any("cascade" in name for name in tables), tables
