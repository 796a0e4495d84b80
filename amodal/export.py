"""Writing a predicted depth map for people and other programs: 16-bit PNG, .npy, colour, PLY.

- ``*.png`` (16-bit): normalised disparity × 65535, clipped, the format of ADIW's labels.
- ``*.npy``: the float32 map itself.
- ``*_color.png``: ``Spectral_r`` on [0, 1] (near red, far blue, as every figure here) with
  the target's outline drawn in white (and, when ``D_o`` came from a toy estimator, a caption
  saying so along the bottom edge).
- ``*.ply``: the object's pixels as 3-D points (ASCII PLY, ``x y z red green blue``).
  Depth here is *relative* — normalised disparity, no scale, no camera — so the points
  use a pinhole of focal length ``max(H, W)`` and ``z = 1 / (d + 0.1)``: a faithful
  picture of the shape's ordering and curvature, not of metric geometry.
"""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

from amodal.utils.atomic import atomic_file_set, atomic_write_text

DEPTH_CMAP = "Spectral_r"  # near red, far blue: every depth picture of the repository
Z_OFFSET = 0.1  # keeps z = 1 / (d + offset) finite at d = 0 (the farthest pixel)


def depth_to_uint16(depth: np.ndarray) -> np.ndarray:
    """``(H, W)`` in [0, 1] → uint16 codes (clipped, rounded)."""
    return np.clip(np.rint(np.asarray(depth, np.float64) * 65535), 0, 65535).astype(np.uint16)


def outline(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` with a 4-neighbour outside it (the one-pixel inner border)."""
    m = np.asarray(mask, bool)
    padded = np.pad(m, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return m & ~inner


def colourise(depth: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``(H, W, 3)`` uint8: ``Spectral_r`` on [0, 1], the outline of ``mask`` in white."""

    rgb = colormaps[DEPTH_CMAP](np.clip(depth, 0, 1))[..., :3]
    if mask is not None:
        rgb[outline(mask)] = 1.0
    return np.rint(rgb * 255).astype(np.uint8)


def stamp_caption(rgb: np.ndarray, text: str) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 with ``text`` written white on a black band along its bottom edge
    (wrapped to the width); the picture keeps its size. For labels that must travel with a
    picture, such as "this depth is a toy's"."""
    picture = Image.fromarray(np.ascontiguousarray(rgb, np.uint8))
    font = ImageFont.load_default()
    draw = ImageDraw.Draw(picture)
    per_line = max(1, int(picture.width / max(1, draw.textlength("x", font=font))) - 1)
    lines = textwrap.wrap(text, per_line)
    line_height = font.getbbox("Ag")[3] + 2
    top = max(0, picture.height - line_height * len(lines) - 2)
    draw.rectangle([0, top, picture.width, picture.height], fill=(0, 0, 0))
    for k, line in enumerate(lines):
        draw.text((1, top + 1 + k * line_height), line, fill=(255, 255, 255), font=font)
    return np.asarray(picture)


def point_cloud(depth: np.ndarray, mask: np.ndarray, image: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The masked pixels as points ``(N, 3)`` float32 and colours ``(N, 3)`` uint8 (see the module docstring)."""
    h, w = depth.shape
    rows, cols = np.nonzero(mask)
    z = 1.0 / (np.asarray(depth, np.float64)[rows, cols] + Z_OFFSET)
    focal = float(max(h, w))
    points = np.stack([(cols + 0.5 - w / 2) * z / focal, (rows + 0.5 - h / 2) * z / focal, z], 1).astype(np.float32)
    colours = (np.asarray(image)[rows, cols, :3] if image is not None else colourise(depth)[rows, cols]).astype(np.uint8)
    return points, colours


def write_ply(path: str | os.PathLike, points: np.ndarray, colours: np.ndarray) -> Path:
    """ASCII PLY with one vertex per row of ``points`` ``(N, 3)`` and ``colours`` ``(N, 3)`` uint8."""
    header = ["ply", "format ascii 1.0", f"element vertex {len(points)}", "property float x", "property float y",
              "property float z", "property uchar red", "property uchar green", "property uchar blue", "end_header"]
    body = [f"{x:.6g} {y:.6g} {z:.6g} {r} {g} {b}" for (x, y, z), (r, g, b) in zip(points.tolist(), colours.tolist())]
    return atomic_write_text(path, "\n".join(header + body) + "\n")


def read_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(N, 3)`` and colours ``(N, 3)`` of an ASCII PLY written by :func:`write_ply`."""
    lines = Path(path).read_text().splitlines()
    start = lines.index("end_header") + 1
    values = np.array([line.split() for line in lines[start:]], dtype=np.float64).reshape(-1, 6)
    return values[:, :3].astype(np.float32), values[:, 3:].astype(np.uint8)


def depth_file_names(stem: str) -> dict[str, str]:
    """The names :func:`write_depth` gives a set: ``png16``, ``npy``, ``color`` and ``ply``."""
    return {"png16": f"{stem}.png", "npy": f"{stem}.npy", "color": f"{stem}_color.png", "ply": f"{stem}.ply"}


def write_depth(folder: str | os.PathLike, stem: str, depth: np.ndarray, mask: np.ndarray,
                image: np.ndarray | None = None, ply: bool = False, caption: str | None = None) -> dict[str, Path]:
    """Write ``stem.png`` (16-bit), ``stem.npy``, ``stem_color.png`` and optionally ``stem.ply``, as one set.

    The four files describe one prediction, so they are replaced together
    (:func:`amodal.utils.atomic.atomic_file_set`): written into a temporary folder inside
    ``folder`` and renamed into place only once all are written. A full disk midway
    leaves the previous set of ``stem`` as it was; a set written without ``ply`` removes
    the previous set's ``stem.ply``, which no longer matches.

    Args:
        folder: the output folder (created if missing).
        stem: the file stem of the set.
        depth: (H, W) normalised disparity in [0, 1].
        mask: (H, W) bool, the object (outlined in the colour picture; the PLY's points).
        image: (H, W, 3) uint8, the PLY's colours (default: the colour map).
        ply: also write the PLY.
        caption: written along the colour picture's bottom edge (:func:`stamp_caption`), e.g. that
            ``D_o`` came from a toy estimator.

    Returns:
        The written paths by kind (``png16``, ``npy``, ``color``, ``ply``).
    """
    names = depth_file_names(stem)
    if not ply:
        del names["ply"]
    with atomic_file_set(folder, stem, replaces=depth_file_names(stem).values()) as temporary:
        Image.fromarray(depth_to_uint16(depth)).save(temporary / names["png16"], format="PNG")
        with open(temporary / names["npy"], "wb") as handle:
            np.save(handle, np.asarray(depth, np.float32))
        colour = colourise(depth, mask)
        Image.fromarray(stamp_caption(colour, caption) if caption else colour).save(temporary / names["color"], format="PNG")
        if ply:
            write_ply(temporary / names["ply"], *point_cloud(depth, mask, image))
    return {kind: Path(folder) / name for kind, name in names.items()}
