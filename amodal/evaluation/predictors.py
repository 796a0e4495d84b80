"""Predictors: what the evaluation runs, one item in, one depth map out (paper §5.1).

A *predictor* maps one item (a dict as the datasets give: ``image`` (3, H, W),
``amodal_mask``, ``visible_mask``, ``observed_depth``, ``target_depth`` (1, H, W)) to a
``(H, W)`` prediction of normalised disparity. Each wraps one kind of model so that the
evaluation, validation during training and the explorer score them all alike:

- :func:`fill_predictor`: a fill of :mod:`amodal.baselines`;
- :func:`model_predictor`: an Amodal-DAV2, torch or ONNX (with ``.batch`` for one forward pass over many items);
- :func:`depthfm_predictor`: an Amodal-DepthFM, the mean of aligned draws;
- :func:`base_depth_predictor`: a plain Depth Anything V2, which sees only the composite;
- :func:`saved_predictions`: ``<id>.npy`` files written by another program.

Loading a model by path or name is :func:`amodal.inference.load_predictor`'s job; these
take a model already built.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from amodal.adiw.depth import normalise_disparity
from amodal.models.onnx_model import placement

Predictor = Callable[[dict], np.ndarray]


def item_map(item: dict, key: str) -> np.ndarray:
    """``item[key]`` as an (H, W) numpy map (torch or numpy, any leading ones)."""
    value = item[key]
    return (value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)).reshape(value.shape[-2:])


def fill_predictor(fill) -> Predictor:
    """A baseline ``fill(image, amodal_mask, observed_depth, visible_mask)`` as a predictor."""
    def predict(item):
        return fill(None, item_map(item, "amodal_mask"), item_map(item, "observed_depth"), item_map(item, "visible_mask"))

    return predict


def model_predictor(model: torch.nn.Module) -> Predictor:
    """An Amodal-DAV2 run on the item as it is (its sides must suit the model).

    The predictor also has ``.batch(items) -> [prediction, ...]``, one forward pass for
    items of one size, which :func:`evaluate_items` uses when given a ``batch_size``.
    """
    device, _ = placement(model)  # a torch module, or an ONNX one run by onnxruntime (CPU)
    needs_visible = getattr(model, "needs_visible_mask", False)  # a fill_residual Amodal-DAV2
    keys = ("image", "amodal_mask", "observed_depth") + (("visible_mask",) if needs_visible else ())

    @torch.no_grad()
    def batch(items):
        model.eval()
        inputs = [torch.stack([item[k] for item in items]).to(device).float() for k in keys]
        return list(model(*inputs)[:, 0].float().cpu().numpy())

    def predict(item):
        return batch([item])[0]

    predict.batch = batch
    return predict


def depthfm_predictor(model: torch.nn.Module, samples: int = 4, steps: int = 4, seed: int = 0) -> Predictor:
    """An Amodal-DepthFM: the mean of ``samples`` draws (``steps`` Euler steps each), every draw
    aligned to ``D_o`` on ``M_vis`` as at the paper's inference. The noise of the ``k``-th call comes
    from a generator seeded by ``seed`` and ``k``, so a rerun over the same items in the same
    order gives the same numbers.
    """
    device = next(model.parameters()).device
    counter = iter(range(10**12))

    @torch.no_grad()
    def predict(item):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + next(counter))
        maps = {k: item[k][None].to(device).float() for k in ("image", "amodal_mask", "observed_depth", "visible_mask")}
        out = model.sample(maps["image"], amodal_mask=maps["amodal_mask"], observed_depth=maps["observed_depth"],
                           visible_mask=maps["visible_mask"], n=samples, steps=steps, generator=generator)
        return out.mean[0, 0].clamp(0, 1).float().cpu().numpy()

    return predict


def base_depth_predictor(model: torch.nn.Module) -> Predictor:
    """Depth Anything V2 with no guidance: its normalised disparity of the composite, the
    baseline of a plain relative-depth model (it sees the occluder, not the object behind)."""
    def predict(item):
        rgb = (item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        return normalise_disparity(model.infer_image(rgb)).astype(np.float32)

    return predict


def saved_predictions(folder: str | os.PathLike) -> Predictor:
    """Predictions another program wrote: ``folder/<id>.npy``, (H, W) at the items' size.

    Raises:
        FileNotFoundError: no such folder, or (when called) no file for the item's id.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"predictions: no such folder: {folder}")

    def predict(item):
        path = folder / f"{item['id']}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"no prediction for sample {item['id']}: {path}")
        return np.load(path)

    return predict
