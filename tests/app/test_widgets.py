"""amodal.app.widgets: set values, click buttons, send pointer events; the state and the figures follow.

Under the test suite's Agg backend the figures go into an Output; the pointer events are
matplotlib MouseEvents sent through the canvas, the path ipympl's browser events take.
"""
import numpy as np
import pytest
import torch
from matplotlib.backend_bases import MouseEvent

from amodal.app.explorer import EXPLORER_SEED, Explorer, SampleBrowser, predictors_for
from amodal.app.photo import PhotoSession
from amodal.app.widgets import DatasetExplorer, PhotoWidget, SampleBrowserWidget, explorer_app, photo_files
from amodal.data.items import evaluation_items
from amodal.export import read_ply
from amodal.models.configs import TINY


@pytest.fixture(scope="module")
def model():
    from amodal.models.amodal_dav2 import AmodalDAV2

    torch.manual_seed(0)
    return AmodalDAV2(TINY).eval()


@pytest.fixture(scope="module")
def explorer(model):
    return Explorer(evaluation_items("synth", 6, 56, seed=EXPLORER_SEED, with_occluder=True), predictors_for(model, ("harmonic", "plane")))


@pytest.mark.slow
def test_dataset_explorer_follows_its_controls(explorer):
    w = DatasetExplorer(explorer)
    assert w.draws == 1 and w.current.sample_id == w.sample.value == explorer.ids("all", "raw_rmse")[0]
    assert w.status.value.endswith("draw 1")
    w.bucket.value = "hard"
    ids = [value for _, value in w.sample.options]
    assert ids and all(explorer.table.rows[i]["bucket"] == "hard" for i in ids)
    assert w.current.sample_id == ids[0] and w.draws == 2  # one redraw per change
    w.worst_first.value = False
    assert [v for _, v in w.sample.options] == ids[::-1]
    w.bucket.value = "all"
    other = [v for _, v in w.sample.options if v != w.sample.value][0]
    w.sample.value = other
    assert w.current.sample_id == other and other in w.status.value
    w.source.value = "fill: plane"
    assert w.current.source == "fill: plane" and "fill: plane" in w.figure.axes[3].get_title()
    w.position.value = 5
    assert w.current.position == 5 and w.figure.axes[0].lines[0].get_ydata()[0] == 5
    w.orientation.value = "column"
    assert w.current.orientation == "column" and w.position.value == w.current.position
    w.error_scale.value = "stretch"
    assert w.current.error_range[1] < w.current.scale[1] - w.current.scale[0]
    for box in w.layers.values():
        box.value = False
    shown = w.figure.axes[0].images[0].get_array()
    np.testing.assert_allclose(shown, w.current.maps["image"], atol=1e-6)  # no overlay left
    w.layers["hidden"].value = True
    assert not np.allclose(w.figure.axes[0].images[0].get_array(), w.current.maps["image"])


def test_sample_browser_widget_steps_and_wraps():
    samples = torch.rand(4, 1, 8, 8)
    w = SampleBrowserWidget(SampleBrowser(samples))
    w.next.click()
    assert w.index.value == 2 and w.browser.index == 1 and "sample 2 of 4" in w.status.value
    w.previous.click()
    w.previous.click()
    assert w.index.value == 4 and "sample 4 of 4" in w.status.value
    w.index.value = 3
    np.testing.assert_array_equal(w.browser.current, samples[2, 0].numpy())


def _photo():
    image = np.full((80, 80, 3), 30, np.uint8)
    image[20:60, 20:60] = (220, 200, 40)
    return image


def _send(widget, name, x, y, button=1):
    """A pointer event at data coordinates (x, y) of the photo, through the canvas."""
    canvas = widget.figure.canvas
    px, py = widget.axes["photo"].transData.transform((x, y))
    event = MouseEvent(name, canvas, px, py, button=button)
    canvas.callbacks.process(name, event)


def test_photo_widget_clicks_brush_hull_run_and_export(model, tmp_path):
    w = PhotoWidget(PhotoSession(_photo(), model=model), photos={}, ply_folder=tmp_path)
    for x, y in ((14, 14), (66, 14), (66, 66), (14, 66)):
        _send(w, "button_press_event", x, y)
        _send(w, "button_release_event", x, y)
    assert len(w.session.clicks) == 4 and w.session.visible_mask[40, 40] and not w.session.visible_mask[5, 5]
    visible = w.session.visible_mask.copy()
    w.mode.value = "amodal: brush"
    w.radius.value = 3
    _send(w, "motion_notify_event", 10, 70)  # hovering paints nothing
    assert not w.session.brush.mask.any()
    _send(w, "button_press_event", 62, 30)
    _send(w, "motion_notify_event", 70, 30)
    _send(w, "motion_notify_event", 74, 40)
    _send(w, "button_release_event", 74, 40)
    brush = w.session.brush.mask
    assert w.session.brush.strokes == 1 and brush[30, 66] and brush[35, 72] and not brush[50, 66]
    assert w.session.hidden_mask[30, 70] and "px in M_a" in w.status.value
    w.mode.value = "amodal: erase"
    _send(w, "button_press_event", 70, 30)
    _send(w, "button_release_event", 70, 30)
    assert not w.session.brush.mask[30, 70]
    draws = w.draws
    w.buttons["convex hull"].click()
    assert (w.session.amodal_mask >= visible).all() and w.draws == draws + 1
    hull = w.session.amodal_mask.copy()
    w.buttons["completer"].click()  # the shipped mask completer adds its guess to the hull
    assert (w.session.amodal_mask >= hull).all() and w.draws == draws + 2 and not w.session.message.startswith("⚠")
    w.buttons["export PLY"].click()  # before a run: a message, no file
    assert "run the model first" in w.message.value
    w.buttons["run"].click()
    assert w.session.depth is not None and "depth" in w.status.value and len(w.figure.axes[2].images) == 1
    w.buttons["export PLY"].click()
    points, _ = read_ply(tmp_path / "photo.ply")
    assert len(points) == w.session.amodal_mask.sum()
    w.buttons["clear M_a"].click()
    w.buttons["clear clicks"].click()
    assert not w.session.amodal_mask.any()


def test_photo_widget_loads_picked_and_uploaded_photos(model, tmp_path):
    import datetime
    import io

    from PIL import Image

    photos = photo_files()
    assert "chelsea.jpg" in photos
    w = PhotoWidget(PhotoSession(_photo(), model=model), photos=photos, max_side=64)
    w.photo.value = "chelsea.jpg"
    assert max(w.session.image.shape[:2]) == 64 and w.name == "chelsea" and w.session.model is model
    buffer = io.BytesIO()
    Image.fromarray(_photo()).save(buffer, format="PNG")
    w.upload.value = ({"name": "mine.png", "type": "image/png", "size": len(buffer.getvalue()),
                       "content": memoryview(buffer.getvalue()), "last_modified": datetime.datetime.now()},)
    assert w.name == "mine" and w.session.image.shape == (64, 64, 3)
    assert w.photo.value == "(uploaded)" and w.name == "mine"  # the dropdown says what is shown, and reloads nothing
    w.photo.value = "chelsea.jpg"
    assert w.name == "chelsea"


def test_photo_page_explains_clicks_first_keeps_its_layout_times_steps_and_offers_the_ply(model, tmp_path):
    w = PhotoWidget(PhotoSession(_photo(), model=model), photos={}, ply_folder=tmp_path)
    assert "corners of a loose polygon" in w.help.value and not w.session.clicks  # before the first click
    assert PhotoWidget(PhotoSession(_photo(), model=model, sam=object()), photos={}).help.value.count("point prompt") == 1
    photo = w.axes["photo"].get_window_extent()  # display pixels at the figure's dpi
    assert max(photo.width, photo.height) >= 512, (photo.width, photo.height)
    children = list(w.widget.children)
    for x, y in ((14, 14), (66, 14), (66, 66), (14, 66)):
        _send(w, "button_press_event", x, y)
        _send(w, "button_release_event", x, y)
    assert list(w.widget.children) == children and w.message.layout.min_height  # nothing added or removed
    assert w.message.value.endswith(" s") and "random walker" in w.message.value  # the step's wall time
    w.buttons["convex hull"].click()
    w.buttons["run"].click()
    assert "hidden" in w.message.value and w.message.value.endswith(" s")
    w.buttons["export PLY"].click()
    assert w.download.value.startswith('<a download="photo.ply" href="data:application/octet-stream;base64,')
    import base64

    payload = w.download.value.split("base64,", 1)[1].split('"', 1)[0]
    assert base64.b64decode(payload) == (tmp_path / "photo.ply").read_bytes()


def test_explorer_app_has_its_tabs(model):
    app = explorer_app(model=model, count=3, size=56, samples=torch.rand(3, 1, 8, 8))
    assert [app.get_title(k) for k in range(3)] == ["dataset", "your own photo", "DepthFM samples"]
    assert app.explorer.current.source == "Amodal-DAV2" and app.photo.session.model is model
    assert len(explorer_app(count=2, size=56).children) == 2  # no model: the fills only


def test_the_photo_page_says_when_its_base_depth_is_the_toy(model, tmp_path):
    import matplotlib.pyplot as plt

    from amodal.app.figures import draw_photo_session
    from amodal.models.amodal_dav2 import DepthAnythingV2

    app = explorer_app(model=model, count=2, size=56)
    assert app.photo.session.base.name == "row-prior"
    fig = plt.figure()
    draw_photo_session(fig, app.photo.session)
    assert fig._suptitle is not None and fig._suptitle.get_text().startswith("D_o: toy row prior")
    plt.close(fig)
    torch.manual_seed(0)
    DepthAnythingV2(TINY).save_pretrained(tmp_path / "dav2")
    real = explorer_app(model=model, count=2, size=56, base=str(tmp_path / "dav2"))
    fig = plt.figure()
    draw_photo_session(fig, real.photo.session)
    assert fig._suptitle is None  # a real depth model: nothing to warn about
    plt.close(fig)


@pytest.mark.slow
def test_the_pix2gestalt_button_proposes_the_mask_cut_from_its_painting(model):
    from amodal.models.pix2gestalt import tiny_pix2gestalt

    plain = PhotoWidget(PhotoSession(_photo(), model=model), photos={})
    assert "pix2gestalt" not in plain.buttons  # only with a checkpoint
    w = PhotoWidget(PhotoSession(_photo(), model=model), photos={}, pix2gestalt=tiny_pix2gestalt(), pix2gestalt_steps=2)
    w.buttons["pix2gestalt"].click()
    assert "click the visible part first" in w.message.value and not w.session.amodal_mask.any()
    w.session.visible_mask[20:60, 20:40] = True
    w.buttons["pix2gestalt"].click()
    assert w.message.value.startswith("pix2gestalt: M_a of") and w.message.value.endswith(" s")
    assert (w.session.amodal_mask >= w.session.visible_mask).all()
