r"""The camera and the shapes of the synthetic world, and where rays hit them.

The geometry half of :mod:`amodal.scenes.synth` (the other half turns hits into images,
masks and depth maps). Camera: at the origin, looking along ``+z``, ``y`` pointing
down (image rows) and ``x`` right (image columns). A pixel's ray is
``d = ((u + ½ − c_x)/f, (v + ½ − c_y)/f, 1)``; with ``d_z = 1`` the ray parameter
*is* the z-depth, so every intersection returns depth directly.

Every shape has ``hit(rays) -> (t, normal, uv)`` for rays from the origin: ``t``
``(N,)`` with inf where missed, outward normals ``(N, 3)`` and texture coordinates
``(N, 2)``, all computed for every ray at once in numpy. Foreground shapes also give
``bounding_radius()``, which lets the renderer cull rays outside their image.
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


# ----------------------------------------------------------------------------- camera
@dataclass(frozen=True)
class Camera:
    """Pinhole camera at the origin looking along ``+z``.

    Args:
        width, height: image size in pixels.
        fov_degrees: horizontal field of view.
        principal: ``(u, v)`` pixel coordinates where the optical axis meets the image, and
            ``focal_pixels`` the focal length; ``None`` for the centre and the focal of
            ``fov_degrees``. Set by :meth:`crop`, which makes a view of part of the image.
    """

    width: int = 256
    height: int = 256
    fov_degrees: float = 60.0
    principal: tuple[float, float] | None = None
    focal_pixels: float | None = None

    @property
    def focal(self) -> float:
        if self.focal_pixels is not None:
            return self.focal_pixels
        return 0.5 * self.width / math.tan(math.radians(self.fov_degrees) / 2)

    @property
    def centre(self) -> tuple[float, float]:
        """``(u, v)`` of the optical axis, in pixels."""
        return self.principal if self.principal is not None else (self.width / 2, self.height / 2)

    def crop(self, top: int, bottom: int, left: int, right: int, size: int) -> "Camera":
        """The camera that sees rows ``top:bottom``, columns ``left:right`` (a square) of this
        camera's image at ``size``² pixels: the same rays, sampled more finely, so a crop renders
        as sharp as the full image (nothing is resampled)."""
        side = bottom - top
        if side <= 0 or right - left != side:
            raise ValueError(f"a crop must be a non-empty square, got rows {top}:{bottom}, columns {left}:{right}")
        scale = size / side
        u, v = self.centre
        return Camera(width=size, height=size, fov_degrees=self.fov_degrees,
                      principal=((u - left) * scale, (v - top) * scale), focal_pixels=self.focal * scale)

    def rays(self) -> np.ndarray:
        """Ray directions ``(H·W, 3)`` float64 with ``d_z = 1`` (so ``t`` is the z-depth)."""
        return cached_rays(self).copy()

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
        cu, cv = self.centre
        u = self.focal * corners[:, 0] / corners[:, 2] + cu
        v = self.focal * corners[:, 1] / corners[:, 2] + cv
        c0, c1 = max(int(math.floor(u.min())) - 1, 0), min(int(math.ceil(u.max())) + 1, self.width)
        r0, r1 = max(int(math.floor(v.min())) - 1, 0), min(int(math.ceil(v.max())) + 1, self.height)
        return r0, max(r1, r0), c0, max(c1, c0)

    def project(self, point: Sequence[float]) -> tuple[float, float]:
        """Pixel ``(u, v)`` of a 3-D point in front of the camera."""
        x, y, z = point
        cu, cv = self.centre
        return self.focal * x / z + cu, self.focal * y / z + cv


@functools.lru_cache(maxsize=8)
def cached_rays(camera: Camera) -> np.ndarray:
    """The rays of :meth:`Camera.rays`, computed once per camera and shared (read-only)."""
    f = camera.focal
    cu, cv = camera.centre
    v, u = np.mgrid[0 : camera.height, 0 : camera.width].astype(np.float64)
    x = (u + 0.5 - cu) / f
    y = (v + 0.5 - cv) / f
    rays = np.stack([x.ravel(), y.ravel(), np.ones(x.size)], axis=1)
    rays.flags.writeable = False
    return rays


def _yaw(angle: float) -> np.ndarray:
    """Rotation about the vertical (``y``) axis, local → world."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


# ----------------------------------------------------------------------------- shapes
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


def rotation(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Rotation local → world ``(3, 3)``: ``roll`` about ``z``, then ``pitch`` about ``x``, then ``yaw`` about ``y``."""
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    about_x = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    about_z = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return _yaw(yaw) @ about_x @ about_z


def _as_rotation(value) -> np.ndarray:
    matrix = np.asarray(value, float)
    if matrix.shape != (3, 3) or not np.allclose(matrix @ matrix.T, np.eye(3), atol=1e-9):
        raise ValueError(f"rotation must be an orthonormal (3, 3) matrix, got {matrix.tolist()}")
    return matrix


@dataclass
class Ellipsoid:
    """An ellipsoid with semi-axes ``radii`` along its local axes, turned by ``rotation`` (local → world).

    Curvature that differs along each axis and a tilt that the visible part only hints at.
    """

    center: tuple[float, float, float]
    radii: tuple[float, float, float]
    rotation: tuple = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    texture: int = 0
    kind: str = "ellipsoid"

    def bounding_radius(self) -> float:
        return float(max(self.radii))

    def half_height(self) -> float:
        """Half the ellipsoid's extent along the world ``y`` axis (to stand it on the ground)."""
        rot = _as_rotation(self.rotation)
        return float(np.sqrt(((rot[1] * np.asarray(self.radii, float)) ** 2).sum()))

    def hit(self, rays):
        rot = _as_rotation(self.rotation)
        radii = np.asarray(self.radii, float)
        # in the local frame scaled by 1/radii the ellipsoid is the unit sphere; t is unchanged
        origin = (-np.asarray(self.center, float) @ rot) / radii
        d = (rays @ rot) / radii
        a = np.einsum("ij,ij->i", d, d)
        b = 2.0 * d @ origin
        c = origin @ origin - 1.0
        disc = b * b - 4 * a * c
        t = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2 * a)
        t = np.where((disc >= 0) & (t > 1e-6), t, np.inf)
        unit = origin + d * np.where(np.isfinite(t), t, 0.0)[:, None]  # on the unit sphere
        normal = (unit / radii) @ rot.T  # gradient of Σ (x_i / r_i)², in world axes
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
        uv = np.stack([np.arctan2(unit[:, 0], -unit[:, 2]) / (2 * np.pi) + 0.5,
                       np.arccos(np.clip(unit[:, 1], -1, 1)) / np.pi], 1)
        return t, normal, uv


@dataclass
class Polyhedron:
    """A convex polyhedron: the box ``|x_i| ≤ half_i`` cut by planes ``n_k · x ≤ o_k``, in local
    coordinates, turned by ``rotation`` (local → world) about ``center``.

    Pyramids, wedges, tilted boxes and random faceted solids are all boxes with cuts; their
    corners and edges are what a smooth fill of the hidden part cannot guess. A ray meets a
    convex solid where it has entered every half-space: the largest entering ``t`` over the
    planes, if it is before the smallest leaving one.

    Args:
        cut_normals: ``K`` local plane normals (need not be unit); cut_offsets: their ``o_k``.
    """

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    cut_normals: tuple = ()
    cut_offsets: tuple = ()
    rotation: tuple = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    texture: int = 0
    kind: str = "polyhedron"

    def planes(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit outward normals ``(6 + K, 3)`` and offsets ``(6 + K,)`` of every face, local frame."""
        half = np.asarray(self.half, float)
        normals = np.concatenate([np.eye(3), -np.eye(3)])
        offsets = np.concatenate([half, half])
        if len(self.cut_normals):
            cuts = np.asarray(self.cut_normals, float).reshape(-1, 3)
            cut_offsets = np.asarray(self.cut_offsets, float).reshape(-1)
            if len(cut_offsets) != len(cuts):
                raise ValueError(f"{len(cuts)} cut normals but {len(cut_offsets)} cut offsets")
            norms = np.linalg.norm(cuts, axis=1)
            if (norms == 0).any():
                raise ValueError("a cut normal is zero")
            normals = np.concatenate([normals, cuts / norms[:, None]])
            offsets = np.concatenate([offsets, cut_offsets / norms])
        return normals, offsets

    def vertices(self) -> np.ndarray:
        """The corners ``(V, 3)`` in the local frame: every meeting of three faces inside all others."""
        normals, offsets = self.planes()
        # every triple of faces at once (a render asks for the bounding ball of each object)
        triples = np.array(list(itertools.combinations(range(len(normals)), 3)))
        systems = normals[triples]  # (T, 3, 3)
        solvable = np.abs(np.linalg.det(systems)) >= 1e-9
        points = np.linalg.solve(systems[solvable], offsets[triples[solvable]][..., None])[..., 0]
        inside = (points @ normals.T <= offsets + 1e-9).all(1)
        if not inside.any():
            raise ValueError("the cuts leave nothing of the box")
        return np.unique(np.round(points[inside], 12), axis=0)

    def bounding_radius(self) -> float:
        return float(np.linalg.norm(self.vertices(), axis=1).max())

    def half_height(self) -> float:
        """How far the lowest corner lies below ``center`` along the world ``y`` axis (``y`` points down)."""
        return float((self.vertices() @ _as_rotation(self.rotation).T)[:, 1].max())

    def hit(self, rays):
        rot = _as_rotation(self.rotation)
        normals, offsets = self.planes()
        origin = -np.asarray(self.center, float) @ rot
        d = rays @ rot
        denom = d @ normals.T  # (N, F): < 0 where the ray enters that face's half-space
        room = offsets - normals @ origin  # (F,): > 0 while the camera is inside the half-space
        with np.errstate(divide="ignore", invalid="ignore"):
            t_plane = room / denom
        entering = np.where(denom < 0, t_plane, -np.inf)
        leaving = np.where(denom > 0, t_plane, np.inf)
        parallel_outside = ((denom == 0) & (room < 0)).any(1)
        face = np.argmax(entering, axis=1)
        t_in = entering[np.arange(len(rays)), face]
        t_out = leaving.min(1)
        t = np.where((t_in <= t_out) & (t_in > 1e-6) & ~parallel_outside, t_in, np.inf)
        local = origin + d * np.where(np.isfinite(t), t, 0.0)[:, None]
        n_local = normals[face]
        # texture: the hit point's two coordinates across the face's dominant axis, scaled to [0, 1]
        axis = np.argmax(np.abs(n_local), axis=1)
        other = local / (2 * np.asarray(self.half, float)) + 0.5
        uv = np.where((axis == 0)[:, None], other[:, [2, 1]], np.where((axis == 1)[:, None], other[:, [0, 2]], other[:, [0, 1]]))
        return t, n_local @ rot.T, uv


Shape = Plane | Sphere | Box | Cylinder | Silhouette | Ellipsoid | Polyhedron
