"""amodal.training.objectives: the mask completer's loss against a hand computation."""
import math

import pytest
import torch

from amodal.training.objectives import mask_completion_loss


def test_mask_completion_loss_by_hand():
    # two pixels: logits 0 and ln 3 (p = 0.5, 0.75); M_a = 1, 0.5; M_vis = 0.5, 0 (fractions of a resized crop)
    logits = torch.tensor([0.0, math.log(3.0)]).view(1, 1, 1, 2)
    amodal = torch.tensor([1.0, 0.5]).view(1, 1, 1, 2)
    visible = torch.tensor([0.5, 0.0]).view(1, 1, 1, 2)
    # BCE(x, y) = log(1 + e^x) − x·y, weighted by 1 − M_vis = 0.5, 1
    bce = (0.5 * math.log(2.0) + (math.log(4.0) - 0.5 * math.log(3.0))) / 1.5
    # predicted hidden p·(1 − v) = 0.25, 0.75; true hidden a − v = 0.5, 0.5
    overlap = 0.25 * 0.5 + 0.75 * 0.5
    union = (0.25 + 0.5 - 0.125) + (0.75 + 0.5 - 0.375)
    assert overlap / union == pytest.approx(1 / 3)
    loss = mask_completion_loss(logits, amodal, visible, eps=0.0)
    assert loss.item() == pytest.approx(bce + 1 - 1 / 3, rel=1e-6)
    # eps smooths the IoU: (0.5 + 1) / (1.5 + 1)
    assert mask_completion_loss(logits, amodal, visible).item() == pytest.approx(bce + 1 - 1.5 / 2.5, rel=1e-6)


def test_pixels_inside_the_visible_mask_do_not_count():
    amodal = torch.tensor([1.0, 1.0, 0.0]).view(1, 1, 1, 3)
    visible = torch.tensor([1.0, 0.0, 0.0]).view(1, 1, 1, 3)
    logits = torch.tensor([0.0, 2.0, -2.0]).view(1, 1, 1, 3)
    changed = logits.clone()
    changed[..., 0] = -30.0  # "not the object" on a visible pixel: no cost, M_vis is added anyway
    assert mask_completion_loss(changed, amodal, visible).item() == pytest.approx(
        mask_completion_loss(logits, amodal, visible).item())
    # and a better guess outside it costs less
    better = logits.clone()
    better[..., 1], better[..., 2] = 6.0, -6.0
    assert mask_completion_loss(better, amodal, visible) < mask_completion_loss(logits, amodal, visible)
