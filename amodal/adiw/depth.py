"""Relative depth for ADIW: the ``DepthEstimator`` protocol and its implementations (paper §3.1, step 4).

ADIW needs the depth of the composite (``D_o``) and of the original image
(``D_b``). The paper uses Depth Anything V2 and min-max normalises each map on its
own, so every estimator here returns **normalised disparity**: ``(d − min d) /
(max d − min d)`` per image, in [0, 1], larger = nearer.

Estimators:

- :class:`DAV2Depth` — Depth Anything V2 from a checkpoint path, with the official
  keep-aspect preprocessing (``infer_image``), batched over images of one network size.
- :class:`OracleDepth` — the stand-in for offline work: it knows the true disparity
  of the images it has been shown (synthetic renders from :mod:`amodal.scenes.synth`) and
  returns it exactly, or as a relative-depth model would — through an unknown
  per-image affine map (and optional gamma), with smooth and pixel noise.
- :class:`RowPriorDepth` — a toy for photos without weights (lower in the image =
  nearer); it lets the pipeline run end to end, its labels mean nothing.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
from scipy.ndimage import zoom

from amodal.models.amodal_dav2 import DepthAnythingV2
from amodal.utils.hub import parse_hub_id


@runtime_checkable
class DepthEstimator(Protocol):
    """RGB images → normalised disparity maps.

    ``predict(images)`` takes a sequence of ``(H, W, 3)`` RGB images (uint8, or float
    in [0, 1]; sizes may differ) and returns one ``(H, W)`` float32 map per image, in
    [0, 1], larger = nearer, min-max normalised per image.
    """

    name: str

    def predict(self, images: Sequence[np.ndarray]) -> list[np.ndarray]: ...


def as_float_image(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 or float → float32 in [0, 1]; ``ValueError`` on other shapes."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    image = image.astype(np.float32)
    if not np.isfinite(image).all():
        raise ValueError("image has NaN or inf values")
    return image


def normalise_disparity(disparity: np.ndarray) -> np.ndarray:
    """Per-image min-max normalisation to [0, 1] (paper §3.1).

    Args:
        disparity: ``(H, W)`` raw relative disparity (larger = nearer).

    Returns:
        ``(H, W)`` float32 in [0, 1].

    Raises:
        ValueError: NaN/inf values, or a constant map.
    """
    d = np.asarray(disparity, np.float64)
    if not np.isfinite(d).all():
        raise ValueError(f"disparity of shape {d.shape} has NaN or inf values")
    lo, hi = d.min(), d.max()
    if not hi > lo:
        raise ValueError(f"disparity of shape {d.shape} is constant; it cannot be normalised")
    return ((d - lo) / (hi - lo)).astype(np.float32)


def image_key(image: np.ndarray) -> str:
    """A content hash of an image (after conversion to float32 in [0, 1])."""
    data = as_float_image(image)
    return hashlib.sha1(np.ascontiguousarray(data).tobytes() + str(data.shape).encode()).hexdigest()


def smooth_noise(shape: tuple[int, int], rng: np.random.Generator, cells: int = 4) -> np.ndarray:
    """A smooth random field with unit standard deviation: bicubic upsampling of a
    ``cells × cells`` grid of Gaussian values (low-frequency, like a model's local bias)."""

    grid = rng.normal(size=(cells + 3, cells + 3))
    field = zoom(grid, ((shape[0] + 2 * shape[0] / cells) / grid.shape[0], (shape[1] + 2 * shape[1] / cells) / grid.shape[1]), order=3)
    top, left = (field.shape[0] - shape[0]) // 2, (field.shape[1] - shape[1]) // 2
    field = field[top : top + shape[0], left : left + shape[1]]
    return (field - field.mean()) / (field.std() + 1e-12)


class OracleDepth:
    """A depth "model" that knows the truth for the images it has been told about.

    Call :meth:`remember` with a rendered image and its true disparity (``1/z``);
    :meth:`predict` then returns, for that exact image,

    .. math:: \\operatorname{norm}\\big((s\\,d + t)^{\\gamma} + \\sigma_s\\,S + \\sigma_p\\,N\\big)

    with ``s, t, γ`` drawn per image (an affine map is invisible after min-max
    normalisation; ``γ ≠ 1`` is not), ``S`` a smooth unit field and ``N`` white noise,
    both scaled relative to the disparity's range. With the defaults it is exact.
    The draws are seeded by ``seed`` and the image's content, so repeated calls agree.

    Args:
        noise_std: σ_p, white noise, as a fraction of the image's disparity range.
        smooth_noise_std: σ_s, smooth noise, same units.
        gamma_range: ``γ`` drawn log-uniformly in this range (``(1, 1)``: pure affine).
        seed: seeds the per-image draws.
    """

    def __init__(self, noise_std: float = 0.0, smooth_noise_std: float = 0.0, gamma_range=(1.0, 1.0), seed: int = 0):
        self.noise_std = noise_std
        self.smooth_noise_std = smooth_noise_std
        self.gamma_range = gamma_range
        self.seed = seed
        self._known: dict[str, np.ndarray] = {}
        self.name = "oracle" if self.exact else f"oracle(noise={noise_std}, smooth={smooth_noise_std}, gamma={gamma_range})"

    @property
    def exact(self) -> bool:
        return self.noise_std == 0 and self.smooth_noise_std == 0 and tuple(self.gamma_range) == (1.0, 1.0)

    def remember(self, image: np.ndarray, disparity: np.ndarray) -> None:
        """Teach the oracle the true disparity ``(H, W)`` (e.g. ``1 / Render.depth``) of ``image``."""
        disparity = np.asarray(disparity, np.float64)
        if disparity.shape != np.shape(image)[:2]:
            raise ValueError(f"disparity has shape {disparity.shape}, image {np.shape(image)}")
        self._known[image_key(image)] = disparity

    def forget(self) -> None:
        self._known.clear()

    def predict(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        out = []
        for image in images:
            key = image_key(image)
            if key not in self._known:
                raise ValueError("OracleDepth was not told the depth of this image; call remember(image, disparity) first")
            d = normalise_disparity(self._known[key]).astype(np.float64)
            if not self.exact:
                rng = np.random.default_rng([self.seed, int(key[:15], 16)])
                scale, shift = rng.uniform(0.5, 2.0), rng.uniform(0.0, 0.5)
                lg = np.log(self.gamma_range)
                gamma = math.exp(rng.uniform(lg[0], lg[1]))
                d = (scale * d + shift) ** gamma
                spread = d.max() - d.min()
                d = d + spread * (self.smooth_noise_std * smooth_noise(d.shape, rng) + self.noise_std * rng.normal(size=d.shape))
            out.append(normalise_disparity(d))
        return out


class RowPriorDepth:
    """Toy estimator for photos when no weights are at hand: disparity grows linearly
    down the image (the ground-plane prior: lower = nearer). Runs the pipeline; its
    labels carry no information about objects."""

    name = "row-prior"
    informative = False  # the builder skips the complete-object ring test with this estimator
    # what every figure and page drawn from its depth says on screen (toy_depth_note)
    note = ("D_o: toy row prior (lower in the image = nearer), not a depth model; for real depth give a "
            "Depth Anything V2: depth-anything/Depth-Anything-V2-Large")

    def predict(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        out = []
        for image in images:
            h, w = as_float_image(image).shape[:2]
            if h < 2:
                raise ValueError(f"image of shape {np.shape(image)} is too small")
            out.append(np.repeat(np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None], w, axis=1))
        return out


def toy_depth_note(estimator) -> str | None:
    """The on-screen warning for depth from a toy estimator (:class:`RowPriorDepth`, or its spec
    ``"row-prior"``), or ``None`` for a real depth model (or a map given as it is): figures and
    pages built on a toy's ``D_o`` must say so."""
    if isinstance(estimator, str):
        return RowPriorDepth.note if estimator == RowPriorDepth.name else None
    if getattr(estimator, "informative", True):
        return None
    return getattr(estimator, "note", f"D_o: {getattr(estimator, 'name', 'a toy estimator')}, not a depth model")


def load_estimator(spec: str, device: str = "cpu", batch_size: int = 4, encoder: str | None = None):
    """An estimator from a command-line style spec.

    Args:
        spec: ``"row-prior"``, ``"oracle"``, or a path to a Depth Anything V2 checkpoint
            (``.pth``/``.safetensors`` file, a folder written by ``save_pretrained``, or a
            ``transformers`` ``DepthAnythingForDepthEstimation`` folder) or its Hugging Face Hub id
            (``depth-anything/Depth-Anything-V2-Large``, ``…-Large-hf``), optionally written
            ``"dav2:<path or id>"``.
        device: for DAV2.
        batch_size: for DAV2.
        encoder: DAV2 size (``"vits"``, ``"vitb"``, ``"vitl"``, ``"vitg"``); default: from the checkpoint.

    Raises:
        FileNotFoundError: a checkpoint path that does not exist; a hub id that cannot be had.
        ValueError: an unknown spec.
    """
    if spec == "row-prior":
        return RowPriorDepth()
    if spec == "oracle":
        return OracleDepth()
    path = spec[len("dav2:") :] if spec.startswith("dav2:") else spec
    if (spec.startswith("dav2:") or Path(path).is_dir() or Path(path).suffix in {".pth", ".pt", ".safetensors"}
            or parse_hub_id(path) is not None):
        return DAV2Depth(path, device=device, batch_size=batch_size, encoder=encoder)  # a missing file: its error
    raise ValueError(f"unknown depth estimator {spec!r}; use 'row-prior', 'oracle', or a DAV2 checkpoint path or hub id")


class DAV2Depth:
    """Depth Anything V2 as a :class:`DepthEstimator` (what the paper uses for ``D_o`` and ``D_b``).

    Each image goes through the official ``infer_image`` preprocessing — keep aspect,
    short side 518, sides multiples of 14, bicubic; the prediction is resized back
    (bilinear, corners aligned) — and is min-max normalised. The work is
    :meth:`DepthAnythingV2.infer_images`: images whose network sizes agree run together
    in batches of ``batch_size``, in the model's dtype (cast ``self.model`` to bfloat16
    to run it so), and a compiled model builds one graph per network size.

    Args:
        checkpoint: an official ``depth_anything_v2_vit{s,b,l}.pth``, a ``transformers`` folder or
            one of ours, or a hub id.
        device: ``"cpu"``, ``"cuda"``, ...
        batch_size: images per forward pass.
        encoder: model size; default inferred from the checkpoint.
        input_size: the short side the network sees (518 as in DAV2).
    """

    def __init__(self, checkpoint, device: str = "cpu", batch_size: int = 4, encoder: str | None = None, input_size: int = 518):
        size = {"vits": "s", "vitb": "b", "vitl": "l", "vitg": "g"}.get(encoder, encoder)
        self.model = DepthAnythingV2.from_pretrained(checkpoint, config=size).to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.input_size = input_size
        hub = None if Path(checkpoint).exists() else parse_hub_id(checkpoint)
        self.name = f"dav2:{hub if hub else Path(str(checkpoint)).name}"

    def predict(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        disparities = self.model.infer_images(list(images), self.input_size, self.batch_size)
        return [normalise_disparity(d) for d in disparities]
