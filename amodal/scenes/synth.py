r"""Procedural 3-D scenes where the depth behind occluders is known exactly.

No sensor measures depth behind an occluder, so ADIW's pseudo-labels (paper §3.1)
can never be checked on photos. Here we build small worlds instead — a ground plane,
a back wall, spheres, boxes, cylinders and extruded silhouettes (and, in the *rich* shape
set, pyramids, wedges, tilted boxes, faceted crystals and tilted ellipsoids: see
:data:`SHAPE_SETS`), textured with photos — and ray-cast them with a pinhole camera.
Because each object is intersected on its own as well as in the scene, we get for every
object its **full** depth, the hidden surface included, next to what the camera sees.

The camera and the shapes, and where a ray hits each, live in :mod:`amodal.scenes.raycast`
(their names are importable from here too); this module textures and lights the
hits, renders scenes with their masks and depth, and draws random scenes. Depth is
z-depth: the camera looks along ``+z``. Disparity is ``1 / z``;
:func:`disparity_from_depth` turns a z-depth map into disparity min-max normalised
per image, the convention of the whole package (larger = nearer).
(:func:`amodal.adiw.depth.normalise_disparity` takes a disparity instead.)

A 256×256 scene renders in a few tens of milliseconds on one core (see
``benchmarks/bench_synth.py``): every object is intersected with all rays at once in
numpy.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from skimage.draw import polygon
from skimage.transform import resize

from amodal.scenes.raycast import (
    Box,
    Camera,
    Cylinder,
    Ellipsoid,
    Plane,
    Polyhedron,
    Shape,
    Silhouette,
    Sphere,
    cached_rays,
    rotation,
)
from amodal.utils.images import read_image
from amodal.utils.paths import data_samples_dir

__all__ = [
    "AMBIENT", "LIGHT_DIRECTION", "SHAPE_SETS", "Box", "Camera", "Cylinder", "Ellipsoid", "Plane", "Polyhedron",
    "Render", "Scene", "Shape", "Silhouette", "Sphere", "checker_texture", "disparity_from_depth", "disparity_range",
    "photo_textures", "random_scene", "random_shape", "random_silhouette", "render",
]

#: The shape families a random scene draws from. ``simple``: smooth or boxy solids whose hidden
#: part a smooth fill guesses well (the harmonic fill of :mod:`amodal.baselines` is within about
#: 1.2 hidden RMSE×100 of the truth). ``rich`` adds what it cannot guess: corners and edges
#: (pyramids, wedges, tilted boxes, random faceted "crystals"), curvature that differs by
#: direction (tilted ellipsoids), and extruded star-shaped silhouettes turned away from the camera.
SHAPE_SETS: dict[str, tuple[str, ...]] = {
    "simple": ("sphere", "box", "cylinder"),
    "rich": ("sphere", "box", "cylinder", "ellipsoid", "tilted_box", "pyramid", "wedge", "crystal", "silhouette"),
}

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

    if folder is None:
        try:
            folder = data_samples_dir() / "images"
        except FileNotFoundError:
            return []
    textures = []
    for path in sorted(Path(folder).glob("*")):
        if path.suffix.lower() not in {".png", ".jpg", ".jpeg"}:
            continue
        try:
            photo = read_image(path)
        except (ValueError, OSError):  # an unreadable photo is simply not used as texture
            continue
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
    light_direction: tuple[float, float, float] = tuple(LIGHT_DIRECTION)  # unit, towards the light
    ambient: float = AMBIENT

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
        lit = np.clip((normal @ np.asarray(scene.light_direction)) * facing, 0, 1)
        light[where] = scene.ambient + (1 - scene.ambient) * lit
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
def random_silhouette(rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A random star-shaped polygon (5–9 points, each at 35–100 % of the radius) as a ``(size, size)`` bool mask."""

    points = int(rng.integers(5, 10))
    angles = np.sort(rng.uniform(0, 2 * np.pi, points))
    radii = rng.uniform(0.35, 1.0, points) * (size / 2 - 1)
    rows = size / 2 + radii * np.sin(angles)
    cols = size / 2 + radii * np.cos(angles)
    mask = np.zeros((size, size), bool)
    mask[polygon(rows, cols, mask.shape)] = True
    return mask


def _random_rotation(rng: np.random.Generator, tilt: float) -> np.ndarray:
    """Any yaw, and pitch and roll within ±``tilt`` radians."""
    return rotation(rng.uniform(-np.pi, np.pi), rng.uniform(-tilt, tilt), rng.uniform(-tilt, tilt))


def _on_ground(shape, x: float, z: float, ground_y: float):
    """``shape`` moved to ``(x, ·, z)`` with its lowest point on the ground."""
    shape.center = (x, ground_y - shape.half_height(), z)
    return shape


def _rich_shape(kind: str, rng: np.random.Generator, x: float, z: float, tex: int,
                silhouettes: Sequence[np.ndarray], ground_y: float):
    """One of the shapes only ``SHAPE_SETS["rich"]`` draws."""
    if kind == "ellipsoid":
        radii = tuple(rng.uniform(0.3, 1.2, 3))
        return _on_ground(Ellipsoid((x, 0, z), radii, _random_rotation(rng, 1.2), texture=tex), x, z, ground_y)
    if kind == "silhouette":
        mask = np.asarray(silhouettes[rng.integers(len(silhouettes))], bool) if len(silhouettes) else random_silhouette(rng)
        height = rng.uniform(0.8, 1.8)
        width = height * mask.shape[1] / mask.shape[0]
        return Silhouette(mask, (x, ground_y - height / 2, z), width, height, thickness=rng.uniform(0.2, 0.6),
                          yaw=rng.uniform(-1.1, 1.1), texture=tex)
    # larger than the simple boxes: the hidden relief is what a fill gets wrong
    half = rng.uniform(0.35, 1.1, size=3)
    a, b, c = half
    if kind == "tilted_box":
        cuts, offsets, tilt = (), (), 0.9
    elif kind == "pyramid":  # apex up (−y): four faces from the apex to the base's edges
        cuts = ((2 * b, -a, 0.0), (-2 * b, -a, 0.0), (0.0, -c, 2 * b), (0.0, -c, -2 * b))
        offsets = (a * b, a * b, b * c, b * c)
        tilt = 0.8
    elif kind == "wedge":  # a roof: two faces meeting in a ridge along z
        cuts, offsets, tilt = ((2 * b, -a, 0.0), (-2 * b, -a, 0.0)), (a * b, a * b), 1.2
    elif kind == "crystal":  # random planes slicing 15–55 % off the box's support in their direction
        normals = rng.normal(size=(int(rng.integers(3, 8)), 3))
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        cuts = tuple(map(tuple, normals))
        offsets = tuple(np.abs(normals) @ half * rng.uniform(0.45, 0.85, len(normals)))
        tilt = 1.2
    else:
        raise ValueError(f"unknown shape kind {kind!r}; known: {', '.join(SHAPE_SETS['rich'])}")
    shape = Polyhedron((x, 0, z), tuple(half), cuts, offsets, _random_rotation(rng, tilt), texture=tex, kind=kind)
    return _on_ground(shape, x, z, ground_y)


def random_shape(rng: np.random.Generator, n_textures: int, silhouettes: Sequence[np.ndarray] = (), ground_y: float = 1.0,
                 kinds: Sequence[str] | None = None):
    """One random foreground object standing on the ground, 3–8 units away.

    Args:
        kinds: the families to draw from, with equal chance (see :data:`SHAPE_SETS`); ``None``
            is ``SHAPE_SETS["simple"]``, plus extruded ``silhouettes`` when some are given (the
            draws of earlier versions, so old seeds give the same scenes). A ``"silhouette"``
            among ``kinds`` extrudes one of ``silhouettes``, or a :func:`random_silhouette`.
    """
    simple = kinds is None
    if simple:
        kinds = ["sphere", "box", "cylinder"] + (["silhouette"] if len(silhouettes) else [])
    elif not kinds or set(kinds) - set(SHAPE_SETS["rich"]):
        raise ValueError(f"kinds must be a non-empty subset of {SHAPE_SETS['rich']}, got {kinds}")
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
    if simple:  # the only other simple kind: an upright slab, turned a little
        mask = np.asarray(silhouettes[rng.integers(len(silhouettes))], bool)
        height = rng.uniform(0.8, 1.8)
        width = height * mask.shape[1] / mask.shape[0]
        return Silhouette(mask, (x, ground_y - height / 2, z), width, height, thickness=rng.uniform(0.1, 0.4),
                          yaw=rng.uniform(-0.6, 0.6), texture=tex)
    return _rich_shape(kind, rng, x, z, tex, silhouettes, ground_y)


def random_scene(
    seed: int,
    size: int | tuple[int, int] = 256,
    textures: Sequence[np.ndarray] | None = None,
    n_objects: tuple[int, int] = (2, 4),
    silhouettes: Sequence[np.ndarray] = (),
    shapes: str = "simple",
) -> Scene:
    """A seeded random scene: stage plus ``n_objects`` (inclusive range) foreground objects.

    Args:
        seed: same seed, same scene.
        size: image side, or ``(height, width)``.
        textures: ``(h, w, 3)`` float images in [0, 1]; default :func:`checker_texture` s.
        silhouettes: binary masks that may be extruded into objects.
        shapes: a key of :data:`SHAPE_SETS`: the families the objects are drawn from.
    """
    if shapes not in SHAPE_SETS:
        raise ValueError(f"unknown shape set {shapes!r}; known: {', '.join(SHAPE_SETS)}")
    kinds = None if shapes == "simple" else SHAPE_SETS[shapes]
    rng = np.random.default_rng(seed)
    height, width = (size, size) if isinstance(size, int) else size
    if not textures:
        textures = [checker_texture(seed=seed * 7 + i) for i in range(6)]
    n = len(textures)
    count = int(rng.integers(n_objects[0], n_objects[1] + 1))
    objects = [random_shape(rng, n, silhouettes, kinds=kinds) for _ in range(count)]
    return Scene(
        objects=objects,
        textures=list(textures),
        camera=Camera(width=width, height=height, fov_degrees=float(rng.uniform(50, 70))),
        wall_z=float(rng.uniform(10, 16)),
        ground_texture=int(rng.integers(n)),
        wall_texture=int(rng.integers(n)),
    )
