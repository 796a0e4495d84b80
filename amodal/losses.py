"""Training losses. Here: the scale-invariant log loss (SILog) of Amodal-DAV2.

Amodal-DAV2 is trained with SILog (Eigen et al., 2014) on the pixels of the whole target
object ``M_a`` (paper Sec. 4.1 and Table 4: whole object 3.682 RMSE beats hidden part only,
3.845). As the official code computes it:

    g   = log(p + 1e-7) − log(t + 1e-7)          over the selected pixels of the whole batch
    L   = 10 · sqrt( Var(g) + (1 − λ) · mean(g)² ),      λ = 0.85

with the *unbiased* variance (``torch.var``) and all selected pixels of the batch pooled
into one set (not a per-image mean). λ = 1 would be fully scale invariant; 0.85 keeps a
little of the absolute scale, which matters because the output lives in D_o's [0, 1] space.

The Amodal-DAV2 objective of the trainer (:mod:`amodal.training.objectives`) calls it.
"""
from __future__ import annotations

import torch

LOG_EPS = 1e-7  # the official code's offset inside the logs


def silog(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    lam: float = 0.85,
    scale: float = 10.0,
) -> torch.Tensor:
    """Scale-invariant log loss over the masked pixels of the whole batch.

    Args:
        pred: (B, 1, H, W) predicted normalised disparity, ≥ 0.
        target: (B, 1, H, W) target depth (same space), ≥ 0.
        mask: (B, 1, H, W) bool, the pixels that count (``M_a`` and valid); all if None.
        lam: λ; the mean term is weighted by 1 − λ.
        scale: overall factor (10 in the official code).

    Returns:
        scalar loss.

    Raises:
        ValueError: shapes differ, or fewer than 2 pixels are selected.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if mask is not None:
        if mask.shape != pred.shape:
            raise ValueError(f"mask {tuple(mask.shape)} must be shaped like pred {tuple(pred.shape)}")
        pred, target = pred[mask.bool()], target[mask.bool()]
    if pred.numel() < 2:
        raise ValueError(f"SILog needs at least 2 pixels, got {pred.numel()}")
    g = torch.log(pred + LOG_EPS) - torch.log(target + LOG_EPS)
    return scale * torch.sqrt(torch.var(g) + (1 - lam) * g.mean() ** 2)
