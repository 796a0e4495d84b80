"""Checks of the guidance inputs, done once at the API boundary.

Both amodal models take the same maps beside the image (paper §4): the amodal mask
``M_a`` and the observed depth ``D_o``, and for alignment the visible mask ``M_vis``.
A NaN in ``D_o`` would spread through every token of the image, a mask of another size
would be broadcast silently, and an empty ``M_a`` makes the loss and the fit undefined —
so the public entry points (``predict``, ``sample``, ``training_loss``, the datasets)
check them here, *not* inside ``forward``: a value check there would sync the GPU on
every call and break ``torch.compile(fullgraph=True)``.

All value checks are reduced on the device to one small tensor and read back with a
single transfer, so a check costs one sync however many maps it looks at.
"""
from __future__ import annotations

import torch

MAP_NAMES = ("amodal_mask", "observed_depth", "visible_mask")


def check_image(image: torch.Tensor) -> None:
    """``image`` must be a floating ``(B, 3, H, W)`` tensor.

    Raises:
        ValueError: another type, rank or channel count.
    """
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"image must be a torch.Tensor (B, 3, H, W), got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (B, 3, H, W) RGB, got {tuple(image.shape)}")


def check_guidance(
    image: torch.Tensor,
    amodal_mask: torch.Tensor,
    observed_depth: torch.Tensor,
    visible_mask: torch.Tensor | None = None,
) -> None:
    """Check the maps that go beside ``image`` into an amodal model.

    Args:
        image: ``(B, 3, H, W)``; only its shape is read.
        amodal_mask: ``(B, 1, H, W)`` ``M_a``, bool or values in [0, 1].
        observed_depth: ``(B, 1, H, W)`` ``D_o``, normalised disparity in [0, 1].
        visible_mask: optional ``(B, 1, H, W)`` ``M_vis``, bool or values in [0, 1].

    Raises:
        ValueError: naming the map: a shape other than ``(B, 1, H, W)`` of the image,
            NaN or inf, values outside [0, 1], or an ``M_a`` empty for some sample.
    """
    check_image(image)
    batch, _, height, width = image.shape
    maps = {"amodal_mask": amodal_mask, "observed_depth": observed_depth}
    if visible_mask is not None:
        maps["visible_mask"] = visible_mask
    for name, x in maps.items():
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if tuple(x.shape) != (batch, 1, height, width):
            raise ValueError(f"{name} must have shape ({batch}, 1, {height}, {width}) like image, got {tuple(x.shape)}")
    # One row per map: [non-finite count, min, max]; one transfer for all of them.
    stats = []
    for x in maps.values():
        x = x.detach().float()
        finite = torch.isfinite(x)
        stats.append(torch.stack([(~finite).sum().float(), torch.where(finite, x, 0).amin(), torch.where(finite, x, 0).amax()]))
    empty = ((amodal_mask.detach().flatten(1) > 0).sum(1) == 0).sum().float()
    stats.append(torch.stack([empty, empty, empty]).to(stats[0].device))
    *values, (n_empty, _, _) = torch.stack(stats).tolist()
    for (name, _), (bad, low, high) in zip(maps.items(), values):
        if bad:
            raise ValueError(f"{name} holds NaN or inf ({int(bad)} values)")
        if low < 0 or high > 1:
            raise ValueError(f"{name} must lie in [0, 1], got [{low:.3g}, {high:.3g}]")
    if n_empty:
        raise ValueError(f"amodal_mask is empty for {int(n_empty)} of {batch} samples: nothing to predict")
