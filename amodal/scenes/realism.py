r"""How close the synthetic scenes come to photos: textures, light, camera and occluders.

The plain synthetic scenes (:mod:`amodal.scenes.synth`, :mod:`amodal.adiw.synthetic`) are
checker-textured solids under one fixed light, seen by a noiseless camera, each target
occluded by a floating solid smaller than itself and aimed at its side. Networks trained
on them meet photos as a new world: a tiny amodal-mask completer learned that "the hidden
part is the occluder's silhouette next to the object" (true when the occluder is smaller
than the target, wrong for a rocket behind a large pasted patch), and a tiny Amodal-DAV2
learned that hidden parts lie *farther* than the fill (true near the outline of a sphere,
wrong where an occluder hides the middle of a real object).

A :class:`Realism` changes one thing at a time, so that what each change gives can be
measured (:data:`REALISM` names the settings the recipes use):

- ``textures="photo"``: crops of real photographs (scikit-image's bundled pictures of brick,
  grass, gravel, coins, the Moon, a clock, the Hubble deep field, a stained tissue section
  and a retina; grey ones tinted between two random colours), rotated, scaled and cropped
  at random (read from the installed package, never copied here; their licences, from
  scikit-image's docstrings: brick, grass, gravel and retina CC0, clock and the Hubble deep
  field public domain, coins and the tissue section no known copyright restrictions, the Moon
  under scikit-image's BSD-3 licence). None of them is a picture of a yardstick: the sample photos of
  ``data_samples/`` (whose objects are the pasted occluders and targets of the real-photo
  yardsticks) and the Middlebury motorcycle are left out on purpose.
- ``light=True``: a random light direction (from above, any azimuth) and ambient level.
- ``camera=True``: what a camera adds, in this order: exposure and gamma, a slight blur,
  and Gaussian read noise (:func:`camera_effects`).
- ``occluders="varied"``: occluders from a third to 2.5 times the target's size
  (log-uniform), anywhere from just in front of the target to far nearer, aimed at any of
  its pixels (the plain ones: 0.35–0.8 times, aimed off-centre).
- ``view="object"``: each sample is the object-centred crop of its scene that
  :func:`amodal.inference.predict` gives the network on a photo (:func:`amodal.utils.crops.object_crop`
  around the target, its margin drawn from 0.05 to 0.5 around predict's 0.25), rendered at the
  input size through :meth:`amodal.scenes.raycast.Camera.crop` (as sharp as a full render, nothing
  resampled). In the plain scenes the target covers a few per cent of the image; in these
  views from an eighth to a half, and the Middlebury motorcycle two thirds of its photo.
- ``holes=True``: objects one sees through. Half of the foreground objects become frames
  (:func:`holed_silhouette`: an outline with one to four holes, extruded), and every target's
  amodal mask is its outline with the holes filled, as a mask drawn around a chair or a
  bicycle often is (and as the Middlebury yardstick's motorcycle is). Inside a hole the
  target depth is what the unoccluded scene shows there, the far side seen through it: the
  depth ADIW's label gives a hole inside a mask, since it is the depth of the photo without
  the occluder.

Textures, light and camera draw from a generator of their own (:func:`realism_rng`): they
change a seed's image, never its geometry, and the plain scenes of a seed stay the scenes
they always were. Varied occluders draw from the scene's stream and change the geometry;
object-centred views and holes draw from the realism generator and change the geometry too.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import binary_erosion, gaussian_filter
from skimage import data as skimage_data
from skimage.draw import disk, rectangle
from skimage.transform import resize, rotate

from amodal.scenes.raycast import Silhouette
from amodal.scenes.synth import Scene, random_silhouette

#: scikit-image's bundled photographs used as textures (none is a yardstick's picture).
TEXTURE_PHOTOS = ("brick", "grass", "gravel", "coins", "moon", "clock", "hubble_deep_field",
                  "immunohistochemistry", "retina")


@dataclass(frozen=True)
class Realism:
    """What the synthetic scenes borrow from photos (see the module docstring).

    Attributes:
        textures: ``"checker"`` (the plain scenes') or ``"photo"``.
        light: a random light direction and ambient level per scene.
        camera: exposure, gamma, blur and read noise on the rendered image.
        occluders: ``"small"`` (the plain scenes') or ``"varied"``.
        view: ``"scene"`` (the whole render, the plain scenes') or ``"object"`` (the target's
            object-centred crop).
        holes: half of the objects are frames one sees through; targets' masks have their holes filled.
    """

    textures: str = "checker"
    light: bool = False
    camera: bool = False
    occluders: str = "small"
    view: str = "scene"
    holes: bool = False

    def __post_init__(self):
        if self.textures not in ("checker", "photo"):
            raise ValueError(f"textures must be 'checker' or 'photo', got {self.textures!r}")
        if self.occluders not in ("small", "varied"):
            raise ValueError(f"occluders must be 'small' or 'varied', got {self.occluders!r}")
        if self.view not in ("scene", "object"):
            raise ValueError(f"view must be 'scene' or 'object', got {self.view!r}")

    @property
    def plain(self) -> bool:
        return self == Realism()


#: The named settings (``synth_realism`` of the recipes): up to ``photo-like`` each adds one change
#: to the one before.
REALISM: dict[str, Realism] = {
    "plain": Realism(),
    "photo-textures": Realism(textures="photo"),
    "photo-light-camera": Realism(textures="photo", light=True, camera=True),
    "photo-like": Realism(textures="photo", light=True, camera=True, occluders="varied"),
    # photo-like without light and camera: do those two matter once the occluders vary?
    "photo-textures-varied-occluders": Realism(textures="photo", occluders="varied"),
    # photo-like, seen as predict sees a photo's object: its object-centred crop
    "photo-like-object-view": Realism(textures="photo", light=True, camera=True, occluders="varied", view="object"),
    # and with objects one sees through, their masks' holes filled
    "photo-like-object-view-holes": Realism(textures="photo", light=True, camera=True, occluders="varied",
                                            view="object", holes=True),
}


def get_realism(name: str) -> Realism:
    """The :data:`REALISM` setting called ``name``; an unknown name lists the known ones."""
    if name not in REALISM:
        raise ValueError(f"unknown realism {name!r}; known: {', '.join(REALISM)}")
    return REALISM[name]


def realism_rng(seed: int) -> np.random.Generator:
    """The generator of a scene's realism draws, apart from the scene's own stream."""
    return np.random.default_rng([seed, 104729])


@functools.lru_cache(maxsize=None)
def _texture_photo(name: str) -> np.ndarray:
    """A bundled photograph as float32 in [0, 1], ``(H, W)`` grey or ``(H, W, 3)``, at most 512 px a side."""
    picture = np.asarray(getattr(skimage_data, name)(), np.float32)
    if picture.ndim == 3:
        picture = picture[..., :3]
    if picture.max() > 1:
        picture = picture / 255.0
    scale = 512 / max(picture.shape[:2])
    if scale < 1:
        picture = resize(picture, (round(picture.shape[0] * scale), round(picture.shape[1] * scale)),
                         anti_aliasing=True).astype(np.float32)
    return picture


def photo_texture(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """A random crop of one of :data:`TEXTURE_PHOTOS`, ``(size, size, 3)`` float32 in [0, 1].

    The crop covers 15–100 % of the photo's shorter side, turned by a random angle; a grey
    photo ``g`` becomes ``g·a + (1 − g)·b`` for two random colours ``a``, ``b``.
    """
    picture = _texture_photo(TEXTURE_PHOTOS[int(rng.integers(len(TEXTURE_PHOTOS)))])
    side = int(min(picture.shape[:2]) * rng.uniform(0.15, 1.0))
    top = int(rng.integers(picture.shape[0] - side + 1))
    left = int(rng.integers(picture.shape[1] - side + 1))
    crop = picture[top: top + side, left: left + side]
    crop = resize(crop, (size, size), anti_aliasing=True)
    crop = rotate(crop, float(rng.uniform(0, 360)), mode="reflect").astype(np.float32)
    if crop.ndim == 2:
        a, b = rng.uniform(0.1, 0.95, size=(2, 3))
        crop = crop[..., None] * a + (1 - crop[..., None]) * b
    return np.clip(crop, 0, 1).astype(np.float32)


def random_light(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A unit direction *towards* the light, from above the scene (−y is up), and an ambient level in [0.2, 0.6]."""
    azimuth = rng.uniform(-np.pi, np.pi)
    elevation = rng.uniform(0.25, 1.35)  # radians above the horizon
    direction = np.array([math.cos(elevation) * math.sin(azimuth), -math.sin(elevation),
                          -math.cos(elevation) * math.cos(azimuth)])
    return direction / np.linalg.norm(direction), float(rng.uniform(0.2, 0.6))


def camera_effects(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a camera adds to a rendered ``(H, W, 3)`` image in [0, 1]: exposure ×0.7–1.3,
    gamma 0.8–1.25, a Gaussian blur of σ 0–0.8 px, read noise of σ 0.005–0.03; float32, clipped."""
    exposed = np.clip(image * rng.uniform(0.7, 1.3), 0, 1) ** rng.uniform(0.8, 1.25)
    sigma = rng.uniform(0.0, 0.8)
    if sigma > 0.05:
        exposed = gaussian_filter(exposed, sigma=(sigma, sigma, 0))
    noisy = exposed + rng.normal(0, rng.uniform(0.005, 0.03), exposed.shape)
    return np.clip(noisy, 0, 1).astype(np.float32)


def holed_silhouette(rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A frame: a random outline (:func:`amodal.scenes.synth.random_silhouette`) with one to four
    holes (discs of radius 3–9 px, or upright rectangles of half-sides up to that radius) punched
    inside it; ``(size, size)`` bool.

    A hole is centred where the outline, eroded ``radius + 2`` times by the 3×3 cross (a diamond,
    not a disc), still holds: most holes stay enclosed, but one whose disc or rectangle corner
    reaches out along a diagonal may open the outline into a notch. An outline too thin to hold
    a hole comes back without one.
    """
    mask = random_silhouette(rng, size)
    for _ in range(int(rng.integers(1, 5))):
        radius = int(rng.integers(3, 10))
        room = binary_erosion(mask, iterations=radius + 2)
        rows, cols = np.nonzero(room)
        if rows.size == 0:
            continue
        pick = int(rng.integers(rows.size))
        r, c = int(rows[pick]), int(cols[pick])
        if rng.random() < 0.5:
            mask[disk((r, c), radius, shape=mask.shape)] = False
        else:
            half = (int(rng.integers(2, radius + 1)), int(rng.integers(2, radius + 1)))
            mask[rectangle((r - half[0], c - half[1]), (r + half[0], c + half[1]), shape=mask.shape)] = False
    return mask


def with_holes(scene: Scene, rng: np.random.Generator, share: float = 0.5) -> Scene:
    """``scene`` with each foreground object, at chance ``share``, replaced by a frame
    (:func:`holed_silhouette`, extruded 0.1–0.4 units, 0.8–1.8 high, turned up to ±0.6 rad)
    standing where it stood, in its texture."""
    objects = []
    for shape in scene.objects:
        if rng.random() < share:
            x, _, z = shape.center
            height = rng.uniform(0.8, 1.8)
            shape = Silhouette(holed_silhouette(rng), (x, scene.ground_y - height / 2, z), height, height,
                               thickness=rng.uniform(0.1, 0.4), yaw=rng.uniform(-0.6, 0.6), texture=shape.texture)
        objects.append(shape)
    return replace(scene, objects=objects)
