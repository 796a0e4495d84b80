"""amodal.app.photo: the brush, the convex hull, clicks → M_vis (classical and SAM), depth and PLY."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from amodal.export import read_ply
from amodal.models.configs import TINY
from amodal.app.photo import Brush, PhotoSession, observed_depth_of, read_photo


def test_brush_press_paints_a_disc_of_lattice_points():
    brush = Brush((21, 21), radius=3)
    brush.press(10, 10)
    brush.release()
    assert brush.mask.sum() == 29  # Gauss's circle problem: 29 lattice points within radius 3
    assert brush.mask[10, 13] and brush.mask[12, 12] and not brush.mask[13, 12]  # 3² ≤ 9, 2²+2² ≤ 9, 3²+2² > 9
    assert brush.strokes == 1


def test_brush_stroke_paints_the_capsule_and_erases():
    brush = Brush((20, 41), radius=3)
    brush.move(5, 5)  # no stroke going: nothing
    assert not brush.mask.any()
    brush.press(10, 10)
    brush.move(20, 10)
    brush.move(30, 10)
    brush.release()
    # 21 columns × 7 rows between the ends, and at each end the lattice points of a half disc
    # beyond it: columns ±1 (|dy| ≤ 2: 5), ±2 (|dy| ≤ 2: 5), ±3 (dy = 0: 1) → 11 a side
    assert brush.mask.sum() == 21 * 7 + 2 * 11
    brush.erase = True
    brush.press(20, 10)
    brush.release()
    assert brush.mask.sum() == 169 - 29 and not brush.mask[10, 20] and brush.strokes == 2


def test_brush_clips_at_the_border():
    brush = Brush((5, 5), radius=2)
    brush.press(0, 0)
    assert brush.mask.sum() == 6  # (0,0) (1,0) (2,0) (0,1) (1,1) (0,2)
    brush.move(-10, -10)  # off the picture: nothing more, no error
    assert brush.mask.sum() == 6


def test_read_photo_from_bytes_path_and_array(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    np.testing.assert_array_equal(read_photo(buffer.getvalue(), max_side=None), rgb)
    Image.fromarray(rgb).save(tmp_path / "p.png")
    assert read_photo(tmp_path / "p.png", max_side=20).shape == (15, 20, 3)
    assert read_photo(rgb / 255.0).dtype == np.uint8
    with pytest.raises(FileNotFoundError, match="photo not found"):
        read_photo(tmp_path / "missing.png")


def test_observed_depth_sources():
    image = np.zeros((5, 4, 3), np.uint8)
    np.testing.assert_allclose(observed_depth_of("row-prior", image)[:, 0], np.linspace(0, 1, 5))

    class Disparity:
        def infer_image(self, rgb):
            return np.arange(20, dtype=np.float64).reshape(5, 4) + 3.0

    np.testing.assert_allclose(observed_depth_of(Disparity(), image), np.arange(20).reshape(5, 4) / 19, atol=1e-6)
    np.testing.assert_array_equal(observed_depth_of(np.full((5, 4), 0.25), image), np.full((5, 4), 0.25, np.float32))
    with pytest.raises(ValueError, match="like the photo"):
        observed_depth_of(np.zeros((3, 3)), image)


def _square_photo():
    image = np.full((80, 80, 3), 30, np.uint8)
    image[20:60, 20:60] = (220, 200, 40)
    return image


@pytest.fixture(scope="module")
def model():
    from amodal.models.amodal_dav2 import AmodalDAV2

    torch.manual_seed(0)
    return AmodalDAV2(TINY).eval()


def test_clicks_make_the_visible_mask_with_the_classical_fallback():
    session = PhotoSession(_square_photo())
    session.click(14, 14)
    session.click(66, 14)
    assert not session.visible_mask.any() and "click 1 more" in session.message
    session.click(66, 66)
    session.click(14, 66)
    truth = np.zeros((80, 80), bool)
    truth[20:60, 20:60] = True
    iou = (session.visible_mask & truth).sum() / (session.visible_mask | truth).sum()
    assert iou > 0.95, iou
    assert "random walker" in session.message
    session.clear_clicks()
    assert not session.clicks and not session.visible_mask.any()


def test_clicks_prompt_sam_when_given():
    from segment_anything import SamPredictor

    from amodal.adiw.sam_masks import tiny_sam

    session = PhotoSession(_square_photo()[:64, :64], sam=SamPredictor(tiny_sam(64)))
    mask = session.click(30, 30)
    assert mask.shape == (64, 64) and mask.dtype == bool and "SAM" in session.message


def test_run_pastes_into_observed_depth_and_exports_ply(model, tmp_path):
    session = PhotoSession(_square_photo(), model=model)
    with pytest.raises(ValueError, match="empty"):
        session.run()
    session.visible_mask[20:60, 20:40] = True
    session.brush.press(50, 40)
    session.brush.release()
    assert session.hidden_mask.sum() == session.brush.mask.sum() - (session.brush.mask & session.visible_mask).sum()
    session.complete_hull()
    assert (session.amodal_mask >= session.visible_mask).all()
    depth = session.run()
    far = np.ones((80, 80), bool)
    rows, cols = np.nonzero(session.amodal_mask)
    far[rows.min() - 1:rows.max() + 2, cols.min() - 1:cols.max() + 2] = False
    np.testing.assert_array_equal(depth[far], session.observed_depth[far])  # D_o untouched away from the object
    path = session.export_ply(tmp_path / "object.ply")
    points, colours = read_ply(path)
    assert len(points) == session.amodal_mask.sum()
    np.testing.assert_array_equal(colours, session.image[session.amodal_mask])  # coloured from the photo
    with pytest.raises(ValueError, match="no Amodal-DAV2"):
        PhotoSession(_square_photo()).run()


def test_run_gives_a_fill_residual_model_the_visible_mask():
    import dataclasses

    from amodal.models.amodal_dav2 import AmodalDAV2

    torch.manual_seed(0)
    model = AmodalDAV2(dataclasses.replace(TINY, fill_residual=0.2)).eval()
    session = PhotoSession(_square_photo(), model=model)
    session.visible_mask[20:60, 20:40] = True
    session.complete_hull()
    session.brush.press(50, 40)
    session.brush.release()
    depth = session.run()
    assert depth.shape == (80, 80) and np.isfinite(depth).all()


def test_outline_clicks_surround_the_object():
    from amodal.app.photo import outline_clicks
    from amodal.app.segment_classical import polygon_mask

    mask = np.zeros((60, 80), bool)
    mask[20:40, 25:55] = True
    clicks = outline_clicks(mask, count=10, margin=0.1)
    assert len(clicks) == 10
    assert not any(mask[int(round(y)), int(round(x))] for x, y in clicks)  # every click lies outside
    assert (polygon_mask(clicks, mask.shape) >= mask).all()  # and their polygon holds the object
    with pytest.raises(ValueError, match="non-empty"):
        outline_clicks(np.zeros((5, 5), bool))
