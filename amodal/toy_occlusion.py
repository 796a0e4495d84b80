"""A toy world whose hidden depth is ambiguous, and a short training loop for it.

The quick profile has no trained Amodal-DepthFM and no GPU, so notebook 04 trains the
tiny model (:func:`amodal.models.depthfm.tiny_amodal_depthfm`) for a few hundred steps
on scenes made for the point of a *generative* amodal model (paper §3.3): the visible
part of an object says nothing about how its hidden part continues, so the right answer
is a distribution with two modes, and the samples' spread should rise behind the
occluder. The scenes are built on the CPU from a CPU generator, so a seed gives the same
scenes on any device; they are then moved to the model's device.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from amodal.models.depthfm import AmodalDepthFM


def ambiguous_occlusion_batch(batch: int, size: int = 32, generator: torch.Generator | None = None,
                              slope: float = 0.3, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """Synthetic scenes whose hidden depth is ambiguous, for training the tiny model.

    A slightly tilted orange plate stands before a sloping floor; a dark bar in front
    hides its right part. Behind the bar the plate bends towards or away from the camera
    (disparity ``± slope·u`` added, ``u`` from 0 at the bar's edge to 1 at the plate's end)
    with equal chance. Nothing in the image tells which: the right answer is a
    *distribution* with two modes, which is what a generative model can represent.

    Args:
        batch: number of scenes ``B``; size: their side ``S`` in pixels.
        generator: a CPU generator (the scenes are always drawn on the CPU).
        slope: how far the hidden part bends; 0 makes the scenes unambiguous.
        device: where the returned tensors go (the CPU by default).

    Returns:
        dict of ``image`` ``(B, 3, S, S)``, ``amodal_mask``, ``visible_mask``,
        ``observed_depth``, ``target_depth`` ``(B, 1, S, S)`` and ``bend`` ``(B,)`` (±1).
    """
    g = generator
    rows = torch.arange(size, dtype=torch.float32).view(-1, 1).expand(size, size)
    cols = torch.arange(size, dtype=torch.float32).view(1, -1).expand(size, size)
    out = {k: torch.zeros(batch, 1, size, size) for k in
           ("amodal_mask", "visible_mask", "observed_depth", "target_depth")}
    image = torch.zeros(batch, 3, size, size)
    bend = torch.randint(0, 2, (batch,), generator=g).float() * 2 - 1
    for b in range(batch):
        r = torch.randint(0, size // 8 + 1, (4,), generator=g)
        top, left = int(r[0]) + size // 8, int(r[1]) + size // 16
        bottom, right = top + size // 2 + int(r[2]), left + 3 * size // 4 + int(r[3])
        edge = left + 2 * (right - left) // 5
        d0 = 0.45 + 0.15 * float(torch.rand((), generator=g))
        # a visible tilt too: on a flat visible part least-squares alignment has no scale to fit
        tilt = (0.08 + 0.07 * float(torch.rand((), generator=g))) * (1 if torch.rand((), generator=g) < 0.5 else -1)
        floor = 0.1 + 0.25 * rows / size
        plate = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
        bar = (rows >= top - 2) & (rows < bottom + 2) & (cols >= edge) & (cols < right + 2)
        u = ((cols - edge) / max(right - 1 - edge, 1)).clamp(min=0)
        seen_depth = d0 + tilt * (cols - left) / (right - left)
        plate_depth = seen_depth + float(bend[b]) * slope * u
        observed = torch.where(bar, torch.tensor(0.9), torch.where(plate, seen_depth, floor))
        out["observed_depth"][b, 0] = observed
        out["target_depth"][b, 0] = torch.where(plate, plate_depth, observed)
        out["amodal_mask"][b, 0] = plate.float()
        out["visible_mask"][b, 0] = (plate & ~bar).float()
        colour = torch.stack([0.55 + 0.3 * floor, 0.6 + 0.2 * floor, 0.7 + 0.0 * floor])
        colour = torch.where(plate, torch.tensor([0.9, 0.5, 0.15]).view(3, 1, 1), colour)
        image[b] = torch.where(bar, torch.tensor([0.15, 0.15, 0.2]).view(3, 1, 1), colour)
    return {k: v.to(device) for k, v in {"image": image, **out, "bend": bend}.items()}


def train_toy(model: AmodalDepthFM, steps: int = 300, batch: int = 16, size: int = 32, lr: float = 2e-3,
              seed: int = 0) -> list[float]:
    """Train ``model`` on :func:`ambiguous_occlusion_batch` with Adam; returns the losses.

    A few hundred steps take seconds on a CPU for
    :func:`~amodal.models.depthfm.tiny_amodal_depthfm`; enough to learn the scenes'
    structure, not a substitute for the paper's 15K × 128 samples.

    Everything follows the model's device: the scenes are moved there, and the one CPU
    generator (scenes, noise and times) is drawn on the CPU and moved, so a seed gives
    the same data on every device.
    """
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.unet.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        data = ambiguous_occlusion_batch(batch, size, generator, device=device)
        loss = model.training_loss(data["image"], data["target_depth"], amodal_mask=data["amodal_mask"],
                                   observed_depth=data["observed_depth"], generator=generator)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    model.eval()
    return losses
