"""Amodal depth of one object in one photo: the user-facing prediction (paper Fig. 3).

    D_o   = normalise_disparity(DAV2(image))                    observed depth, at the photo's size
    D̂    = AmodalDAV2(image, M_a, D_o)            at 518 × 518
    out  = D_o outside M_a, D̂ inside M_a, a 3×3 mean over the 1-pixel seam

Three lines for a user with the official checkpoints::

    base = DepthAnythingV2.from_pretrained("depth-anything/Depth-Anything-V2-Large")   # or a path to the .pth
    model = AmodalDAV2.from_pretrained("zhyever/Amodal-Depth-Anything-DAV2")
    depth = predict(rgb, amodal_mask, model, base)

Choices, each as in the official pipeline unless said otherwise:

- Images are **RGB**. The official inference script reads them with OpenCV, i.e. BGR,
  and feeds them as they are; a network trained on RGB then sees red and blue swapped.
- ``D_o`` comes from :meth:`DepthAnythingV2.infer_image` (aspect kept, short side 518)
  at the photo's resolution. (The official script squashes the photo to 518² first.)
- The amodal network sees image, mask and ``D_o`` squashed to 518² with nearest-exact
  resampling, as its training data was; its output is resized back bilinearly.
- The seam: the official code replaces each pixel within one pixel of the mask outline
  (inside or outside) by the 3×3 box mean of the pasted map (``cv2.blur``, reflected
  border), so the object does not end in a hard step.

The network is any callable with :class:`AmodalDAV2`'s signature: the torch model, or the
same network exported to ONNX and run by onnxruntime (:class:`~amodal.models.onnx_model.OnnxAmodalDAV2`);
the preprocessing and the seam blend around it are this module's, one code path for both.

Loading has one home too: :func:`load_model` (an Amodal-DAV2 by path or hub id, ``.onnx`` included), :func:`load_base_model`
(a Depth Anything V2 by path or hub id) and :func:`load_predictor` (any ``--model`` value: a checkpoint,
``baseline:NAME``, ``dav2:PATH``, ``depthfm:PATH`` or ``predictions:DIR``; a hub id wherever a PATH
goes) serve the
``evaluate``, ``explore`` and ``predict`` commands, the explorer and the notebooks alike.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from amodal.adiw.depth import DAV2Depth, RowPriorDepth, normalise_disparity
from amodal.baselines import BASELINES
from amodal.evaluation.cascade import PAINTERS, cascade_predictor
from amodal.evaluation.predictors import (
    Predictor,
    base_depth_predictor,
    depthfm_predictor,
    fill_predictor,
    item_map,
    model_predictor,
    saved_predictions,
)
from amodal.models.amodal_dav2 import INPUT_SIZE, AmodalDAV2, DepthAnythingV2, image_to_tensor
from amodal.models.checks import check_guidance
from amodal.models.configs import TINY
from amodal.models.depthfm import AmodalDepthFM
from amodal.models.onnx_model import OnnxAmodalDAV2, placement
from amodal.models.pix2gestalt import Pix2Gestalt
from amodal.models.preprocess import resample
from amodal.utils.crops import CROP_MARGIN, object_crop
from amodal.utils.hub import parse_hub_id
from amodal.utils.paths import repo_root

# --model prefixes of load_predictor, and what each names
PREDICTOR_KINDS = {
    "baseline:": "a fill of amodal.baselines by name",
    "dav2:": "a plain Depth Anything V2 checkpoint (no guidance)",
    "depthfm:": "an Amodal-DepthFM saved with save_pretrained (the mean of aligned draws)",
    "predictions:": "a folder of <id>.npy predictions",
    "cascade:": "inpaint the hidden part (biharmonic, or pix2gestalt), then a plain Depth Anything V2, fitted to D_o on M_vis",
}
# how an Amodal-DAV2 runs: "auto" = onnxruntime for an .onnx file, torch for everything else
BACKENDS = ("auto", "torch", "onnxruntime")


def predict(image, amodal_mask, model, base_model=None, observed_depth=None, visible_mask=None,
            blend: bool = True, crop: float | None = CROP_MARGIN, size: int | None = None) -> np.ndarray:
    """Depth of the whole object given by ``amodal_mask``, pasted into the photo's depth.

    The inputs are checked here, once (:func:`amodal.models.checks.check_guidance`), not inside
    the network. The networks run in their own dtype and device (e.g. cast to bfloat16).

    Args:
        image: the photo, RGB: (H, W, 3) numpy uint8 / float in [0, 1], or torch (3, H, W).
        amodal_mask: (H, W) bool / {0, 1}, the whole target object (hidden parts included).
        model: an :class:`~amodal.models.amodal_dav2.AmodalDAV2`, or a network called like one
            (:class:`~amodal.models.onnx_model.OnnxAmodalDAV2`, an ONNX file run by onnxruntime).
        base_model: a :class:`~amodal.models.amodal_dav2.DepthAnythingV2` giving ``D_o``;
            not needed when ``observed_depth`` is given.
        observed_depth: optional (H, W) ``D_o`` in [0, 1] (normalised disparity).
        visible_mask: optional (H, W) bool / {0, 1}, ``M_vis``; needed by a model with
            ``config.fill_residual`` (:attr:`AmodalDAV2.needs_visible_mask`), ignored otherwise.
        blend: the official seam blend (:func:`blend_border`) after pasting. It averages the
            one-pixel band around the outline with the pixels outside, the occluder's among
            them, so for *scoring* the hidden region pass ``False``: on small images that band
            is a large share of the hidden pixels (the official evaluation scores the
            network's output, not the blended picture).
        crop: the network sees an object-centred crop (:func:`object_crop`: the amodal mask's
            box grown by ``crop`` of its size on each side, made square where the photo allows),
            with ``D_o`` min-max normalised within it and the prediction mapped back to the
            photo's frame. ``None``: the whole photo squashed, as the official demo does.
        size: the side the network sees (default: the side it was trained at, 518 for the
            paper's models).

    Returns:
        (H, W) float32 normalised disparity in [0, 1]: ``D_o`` outside the object, the
        amodal prediction inside it.

    Raises:
        ValueError: mismatched sizes, an empty mask, bad depth values, no depth source.
    """
    rgb = image_to_tensor(image)  # (1, 3, H, W) float32, values checked
    h, w = rgb.shape[-2:]
    mask = _as_map(amodal_mask, "amodal_mask", (h, w))
    if observed_depth is None:
        if base_model is None:
            raise ValueError("give base_model (a DepthAnythingV2) or observed_depth")
        observed = torch.from_numpy(normalise_disparity(base_model.infer_image(rgb)))[None, None]
    else:
        observed = _as_map(observed_depth, "observed_depth", (h, w))
    visible = None if visible_mask is None else _as_map(visible_mask, "visible_mask", (h, w))
    if visible is None and getattr(model, "needs_visible_mask", False):
        raise ValueError("this model corrects a fill from the visible object (config.fill_residual): "
                         "give visible_mask (M_vis) too")
    check_guidance(rgb, mask, observed, visible)
    mask = mask > 0.5
    device, dtype = placement(model)
    # the paper's preprocessing, shared with training and evaluation (amodal.models.preprocess),
    # at the side the network was trained at (518 for the paper's models)
    rasters = {"image": rgb[0], "amodal_mask": mask[0].float(), "observed_depth": observed[0].float()}
    if visible is not None and getattr(model, "needs_visible_mask", False):
        rasters["visible_mask"] = ((visible[0] > 0.5) & mask[0]).float()
    size = size or getattr(getattr(model, "config", None), "img_size", INPUT_SIZE)
    top, bottom, left, right = object_crop(mask[0, 0], crop) if crop is not None else (0, h, 0, w)
    rasters = {k: v[:, top:bottom, left:right] for k, v in rasters.items()}
    # The network was trained on D_o min-max normalised over the image it sees: so is the crop's,
    # and the prediction, in that frame, goes back to the photo's by the inverse map.
    low, high = rasters["observed_depth"].min(), rasters["observed_depth"].max()
    span = high - low if high > low else torch.ones(())
    rasters["observed_depth"] = (rasters["observed_depth"] - low) / span
    square = resample(rasters, size, "paper")
    inputs = [square[k][None].to(device, dtype) for k in rasters]
    with torch.no_grad():
        prediction = model(*inputs)
    prediction = F.interpolate(prediction.float(), (bottom - top, right - left), mode="bilinear", align_corners=False)
    amodal = observed[0, 0].clone()
    amodal[top:bottom, left:right] = prediction[0, 0].cpu() * span + low
    if not blend:
        return torch.where(mask[0, 0], amodal, observed[0, 0]).numpy()
    return blend_border(observed[0, 0], amodal, mask[0, 0]).numpy()


def blend_border(observed_depth: torch.Tensor, amodal_depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Paste ``amodal_depth`` into ``observed_depth`` inside ``mask``; smooth the seam.

    Pixels whose 3×3 neighbourhood holds both mask and non-mask pixels (the one-pixel band
    on each side of the outline) get the 3×3 mean of the pasted map, borders reflected
    (OpenCV's default, ``BORDER_REFLECT_101`` = torch's ``"reflect"``).

    Args:
        observed_depth: (H, W) float.
        amodal_depth: (H, W) float.
        mask: (H, W) bool.

    Returns:
        (H, W) float.
    """
    pasted = torch.where(mask, amodal_depth, observed_depth)
    box = torch.ones(1, 1, 3, 3, dtype=pasted.dtype)
    # count of mask pixels around each pixel, zero padding as the official conv2d does
    count = F.conv2d(mask[None, None].to(pasted.dtype), box, padding=1)[0, 0]
    seam = (count > 0) & (count < 9)
    mean = F.conv2d(F.pad(pasted[None, None], (1, 1, 1, 1), mode="reflect"), box / 9)[0, 0]
    return torch.where(seam, mean, pasted)


def _as_map(value, name: str, size: tuple[int, int]) -> torch.Tensor:
    """(H, W) numpy / torch (also (1, H, W), (1, 1, H, W)) → (1, 1, H, W) float32 CPU torch.

    Only the layout and the kind of number are checked here; the values are
    :func:`amodal.models.checks.check_guidance`'s job. A mask may be bool; a depth must be
    real numbers (a bool or complex ``D_o`` is a mistake, not a depth).
    """
    depth = name.endswith("depth")
    if isinstance(value, torch.Tensor):
        dtype, wrong = value.dtype, value.is_complex() or (depth and value.dtype == torch.bool)
    else:
        value = np.asarray(value)
        dtype, wrong = value.dtype, value.dtype.kind not in "biuf" or (depth and value.dtype.kind == "b")
    if wrong:
        raise ValueError(f"{name} must hold real numbers{'' if depth else ' or bools'}, got dtype {dtype}")
    tensor = value.detach().float() if isinstance(value, torch.Tensor) else torch.from_numpy(value.astype(np.float32))
    tensor = tensor.reshape(tensor.shape[-2:]) if tensor.ndim > 2 and tensor.shape[:-2].numel() == 1 else tensor
    if tuple(tensor.shape) != tuple(size):
        raise ValueError(f"{name} must be (H, W) = {tuple(size)} like the image, got {tuple(np.shape(value))}")
    return tensor.cpu()[None, None]


def load_model(model, device: str = "cpu", backend: str = "auto") -> AmodalDAV2 | OnnxAmodalDAV2:
    """An Amodal-DAV2 in eval mode on ``device``: a network as it is, or one loaded from a path
    (``model.safetensors``, a folder of ours, the released checkpoint, or an ``.onnx`` file
    written by :func:`amodal.models.onnx_model.export_onnx`) or a hub id
    (``zhyever/Amodal-Depth-Anything-DAV2``; :func:`amodal.utils.hub.resolve`).

    Args:
        model: a network, a path or a hub id.
        device: where a torch network runs; the onnxruntime backend runs on the CPU.
        backend: one of :data:`BACKENDS`; ``"auto"`` runs an ``.onnx`` file with onnxruntime
            and anything else with torch (on a CPU the two cost the same, README "Benchmarks").

    Raises:
        FileNotFoundError: a path that does not exist; a hub id not in the cache and not downloadable.
        ValueError: a backend that cannot run the file, or onnxruntime asked for another device.
    """
    if isinstance(model, OnnxAmodalDAV2):
        return model  # already loaded; it runs on the CPU
    if not isinstance(model, (str, os.PathLike)):
        return model.to(device).eval()
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; backends: {', '.join(BACKENDS)}")
    is_onnx = str(model).lower().endswith(".onnx")
    if backend == "onnxruntime" and not is_onnx:
        raise ValueError(f"{model}: the onnxruntime backend runs an .onnx file; write one with "
                         f"python -m amodal export-onnx --model {model} --output model.onnx")
    if backend == "torch" and is_onnx:
        raise ValueError(f"{model}: an ONNX file runs with the onnxruntime backend, not torch")
    if is_onnx:
        if torch.device(device).type != "cpu":
            raise ValueError(f"{model}: the onnxruntime backend runs on the CPU here, not {device}; for a GPU "
                             "load the torch checkpoint instead")
        return OnnxAmodalDAV2(model)
    return AmodalDAV2.from_pretrained(model).to(device).eval()


def load_base_model(checkpoint: str | os.PathLike, device: str = "cpu") -> DepthAnythingV2:
    """A Depth Anything V2 (``depth_anything_v2_vit{s,b,l}.pth``, a folder of ours or of ``transformers``,
    or a hub id such as ``depth-anything/Depth-Anything-V2-Large`` or ``…-Large-hf``) in eval mode.

    Raises:
        FileNotFoundError: a path that does not exist; a hub id not in the cache and not downloadable.
    """
    return DepthAnythingV2.from_pretrained(checkpoint).to(device).eval()


def photo_predictor(model, crop: float | None = CROP_MARGIN, size: int | None = None) -> Predictor:
    """An Amodal-DAV2 run on each item as :func:`predict` runs it on a photo: the network at its own
    side (``size``) on the object-centred crop, or on the whole item squashed (``crop=None``), the
    result back at the item's size; no seam blend (the hidden region scored is the network's).
    What the crop study compares (``scripts/crop_study.py``)."""
    def run(item):
        return predict(item["image"], item_map(item, "amodal_mask"), model, observed_depth=item_map(item, "observed_depth"),
                       visible_mask=item_map(item, "visible_mask"), blend=False, crop=crop, size=size)

    return run


def load_base_depth(spec: str, device: str = "cpu"):
    """What gives ``D_o`` for photos: ``"row-prior"`` (:class:`~amodal.adiw.depth.RowPriorDepth`, a toy
    without weights: every figure made from it must say so, :func:`toy_depth_note`) or a Depth
    Anything V2 by path or hub id (:class:`~amodal.adiw.depth.DAV2Depth`, the official
    preprocessing). Both have ``predict([rgb, ...]) -> [(H, W) normalised disparity, ...]`` and a
    ``name``.

    Raises:
        FileNotFoundError: a path that does not exist; a hub id not in the cache and not downloadable.
    """
    if spec == RowPriorDepth.name:
        return RowPriorDepth()
    return DAV2Depth(spec, device=device, batch_size=1)


def load_predictor(spec: str, device: str = "cpu", samples: int = 4, cascade_depth: str | None = None,
                   pix2gestalt: str | None = None) -> Predictor:
    """A predictor (:mod:`amodal.evaluation.predictors`) for a ``--model`` value.

    Args:
        spec: an Amodal-DAV2 checkpoint, or one of :data:`PREDICTOR_KINDS` followed by its
            argument (``baseline:harmonic``, ``dav2:depth_anything_v2_vits.pth``, ...).
        device: where a network runs.
        samples: Amodal-DepthFM: draws averaged per item.
        cascade_depth: ``cascade:``: the Depth Anything V2 (path or hub id) run on the painting.
        pix2gestalt: ``cascade:pix2gestalt``: its checkpoint (path or ``ORG/NAME:FILE``).

    Raises:
        ValueError: an unknown baseline or inpainter; a cascade without its depth model.
        FileNotFoundError: a checkpoint or folder that does not exist.
    """
    kind, _, argument = spec.partition(":")
    if argument and f"{kind}:" in PREDICTOR_KINDS:
        if kind == "baseline":
            if argument not in BASELINES:
                raise ValueError(f"unknown baseline {argument!r}; baselines: {', '.join(BASELINES)}")
            return fill_predictor(BASELINES[argument])
        if kind == "dav2":
            return base_depth_predictor(load_base_model(argument, device))
        if kind == "depthfm":
            return depthfm_predictor(AmodalDepthFM.from_pretrained(argument).to(device).eval(), samples=samples)
        if kind == "cascade":
            if argument not in PAINTERS:
                raise ValueError(f"unknown inpainter {argument!r} in {spec}; use one of {', '.join(PAINTERS)}")
            if cascade_depth is None:
                raise ValueError(f"{spec} needs the depth model it runs on the painting: give --cascade-depth "
                                 "(a Depth Anything V2, e.g. depth-anything/Depth-Anything-V2-Large)")
            if argument == "pix2gestalt" and pix2gestalt is None:
                raise ValueError(f"{spec} needs --pix2gestalt (the released epoch=000005.ckpt, a path or ORG/NAME:FILE)")
            painter = Pix2Gestalt.from_checkpoint(pix2gestalt).to(device) if argument == "pix2gestalt" else None
            return cascade_predictor(load_base_model(cascade_depth, device), argument, painter)
        return saved_predictions(argument)
    return model_predictor(load_model(spec, device))


def model_or_stand_in(path, device: str = "cpu", seed: int = 0) -> tuple[AmodalDAV2, str]:
    """The Amodal-DAV2 at ``path`` (a relative path is read from the checkout) or, where there is
    none, a random ``TINY`` network that runs every code path (its predictions mean nothing).
    A hub id (``zhyever/Amodal-Depth-Anything-DAV2``) is fetched, and one that cannot be had is
    an error, not a stand-in; ``ORG/NAME`` whose ``ORG`` is a folder of the checkout
    (``checkpoints/...``) is a path.

    Returns:
        ``(model, sentence)``: the network in eval mode and a sentence saying which it is.
    """
    if path is not None:
        found = Path(path) if Path(path).is_absolute() else repo_root() / path
        if found.exists():
            return load_model(found, device), f"Amodal-DAV2 from {path}"
        hub = parse_hub_id(path)
        if hub is not None and not (repo_root() / hub.repo.split("/")[0]).is_dir():
            return load_model(path, device), f"Amodal-DAV2 from {path}"
    torch.manual_seed(seed)
    return (AmodalDAV2(TINY).to(device).eval(),
            f"no checkpoint at {path}: a random tiny Amodal-DAV2 stands in (its predictions mean nothing)")
