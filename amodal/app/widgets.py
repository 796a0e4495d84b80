"""The explorer as ipywidgets: controls in, figures out (notebook 07, ``python -m amodal explore``).

The logic lives in :mod:`amodal.app.explorer` and :mod:`amodal.app.photo` and is tested without
widgets; each class here only wires controls to it:

- :class:`DatasetExplorer` — pick a sample, filter by bucket, sort by a metric; overlays,
  depth panels on one scale, the cross-section line and the 3-D points.
- :class:`SampleBrowserWidget` — step through Amodal-DepthFM's samples; mean and spread.
- :class:`PhotoWidget` — your own photo: clicks → ``M_vis``, brush → ``M_a``, convex hull or
  mask completer, run, export PLY.
- :func:`explorer_app` — all of them in tabs, the page that ``python -m amodal explore`` serves.

Figures are drawn on an ipympl canvas when ``%matplotlib widget`` is on (the brush and the
clicks need its pointer events; the 3-D axes rotate by dragging). Under any other backend
they go into an ``Output`` as static pictures, redrawn after each change, so headless runs
never wait on a frontend. Each widget counts its redraws in ``draws`` and writes its
``status`` label as the last step of a redraw: whoever waits on the label (a test, a
browser) knows the figure was drawn.
"""
from __future__ import annotations

import base64
import contextlib
import html
import os
import time
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython import get_ipython
from IPython.display import clear_output, display

from amodal.app.explorer import EXPLORER_SEED, Explorer, SampleBrowser, SampleTable, predictors_for
from amodal.app.figures import LAYERS, draw_photo_session, draw_sample_browser, draw_sample_view, overlay_photo_masks
from amodal.app.in_the_wild import complete_with_pix2gestalt
from amodal.app.photo import PhotoSession, load_sam
from amodal.data.items import evaluation_items
from amodal.inference import load_base_depth, load_model
from amodal.metrics import BUCKETS
from amodal.models.pix2gestalt import Pix2Gestalt
from amodal.utils.paths import data_samples_dir, runs_dir

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class _FigureWidget:
    """A matplotlib figure in a widget, a redraw counter and a status label."""

    def __init__(self, figsize):
        with plt.ioff():
            self.figure = plt.figure(figsize=figsize)
        canvas = self.figure.canvas
        self.interactive = isinstance(canvas, widgets.DOMWidget)  # ipympl
        if self.interactive:
            canvas.header_visible = False
            canvas.resizable = False
            self.view = canvas
        else:
            self.view = widgets.Output()
        self.status = widgets.Label().add_class("amodal-status")
        self.draws = 0
        self._quiet = 0

    @contextlib.contextmanager
    def _hold(self):
        """Change controls without their observers redrawing."""
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    def _render(self, message: str) -> None:
        if self.interactive:
            self.figure.canvas.draw_idle()
        else:
            if get_ipython() is not None:
                with self.view:
                    clear_output(wait=True)
                    display(self.figure)
        self.draws += 1
        self.status.value = f"{message} · draw {self.draws}"  # last: the figure is drawn

    def _ipython_display_(self):
        display(self.widget)


class DatasetExplorer(_FigureWidget):
    """The dataset / evaluation explorer over an :class:`~amodal.app.explorer.Explorer`."""

    def __init__(self, explorer: Explorer, figsize=(13, 6.5)):
        super().__init__(figsize)
        self.explorer = explorer
        metrics = explorer.table.metrics
        self.bucket = widgets.Dropdown(options=["all", *BUCKETS], value="all", description="bucket").add_class("amodal-bucket")
        self.sort_by = widgets.Dropdown(options=metrics, value="raw_rmse" if "raw_rmse" in metrics else (metrics or [None])[0],
                                        description="sort by")
        self.worst_first = widgets.Checkbox(value=True, description="worst first", indent=False)
        self.sample = widgets.Dropdown(description="sample", layout=widgets.Layout(width="420px")).add_class("amodal-sample")
        self.source = widgets.Dropdown(options=list(explorer.predictors), description="prediction").add_class("amodal-source")
        self.layers = {name: widgets.Checkbox(value=True, description=name, indent=False, layout=widgets.Layout(width="auto"))
                       for name in LAYERS}
        self.error_scale = widgets.ToggleButtons(options=["shared", "stretch"], description="error scale")
        self.orientation = widgets.ToggleButtons(options=["row", "column"], description="line")
        self.position = widgets.IntSlider(min=0, max=1, description="at", continuous_update=False).add_class("amodal-position")
        for control in (self.bucket, self.sort_by, self.worst_first):
            control.observe(lambda _: self._quiet or self.refill(), "value")
        self.sample.observe(lambda _: self._quiet or self.select(), "value")
        self.source.observe(lambda _: self._quiet or self.redraw(), "value")
        self.error_scale.observe(lambda _: self._quiet or self.redraw(), "value")
        self.orientation.observe(lambda _: self._quiet or self.select(), "value")
        self.position.observe(lambda _: self._quiet or self.redraw(), "value")
        for box in self.layers.values():
            box.observe(lambda _: self._quiet or self.redraw(), "value")
        self.widget = widgets.VBox([
            widgets.HBox([self.bucket, self.sort_by, self.worst_first]),
            widgets.HBox([self.sample, self.source]),
            widgets.HBox([widgets.Label("overlay:"), *self.layers.values()]),
            widgets.HBox([self.orientation, self.position, self.error_scale]),
            self.view, self.status,
        ])
        self.current = None
        self.refill()

    def refill(self) -> None:
        """Samples of the chosen bucket in the chosen order; the first is shown."""
        ids = self.explorer.ids(self.bucket.value, self.sort_by.value, self.worst_first.value)
        rows, key = self.explorer.table.rows, self.sort_by.value
        labels = [f"{i} · {rows[i]['bucket']}" + (f" · {key} {rows[i][key]:.4g}" if key else "") for i in ids]
        with self._hold():
            self.sample.options = list(zip(labels, ids))
            self.sample.value = ids[0] if ids else None
        self.select()

    def select(self) -> None:
        """Show the chosen sample, the line through its hidden region."""
        if self.sample.value is None:
            self.figure.clear()
            self._render(f"no sample in bucket {self.bucket.value}")
            return
        view = self.explorer.view(self.sample.value, self.source.value, self.orientation.value)
        h, w = view.maps["observed"].shape
        with self._hold():
            self.position.max = (h if view.orientation == "row" else w) - 1
            self.position.value = view.position
        self.redraw()

    def redraw(self) -> None:
        if self.sample.value is None:
            return
        self.current = self.explorer.view(self.sample.value, self.source.value, self.orientation.value, self.position.value,
                                          self.error_scale.value)
        draw_sample_view(self.figure, self.current, [n for n, box in self.layers.items() if box.value])
        self._render(f"{self.current.sample_id} · {self.current.source} · {self.orientation.value} {self.position.value}")


class SampleBrowserWidget(_FigureWidget):
    """Step through the samples of a :class:`~amodal.app.explorer.SampleBrowser`."""

    def __init__(self, browser: SampleBrowser, figsize=(10, 3.2)):
        super().__init__(figsize)
        self.browser = browser
        self.index = widgets.IntSlider(min=1, max=len(browser), value=1, description="sample").add_class("amodal-draw")
        self.previous = widgets.Button(description="◀ previous")
        self.next = widgets.Button(description="next ▶")
        self.previous.on_click(lambda _: self.step(-1))
        self.next.on_click(lambda _: self.step(1))
        self.index.observe(lambda _: self._quiet or self.redraw(), "value")
        self.widget = widgets.VBox([widgets.HBox([self.previous, self.index, self.next]), self.view, self.status])
        self.redraw()

    def step(self, by: int) -> None:
        self.browser.step(by)
        with self._hold():
            self.index.value = self.browser.index + 1
        self.redraw()

    def redraw(self) -> None:
        self.browser.show(self.index.value - 1)
        draw_sample_browser(self.figure, self.browser)
        self._render(f"sample {self.browser.index + 1} of {len(self.browser)}")


def photo_files(folder: str | os.PathLike | None = None) -> dict[str, Path]:
    """Name → path of the photos in ``folder`` (default ``data_samples/images``)."""

    folder = Path(folder) if folder is not None else data_samples_dir() / "images"
    return {p.name: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES} if folder.is_dir() else {}


def click_help(sam: bool) -> str:
    """What a click does on the photo page, shown before the first one (HTML)."""
    visible = ("<b>1 · visible part:</b> click on the object; each click is a point prompt for SAM."
               if sam else
               "<b>1 · visible part:</b> click 3 or more corners of a loose polygon around the object's "
               "visible part, a little outside it; a random walker finds its edge (no SAM checkpoint given).")
    return (f"{visible}<br><b>2 · whole object M_a:</b> 'convex hull' or 'completer' proposes it; the brush "
            "adds what is missing, erase removes.<br><b>3 · depth:</b> 'run', then 'export PLY'.")


class PhotoWidget(_FigureWidget):
    """Your own photo (:class:`~amodal.app.photo.PhotoSession`): pick or upload, click, paint, run, export.

    Args:
        session: the session to start from (its model, base depth and SAM are kept for every
            photo loaded later).
        photos: name → path of the photos to pick from (default :func:`photo_files`).
        ply_folder: where "export PLY" writes ``<photo>.ply`` (default ``runs/explorer``).
        max_side: the longer side photos are scaled to.
        name: the starting photo's name (its entry in ``photos`` is shown as picked).
    """

    MODES = ("visible: click", "amodal: brush", "amodal: erase")
    UPLOADED = "(uploaded)"

    def __init__(self, session: PhotoSession, photos: dict | None = None, ply_folder: str | os.PathLike | None = None,
                 max_side: int = 384, name: str = "photo", figsize=(9.5, 7), pix2gestalt=None,
                 pix2gestalt_steps: int | None = None):
        super().__init__(figsize)
        self.pix2gestalt, self.pix2gestalt_steps = pix2gestalt, pix2gestalt_steps
        self.session, self.max_side = session, max_side
        self.ply_folder = Path(ply_folder) if ply_folder is not None else runs_dir() / "explorer"
        self.photos = photo_files() if photos is None else dict(photos)
        self.name = Path(name).stem
        self.photo = widgets.Dropdown(options=["(as given)", self.UPLOADED, *self.photos], description="photo",
                                      value=name if name in self.photos else "(as given)")
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="upload")
        self.mode = widgets.ToggleButtons(options=self.MODES).add_class("amodal-mode")
        self.radius = widgets.IntSlider(min=1, max=40, value=round(session.brush.radius), description="brush")
        names = ("convex hull", "completer", *(("pix2gestalt",) if pix2gestalt is not None else ()), "clear clicks",
                 "clear M_a", "run", "export PLY")
        self.buttons = {name: widgets.Button(description=name) for name in names}
        actions = {"convex hull": self.session_call("complete_hull"), "completer": self.session_call("complete_with_completer"),
                   "pix2gestalt": self.paint_with_pix2gestalt,
                   "clear clicks": self.session_call("clear_clicks"),
                   "clear M_a": self.session_call("clear_amodal"), "run": self.session_call("run"), "export PLY": self.export}
        for name, button in self.buttons.items():
            button.on_click(lambda _, act=actions[name]: act())
        self.photo.observe(self._on_pick, "value")
        self.upload.observe(self._on_upload, "value")
        # fixed heights: the layout does not jump when a message or a link appears
        self.help = widgets.HTML(click_help(session.sam is not None), layout=widgets.Layout(min_height="4.5em"))
        self.message = widgets.HTML(layout=widgets.Layout(min_height="1.6em"))
        self.download = widgets.HTML(layout=widgets.Layout(min_height="1.6em"))
        self.figure.canvas.mpl_connect("button_press_event", self.on_press)
        self.figure.canvas.mpl_connect("motion_notify_event", self.on_move)
        self.figure.canvas.mpl_connect("button_release_event", self.on_release)
        self.widget = widgets.VBox([widgets.HBox([self.photo, self.upload]), self.help, widgets.HBox([self.mode, self.radius]),
                                    widgets.HBox(list(self.buttons.values())), self.message, self.download, self.view,
                                    self.status])
        self.redraw()

    def session_call(self, method: str):
        """A button action: call ``session.<method>()``, show its error if any or its wall time, redraw."""
        def act():
            self._timed(getattr(self.session, method))
            self.redraw()
        return act

    def _timed(self, work, *args) -> None:
        """Run one step; its message gets the seconds it took (or the error instead)."""
        start = time.perf_counter()
        try:
            work(*args)
        except (ValueError, FileNotFoundError) as error:
            self.session.message = f"⚠ {error}"
            return
        self.session.message = f"{self.session.message} · {time.perf_counter() - start:.2f} s".lstrip(" ·")

    def paint_with_pix2gestalt(self) -> None:
        """Add the amodal mask cut from pix2gestalt's painting of the object (at 256², as the official
        demo; :func:`amodal.app.in_the_wild.complete_with_pix2gestalt`, background removal) to ``M_a``."""
        def paint():
            clicks = np.asarray(self.session.clicks, float).reshape(-1, 2)
            _, amodal = complete_with_pix2gestalt(self.session.image, self.session.visible_mask, clicks, self.pix2gestalt,
                                                  steps=self.pix2gestalt_steps)
            self.session.brush.mask |= amodal
            self.session.message = f"pix2gestalt: M_a of {int(self.session.amodal_mask.sum())} pixels from its painting"

        if not self.session.visible_mask.any():
            self.session.message = "⚠ click the visible part first: pix2gestalt completes what is seen"
        else:
            self._timed(paint)
        self.redraw()

    def load(self, photo, name: str = "photo") -> None:
        """Start a new session on ``photo`` (path, bytes or array) with the same model and settings."""
        s = self.session
        self.session = PhotoSession.from_photo(photo, self.max_side, model=s.model, base=s.base, sam=s.sam)
        self.name = Path(name).stem
        self.radius.value = round(self.session.brush.radius)
        self.download.value = ""
        self.redraw()

    def _on_pick(self, change) -> None:
        if self._quiet:
            return
        if change["new"] in self.photos:
            self.load(self.photos[change["new"]], change["new"])

    def _on_upload(self, change) -> None:
        if change["new"]:
            upload = change["new"][0]
            self.load(upload["content"], upload["name"])
            with self._hold():  # the dropdown says what is shown, without loading anything
                self.photo.value = self.UPLOADED
            self.photo.description = "photo"
            self.photo.tooltip = upload["name"]

    def export(self) -> None:
        try:
            path = self.session.export_ply(self.ply_folder / f"{self.name}.ply")
        except ValueError as error:
            self.session.message = f"⚠ {error}"
        else:
            self.session.message = f"wrote {path}"
            data = base64.b64encode(path.read_bytes()).decode("ascii")  # a link the browser saves, on any server
            self.download.value = (f'<a download="{html.escape(path.name)}" href="data:application/octet-stream;base64,'
                                   f'{data}">download {html.escape(path.name)}</a>')
        self.redraw()

    # pointer events (ipympl forwards the browser's; tests send matplotlib MouseEvents)
    def _on_photo(self, event) -> bool:
        return event.inaxes is self.axes["photo"] and event.xdata is not None

    def on_press(self, event) -> None:
        if not self._on_photo(event) or event.button not in (1, None):
            return
        if self.mode.value == self.MODES[0]:
            self._timed(self.session.click, event.xdata, event.ydata)
            self.redraw()
            return
        brush = self.session.brush
        brush.erase, brush.radius = self.mode.value == self.MODES[2], float(self.radius.value)
        brush.press(event.xdata, event.ydata)
        self._refresh_photo()

    def on_move(self, event) -> None:
        if self.session.brush.drawing and self._on_photo(event):
            self.session.brush.move(event.xdata, event.ydata)
            self._refresh_photo()

    def on_release(self, event) -> None:
        if self.session.brush.drawing:
            self.session.brush.release()
            self.redraw()

    def _refresh_photo(self) -> None:
        """During a stroke only the photo's pixels change: cheaper than a full redraw."""
        self.axes["photo"].images[0].set_data(overlay_photo_masks(self.session))
        self.figure.canvas.draw_idle()

    def redraw(self) -> None:
        self.axes = draw_photo_session(self.figure, self.session)
        self.message.value = html.escape(self.session.message)
        self._render(f"{self.name} · {self.session.amodal_mask.sum()} px in M_a · "
                     f"{'depth' if self.session.depth is not None else 'no depth'}")


def explorer_app(data: str | os.PathLike = "synth", model=None, report=None, count: int = 24, size: int = 112,
                 photos=None, device: str = "cpu", sam_checkpoint=None, sam_model: str = "vit_h",
                 samples=None, ply_folder: str | os.PathLike | None = None, base: str = "row-prior",
                 pix2gestalt=None) -> widgets.Tab:
    """The explorer's tabs: the dataset, your own photo and (given ``samples``) DepthFM's samples.

    Args:
        data: ``"synth"`` or a folder (see :func:`amodal.data.items.evaluation_items`).
        model: an Amodal-DAV2 or a checkpoint path; ``None``: the fills only, and no photo prediction.
        report: an evaluation folder (or its ``samples.csv``) to sort by; default: score the model here.
        count, size: how many items, and their side.
        photos: the photos an ADIW folder was built from (recovers occluders), default ``data_samples/images``.
        sam_checkpoint, sam_model: SAM for the photo's clicks (default: the classical fallback).
        samples: (n, 1, H, W) Amodal-DepthFM samples for the third tab.
        base: ``D_o`` of the photos: a Depth Anything V2 path or hub id, or ``"row-prior"`` (a toy,
            labelled so on the page; :func:`amodal.inference.load_base_depth`).
        pix2gestalt: its released checkpoint (path or ``ORG/NAME:FILE``): adds a "pix2gestalt" button
            that proposes ``M_a`` from its painting.
    """

    model = None if model is None else load_model(model, device)
    items = evaluation_items(data, count, size, seed=EXPLORER_SEED, with_occluder=True,
                             photos=photos if photos is not None else data_samples_dir() / "images")
    table = SampleTable.from_csv(report) if report else None
    explorer = DatasetExplorer(Explorer(items, predictors_for(model), table))
    choices = photo_files()
    first = next(iter(choices.values()), None)
    if first is None:
        raise FileNotFoundError("no sample photo in data_samples/images for the photo tab")
    session = PhotoSession.from_photo(first, model=model, base=load_base_depth(base, device),
                                      sam=load_sam(sam_checkpoint, sam_model, device) if sam_checkpoint else None)
    painter = Pix2Gestalt.from_checkpoint(pix2gestalt).to(device) if pix2gestalt else None
    photo = PhotoWidget(session, choices, ply_folder, name=first.name, pix2gestalt=painter)
    children, titles = [explorer.widget, photo.widget], ["dataset", "your own photo"]
    if samples is not None:
        children.append(SampleBrowserWidget(SampleBrowser(samples)).widget)
        titles.append("DepthFM samples")
    tabs = widgets.Tab(children=children, titles=titles)
    tabs.explorer, tabs.photo = explorer, photo  # for whoever holds the app
    return tabs
