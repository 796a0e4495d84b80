"""Tests for amodal.scenes.realism: photo textures, light, camera effects and varied occluders."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from amodal.adiw.composite import BUCKET_RANGES
from amodal.adiw.synthetic import synth_occlusion
from amodal.data.streams import SynthStream
from amodal.scenes import realism
from amodal.scenes.realism import REALISM, Realism, camera_effects, get_realism, photo_texture, random_light
from amodal.scenes.synth import (
    AMBIENT,
    LIGHT_DIRECTION,
    Camera,
    Scene,
    Sphere,
    checker_texture,
    disparity_from_depth,
    disparity_range,
    render,
)
from amodal.training.recipes import get_recipe
from amodal.utils.paths import data_samples_dir


def test_no_texture_is_a_yardstick_picture():
    # the real-photo yardsticks are the sample photos (scikit-image's pictures of the same
    # names) and the Middlebury motorcycle: training on their pixels would be training on the test
    yardsticks = {p.stem for p in (data_samples_dir() / "images").glob("*.jpg")} | {"cat", "stereo_motorcycle"}
    assert yardsticks >= {"astronaut", "camera", "chelsea", "coffee", "rocket"}
    assert not yardsticks & set(realism.TEXTURE_PHOTOS)


def test_photo_texture_is_seeded_rgb_in_unit_range():
    a = photo_texture(np.random.default_rng(3), size=48)
    b = photo_texture(np.random.default_rng(3), size=48)
    c = photo_texture(np.random.default_rng(4), size=48)
    assert a.shape == (48, 48, 3) and a.dtype == np.float32
    assert 0 <= a.min() and a.max() <= 1
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.std() > 0.01  # a photo's texture, not a flat colour


@pytest.mark.parametrize("name", realism.TEXTURE_PHOTOS)
def test_every_texture_photo_loads_from_the_installed_package(name):
    picture = realism._texture_photo(name)
    assert picture.ndim in (2, 3) and max(picture.shape[:2]) <= 512
    assert 0 <= picture.min() and picture.max() <= 1 and picture.max() > 0.2


def test_random_light_comes_from_above_with_a_unit_direction():
    rng = np.random.default_rng(0)
    for _ in range(50):
        direction, ambient = random_light(rng)
        assert np.linalg.norm(direction) == pytest.approx(1.0)
        assert direction[1] < 0  # −y is up: the light is above the scene
        assert 0.2 <= ambient <= 0.6


def test_scene_light_defaults_to_the_fixed_light_and_ambient_one_means_no_shading():
    texture = checker_texture(seed=1)
    scene = Scene(objects=[Sphere((0.0, 0.0, 5.0), 1.0)], textures=[texture], camera=Camera(48, 48, 60.0))
    plain = render(scene).image
    np.testing.assert_array_equal(plain, render(replace(scene, light_direction=tuple(LIGHT_DIRECTION),
                                                        ambient=AMBIENT)).image)
    # ambient 1: every surface shows its texture's own colour, whatever the light's direction
    flat = render(replace(scene, ambient=1.0)).image
    turned = render(replace(scene, ambient=1.0, light_direction=(0.0, -1.0, 0.0))).image
    np.testing.assert_array_equal(flat, turned)
    assert set(np.unique(flat.reshape(-1, 3), axis=0).round(5).view(np.float32).ravel()) <= set(
        np.unique(texture.reshape(-1, 3), axis=0).round(5).view(np.float32).ravel())
    # another light direction changes the shading of the sphere
    assert not np.array_equal(plain, render(replace(scene, light_direction=(0.0, -1.0, 0.0))).image)


def test_camera_effects_on_a_flat_grey_image_follow_exposure_gamma_and_noise():
    image = np.full((64, 64, 3), 0.5, np.float32)
    out = camera_effects(image, np.random.default_rng(11))
    draws = np.random.default_rng(11)
    exposure, gamma = draws.uniform(0.7, 1.3), draws.uniform(0.8, 1.25)
    draws.uniform(0.0, 0.8)  # the blur, which a flat image does not see
    noise = draws.uniform(0.005, 0.03)
    assert out.dtype == np.float32 and out.shape == image.shape
    assert out.mean() == pytest.approx((0.5 * exposure) ** gamma, abs=3 * noise / 64)
    assert out.std() == pytest.approx(noise, rel=0.05)


def test_textures_light_and_camera_change_only_the_image():
    plain = synth_occlusion(7, 64, BUCKET_RANGES["mid"])
    for setting in (Realism(textures="photo"), Realism(light=True), Realism(camera=True)):
        other = synth_occlusion(7, 64, BUCKET_RANGES["mid"], realism=setting)
        np.testing.assert_array_equal(other.amodal_mask, plain.amodal_mask)
        np.testing.assert_array_equal(other.visible_mask, plain.visible_mask)
        np.testing.assert_array_equal(other.exact_target, plain.exact_target)
        assert not np.array_equal(other.composite.image, plain.composite.image)


def test_varied_occluders_are_larger_and_reach_the_middle():
    def measure(setting, bucket):
        size, depth_of_hidden = [], []
        for seed in range(24):
            o = synth_occlusion(seed, 64, BUCKET_RANGES[bucket], realism=setting)
            size.append(o.occluder_mask.sum() / o.amodal_mask.sum())
            # how far inside the object the hidden pixels lie: 0 on its outline, 1 at its innermost point
            inside = distance_transform_edt(o.amodal_mask)
            depth_of_hidden.append(inside[o.amodal_mask & ~o.visible_mask].mean() / inside.max())
        return np.array(size), np.mean(depth_of_hidden)

    small, varied = measure(Realism(), "hard")[0], measure(Realism(occluders="varied"), "hard")[0]
    assert np.percentile(varied, 90) > 2.5 > small.max()
    assert measure(Realism(occluders="varied"), "easy")[1] > measure(Realism(), "easy")[1] + 0.03


def test_named_settings_and_the_streams_that_use_them():
    assert get_realism("plain").plain and not get_realism("photo-like").plain
    assert REALISM["photo-like"] == Realism(textures="photo", light=True, camera=True, occluders="varied")
    with pytest.raises(ValueError, match="unknown realism 'glossy'; known: plain"):
        get_realism("glossy")
    with pytest.raises(ValueError, match="occluders"):
        Realism(occluders="huge")
    with pytest.raises(ValueError, match="not both"):
        synth_occlusion(7, 64, textures=[checker_texture()], realism=Realism(textures="photo"))
    item = SynthStream(2024, 56, realism="photo-like")[0]
    assert item["id"] == "synth-photo-like-2024-0"
    assert SynthStream(2024, 56)[0]["id"] == "synth-2024-0"
    with pytest.raises(ValueError, match="synth_realism must be one of plain"):
        get_recipe("amodal-dav2-tiny-synth", synth_realism="glossy")
    assert get_recipe("amodal-dav2-tiny-photo-like").synth_realism == "photo-like"


def test_crop_camera_sees_the_same_rays_more_finely():
    camera = Camera(64, 64, 55.0)
    rays = camera.rays().reshape(64, 64, 3)
    # at the crop's own side the crop camera's rays are the parent's, pixel for pixel
    same = Camera.crop(camera, 10, 42, 20, 52, 32).rays().reshape(32, 32, 3)
    np.testing.assert_allclose(same, rays[10:42, 20:52], atol=1e-12)
    # at twice the side each parent pixel splits in four: their mean ray is the parent's
    fine = camera.crop(10, 42, 20, 52, 64).rays().reshape(32, 2, 32, 2, 3).mean((1, 3))
    np.testing.assert_allclose(fine, rays[10:42, 20:52], atol=1e-12)
    # a point projects where the parent projects it, shifted and scaled
    u, v = camera.project((0.3, -0.2, 4.0))
    cu, cv = camera.crop(10, 42, 20, 52, 64).project((0.3, -0.2, 4.0))
    assert (cu, cv) == pytest.approx(((u - 20) * 2, (v - 10) * 2))
    with pytest.raises(ValueError, match="square"):
        camera.crop(0, 10, 0, 12, 32)


def test_object_view_renders_the_target_as_predict_crops_it():
    shares, plain = [], [synth_occlusion(seed, 64, BUCKET_RANGES["mid"]).amodal_mask.mean() for seed in range(12)]
    for seed in range(12):
        o = synth_occlusion(seed, 64, BUCKET_RANGES["mid"], realism=Realism(view="object"))
        assert o.composite.image.shape == (64, 64, 3) and o.scene.camera.principal is not None
        assert low_high(o.visible_ratio, "mid")
        rows, cols = np.nonzero(o.amodal_mask)
        # the whole target in view, with some of its surroundings
        assert rows.min() > 0 and cols.min() > 0 and rows.max() < 63 and cols.max() < 63
        shares.append(o.amodal_mask.mean())
        # the truth stays inside D_o's range: something in view lies behind the hidden part
        assert o.exact_target[o.amodal_mask].min() >= 0
    assert np.median(shares) > 3 * np.median(plain)  # about 0.22 against 0.07


def low_high(ratio, bucket):
    low, high = BUCKET_RANGES[bucket]
    return low < ratio <= high


def test_holed_silhouette_has_enclosed_holes():
    from scipy.ndimage import binary_fill_holes

    holed = 0
    for seed in range(20):
        mask = realism.holed_silhouette(np.random.default_rng(seed))
        outline = binary_fill_holes(mask)
        assert mask.shape == (48, 48) and mask.dtype == bool and mask.any()
        holed += (outline & ~mask).any()
    assert holed >= 15  # a thin outline may hold none


def test_holes_fill_the_mask_and_show_what_lies_behind():
    from scipy.ndimage import binary_fill_holes

    seen_through = 0
    for seed in range(24):  # seen close up, as in training: in a whole scene the holes are a pixel or two
        o = synth_occlusion(seed, 64, BUCKET_RANGES["mid"], realism=Realism(view="object", holes=True))
        shape = o.background.amodal_masks[o.target]
        np.testing.assert_array_equal(o.amodal_mask, binary_fill_holes(shape))
        np.testing.assert_array_equal(o.visible_mask, o.amodal_mask & ~o.occluder_mask)
        assert o.visible_ratio == pytest.approx(o.visible_mask.sum() / o.amodal_mask.sum())
        assert low_high(o.visible_ratio, "mid")
        holes = o.amodal_mask & ~shape
        seen_through += holes.any()
        # in a hole the truth is the background render's depth, in D_o's frame; on the target its own surface
        lo_hi = disparity_range(o.composite.depth)
        np.testing.assert_allclose(o.exact_target[holes], disparity_from_depth(o.background.depth, lo_hi)[holes])
        np.testing.assert_allclose(o.exact_target[shape],
                                   disparity_from_depth(o.background.amodal_depth[o.target], lo_hi)[shape])
        # where a hole is not hidden, D_o shows the far side through it, as the truth says
        seen = holes & o.visible_mask
        np.testing.assert_allclose(disparity_from_depth(o.composite.depth, lo_hi)[seen], o.exact_target[seen])
    assert seen_through >= 4  # 6 of these 24 targets show holes


# Made by the code before object views and holes existed: masks' pixel counts and the sums of the truth
# and the image of two occlusions of 64² per setting. The later settings' draws must not move them.
EARLIER_SCENES = {
    ("plain", 3, "hard"): (289, 101, 1166.8136571817831, 4196.870432987809),
    ("plain", 11, "easy"): (254, 211, 1178.5670951286356, 5150.615052476525),
    ("photo-like", 3, "hard"): (289, 102, 1061.8260731857383, 3235.1908959820867),
    ("photo-like", 11, "easy"): (254, 193, 1163.6948793448566, 6768.29690682888),
}


@pytest.mark.parametrize("name, seed, bucket", list(EARLIER_SCENES))
def test_the_new_settings_leave_the_older_ones_as_they_were(name, seed, bucket):
    o = synth_occlusion(seed, 64, BUCKET_RANGES[bucket], realism=REALISM[name])
    amodal, visible, truth, image = EARLIER_SCENES[name, seed, bucket]
    assert (o.amodal_mask.sum(), o.visible_mask.sum()) == (amodal, visible)
    assert o.exact_target.sum() == pytest.approx(truth, rel=1e-9)
    assert o.composite.image.astype(np.float64).sum() == pytest.approx(image, rel=1e-6)
    assert o.filled_mask is None and o.scene.camera.principal is None


def test_the_names_of_the_new_settings():
    with pytest.raises(ValueError, match="view"):
        Realism(view="close-up")
    assert REALISM["photo-like-object-view"] == replace(REALISM["photo-like"], view="object")
    assert REALISM["photo-like-object-view-holes"] == replace(REALISM["photo-like"], view="object", holes=True)
