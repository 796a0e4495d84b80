"""SILog as the official code computes it, against numpy float64."""
import numpy as np
import pytest
import torch

from amodal.losses import silog


def _reference(pred, target, mask, lam=0.85):
    g = np.log(pred[mask].astype(np.float64) + 1e-7) - np.log(target[mask].astype(np.float64) + 1e-7)
    return 10 * np.sqrt(np.var(g, ddof=1) + (1 - lam) * np.mean(g) ** 2)


def test_matches_numpy_on_the_masked_pixels_pooled_over_the_batch():
    rng = np.random.default_rng(0)
    pred = rng.uniform(0.05, 1, (3, 1, 9, 11))
    target = rng.uniform(0.05, 1, (3, 1, 9, 11))
    mask = rng.random((3, 1, 9, 11)) > 0.4
    loss = silog(torch.from_numpy(pred), torch.from_numpy(target), torch.from_numpy(mask))
    assert loss.item() == pytest.approx(_reference(pred, target, mask), rel=1e-9)
    per_image = np.mean([_reference(pred[i], target[i], mask[i]) for i in range(3)])
    assert abs(loss.item() - per_image) > 1e-3  # pooling is not a mean of per-image losses


def test_scale_invariance_is_partial():
    rng = np.random.default_rng(1)
    target = torch.from_numpy(rng.uniform(0.1, 1, (1, 1, 6, 6)))
    assert silog(target, target).item() == pytest.approx(0.0, abs=1e-6)
    # a global factor k leaves the variance alone: loss = 10·sqrt(0.15)·|log k|
    assert silog(2 * target, target).item() == pytest.approx(10 * np.sqrt(0.15) * np.log(2), rel=1e-6)
    assert silog(2 * target, target, lam=1.0).item() == pytest.approx(0.0, abs=1e-5)


def test_unbiased_variance_on_two_pixels():
    pred = torch.tensor([1.0, np.e]).view(1, 1, 1, 2).double()
    target = torch.ones(1, 1, 1, 2).double()
    # g = (0, 1): unbiased var 0.5, mean 0.5 → 10·sqrt(0.5 + 0.15·0.25)
    assert silog(pred, target).item() == pytest.approx(10 * np.sqrt(0.5 + 0.0375), rel=1e-6)


def test_errors():
    x = torch.ones(1, 1, 2, 2)
    with pytest.raises(ValueError, match="differ"):
        silog(x, torch.ones(1, 1, 2, 3))
    with pytest.raises(ValueError, match="at least 2"):
        silog(x, x, torch.tensor([[[[True, False], [False, False]]]]))
    with pytest.raises(ValueError, match="mask"):
        silog(x, x, torch.ones(2, 2, dtype=torch.bool))
