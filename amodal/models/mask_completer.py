r"""A tiny amodal-mask completer: the visible part of an object and the photo around it → the whole object.

Amodal depth needs the amodal mask ``M_a`` (paper §4), but a user can only point at what is
seen: clicks give the visible mask ``M_vis``. The official demo paints the whole object with
pix2gestalt (a latent diffusion model of about a billion parameters) and segments the
painting. This module is the small, offline stand-in: a U-Net of about half a million
parameters, trained from scratch by ``python -m amodal train --recipe amodal-mask-completer-tiny``
on synthetic occlusions (:mod:`amodal.scenes.synth`, where ``M_a`` is exact).

What it sees, in a square crop around ``M_vis`` (:func:`crop_box`: the bounding box of
``M_vis`` grown by ``margin`` of its longer side on every side, so that a hidden part up to
half the visible extent beyond it still fits), resized to ``input_size``²:

- the **image** crop, each channel standardised over the crop's pixels inside the photo
  (synthetic checkerboards and photos differ in contrast; the outline cues do not);
- ``2·M_vis − 1``;
- ``2·hull(M_vis) − 1``, the convex hull of ``M_vis`` (:func:`convex_hull_completion`),
  the classical guess, so that the network learns a *correction* of it: where the hidden
  part sticks out of the hull (an occluder over an end of the object) and where the hull
  overshoots (a concave object).

It takes neither ``D_o`` nor the occluder's mask: the in-the-wild flow has neither before
the amodal mask is made (pix2gestalt, too, sees only the photo and ``M_vis``), and with no
depth model at hand the real-photo check (:mod:`amodal.evaluation.mask_completion`) could
give it only a made-up ``D_o``. The occluder is in the image crop, for the network to find.

Output: one logit per crop pixel for "inside ``M_a``". :func:`complete_mask` resizes the
probability back to the crop, thresholds it at 0.5, pastes it into the photo's frame (what
falls outside the photo is dropped) and adds ``M_vis``: the result always contains what is seen.

Files: ``config.json`` + ``model.safetensors`` (the config also in the weights' metadata),
as :class:`~amodal.models.amodal_dav2.AmodalDAV2`; :meth:`MaskCompleter.from_pretrained`
takes a folder, a ``model.safetensors`` or a hub id.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from skimage.morphology import convex_hull_image

from amodal.models import checkpoints
from amodal.utils.atomic import atomic_write, atomic_write_json
from amodal.utils.hub import resolve

INPUT_CHANNELS = 5  # image (3), 2·M_vis − 1, 2·hull(M_vis) − 1


@dataclass(frozen=True)
class MaskCompleterConfig:
    """The network's shape and its crop.

    Attributes:
        width: channels of the first level; level ``k`` has ``width · 2^k``.
        levels: resolutions of the encoder (each halves the side); the bottleneck is one more.
        input_size: side of the square crop the network sees (a multiple of ``2^levels``).
        margin: the crop grows the bounding box of ``M_vis`` by this fraction of its longer
            side on each side (0.5: a crop twice the visible extent).
        groups: groups of the GroupNorm layers.
    """

    width: int = 16
    levels: int = 3
    input_size: int = 64
    margin: float = 0.5
    groups: int = 4

    def __post_init__(self):
        for name in ("width", "levels", "input_size", "groups"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MaskCompleterConfig.{name} must be a whole number ≥ 1, got {value!r}")
        if self.input_size % 2 ** self.levels:
            raise ValueError(f"input_size {self.input_size} must be a multiple of 2^levels = {2 ** self.levels}")
        if self.width % self.groups:
            raise ValueError(f"width {self.width} must be a multiple of groups {self.groups}")
        if not 0 <= self.margin <= 4:
            raise ValueError(f"margin must lie in [0, 4], got {self.margin}")

    @classmethod
    def from_dict(cls, data) -> "MaskCompleterConfig":
        """From a saved ``config.json``'s ``"config"`` (unknown or mistyped fields are refused)."""
        if not isinstance(data, dict):
            raise ValueError(f"a MaskCompleter config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"MaskCompleter config has unknown field(s) {unknown}; fields: {sorted(known)}")
        return cls(**data)


#: The shipped network (checkpoints/amodal-mask-completer-tiny): 0.49 M parameters.
TINY_COMPLETER = MaskCompleterConfig()
COMPLETER_CONFIGS = {"tiny": TINY_COMPLETER}


def completer_config(size: str, input_size: int | None = None) -> MaskCompleterConfig:
    """The configuration called ``size`` in :data:`COMPLETER_CONFIGS`, at another ``input_size`` if given.

    Raises:
        ValueError: an unknown name (the known ones listed), or an input size the network cannot take.
    """
    if size not in COMPLETER_CONFIGS:
        raise ValueError(f"unknown mask completer size {size!r}; known: {', '.join(COMPLETER_CONFIGS)}")
    config = COMPLETER_CONFIGS[size]
    return config if input_size is None else replace(config, input_size=input_size)


def _block(inputs: int, outputs: int, groups: int) -> nn.Sequential:
    """Two 3×3 convolutions, each followed by GroupNorm and ReLU (the U-Net's unit)."""
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1), nn.GroupNorm(groups, outputs), nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1), nn.GroupNorm(groups, outputs), nn.ReLU(inplace=True),
    )


class MaskCompleter(nn.Module):
    """A small U-Net: completer inputs ``(B, 5, S, S)`` → logits of ``M_a`` ``(B, 1, S, S)``.

    Encoder levels of ``width·2^k`` channels (max-pooled between), a bottleneck, and a decoder
    that upsamples bilinearly and concatenates the encoder's map of the same size (Ronneberger
    et al., 2015). GroupNorm rather than BatchNorm: the same computation in training and use.

    Args:
        config: a :class:`MaskCompleterConfig` or a name of :data:`COMPLETER_CONFIGS`.
    """

    checkpoint_name = "mask completer checkpoint"

    def __init__(self, config: MaskCompleterConfig | str = "tiny"):
        super().__init__()
        self.config = config = completer_config(config) if isinstance(config, str) else config
        widths = [config.width * 2 ** k for k in range(config.levels + 1)]
        self.down = nn.ModuleList()
        inputs = INPUT_CHANNELS
        for width in widths[:-1]:
            self.down.append(_block(inputs, width, config.groups))
            inputs = width
        self.bottleneck = _block(widths[-2], widths[-1], config.groups)
        self.up = nn.ModuleList(_block(widths[k + 1] + widths[k], widths[k], config.groups)
                                for k in reversed(range(config.levels)))
        self.out = nn.Conv2d(widths[0], 1, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Args:
            inputs: ``(B, 5, S, S)`` from :func:`completer_inputs`, ``S = config.input_size``.

        Returns:
            ``(B, 1, S, S)`` logits of ``M_a`` in the crop.
        """
        if inputs.ndim != 4 or inputs.shape[1] != INPUT_CHANNELS:
            raise ValueError(f"inputs must be (B, {INPUT_CHANNELS}, S, S), got {tuple(inputs.shape)}")
        skips = []
        x = inputs
        for block in self.down:
            x = block(x)
            skips.append(x)                          # (B, w·2^k, S/2^k, S/2^k)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)                       # (B, w·2^L, S/2^L, S/2^L)
        for block, skip in zip(self.up, reversed(skips)):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return self.out(x)

    # ------------------------------------------------------------------ files
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (the config also in its metadata), each atomically."""
        directory = Path(directory)
        record = {"model": type(self).__name__, "config": asdict(self.config)}
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        atomic_write_json(directory / checkpoints.CONFIG_NAME, record, indent=2)
        metadata = {"amodal_config": json.dumps(record)}
        atomic_write(directory / checkpoints.WEIGHTS_NAME, lambda path: save_file(state, str(path), metadata=metadata))
        return directory

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "MaskCompleter":
        """Load what :meth:`save_pretrained` wrote: a folder, its ``model.safetensors``, or a hub id.

        Raises:
            FileNotFoundError: no such file or folder (or a hub id that cannot be had).
            ValueError: a file of another model (named, with the class that loads it), or
                one that does not fit (the keys named).
        """
        path = resolve(path, fallback=checkpoints.HUB_FOLDER, what=cls.checkpoint_name)
        state, saved = checkpoints.read_checkpoint(path)
        if saved is None:
            raise ValueError(f"{path} is not a MaskCompleter checkpoint: it has no amodal config "
                             f"(it is {checkpoints.describe(state)})")
        if saved.get("model") != cls.__name__:
            raise ValueError(f"{path} holds an {saved.get('model')}, not a {cls.__name__}: "
                             f"load it with {saved.get('model')}.from_pretrained")
        try:
            config = MaskCompleterConfig.from_dict(saved.get("config"))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from None
        model = cls(config)
        checkpoints.load_strict(model, state, str(path), description=f"a MaskCompleter file ({len(state)} tensors)")
        return model.eval()


# ---------------------------------------------------------------------- crops
def convex_hull_completion(visible_mask: np.ndarray) -> np.ndarray:
    """The convex hull of ``M_vis`` (pixels whose centre lies in the hull of the mask's pixels),
    ``(H, W)`` bool: the classical guess of ``M_a``; all-False for an empty mask."""

    visible = np.asarray(visible_mask, bool)
    return convex_hull_image(visible) | visible if visible.any() else np.zeros_like(visible)


def crop_box(visible_mask: np.ndarray, margin: float = TINY_COMPLETER.margin) -> tuple[int, int, int]:
    """The square the completer looks at: ``(top, left, side)`` in pixels of the photo.

    The bounding box of ``M_vis``, centred, its longer side ``n`` grown to
    ``ceil(n · (1 + 2·margin))`` (at least 8). It may reach past the photo's edges; those
    pixels are padding.

    Raises:
        ValueError: an empty ``M_vis``.
    """
    visible = np.asarray(visible_mask, bool)
    if visible.ndim != 2:
        raise ValueError(f"visible_mask must be (H, W), got shape {visible.shape}")
    rows, cols = np.flatnonzero(visible.any(1)), np.flatnonzero(visible.any(0))
    if rows.size == 0:
        raise ValueError("visible_mask is empty: there is nothing to complete (mark the visible part of the object first)")
    height, width = rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0]
    side = max(8, math.ceil(max(height, width) * (1 + 2 * margin)))
    top = int(math.floor((rows[0] + rows[-1] + 1) / 2 - side / 2))
    left = int(math.floor((cols[0] + cols[-1] + 1) / 2 - side / 2))
    return top, left, side


def cut(array: np.ndarray, box: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The ``side × side`` window of ``array`` (``(H, W)`` or ``(H, W, C)``), zeros outside the
    photo, and ``(side, side)`` bool: which of its pixels lie inside the photo."""
    top, left, side = box
    height, width = array.shape[:2]
    window = np.zeros((side, side, *array.shape[2:]), array.dtype)
    inside = np.zeros((side, side), bool)
    r0, r1 = max(top, 0), min(top + side, height)
    c0, c1 = max(left, 0), min(left + side, width)
    if r0 < r1 and c0 < c1:
        window[r0 - top:r1 - top, c0 - left:c1 - left] = array[r0:r1, c0:c1]
        inside[r0 - top:r1 - top, c0 - left:c1 - left] = True
    return window, inside


def resize_maps(maps: torch.Tensor, size: int) -> torch.Tensor:
    """``(C, h, w)`` → ``(C, size, size)``: bilinear, antialiased when shrinking (masks become fractions)."""
    return F.interpolate(maps[None].float(), size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True)[0]


def _as_float_image(image) -> np.ndarray:
    """``(H, W, 3)`` float32 in [0, 1] from uint8 / float numpy or a torch ``(3, H, W)``."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().permute(1, 2, 0).numpy() if image.ndim == 3 and image.shape[0] == 3 else image.numpy()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB (or a torch (3, H, W)), got shape {image.shape}")
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)


def completer_inputs(image, visible_mask: np.ndarray, box: tuple[int, int, int], size: int) -> torch.Tensor:
    """The network's input for one object: ``(5, size, size)`` float32.

    Args:
        image: ``(H, W, 3)`` uint8 or float in [0, 1] (or a torch ``(3, H, W)``).
        visible_mask: ``(H, W)`` bool ``M_vis``.
        box: ``(top, left, side)`` from :func:`crop_box`.
        size: the network's ``input_size``.

    Returns:
        channels: the image standardised per channel over the crop's pixels inside the photo
        (0 outside it), ``2·M_vis − 1``, ``2·hull(M_vis) − 1``.
    """
    image = _as_float_image(image)
    visible = np.asarray(visible_mask, bool)
    if visible.shape != image.shape[:2]:
        raise ValueError(f"visible_mask has shape {visible.shape}, the image {image.shape[:2]}")
    window, inside = cut(image, box)
    seen = window[inside]                                            # (N, 3)
    mean, std = seen.mean(0), seen.std(0)
    window = np.where(inside[..., None], (window - mean) / (std + 0.05), 0.0)
    visible_window, _ = cut(visible, box)
    hull = convex_hull_completion(visible_window)                    # the hull of M_vis lies in its box
    maps = np.concatenate([window.transpose(2, 0, 1), 2.0 * visible_window[None] - 1, 2.0 * hull[None] - 1])
    return resize_maps(torch.from_numpy(maps.astype(np.float32)), size)


def paste(probability: torch.Tensor, box: tuple[int, int, int], shape: tuple[int, int]) -> np.ndarray:
    """A crop's ``(S, S)`` probability map resized to the box and placed in an ``(H, W)`` float32 map (0 elsewhere)."""
    top, left, side = box
    height, width = shape
    full = F.interpolate(probability[None, None].float(), size=(side, side), mode="bilinear", align_corners=False)[0, 0]
    out = np.zeros(shape, np.float32)
    r0, r1 = max(top, 0), min(top + side, height)
    c0, c1 = max(left, 0), min(left + side, width)
    if r0 < r1 and c0 < c1:
        out[r0:r1, c0:c1] = full[r0 - top:r1 - top, c0 - left:c1 - left].cpu().numpy()
    return out


@torch.no_grad()
def complete_mask(image, visible_mask, model: MaskCompleter, threshold: float = 0.5) -> np.ndarray:
    """The whole object from its visible part: ``M_a`` ``(H, W)`` bool, always containing ``M_vis``.

    Crops a square around ``M_vis`` (:func:`crop_box`, the model's margin), runs the network
    on it, resizes the probability back, keeps what exceeds ``threshold``, pastes it into the
    photo's frame (the part of the crop outside the photo is dropped) and adds ``M_vis``.

    Args:
        image: ``(H, W, 3)`` RGB, uint8 or float in [0, 1] (or a torch ``(3, H, W)``).
        visible_mask: ``(H, W)`` bool / {0, 1}, ``M_vis``, e.g. from clicks.
        model: a :class:`MaskCompleter` (it runs on its own device and dtype, in eval mode).
        threshold: on the probability of ``M_a``.

    Raises:
        ValueError: an empty ``M_vis``, or shapes that do not fit.
    """
    visible = np.asarray(visible_mask.cpu() if isinstance(visible_mask, torch.Tensor) else visible_mask) > 0.5
    if visible.ndim != 2:
        raise ValueError(f"visible_mask must be (H, W), got shape {visible.shape}")
    if not visible.any():
        raise ValueError("visible_mask is empty: there is nothing to complete (mark the visible part of the object first)")
    config = model.config
    box = crop_box(visible, config.margin)
    inputs = completer_inputs(image, visible, box, config.input_size)
    parameter = next(model.parameters())
    was_training = model.training
    model.eval()
    logits = model(inputs[None].to(parameter.device, parameter.dtype))[0, 0]
    model.train(was_training)
    probability = paste(torch.sigmoid(logits.float()), box, visible.shape)
    return (probability > threshold) | visible
