r"""Procedural 3-D scenes where the depth behind occluders is known exactly.

No sensor measures depth behind an occluder, so ADIW's pseudo-labels (paper §3.1)
can never be checked on photos. Here we build small worlds instead — a ground plane,
a back wall, spheres, boxes, cylinders and extruded silhouettes, textured with
photos — and ray-cast them with a pinhole camera. Because each object is intersected
on its own as well as in the scene, we get for every object its **full** depth, the
hidden surface included, next to what the camera sees.

Camera: at the origin, looking along ``+z``, ``y`` pointing down (image rows) and
``x`` right (image columns). A pixel's ray is ``d = ((u + ½ − c_x)/f, (v + ½ − c_y)/f, 1)``;
with ``d_z = 1`` the ray parameter *is* the z-depth, so every intersection returns
depth directly. Disparity is ``1 / z``; :func:`disparity_from_depth` turns a z-depth
map into disparity min-max normalised per image, the convention of the whole package
(larger = nearer). (:func:`amodal.depth.normalise_disparity` takes a disparity instead.)

A 256×256 scene renders in a few tens of milliseconds on one core (see
``benchmarks/bench_synth.py``): every object is intersected with all rays at once in
numpy.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

LIGHT_DIRECTION = np.array([-0.4, -0.8, -0.45]) / np.linalg.norm([-0.4, -0.8, -0.45])  # towards the light
AMBIENT = 0.35


# ----------------------------------------------------------------------------- camera
@dataclass(frozen=True)
class Camera:
    """Pinhole camera at the origin looking along ``+z``.

    Args:
        width, height: image size in pixels.
        fov_degrees: horizontal field of view.
    """

    width: int = 256
    height: int = 256
    fov_degrees: float = 60.0

    @property
    def focal(self) -> float:
        return 0.5 * self.width / math.tan(math.radians(self.fov_degrees) / 2)

    def rays(self) -> np.ndarray:
        """Ray directions ``(H·W, 3)`` float64 with ``d_z = 1`` (so ``t`` is the z-depth)."""
        return _rays(self).copy()

    def bounds(self, center: Sequence[float], radius: float) -> tuple[int, int, int, int] | None:
        """Pixel rectangle ``(row0, row1, col0, col1)`` (end exclusive) that holds the image
        of a ball; ``None`` when the ball reaches behind the camera (use every pixel).

        The ball lies inside its bounding cube, and with all eight corners in front of the
        camera the cube's image is inside the box of the corners' images.
        """
        corners = np.asarray(center, float) + radius * np.array(
            [[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float
        )
        if corners[:, 2].min() <= 1e-3:
            return None
        u = self.focal * corners[:, 0] / corners[:, 2] + self.width / 2
        v = self.focal * corners[:, 1] / corners[:, 2] + self.height / 2
        c0, c1 = max(int(math.floor(u.min())) - 1, 0), min(int(math.ceil(u.max())) + 1, self.width)
        r0, r1 = max(int(math.floor(v.min())) - 1, 0), min(int(math.ceil(v.max())) + 1, self.height)
        return r0, max(r1, r0), c0, max(c1, c0)

    def project(self, point: Sequence[float]) -> tuple[float, float]:
        """Pixel ``(u, v)`` of a 3-D point in front of the camera."""
        x, y, z = point
        return self.focal * x / z + self.width / 2, self.focal * y / z + self.height / 2


@functools.lru_cache(maxsize=8)
def _rays(camera: Camera) -> np.ndarray:
    """The camera's rays, computed once per camera (read-only)."""
    f = camera.focal
    v, u = np.mgrid[0 : camera.height, 0 : camera.width].astype(np.float64)
    x = (u + 0.5 - camera.width / 2) / f
    y = (v + 0.5 - camera.height / 2) / f
    rays = np.stack([x.ravel(), y.ravel(), np.ones(x.size)], axis=1)
    rays.flags.writeable = False
    return rays



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


def _yaw(angle: float) -> np.ndarray:
    """Rotation about the vertical (``y``) axis, local → world."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


# ----------------------------------------------------------------------------- shapes
# Every shape has ``hit(rays) -> (t, normal, uv)``: t (N,) with inf where missed,
# outward normals (N, 3) and texture coordinates (N, 2), for rays from the origin.
@dataclass
class Plane:
    """An infinite plane ``{p : n·p = offset}`` (ground: n = (0, −1, 0); wall: n = (0, 0, −1))."""

    normal: tuple[float, float, float]
    offset: float
    texture: int = 0
    texture_scale: float = 2.0
    kind: str = "plane"

    def hit(self, rays):
        n = np.asarray(self.normal, float)
        denom = rays @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = self.offset / denom
        t = np.where((t > 1e-6) & np.isfinite(t), t, np.inf)
        p = rays * np.where(np.isfinite(t), t, 0.0)[:, None]
        # texture coordinates: the two world axes orthogonal to the normal
        axes = [a for a in range(3) if abs(n[a]) < 0.5][:2]
        uv = p[:, axes] / self.texture_scale
        return t, np.broadcast_to(n, rays.shape), uv


@dataclass
class Sphere:
    center: tuple[float, float, float]
    radius: float
    texture: int = 0
    kind: str = "sphere"

    def bounding_radius(self) -> float:
        return self.radius

    def hit(self, rays):
        c = np.asarray(self.center, float)
        a = np.einsum("ij,ij->i", rays, rays)
        b = -2.0 * rays @ c
        cc = c @ c - self.radius**2
        disc = b * b - 4 * a * cc
        root = np.sqrt(np.maximum(disc, 0.0))
        t = (-b - root) / (2 * a)  # the nearer root: the camera is outside every sphere
        t = np.where((disc >= 0) & (t > 1e-6), t, np.inf)
        p = rays * np.where(np.isfinite(t), t, 0.0)[:, None]
        normal = (p - c) / self.radius
        uv = np.stack(
            [np.arctan2(normal[:, 0], -normal[:, 2]) / (2 * np.pi) + 0.5, np.arccos(np.clip(normal[:, 1], -1, 1)) / np.pi],
            1,
        )
        return t, normal, uv


@dataclass
class Box:
    """A box with half sizes ``half`` turned by ``yaw`` about the vertical axis."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    yaw: float = 0.0
    texture: int = 0
    kind: str = "box"

    def bounding_radius(self) -> float:
        return float(np.linalg.norm(self.half))

    def hit(self, rays):
        rot = _yaw(self.yaw)
        origin = -np.asarray(self.center, float) @ rot  # camera origin in box coordinates
        d = rays @ rot
        half = np.asarray(self.half, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (-half - origin) / d
            t2 = (half - origin) / d
        t_near = np.nanmax(np.minimum(t1, t2), axis=1)
        t_far = np.nanmin(np.maximum(t1, t2), axis=1)
        t = np.where((t_near <= t_far) & (t_near > 1e-6), t_near, np.inf)
        local = origin + d * np.where(np.isfinite(t), t, 0.0)[:, None]
        axis = np.argmax(np.abs(local) / half, axis=1)  # the face that was hit
        n_local = np.zeros_like(local)
        n_local[np.arange(len(t)), axis] = np.sign(local[np.arange(len(t)), axis])
        # texture: the two coordinates of the hit face, scaled to [0, 1]
        other = (local / (2 * half)) + 0.5
        uv = np.where((axis == 0)[:, None], other[:, [2, 1]], np.where((axis == 1)[:, None], other[:, [0, 2]], other[:, [0, 1]]))
        return t, n_local @ rot.T, uv


@dataclass
class Cylinder:
    """An upright cylinder (axis along ``y``) with caps; ``center`` is its middle."""

    center: tuple[float, float, float]
    radius: float
    half_height: float
    texture: int = 0
    kind: str = "cylinder"

    def bounding_radius(self) -> float:
        return math.hypot(self.radius, self.half_height)

    def hit(self, rays):
        cx, cy, cz = self.center
        dx, dy, dz = rays[:, 0], rays[:, 1], rays[:, 2]
        a = dx * dx + dz * dz
        b = -2 * (dx * cx + dz * cz)
        c = cx * cx + cz * cz - self.radius**2
        disc = b * b - 4 * a * c
        t_side = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
        y_side = dy * t_side
        ok_side = (disc >= 0) & (t_side > 1e-6) & (np.abs(y_side - cy) <= self.half_height)
        t_side = np.where(ok_side, t_side, np.inf)
        # caps: the camera sees the top (y = cy - h, y points down) or the bottom
        best_cap = np.full(len(rays), np.inf)
        for y_cap in (cy - self.half_height, cy + self.half_height):
            with np.errstate(divide="ignore", invalid="ignore"):
                t_cap = y_cap / dy
                hx, hz = dx * t_cap - cx, dz * t_cap - cz
            ok = np.isfinite(t_cap) & (t_cap > 1e-6) & (hx * hx + hz * hz <= self.radius**2)
            best_cap = np.minimum(best_cap, np.where(ok, t_cap, np.inf))
        t = np.minimum(t_side, best_cap)
        p = rays * np.where(np.isfinite(t), t, 0.0)[:, None]
        on_cap = best_cap < t_side
        normal = np.stack([(p[:, 0] - cx) / self.radius, np.zeros(len(t)), (p[:, 2] - cz) / self.radius], 1)
        normal[on_cap] = [0.0, 0.0, 0.0]
        normal[on_cap, 1] = np.sign(p[on_cap, 1] - cy)
        uv = np.stack([np.arctan2(p[:, 0] - cx, p[:, 2] - cz) / (2 * np.pi) + 0.5, (p[:, 1] - cy) / (2 * self.half_height) + 0.5], 1)
        return t, normal, uv


@dataclass
class Silhouette:
    """A binary silhouette extruded into a slab of ``thickness``, turned by ``yaw``.

    ``mask`` ``(h, w)`` spans ``width`` × ``height`` world units centred on ``center``;
    the slab's front face looks at the camera when ``yaw = 0``. The first point
    inside the prism along a ray is found by sampling the ray's segment through the
    slab at ``steps`` points (side walls are resolved to that precision).
    """

    mask: np.ndarray
    center: tuple[float, float, float]
    width: float
    height: float
    thickness: float = 0.2
    yaw: float = 0.0
    texture: int = 0
    steps: int = 8
    kind: str = "silhouette"

    def bounding_radius(self) -> float:
        return float(np.linalg.norm([self.width / 2, self.height / 2, self.thickness / 2]))

    def hit(self, rays):
        rot = _yaw(self.yaw)
        origin = -np.asarray(self.center, float) @ rot
        d = rays @ rot
        half = np.array([self.width / 2, self.height / 2, self.thickness / 2])
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (-half - origin) / d
            t2 = (half - origin) / d
        t_in = np.nanmax(np.minimum(t1, t2), axis=1)
        t_out = np.nanmin(np.maximum(t1, t2), axis=1)
        candidates = np.flatnonzero((t_in <= t_out) & (t_in > 1e-6))
        t = np.full(len(rays), np.inf)
        normal = np.zeros_like(rays)
        uv = np.zeros((len(rays), 2))
        if candidates.size:
            h, w = self.mask.shape
            frac = np.linspace(0.0, 1.0, self.steps)
            ts = t_in[candidates, None] + (t_out - t_in)[candidates, None] * frac  # (M, S)
            local = origin + d[candidates, None, :] * ts[..., None]  # (M, S, 3)
            col = np.clip(((local[..., 0] / self.width) + 0.5) * w, 0, w - 1).astype(np.int64)
            row = np.clip(((local[..., 1] / self.height) + 0.5) * h, 0, h - 1).astype(np.int64)
            inside = self.mask[row, col]
            hit_any = inside.any(1)
            first = np.argmax(inside, axis=1)
            rows = candidates[hit_any]
            t[rows] = ts[hit_any, first[hit_any]]
            at_front = first[hit_any] == 0  # entered through the front/back face, not a side wall
            n_side = np.zeros((rows.size, 3))
            n_side[:, 0] = -np.sign(d[rows, 0])  # a side wall: facing the ray horizontally
            n_local = np.where(at_front[:, None], np.array([0.0, 0.0, -1.0]), n_side)
            normal[rows] = n_local @ rot.T
            pick = local[hit_any, first[hit_any]]
            uv[rows] = np.stack([pick[:, 0] / self.width + 0.5, pick[:, 1] / self.height + 0.5], 1)
        return t, normal, uv


Shape = Plane | Sphere | Box | Cylinder | Silhouette


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
    rays = _rays(cam)
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
