"""Tests for amodal.scenes.synth and amodal.scenes.raycast: ray-cast depth against closed forms, culling, masks, seeds."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from amodal.scenes import synth
from amodal.scenes.synth import Box, Camera, Cylinder, Scene, Silhouette, Sphere, render


def centre_ray(camera):
    """Index of a pixel whose ray is closest to the optical axis, and that ray."""
    rays = camera.rays()
    i = int(np.argmin(rays[:, 0] ** 2 + rays[:, 1] ** 2))
    return i, rays[i]


def one_object_scene(shape, size=64):
    return Scene(objects=[shape], textures=[synth.checker_texture()], camera=Camera(size, size, 60.0), wall_z=20.0)


def test_rays_have_unit_z_and_pinhole_geometry():
    cam = Camera(width=40, height=30, fov_degrees=90.0)
    rays = cam.rays()
    assert rays.shape == (1200, 3) and np.all(rays[:, 2] == 1)
    # 90° field of view: the edge of the image is at x/z = ±1; pixel centres half a pixel inside
    assert rays[0, 0] == pytest.approx(-1 + 1 / 40)
    assert cam.focal == pytest.approx(20.0)


def test_sphere_depth_matches_closed_form():
    sphere = Sphere((0.3, -0.2, 5.0), 1.0)
    rays = Camera(32, 32).rays()
    t, normal, _ = sphere.hit(rays)
    c = np.array(sphere.center)
    for i in np.flatnonzero(np.isfinite(t))[::37]:
        d = rays[i] / np.linalg.norm(rays[i])
        # nearest intersection distance along a unit ray: b - sqrt(b² - |c|² + r²)
        b = d @ c
        dist = b - math.sqrt(b * b - c @ c + 1.0)
        assert t[i] == pytest.approx(dist * d[2], rel=1e-12)
        assert np.linalg.norm(normal[i]) == pytest.approx(1.0)


def test_box_front_face_depth_is_constant_without_yaw():
    box = Box((0.0, 0.0, 6.0), (0.5, 0.5, 0.3))
    r = render(one_object_scene(box))
    front = r.amodal_depth[0][r.amodal_masks[0]]
    assert np.allclose(front, 5.7)


def test_cylinder_side_at_the_centre_column():
    cyl = Cylinder((0.0, 0.0, 5.0), 0.5, 1.0)
    i, ray = centre_ray(Camera(65, 65))
    t, _, _ = cyl.hit(ray[None])
    # a ray (x, y, 1) with tiny x hits the side at z ≈ 5 − sqrt(0.25 − x²)... solve exactly
    x = ray[0]
    a = x * x + 1
    b = -2 * 5.0
    c = 25 - 0.25
    assert t[0] == pytest.approx((-b - math.sqrt(b * b - 4 * a * c)) / (2 * a), rel=1e-12)


def test_full_silhouette_equals_a_box_front():
    mask = np.ones((10, 10), bool)
    sil = Silhouette(mask, (0.0, 0.0, 6.0), 1.0, 1.0, thickness=0.6)
    box = Box((0.0, 0.0, 6.0), (0.5, 0.5, 0.3))
    rs, rb = render(one_object_scene(sil)), render(one_object_scene(box))
    assert np.array_equal(rs.amodal_masks[0], rb.amodal_masks[0])
    assert np.allclose(rs.amodal_depth[0][rs.amodal_masks[0]], 5.7)


def test_silhouette_hole_is_empty():
    mask = np.ones((9, 9), bool)
    mask[3:6, 3:6] = False
    sil = Silhouette(mask, (0.0, 0.0, 6.0), 3.0, 3.0, thickness=0.1)
    r = render(one_object_scene(sil, size=65))
    assert not r.amodal_masks[0][32, 32] and r.amodal_masks[0][32, 20]


def test_culling_matches_brute_force():
    scene = synth.random_scene(11, 64, n_objects=(4, 5), silhouettes=[np.ones((5, 3), bool)])
    r = render(scene)
    rays = scene.camera.rays()
    stage = [s.hit(rays)[0] for s in scene.stage()]
    objs = [s.hit(rays)[0] for s in scene.objects]
    for k, t in enumerate(objs):
        assert np.array_equal(r.amodal_depth[k].ravel(), t)
    brute = np.min(np.stack(stage + objs), 0)
    assert np.array_equal(r.depth.ravel(), brute)


def test_masks_are_consistent():
    r = render(synth.random_scene(3, 64, n_objects=(3, 4)))
    assert (r.visible_masks.sum(0) <= 1).all()  # a pixel shows one object at most
    assert not (r.visible_masks & ~r.amodal_masks).any()  # visible ⊂ amodal
    # where an object is visible its own depth is the scene's depth; where hidden it is farther
    for k in range(len(r.amodal_masks)):
        assert np.array_equal(r.amodal_depth[k][r.visible_masks[k]], r.depth[r.visible_masks[k]])
        hidden = r.amodal_masks[k] & ~r.visible_masks[k]
        assert (r.amodal_depth[k][hidden] >= r.depth[hidden]).all()
    assert r.image.dtype == np.float32 and r.image.min() >= 0 and r.image.max() <= 1


def test_without_object_uncovers_what_it_hid():
    scene = synth.random_scene(3, 64, n_objects=(3, 4))
    r = render(scene)
    k = int(np.argmin([r.visible_ratio(i) for i in range(len(scene.objects))]))
    occluded = r.amodal_masks[k] & ~r.visible_masks[k]
    assert occluded.sum() > 20, "scene 3 must hide part of an object, or this test checks nothing"
    # remove every other object: the target's full depth becomes the visible depth
    alone = render(Scene([scene.objects[k]], scene.textures, scene.camera, wall_z=scene.wall_z))
    assert np.array_equal(alone.depth[r.amodal_masks[k]], r.amodal_depth[k][r.amodal_masks[k]])


def test_seeded_scenes_repeat():
    a, b = render(synth.random_scene(5, 48)), render(synth.random_scene(5, 48))
    c = render(synth.random_scene(6, 48))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.depth, b.depth)
    assert not np.array_equal(a.depth, c.depth)


def test_disparity_from_depth_by_hand():
    depth = np.array([[1.0, 2.0], [4.0, np.inf]])
    d = synth.disparity_from_depth(depth)
    # disparity 1, .5, .25 → (x − .25) / .75
    assert np.allclose(d[0], [1.0, (0.5 - 0.25) / 0.75]) and d[1, 0] == 0 and np.isnan(d[1, 1])
    with pytest.raises(ValueError, match="constant"):
        synth.disparity_from_depth(np.full((2, 2), 3.0))


def test_bounds_contain_the_object():
    cam = Camera(64, 64)
    for seed in range(5):
        scene = synth.random_scene(seed, 64, n_objects=(3, 3))
        r = render(scene)
        for k, shape in enumerate(scene.objects):
            box = cam.bounds(shape.center, shape.bounding_radius())
            rows, cols = np.nonzero(r.amodal_masks[k])
            if box is None or rows.size == 0:
                continue
            r0, r1, c0, c1 = box
            assert r0 <= rows.min() and rows.max() < r1 and c0 <= cols.min() and cols.max() < c1


def test_photo_textures_of_an_empty_folder(tmp_path):
    assert synth.photo_textures(tmp_path) == []


def test_photo_textures_skip_broken_files_and_read_16bit_grey(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    Image.fromarray(np.full((10, 12), 32896, np.uint16)).save(tmp_path / "grey16.png")  # 32896 = 128 · 257
    textures = synth.photo_textures(tmp_path, size=4)
    assert len(textures) == 1 and textures[0].shape == (4, 4, 3)
    np.testing.assert_allclose(textures[0], 128 / 255, atol=1e-6)  # scaled by 65535, not clipped to white


def test_public_names_are_importable_from_synth():
    # The geometry lives in amodal.scenes.raycast; amodal.scenes.synth still offers every name it did.
    from amodal.scenes import raycast

    for name in ("Camera", "Plane", "Sphere", "Box", "Cylinder", "Silhouette", "Shape"):
        assert getattr(synth, name) is getattr(raycast, name)
    for name in synth.__all__:
        assert hasattr(synth, name), name
