"""What each model minimises, as ``objective(model, batch) -> loss`` for :func:`amodal.training.loop.train`.

Amodal-DAV2 (paper §4.1): SILog (λ = 0.85) between the prediction and the target amodal
depth on the *whole object* ``M_a`` — the paper's Table 4 finds this better (3.682
RMSE×100) than supervising the hidden part only (3.845) or the whole scene.

Amodal-DepthFM (paper §4.2): the flow-matching MSE in latent space on ``M_a``
(:meth:`AmodalDepthFM.training_loss`). Its loss is a method, not the network's
``forward``, so :class:`FlowMatchingLoss` wraps the model into a module whose forward
*is* the loss — what ``DistributedDataParallel`` needs to synchronise its gradients.
"""
from __future__ import annotations

from typing import Callable

import torch

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
