"""The in-the-wild chain's results as pictures and files: one figure stage by stage, one set of files.

:func:`stage_figure` draws every stage of a :class:`~amodal.app.in_the_wild.WildResult` with
its wall time; :func:`write_wild_result` writes every intermediate as one set
(:func:`amodal.utils.atomic.atomic_file_set`, so a full disk leaves the previous set whole):

===========================  ==============================================================
``<stem>_visible.png``       ``M_vis`` (8-bit, 255 = object)
``<stem>_amodal.png``        ``M_a``
``<stem>_completion.png``    pix2gestalt's painting (256²), when it ran
``<stem>_observed.png``      ``D_o``, 16-bit normalised disparity
``<stem>_raw.npy``           the network's map before the fit (float32)
``<stem>.png`` / ``.npy``    the result, 16-bit / float32
``<stem>_color.png``         the result in ``Spectral_r``, ``M_a`` outlined (a toy ``D_o`` captioned)
``<stem>_stages.png``        :func:`stage_figure`
``<stem>.ply``               the whole object's points: the visible part in the photo's colours,
                             the hidden part in :data:`HIDDEN_COLOUR`
===========================  ==============================================================
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from amodal.app.figures import overlay, show_depth
from amodal.export import colourise, depth_to_uint16, point_cloud, stamp_caption, write_ply
from amodal.utils.atomic import atomic_file_set

HIDDEN_COLOUR = (230, 60, 230)  # the hidden part's points in the PLY (the figures' hidden tint)


def wild_file_names(stem: str, completion: bool = True) -> list[str]:
    """The names :func:`write_wild_result` writes for ``stem``."""
    names = [f"{stem}_visible.png", f"{stem}_amodal.png", f"{stem}_observed.png", f"{stem}_raw.npy", f"{stem}.png",
             f"{stem}.npy", f"{stem}_color.png", f"{stem}_stages.png", f"{stem}.ply"]
    return names + [f"{stem}_completion.png"] if completion else names


def object_cloud(result) -> tuple[np.ndarray, np.ndarray]:
    """The whole object's points ``(N, 3)`` and colours ``(N, 3)`` uint8: visible pixels in the
    photo's colours, hidden ones in :data:`HIDDEN_COLOUR` (:func:`amodal.export.point_cloud`)."""
    image = np.array(result.image, np.uint8)
    image[result.hidden_mask] = HIDDEN_COLOUR
    return point_cloud(result.depth, result.amodal_mask, image)


def _seconds(result, stage: str) -> str:
    return f" ({result.seconds[stage]:.2f} s)" if stage in result.seconds else ""


def stage_figure(result, title: str | None = None, fig: Figure | None = None) -> Figure:
    """A figure of every stage: the photo and its points, ``M_vis``, the painting, ``M_a``, ``D_o``,
    the raw and the final depth, each with its wall time; a toy ``D_o`` is said in the title.

    Drawn on ``fig`` (e.g. ``plt.figure()`` in a notebook), or on a new figure that no
    pyplot state knows of (for files).
    """
    panels = 7 if result.completion is not None else 6
    fig = fig or Figure()
    fig.set_size_inches(2.6 * panels, 3.2)
    axes = fig.subplots(1, panels)
    photo = result.image.astype(np.float64) / 255
    axes[0].imshow(photo)
    if len(result.points):
        axes[0].scatter(result.points[:, 0], result.points[:, 1], s=14, c="yellow", edgecolors="black", linewidths=0.5)
    axes[0].set_title("photo and prompt points", fontsize=9)
    axes[1].imshow(overlay(photo, {"visible": result.visible_mask}, ("visible",)))
    axes[1].set_title("visible mask M_vis" + _seconds(result, "visible mask"), fontsize=9)
    k = 2
    if result.completion is not None:
        axes[k].imshow(result.completion)
        axes[k].set_title("pix2gestalt's painting", fontsize=9)
        k += 1
    axes[k].imshow(overlay(photo, {"amodal": result.amodal_mask, "visible": result.visible_mask,
                                   "hidden": result.hidden_mask}, ("amodal", "visible", "hidden")))
    axes[k].set_title("amodal mask M_a (hidden tinted)" + _seconds(result, "amodal mask"), fontsize=9)
    base = "D_o (toy row prior!)" if result.base_note else "base depth D_o"
    show_depth(axes[k + 1], result.observed_depth, base + _seconds(result, "base depth"))
    show_depth(axes[k + 2], result.raw_depth, "network, before the fit" + _seconds(result, "amodal depth"),
               mask=result.amodal_mask)
    show_depth(axes[k + 3], result.depth, "fitted on M_vis, pasted" + _seconds(result, "fit and paste"))
    for ax in axes:
        ax.set_axis_off()
    heading = title or ""
    if result.base_note:
        heading = f"{heading}\n{result.base_note}" if heading else result.base_note
    if heading:
        fig.suptitle(heading, fontsize=9, color="firebrick" if result.base_note else "black")
    fig.tight_layout()
    return fig


def write_wild_result(folder: str | os.PathLike, stem: str, result) -> dict[str, Path]:
    """Write every intermediate of ``result`` into ``folder`` as one set (module docstring).

    Returns:
        The written paths by file name.
    """
    names = wild_file_names(stem, result.completion is not None)
    with atomic_file_set(folder, stem, replaces=wild_file_names(stem)) as temporary:
        Image.fromarray(result.visible_mask.astype(np.uint8) * 255).save(temporary / f"{stem}_visible.png")
        Image.fromarray(result.amodal_mask.astype(np.uint8) * 255).save(temporary / f"{stem}_amodal.png")
        if result.completion is not None:
            Image.fromarray(result.completion).save(temporary / f"{stem}_completion.png")
        Image.fromarray(depth_to_uint16(result.observed_depth)).save(temporary / f"{stem}_observed.png")
        np.save(temporary / f"{stem}_raw.npy", np.asarray(result.raw_depth, np.float32))
        Image.fromarray(depth_to_uint16(result.depth)).save(temporary / f"{stem}.png")
        np.save(temporary / f"{stem}.npy", np.asarray(result.depth, np.float32))
        colour = colourise(result.depth, result.amodal_mask)
        Image.fromarray(stamp_caption(colour, result.base_note) if result.base_note else colour).save(
            temporary / f"{stem}_color.png")
        stage_figure(result, stem).savefig(temporary / f"{stem}_stages.png", dpi=110)
        write_ply(temporary / f"{stem}.ply", *object_cloud(result))
    return {name: Path(folder) / name for name in names}
