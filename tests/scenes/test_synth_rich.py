"""Tests for the rich shape set: ellipsoids and convex polyhedra against closed forms and a
ray-marching reference, standing on the ground, and the ``shapes`` option of scenes and streams."""
from __future__ import annotations

import numpy as np
import pytest

from amodal.scenes import synth
from amodal.scenes.raycast import Box, Camera, Ellipsoid, Polyhedron, Sphere, rotation


def march(inside, rays, t_max=20.0, step=1e-3):
    """First ``t`` on a grid of ``step`` where ``inside(points)`` holds, per ray (inf if never):
    an independent reference for the analytic hits, accurate to one step."""
    ts = np.arange(0.0, t_max, step)
    out = np.full(len(rays), np.inf)
    for i, ray in enumerate(rays):
        hits = np.flatnonzero(inside(ts[:, None] * ray[None]))
        if hits.size:
            out[i] = ts[hits[0]]
    return out


def some_rays(n=40, seed=0):
    rays = Camera(48, 48, 25.0).rays()  # narrow: the shapes at z ≈ 4 fill most of the view
    return rays[np.random.default_rng(seed).choice(len(rays), n, replace=False)]


def test_rotation_is_orthonormal_and_yaw_matches_the_box_convention():
    r = rotation(0.7, -0.4, 1.1)
    assert np.allclose(r @ r.T, np.eye(3)) and np.linalg.det(r) == pytest.approx(1.0)
    # a yaw alone turns +x towards −z, as Box's yaw does
    assert np.allclose(rotation(np.pi / 2) @ [1.0, 0.0, 0.0], [0.0, 0.0, -1.0])


def test_round_ellipsoid_is_a_sphere():
    rays = Camera(32, 32).rays()
    t_s, n_s, _ = Sphere((0.3, -0.2, 5.0), 1.0).hit(rays)
    t_e, n_e, _ = Ellipsoid((0.3, -0.2, 5.0), (1.0, 1.0, 1.0), rotation(0.3, 0.2, -0.5)).hit(rays)
    assert np.isfinite(t_s).sum() > 100
    assert np.array_equal(np.isfinite(t_s), np.isfinite(t_e))
    hit = np.isfinite(t_s)
    assert np.allclose(t_e[hit], t_s[hit], rtol=1e-12) and np.allclose(n_e[hit], n_s[hit], atol=1e-9)


def test_tilted_ellipsoid_against_ray_marching():
    rot = rotation(0.6, 0.5, -0.3)
    shape = Ellipsoid((0.2, 0.1, 4.0), (0.9, 0.4, 0.6), rot)
    c, radii = np.array(shape.center), np.array(shape.radii)

    def inside(p):
        return (((p - c) @ rot / radii) ** 2).sum(1) <= 1.0

    rays = some_rays(60)
    t, normal, _ = shape.hit(rays)
    reference = march(inside, rays)
    assert np.isfinite(t).sum() >= 10
    assert np.array_equal(np.isfinite(t), np.isfinite(reference))
    hit = np.isfinite(t)
    assert np.all(np.abs(t[hit] - reference[hit]) <= 1e-3 + 1e-9)
    # unit normals, facing the camera, and along the gradient of the implicit function
    p = rays[hit] * t[hit, None]
    gradient = ((p - c) @ rot / radii**2) @ rot.T
    assert np.allclose(np.linalg.norm(normal[hit], axis=1), 1.0)
    assert np.allclose(normal[hit], gradient / np.linalg.norm(gradient, axis=1, keepdims=True), atol=1e-9)
    assert np.all((normal[hit] * rays[hit]).sum(1) < 0)


def test_ellipsoid_half_height_closed_form():
    # an upright ellipsoid reaches its y semi-axis; tilted 90° about z, its x semi-axis
    assert Ellipsoid((0, 0, 5), (0.3, 0.7, 0.5)).half_height() == pytest.approx(0.7)
    assert Ellipsoid((0, 0, 5), (0.3, 0.7, 0.5), rotation(roll=np.pi / 2)).half_height() == pytest.approx(0.3)


def test_uncut_polyhedron_is_the_box():
    rays = Camera(40, 40).rays()
    box = Box((0.2, 0.1, 5.0), (0.6, 0.4, 0.5), yaw=0.5)
    poly = Polyhedron((0.2, 0.1, 5.0), (0.6, 0.4, 0.5), rotation=rotation(0.5))
    t_b, n_b, _ = box.hit(rays)
    t_p, n_p, _ = poly.hit(rays)
    hit = np.isfinite(t_b)
    assert hit.sum() > 50 and np.array_equal(hit, np.isfinite(t_p))
    assert np.allclose(t_p[hit], t_b[hit], rtol=1e-12) and np.allclose(n_p[hit], n_b[hit], atol=1e-12)
    assert poly.bounding_radius() == pytest.approx(box.bounding_radius())
    assert len(poly.vertices()) == 8


def square_pyramid(a=0.5, b=0.6, rot=None):
    """Base 2a × 2a at y = +b, apex at (0, −b, 0)."""
    cuts = ((2 * b, -a, 0.0), (-2 * b, -a, 0.0), (0.0, -a, 2 * b), (0.0, -a, -2 * b))
    return Polyhedron((0.0, 0.0, 5.0), (a, b, a), cuts, (a * b,) * 4,
                      rotation if rot is None else rot)


def test_pyramid_vertices_and_apex_depth():
    pyramid = square_pyramid()
    vertices = pyramid.vertices()
    assert len(vertices) == 5
    assert any(np.allclose(v, [0.0, -0.6, 0.0]) for v in vertices)
    # looking down its axis (pitched so the apex points at the camera), the centre ray meets the apex
    towards = square_pyramid(rot=rotation(pitch=np.pi / 2))
    t, normal, _ = towards.hit(np.array([[0.0, 0.0, 1.0]]))
    assert t[0] == pytest.approx(5.0 - 0.6, abs=1e-9)


def test_cut_polyhedron_against_ray_marching():
    rng = np.random.default_rng(3)
    normals = rng.normal(size=(5, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    half = np.array([0.7, 0.5, 0.6])
    offsets = np.abs(normals) @ half * 0.6
    rot = rotation(0.4, 0.7, -0.2)
    shape = Polyhedron((0.1, 0.0, 4.0), tuple(half), tuple(map(tuple, normals)), tuple(offsets), rot)
    c = np.array(shape.center)

    def inside(p):
        local = (p - c) @ rot
        return (np.abs(local) <= half).all(1) & (local @ normals.T <= offsets).all(1)

    rays = some_rays(60, seed=1)
    t, normal, _ = shape.hit(rays)
    reference = march(inside, rays)
    hit = np.isfinite(t)
    assert hit.sum() >= 10 and np.array_equal(hit, np.isfinite(reference))
    assert np.all(np.abs(t[hit] - reference[hit]) <= 1e-3 + 1e-9)
    assert np.allclose(np.linalg.norm(normal[hit], axis=1), 1.0)
    assert np.all((normal[hit] * rays[hit]).sum(1) < 0)
    # every corner is inside every face's half-space, and the bounding ball holds them all
    vertices = shape.vertices()
    assert np.all(np.linalg.norm(vertices, axis=1) <= shape.bounding_radius() + 1e-12)


def test_polyhedron_bad_cuts():
    with pytest.raises(ValueError, match="cut offsets"):
        Polyhedron((0, 0, 5), (0.5, 0.5, 0.5), ((1.0, 0.0, 0.0),), (0.1, 0.2)).planes()
    with pytest.raises(ValueError, match="nothing of the box"):
        Polyhedron((0, 0, 5), (0.5, 0.5, 0.5), ((1.0, 0.0, 0.0),), (-1.0,)).vertices()
    with pytest.raises(ValueError, match="orthonormal"):
        Polyhedron((0, 0, 5), (0.5, 0.5, 0.5), rotation=np.eye(3) * 2).hit(some_rays(2))


@pytest.mark.parametrize("kind", [k for k in synth.SHAPE_SETS["rich"] if k not in synth.SHAPE_SETS["simple"]])
def test_rich_shapes_stand_on_the_ground(kind):
    rng = np.random.default_rng(5)
    for _ in range(3):
        shape = synth.random_shape(rng, 4, kinds=[kind])
        assert shape.kind == kind
        scene = synth.Scene(objects=[shape], textures=[synth.checker_texture()], camera=Camera(96, 96, 70.0))
        r = synth.render(scene)
        mask = r.amodal_masks[0]
        if not mask.any():
            continue
        # the lowest surface point seen is at most on the ground (y = 1; y points down)
        rays = scene.camera.rays().reshape(96, 96, 3)
        y = rays[..., 1] * r.amodal_depth[0]
        assert y[mask].max() <= 1.0 + 1e-9
    if kind != "silhouette":  # the slab stands on its mask's lowest row, which may be empty
        assert shape.center[1] + shape.half_height() == pytest.approx(1.0)


def test_random_silhouette_is_a_star_around_the_centre():
    mask = synth.random_silhouette(np.random.default_rng(0), 48)
    assert mask.shape == (48, 48) and mask[24, 24] and 0.05 < mask.mean() < 0.8


def test_shape_sets_in_scenes():
    simple = {o.kind for s in range(12) for o in synth.random_scene(s, 32).objects}
    rich = {o.kind for s in range(12) for o in synth.random_scene(s, 32, shapes="rich").objects}
    assert simple <= set(synth.SHAPE_SETS["simple"])
    assert len(rich - set(synth.SHAPE_SETS["simple"])) >= 4
    # the default draws what it drew before the option existed (values from that version), so the
    # held-out sets of results/ and the shipped checkpoints' validation scenes are unchanged
    kinds_and_centres = [(o.kind, tuple(np.round(o.center, 9))) for o in synth.random_scene(7, 32).objects]
    assert kinds_and_centres == [
        ("box", (1.857421891, 0.263223277, 7.486069005)), ("sphere", (-0.201586937, 0.496865913, 6.985347144)),
        ("sphere", (-0.211286681, 0.345576456, 4.274347938)), ("box", (2.101239788, 0.592345651, 7.977501417))]
    with pytest.raises(ValueError, match="unknown shape set"):
        synth.random_scene(0, 32, shapes="fancy")
    with pytest.raises(ValueError, match="kinds"):
        synth.random_shape(np.random.default_rng(0), 2, kinds=["torus"])


def test_rich_synth_stream_items():
    from amodal.data.streams import SynthPool, SynthStream

    stream = SynthStream(seed=4, size=56, shapes="rich")
    item = stream[0]
    assert item["id"] == "synth-rich-4-0" and item["image"].shape == (3, 56, 56)
    occlusion = stream.occlusion(0)  # what the item was made of, the target's shape included
    assert np.array_equal(occlusion.amodal_mask, item["amodal_mask"][0].numpy() > 0)
    assert occlusion.scene.objects[occlusion.target].kind in synth.SHAPE_SETS["rich"]
    hidden = (item["amodal_mask"] > 0) & (item["visible_mask"] == 0)
    assert hidden.any()
    assert np.array_equal(SynthPool(4, 2, 56, shapes="rich")[0]["target_depth"], item["target_depth"])
    with pytest.raises(ValueError, match="unknown shape set"):
        SynthStream(seed=0, shapes="fancy")
