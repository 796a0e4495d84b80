"""What each model minimises, as ``objective(model, batch) -> loss`` for :func:`amodal.training.loop.train`.

Amodal-DAV2 (paper §4.1): SILog (λ = 0.85) between the prediction and the target amodal
depth on the *whole object* ``M_a`` — the paper's Table 4 finds this better (3.682
RMSE×100) than supervising the hidden part only (3.845) or the whole scene.

Amodal-DepthFM (paper §4.2): the flow-matching MSE in latent space on ``M_a``
(:meth:`AmodalDepthFM.training_loss`). Its loss is a method, not the network's
``forward``, so :class:`FlowMatchingLoss` wraps the model into a module whose forward
*is* the loss — what ``DistributedDataParallel`` needs to synchronise its gradients.

The amodal-mask completer (ours, :mod:`amodal.models.mask_completer`): binary cross-entropy
of its logits against the crop of ``M_a`` plus one minus the soft IoU of the hidden part
(:func:`mask_completion_loss`), both on the pixels outside ``M_vis`` only — ``M_vis`` is added
to every prediction anyway, and the score that matters is the hidden part's IoU.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from amodal.losses import silog

REGIONS = ("object", "hidden", "scene")


def loss_region(batch: dict, region: str) -> torch.Tensor:
    """The ``(B, 1, H, W)`` bool mask where the loss counts.

    Args:
        batch: with ``amodal_mask`` and ``visible_mask`` ``(B, 1, H, W)`` in {0, 1}.
        region: ``"object"`` (``M_a``), ``"hidden"`` (``M_a ∧ ¬M_vis``) or ``"scene"`` (every pixel).
    """
    amodal = batch["amodal_mask"] > 0.5
    if region == "object":
        return amodal
    if region == "hidden":
        return amodal & ~(batch["visible_mask"] > 0.5)
    if region == "scene":
        return torch.ones_like(amodal)
    raise ValueError(f"loss region must be one of {REGIONS}, got {region!r}")


def amodal_dav2_objective(region: str = "object", lam: float = 0.85) -> Callable[[torch.nn.Module, dict], torch.Tensor]:
    """SILog of Amodal-DAV2's prediction against ``target_depth`` on ``region``.

    The batch holds ``image`` (B, 3, H, W) and ``amodal_mask``, ``visible_mask``,
    ``observed_depth``, ``target_depth`` (B, 1, H, W).
    """
    if region not in REGIONS:
        raise ValueError(f"loss region must be one of {REGIONS}, got {region!r}")

    def objective(model, batch):
        # the paper's network ignores visible_mask; a fill_residual one needs it
        prediction = model(batch["image"], batch["amodal_mask"], batch["observed_depth"], batch["visible_mask"])
        return silog(prediction.float(), batch["target_depth"].float(), loss_region(batch, region), lam=lam)

    return objective


def mask_completion_loss(logits: torch.Tensor, amodal_mask: torch.Tensor, visible_mask: torch.Tensor,
                         eps: float = 1.0) -> torch.Tensor:
    """Cross-entropy plus soft hidden-part IoU loss of a mask completer, outside ``M_vis``.

    With ``p = σ(logits)``, ``a = M_a``, ``v = M_vis`` (fractions in [0, 1] on a resized
    crop) and ``w = 1 − v`` the weight of a pixel (how much of it lies outside ``M_vis``)::

        bce  = Σ w · BCE(logits, a) / Σ w                     (over the batch)
        soft = Σ w·p · (a − v) / Σ (w·p + (a − v) − w·p·(a − v))   (per sample; a − v is the hidden part)
        loss = bce + mean over samples of (1 − soft)

    ``eps`` is added to the IoU's numerator and denominator (a sample whose crop holds
    no hidden pixel scores 1 when nothing is predicted there).

    Args:
        logits: ``(B, 1, S, S)``.
        amodal_mask, visible_mask: ``(B, 1, S, S)`` in [0, 1], ``M_vis ⊆ M_a``.

    Returns:
        a scalar tensor.
    """
    outside = 1.0 - visible_mask
    bce = F.binary_cross_entropy_with_logits(logits, amodal_mask, weight=outside, reduction="sum")
    bce = bce / outside.sum().clamp_min(1.0)
    predicted = torch.sigmoid(logits) * outside                      # predicted hidden part
    hidden = (amodal_mask - visible_mask).clamp_min(0)               # true hidden part
    overlap = (predicted * hidden).flatten(1).sum(1)
    union = (predicted + hidden - predicted * hidden).flatten(1).sum(1)
    return bce + (1 - (overlap + eps) / (union + eps)).mean()


def mask_completion_objective(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    """:func:`mask_completion_loss` of a mask completer on a batch of
    :class:`~amodal.data.mask_items.MaskCrops` items (``inputs``, ``amodal_mask``, ``visible_mask``)."""
    return mask_completion_loss(model(batch["inputs"]).float(), batch["amodal_mask"].float(), batch["visible_mask"].float())


class FlowMatchingLoss(torch.nn.Module):
    """An Amodal-DepthFM whose ``forward(batch)`` is its training loss (train this module).

    Args:
        model: an :class:`~amodal.models.depthfm.AmodalDepthFM`.
        time_grid: draw ``t`` on ``k / time_grid`` (official: 400), or ``U[0, 1)`` if ``None``.
        hidden_weight: extra weight of the hidden pixels in the loss (0: the paper's).

    ``save_pretrained`` saves the wrapped model.
    """

    def __init__(self, model: torch.nn.Module, time_grid: int | None = None, hidden_weight: float = 0.0):
        super().__init__()
        self.model = model
        self.time_grid = time_grid
        self.hidden_weight = hidden_weight

    def forward(self, batch: dict) -> torch.Tensor:
        extra = {"visible_mask": batch["visible_mask"], "hidden_weight": self.hidden_weight} if self.hidden_weight else {}
        return self.model.training_loss(batch["image"], batch["target_depth"], amodal_mask=batch["amodal_mask"],
                                        observed_depth=batch["observed_depth"], time_grid=self.time_grid, **extra)

    def save_pretrained(self, folder):
        return self.model.save_pretrained(folder)


def flow_matching_objective(network: torch.nn.Module, batch: dict) -> torch.Tensor:
    """The objective for a (possibly DDP-wrapped) :class:`FlowMatchingLoss`."""
    return network(batch)
