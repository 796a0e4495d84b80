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
from amodal.scenes.synth import AMBIENT, LIGHT_DIRECTION, Camera, Scene, Sphere, checker_texture, render
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
