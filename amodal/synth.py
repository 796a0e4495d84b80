r"""Procedural 3-D scenes where the depth behind occluders is known exactly.

No sensor measures depth behind an occluder, so ADIW's pseudo-labels (paper §3.1)
can never be checked on photos. Here we build small worlds instead — a ground plane,
a back wall, spheres, boxes, cylinders and extruded silhouettes, textured with
photos — and ray-cast them with a pinhole camera. Because each object is intersected
on its own as well as in the scene, we get for every object its **full** depth, the
hidden surface included, next to what the camera sees.

The camera and the shapes, and where a ray hits each, live in :mod:`amodal.raycast`
(their names are importable from here too); this module textures and lights the
hits, renders scenes with their masks and depth, and draws random scenes. Depth is
z-depth: the camera looks along ``+z``. Disparity is ``1 / z``;
:func:`disparity_from_depth` turns a z-depth map into disparity min-max normalised
per image, the convention of the whole package (larger = nearer).
(:func:`amodal.depth.normalise_disparity` takes a disparity instead.)

A 256×256 scene renders in a few tens of milliseconds on one core (see
``benchmarks/bench_synth.py``): every object is intersected with all rays at once in
numpy.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from amodal.raycast import Box, Camera, Cylinder, Plane, Shape, Silhouette, Sphere, cached_rays

__all__ = [
    "AMBIENT", "LIGHT_DIRECTION", "Box", "Camera", "Cylinder", "Plane", "Render", "Scene", "Shape", "Silhouette",
    "Sphere", "checker_texture", "disparity_from_depth", "disparity_range", "photo_textures", "random_scene",
    "random_shape", "render",
]

LIGHT_DIRECTION = np.array([-0.4, -0.8, -0.45]) / np.linalg.norm([-0.4, -0.8, -0.45])  # towards the light
AMBIENT = 0.35


# ----------------------------------------------------------------------------- textures
def checker_texture(size: int = 64, cells: int = 8, seed: int = 0) -> np.ndarray:
    """A coloured checkerboard with a little noise, ``(size, size, 3)`` float32 in [0, 1].

    Used when no photos are at hand; two random colours so objects differ.
    """
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.15, 0.95, size=(2, 3))
    i, j = np.mgrid[0:size, 0:size] * cells // size
    tex = np.where(((i + j) % 2 == 0)[..., None], a, b)
    tex = tex + rng.normal(0, 0.03, tex.shape)
    return np.clip(tex, 0, 1).astype(np.float32)


def photo_textures(folder: str | Path | None = None, size: int = 128) -> list[np.ndarray]:
    """Square crops of the photos in ``folder`` (default ``data_samples/images``) as textures.

    Returns an empty list when the folder has no readable photos.
    """
    from skimage.io import imread
    from skimage.transform import resize

    if folder is None:
        try:
            from amodal.paths import data_samples_dir

            folder = data_samples_dir() / "images"
        except FileNotFoundError:
            return []
    textures = []
    for path in sorted(Path(folder).glob("*")):
        if path.suffix.lower() not in {".png", ".jpg", ".jpeg"}:
            continue
        try:
            photo = imread(path)
        except Exception:  # an unreadable photo is simply not used as texture
            continue
        if photo.ndim == 2:
            photo = np.stack([photo] * 3, -1)
        photo = photo[..., :3]
        side = min(photo.shape[:2])
        top, left = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
        crop = photo[top : top + side, left : left + side]
        textures.append(resize(crop, (size, size), anti_aliasing=True).astype(np.float32))
    return textures


def _sample(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Nearest texel of ``texture`` at wrapped coordinates ``uv`` ``(N, 2)`` → ``(N, 3)``."""
    h, w = texture.shape[:2]
    col = np.floor(np.mod(uv[:, 0], 1.0) * w).astype(np.int64) % w
    row = np.floor(np.mod(uv[:, 1], 1.0) * h).astype(np.int64) % h
    return texture[row, col]


# ----------------------------------------------------------------------------- scene
@dataclass
class Scene:
    """The stage (ground plane and back wall) and the foreground objects, with textures."""

    objects: list
    textures: list[np.ndarray]
    camera: Camera = field(default_factory=Camera)
    ground_y: float = 1.0
    wall_z: float = 12.0
    ground_texture: int = 0
    wall_texture: int = 0

    def without(self, index: int) -> "Scene":
        """The same scene with foreground object ``index`` removed (the "background" image)."""
        return replace(self, objects=[o for i, o in enumerate(self.objects) if i != index])

    def with_object(self, shape) -> "Scene":
        """The same scene with ``shape`` appended as the last foreground object."""
        return replace(self, objects=[*self.objects, shape])

    def stage(self) -> list:
        return [
            Plane((0.0, 1.0, 0.0), self.ground_y, texture=self.ground_texture, texture_scale=1.5),
            Plane((0.0, 0.0, 1.0), self.wall_z, texture=self.wall_texture, texture_scale=4.0),
        ]


@dataclass
class Render:
    """What the camera sees, and what it does not.

    Attributes:
        image: ``(H, W, 3)`` float32 RGB in [0, 1].
        depth: ``(H, W)`` float64 z-depth of the visible surface (finite everywhere: the wall closes the scene).
        labels: ``(H, W)`` int, index of the visible foreground object, −1 for the stage.
        amodal_depth: ``(K, H, W)`` float64, each object's own nearest surface (inf off the object),
            hidden parts included.
        amodal_masks: ``(K, H, W)`` bool, ``isfinite(amodal_depth)``.
        visible_masks: ``(K, H, W)`` bool, ``labels == k``.
    """

    image: np.ndarray
    depth: np.ndarray
    labels: np.ndarray
    amodal_depth: np.ndarray
    amodal_masks: np.ndarray
    visible_masks: np.ndarray

    def visible_ratio(self, index: int) -> float:
        """``|M_vis| / |M_a|`` of object ``index`` (0 when it is off-screen)."""
        area = self.amodal_masks[index].sum()
        return float(self.visible_masks[index].sum() / area) if area else 0.0


def render(scene: Scene) -> Render:
    """Ray-cast ``scene``; see :class:`Render` for what comes back.

    Foreground objects are intersected only with the rays inside the pixel rectangle of
    their bounding ball (:meth:`Camera.bounds`), which makes a scene about as cheap as
    its two stage planes.
    """
    cam = scene.camera
    h, w = cam.height, cam.width
    rays = cached_rays(cam)
    n = len(rays)
    shapes = [*scene.stage(), *scene.objects]
    k = len(scene.objects)
    amodal = np.full((k, n), np.inf)
    best_t = np.full(n, np.inf)
    winner = np.zeros(n, dtype=np.int64)  # index into ``shapes`` of the visible surface
    # Pass 1: depth only. Objects are intersected inside their screen rectangle.
    for index, shape in enumerate(shapes):
        obj = index - 2
        pixels = None
        if obj >= 0:
            box = cam.bounds(shape.center, shape.bounding_radius())
            if box is not None:
                r0, r1, c0, c1 = box
                pixels = (np.arange(r0, r1)[:, None] * w + np.arange(c0, c1)[None, :]).ravel()
                if pixels.size == 0:
                    continue
        t = shape.hit(rays if pixels is None else rays[pixels])[0]
        if obj >= 0:
            if pixels is None:
                amodal[obj] = t
            else:
                amodal[obj, pixels] = t
        if pixels is None:
            nearer = t < best_t
            best_t = np.where(nearer, t, best_t)
            winner[nearer] = index
        else:
            nearer = t < best_t[pixels]
            where = pixels[nearer]
            best_t[where] = t[nearer]
            winner[where] = index
    # Pass 2: colour, only where each shape won.
    colour = np.empty((n, 3))
    light = np.empty(n)
    for index in np.unique(winner):
        where = np.flatnonzero(winner == index)
        shape = shapes[int(index)]
        _, normal, uv = shape.hit(rays[where])
        colour[where] = _sample(scene.textures[shape.texture % len(scene.textures)], uv)
        # Lambertian shading, normals flipped towards the camera so both sides of a slab light up.
        facing = np.where((normal * rays[where]).sum(1) <= 0, 1.0, -1.0)
        light[where] = AMBIENT + (1 - AMBIENT) * np.clip((normal @ LIGHT_DIRECTION) * facing, 0, 1)
    image = np.clip(colour * light[:, None], 0, 1).astype(np.float32)
    labels = (winner - 2).reshape(h, w)
    labels[labels < 0] = -1
    amodal = amodal.reshape(k, h, w)
    return Render(
        image=image.reshape(h, w, 3),
        depth=best_t.reshape(h, w),
        labels=labels,
        amodal_depth=amodal,
        amodal_masks=np.isfinite(amodal),
        visible_masks=labels[None] == np.arange(k)[:, None, None],
    )


def disparity_range(depth: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` of ``1 / depth`` over an image's finite pixels."""
    disp = 1.0 / depth[np.isfinite(depth)]
    return float(disp.min()), float(disp.max())


def disparity_from_depth(depth: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """z-depth → disparity ``1/z`` min-max normalised to [0, 1] (larger = nearer).

    Args:
        depth: ``(H, W)`` z-depth; inf (no surface) becomes NaN.
        value_range: the ``(min, max)`` disparity to normalise with; default that of
            ``depth`` itself. Passing another image's range puts a hidden surface in
            that image's frame (values may then fall outside [0, 1]).

    Returns:
        ``(H, W)`` float64.
    """
    lo, hi = value_range if value_range is not None else disparity_range(depth)
    if hi <= lo:
        raise ValueError(f"depth of shape {depth.shape} is constant; disparity cannot be normalised")
    with np.errstate(divide="ignore"):
        disp = np.where(np.isfinite(depth), 1.0 / depth, np.nan)
    return (disp - lo) / (hi - lo)


# ----------------------------------------------------------------------------- random scenes
def random_shape(rng: np.random.Generator, n_textures: int, silhouettes: Sequence[np.ndarray] = (), ground_y: float = 1.0):
    """One random foreground object standing on the ground, 3–8 units away."""
    kinds = ["sphere", "box", "cylinder"] + (["silhouette"] if len(silhouettes) else [])
    kind = kinds[rng.integers(len(kinds))]
    z = rng.uniform(3.0, 8.0)
    x = rng.uniform(-0.45, 0.45) * z
    tex = int(rng.integers(n_textures))
    if kind == "sphere":
        r = rng.uniform(0.35, 0.9)
        return Sphere((x, ground_y - r, z), r, texture=tex)
    if kind == "box":
        half = rng.uniform(0.3, 0.8, size=3)
        return Box((x, ground_y - half[1], z), tuple(half), yaw=rng.uniform(-0.8, 0.8), texture=tex)
    if kind == "cylinder":
        r, hh = rng.uniform(0.25, 0.6), rng.uniform(0.4, 1.0)
        return Cylinder((x, ground_y - hh, z), r, hh, texture=tex)
    mask = np.asarray(silhouettes[rng.integers(len(silhouettes))], bool)
    height = rng.uniform(0.8, 1.8)
    width = height * mask.shape[1] / mask.shape[0]
    return Silhouette(mask, (x, ground_y - height / 2, z), width, height, thickness=rng.uniform(0.1, 0.4), yaw=rng.uniform(-0.6, 0.6), texture=tex)


def random_scene(
    seed: int,
    size: int | tuple[int, int] = 256,
    textures: Sequence[np.ndarray] | None = None,
    n_objects: tuple[int, int] = (2, 4),
    silhouettes: Sequence[np.ndarray] = (),
) -> Scene:
    """A seeded random scene: stage plus ``n_objects`` (inclusive range) foreground objects.

    Args:
        seed: same seed, same scene.
        size: image side, or ``(height, width)``.
        textures: ``(h, w, 3)`` float images in [0, 1]; default :func:`checker_texture` s.
        silhouettes: binary masks that may be extruded into objects.
    """
    rng = np.random.default_rng(seed)
    height, width = (size, size) if isinstance(size, int) else size
    if not textures:
        textures = [checker_texture(seed=seed * 7 + i) for i in range(6)]
    n = len(textures)
    count = int(rng.integers(n_objects[0], n_objects[1] + 1))
    objects = [random_shape(rng, n, silhouettes) for _ in range(count)]
    return Scene(
        objects=objects,
        textures=list(textures),
        camera=Camera(width=width, height=height, fov_degrees=float(rng.uniform(50, 70))),
        wall_z=float(rng.uniform(10, 16)),
        ground_texture=int(rng.integers(n)),
        wall_texture=int(rng.integers(n)),
    )
