"""Flow matching: schedule constants, loss, Euler sampler and ensemble statistics against
closed forms and float64 numpy references."""
import math

import numpy as np
import pytest
import torch

from amodal.models.flow_matching import (
    cosine_alpha_bar,
    draw,
    ensemble_statistics,
    euler_sample,
    flow_matching_loss,
    interpolate,
    noise_augmentation,
    source_latent,
)
from device_testing import refuse_foreign_generators


def test_noise_augmentation_is_cosine_schedule_at_step_400():
    signal, sigma = noise_augmentation(400)
    # ᾱ = cos²(π·0.4/2) up to the eps inside the log; DepthFM's documented 0.809 / 0.588.
    assert signal == pytest.approx(math.cos(0.2 * math.pi), abs=1e-5)
    assert sigma == pytest.approx(math.sin(0.2 * math.pi), abs=1e-5)
    assert (round(signal, 3), round(sigma, 3)) == (0.809, 0.588)
    assert signal**2 + sigma**2 == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("step", [50, 250, 700, 950])
def test_cosine_alpha_bar_matches_cos_squared(step):
    assert cosine_alpha_bar(step) == pytest.approx(math.cos(math.pi * step / 2000) ** 2, abs=1e-4)


def test_source_latent_mixes_given_noise_and_is_identity_without_noise():
    z = torch.randn(2, 4, 3, 5)
    eps = torch.randn(2, 4, 3, 5)
    signal, sigma = noise_augmentation(400)
    expected = signal * z.double().numpy() + sigma * eps.double().numpy()
    np.testing.assert_allclose(source_latent(z, 400, noise=eps).numpy(), expected, atol=1e-6)
    assert torch.equal(source_latent(z, 0), z)
    with pytest.raises(ValueError, match="noise has shape"):
        source_latent(z, 400, noise=eps[:1])


def test_source_latent_is_repeatable_with_a_generator():
    z = torch.zeros(1, 4, 8, 8)
    a = source_latent(z, 400, torch.Generator().manual_seed(3))
    b = source_latent(z, 400, torch.Generator().manual_seed(3))
    c = source_latent(z, 400, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_interpolate_endpoints_and_midpoint():
    x0, x1 = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
    t = torch.tensor([0.0, 1.0, 0.5])
    xt = interpolate(x0, x1, t)
    assert torch.equal(xt[0], x0[0]) and torch.equal(xt[1], x1[1])
    torch.testing.assert_close(xt[2], (x0[2] + x1[2]) / 2)


def test_loss_is_zero_for_the_true_velocity_and_mse_otherwise():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(4, 3, 5, 5, generator=g), torch.randn(4, 3, 5, 5, generator=g)
    t = torch.rand(4, generator=g)
    true_velocity = lambda x, s: x1 - x0  # noqa: E731
    assert float(flow_matching_loss(true_velocity, x0, x1, t)) == pytest.approx(0.0, abs=1e-12)
    zero = lambda x, s: torch.zeros_like(x)  # noqa: E731
    reference = ((x1.double() - x0.double()).numpy() ** 2).mean()
    assert float(flow_matching_loss(zero, x0, x1, t)) == pytest.approx(reference, rel=1e-6)


def test_masked_loss_averages_over_masked_positions_and_channels():
    g = torch.Generator().manual_seed(1)
    x0, x1 = torch.randn(2, 4, 6, 6, generator=g), torch.randn(2, 4, 6, 6, generator=g)
    t = torch.tensor([0.3, 0.9])
    mask = torch.rand(2, 1, 6, 6, generator=g) > 0.5
    velocity = lambda x, s: 0.5 * x + s.view(-1, 1, 1, 1)  # noqa: E731
    # float64 reference written out element by element
    a, b, m = x0.double().numpy(), x1.double().numpy(), mask.numpy()
    errors = []
    for i, ti in enumerate(t.double().numpy()):
        xt = (1 - ti) * a[i] + ti * b[i]
        err = (0.5 * xt + ti - (b[i] - a[i])) ** 2
        errors.extend(err[:, m[i, 0]].ravel())
    assert float(flow_matching_loss(velocity, x0, x1, t, mask)) == pytest.approx(np.mean(errors), rel=1e-5)
    with pytest.raises(ValueError, match="no pixel"):
        flow_matching_loss(velocity, x0, x1, t, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="mask must have shape"):
        flow_matching_loss(velocity, x0, x1, t, mask[:, :, :3])


@pytest.mark.parametrize("steps", [1, 2, 4, 10])
def test_euler_matches_closed_form_for_linear_field(steps):
    # dx/dt = a·x: Euler gives x0·(1 + a/N)^N exactly (the ODE's solution is x0·e^a).
    a = -1.3
    x0 = torch.randn(3, 2, dtype=torch.float64)
    x1 = euler_sample(lambda x, t: a * x, x0, steps)
    torch.testing.assert_close(x1, x0 * (1 + a / steps) ** steps)


def test_euler_uses_left_endpoint_times():
    # dx/dt = t: Euler sums h·t_k = (N − 1)/(2N), not the exact 1/2.
    for steps in (1, 3, 8):
        x = euler_sample(lambda x, t: t.view(-1, 1).expand_as(x), torch.zeros(2, 1, dtype=torch.float64), steps)
        assert float(x[0, 0]) == pytest.approx((steps - 1) / (2 * steps))


def test_euler_is_exact_on_straight_paths_and_returns_the_path():
    x0, v = torch.randn(2, 4), torch.randn(2, 4)
    path = euler_sample(lambda x, t: v, x0, steps=1, return_path=True)
    assert len(path) == 2
    torch.testing.assert_close(path[-1], x0 + v)
    with pytest.raises(ValueError):
        euler_sample(lambda x, t: v, x0, steps=0)


def test_ensemble_statistics_match_numpy():
    samples = torch.rand(5, 2, 1, 3, 4)
    mean, spread = ensemble_statistics(samples)
    np.testing.assert_allclose(mean.numpy(), samples.numpy().mean(0), atol=1e-6)
    np.testing.assert_allclose(spread.numpy(), samples.numpy().std(0), atol=1e-6)
    _, single = ensemble_statistics(samples[:1])
    assert torch.equal(single, torch.zeros_like(single))


def test_draws_follow_the_generator_then_move_to_the_tensors_device(monkeypatch):
    refuse_foreign_generators(monkeypatch)  # as CUDA does
    like = torch.zeros((), dtype=torch.float64)
    drawn = draw(torch.randn, (3, 4), like, torch.Generator().manual_seed(5))
    assert drawn.dtype == torch.float64
    assert torch.equal(drawn, torch.randn(3, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64))
    # a CPU generator drives a tensor elsewhere (`meta` stands for a GPU), which torch.randn refuses
    on_meta = torch.zeros(2, 4, 3, 3, device="meta")
    with pytest.raises(RuntimeError, match="device type for generator"):
        torch.randn(2, 4, 3, 3, generator=torch.Generator(), device="meta")
    assert draw(torch.rand, (2,), on_meta, torch.Generator()).device.type == "meta"
    assert source_latent(on_meta, 400, torch.Generator().manual_seed(0)).device.type == "meta"
