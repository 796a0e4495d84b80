"""Masks for your own photos: SAM's automatic mask generator, written as SA-1B JSON (paper §3.1, step 1).

ADIW starts from SA-1B, whose masks SAM made. To build ADIW from any folder of photos,
run the same generator (``segment_anything.SamAutomaticMaskGenerator``) and store its
masks in SA-1B's format (:mod:`amodal.adiw.sa1b`), so the builder cannot tell the
difference. The generator's own filters (``pred_iou_thresh=0.88``,
``stability_score_thresh=0.95`` by default, the values behind SA-1B) apply first;
:mod:`amodal.adiw.objects` then picks the complete objects.

Ids are ``image_index · 10⁶ + k`` so that they are large and unique across a folder,
like SA-1B's.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from amodal.adiw.sa1b import annotation_from_mask, write_sa1b
from amodal.utils.hub import resolve
from amodal.utils.images import DEFAULT_MAX_PIXELS, read_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# The official checkpoint of each model type (github.com/facebookresearch/segment-anything, README):
# the file a hub id without :FILE reads for that type (amodal.utils.hub.KNOWN_WEIGHTS has a mirror).
SAM_FILES = {"vit_h": "sam_vit_h_4b8939.pth", "vit_l": "sam_vit_l_0b3195.pth", "vit_b": "sam_vit_b_01ec64.pth"}


def sam_generator(checkpoint: str | os.PathLike, model_type: str = "vit_h", device: str = "cpu", **options):
    """A ``SamAutomaticMaskGenerator`` for a SAM checkpoint.

    Args:
        checkpoint: ``sam_vit_h_4b8939.pth`` (or the ``vit_l``/``vit_b`` files), or a hub id
            (``ybelkada/segment-anything`` reads :data:`SAM_FILES` of ``model_type``).
        model_type: ``"vit_h"``, ``"vit_l"`` or ``"vit_b"``.
        device: where SAM runs.
        options: passed to the generator (``points_per_side``, ``pred_iou_thresh``, ...).

    Raises:
        FileNotFoundError: no checkpoint at that path; a hub id that cannot be had.
        ValueError: an unknown model type.
    """
    # segment_anything is needed only where SAM runs: imported then, not with the package
    from segment_anything import SamAutomaticMaskGenerator, sam_model_registry

    checkpoint = resolve(checkpoint, SAM_FILES.get(model_type), what="SAM checkpoint")
    if not checkpoint.is_file():
        raise FileNotFoundError(f"SAM checkpoint not found: {checkpoint}")
    if model_type not in sam_model_registry:
        raise ValueError(f"unknown SAM model type {model_type!r}; use one of {sorted(sam_model_registry)}")
    sam = sam_model_registry[model_type](checkpoint=str(checkpoint)).to(device)
    return SamAutomaticMaskGenerator(sam, **options)


def sam_annotations(image: np.ndarray, generator, first_id: int = 0) -> list[dict]:
    """Run the generator on one ``(H, W, 3)`` uint8 RGB image; SA-1B annotations, one per mask.

    ``bbox``, ``area`` and the RLE are recomputed from the mask (SA-1B's conventions);
    ``predicted_iou``, ``stability_score``, ``point_coords`` and ``crop_box`` are SAM's.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    annotations = []
    for k, record in enumerate(generator.generate(image)):
        mask = np.asarray(record["segmentation"], bool)
        if not mask.any():
            continue
        annotations.append(
            annotation_from_mask(
                mask,
                id=first_id + k,
                predicted_iou=float(record["predicted_iou"]),
                stability_score=float(record["stability_score"]),
                point_coords=record.get("point_coords"),
                crop_box=record.get("crop_box"),
            )
        )
    return annotations


def write_sam_masks(
    images: str | os.PathLike,
    output: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    model_type: str = "vit_h",
    device: str = "cpu",
    generator=None,
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[Path]:
    """Write ``output/<stem>.json`` (SA-1B format) for every readable photo in ``images``.

    Photos that already have a JSON are skipped unless ``overwrite`` (so an interrupted
    run resumes); each file is written atomically by :func:`amodal.adiw.sa1b.write_sa1b`.
    A photo :func:`amodal.utils.images.read_image` refuses (broken, over ``max_pixels``)
    gets no JSON, so that the builder skips it and names the reason, as it does for
    any bad source, rather than the whole folder failing here.

    Args:
        images: folder of ``.jpg``/``.png`` photos.
        output: folder for the JSON files.
        checkpoint, model_type, device: see :func:`sam_generator` (ignored if ``generator`` is given).
        generator: a ready ``SamAutomaticMaskGenerator`` (tests pass a tiny one).
        overwrite: make the JSON again where it exists.
        max_pixels: the pixel limit of :func:`amodal.utils.images.read_image`.

    Returns:
        The JSON paths, one per readable photo, in name order.
    """

    images, output = Path(images), Path(output)
    if not images.is_dir():
        raise FileNotFoundError(f"image folder not found: {images}")
    photos = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if generator is None:
        if checkpoint is None:
            raise ValueError("pass a SAM checkpoint path or a generator")
        generator = sam_generator(checkpoint, model_type, device)
    written = []
    for index, photo in enumerate(photos):
        path = output / f"{photo.stem}.json"
        if path.is_file() and not overwrite:
            written.append(path)
            continue
        try:
            rgb = read_image(photo, max_pixels)
        except ValueError:
            continue  # the builder reports it, with read_image's reason
        written.append(path)
        info = {"image_id": index, "width": int(rgb.shape[1]), "height": int(rgb.shape[0]), "file_name": photo.name}
        write_sa1b(path, info, sam_annotations(rgb, generator, first_id=(index + 1) * 1_000_000))
    return written


def tiny_sam(image_size: int = 64, seed: int = 0):
    """A SAM with SAM's architecture at toy size and random weights (for tests and demos).

    It segments nonsense, but every code path of the real generator runs, in about a second.
    """
    # segment_anything is needed only where SAM runs: imported then, not with the package
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(seed)
    dim, patch = 32, 16
    grid = image_size // patch
    sam = Sam(
        image_encoder=ImageEncoderViT(img_size=image_size, patch_size=patch, embed_dim=dim, depth=1, num_heads=2, out_chans=dim),
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(grid, grid), input_image_size=(image_size, image_size), mask_in_chans=4),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2),
            transformer_dim=dim,
            iou_head_depth=1,
            iou_head_hidden_dim=16,
        ),
    )
    return sam.eval()


__all__: Sequence[str] = ["sam_generator", "sam_annotations", "write_sam_masks", "tiny_sam"]
