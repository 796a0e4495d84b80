"""DDIM with classifier-free guidance: the LDM schedule and sampler, checked against float64
references written from the DDIM paper, closed forms, and diffusers' own DDIMScheduler."""
import numpy as np
import pytest
import torch

from amodal.models.ddim import (
    cumulative_alphas,
    ddim_sample,
    ddim_schedule,
    ddim_step,
    ddim_timesteps,
    guide,
    linear_betas,
)


def reference_alphas_cumprod(total=1000, start=0.00085, end=0.012):
    """pix2gestalt's config: linear_start 0.00085, linear_end 0.012, 1000 timesteps, LDM's
    "linear" schedule (linspace of √β, squared), ᾱ the running product of 1 − β; numpy float64."""
    return np.cumprod(1 - np.linspace(np.sqrt(start), np.sqrt(end), total) ** 2)


def reference_step(x, eps, a_t, a_prev, eta, z):
    """DDIM paper (Song et al. 2021) eq. 12 with σ of eq. 16, in numpy float64:
    x_{t−1} = √α_{t−1}·(x_t − √(1−α_t)·ε)/√α_t + √(1 − α_{t−1} − σ²)·ε + σ·z."""
    sigma = eta * np.sqrt((1 - a_prev) / (1 - a_t)) * np.sqrt(1 - a_t / a_prev)
    predicted_x0 = (x - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t)
    return np.sqrt(a_prev) * predicted_x0 + np.sqrt(1 - a_prev - sigma**2) * eps + sigma * z


def test_the_schedule_is_pix2gestalts():
    betas = linear_betas()
    assert betas.dtype == torch.float64 and betas.shape == (1000,)
    assert betas[0].item() == pytest.approx(0.00085, rel=1e-12) and betas[-1].item() == pytest.approx(0.012, rel=1e-12)
    # linear in √β, not in β: the midpoint of √β, squared
    assert betas[500].item() == pytest.approx((0.00085**0.5 + (0.012**0.5 - 0.00085**0.5) * 500 / 999) ** 2, rel=1e-12)
    np.testing.assert_allclose(cumulative_alphas(betas).numpy(), reference_alphas_cumprod(), rtol=1e-12)
    assert cumulative_alphas(betas)[0].item() == pytest.approx(0.99915)


def test_timesteps_are_ldms_uniform_plus_one():
    assert ddim_timesteps(100).tolist() == list(range(1, 1000, 10))    # 1, 11, …, 991
    assert ddim_timesteps(200)[-1].item() == 996 and len(ddim_timesteps(200)) == 200
    # 7 does not divide 1000: ⌊1000/7⌋ = 142 and range(0, 1000, 142) has 8 entries, as in the official code
    assert ddim_timesteps(7).tolist() == [1 + 142 * k for k in range(8)]
    with pytest.raises(ValueError):
        ddim_timesteps(0)
    # ⌊1000/3⌋ = 333: 1, 334, 667 and 1000, past ᾱ_999 (the official sampler's index fails there too)
    with pytest.raises(ValueError, match="3 steps of 1000 would visit timestep 1000"):
        ddim_timesteps(3)


def test_schedule_alphas_and_sigmas_match_the_paper():
    reference = reference_alphas_cumprod()
    schedule = ddim_schedule(cumulative_alphas(linear_betas()), 100, eta=1.0)
    steps = np.arange(1, 1000, 10)
    np.testing.assert_allclose(schedule.alphas.numpy(), reference[steps], rtol=1e-12)
    # the first step goes to ᾱ_0 (= 1 − β_0), not to 1
    np.testing.assert_allclose(schedule.alphas_prev.numpy(), np.concatenate([[reference[0]], reference[steps[:-1]]]))
    sigma = np.sqrt((1 - schedule.alphas_prev.numpy()) / (1 - reference[steps])
                    * (1 - reference[steps] / schedule.alphas_prev.numpy()))
    np.testing.assert_allclose(schedule.sigmas.numpy(), sigma, rtol=1e-12)
    assert (ddim_schedule(cumulative_alphas(linear_betas()), 100, eta=0.0).sigmas == 0).all()


def test_skip_first_drops_the_highest_timestep_as_the_official_sampler():
    """pix2gestalt's ddim.py: ddim_sampling keeps timesteps[:t_start] with the default t_start = -1."""
    alphas = cumulative_alphas(linear_betas())
    full, skipped = ddim_schedule(alphas, 100, 1.0), ddim_schedule(alphas, 100, 1.0, skip_first=True)
    assert skipped.timesteps.tolist() == list(range(1, 991, 10))   # 981 first, 991 never
    for name in ("alphas", "alphas_prev", "sigmas"):
        assert torch.equal(getattr(skipped, name), getattr(full, name)[:-1])
    # one step leaves x_T as it is, as the official sampler does
    assert len(ddim_schedule(alphas, 1, skip_first=True).timesteps) == 0
    x_T = torch.randn(1, 4, 2, 2)
    assert torch.equal(ddim_sample(lambda x, t: x, x_T.shape, ddim_schedule(alphas, 1, skip_first=True), x_T, x_T=x_T), x_T)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_one_step_matches_the_papers_equation(eta):
    g = torch.Generator().manual_seed(0)
    x, eps, z = (torch.randn(2, 4, 5, 5, generator=g) for _ in range(3))
    a_t, a_prev = 0.3, 0.6
    sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) ** 0.5
    ours, predicted_x0 = ddim_step(x, eps, a_t, a_prev, sigma, z)
    expected = reference_step(x.double().numpy(), eps.double().numpy(), a_t, a_prev, eta, z.double().numpy())
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predicted_x0.numpy(), (x.double().numpy() - 0.7**0.5 * eps.double().numpy()) / 0.3**0.5,
                               rtol=1e-5, atol=1e-6)


def test_deterministic_step_with_the_true_noise_lands_on_the_forward_process():
    # x_t = √a·x0 + √(1−a)·ε: a step with η = 0 and the true ε gives exactly √a'·x0 + √(1−a')·ε
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(1, 4, 3, 3, generator=g, dtype=torch.float64), torch.randn(1, 4, 3, 3, generator=g,
                                                                                     dtype=torch.float64)
    a, a_prev = 0.2, 0.9
    x_prev, predicted = ddim_step(a**0.5 * x0 + (1 - a) ** 0.5 * eps, eps, a, a_prev)
    torch.testing.assert_close(x_prev, a_prev**0.5 * x0 + (1 - a_prev) ** 0.5 * eps)
    torch.testing.assert_close(predicted, x0)


def test_guidance_combines_unconditional_and_conditional():
    u, c = torch.tensor([1.0, -2.0]), torch.tensor([3.0, 0.0])
    assert guide(u, c, 1.5).tolist() == [1 + 1.5 * 2, -2 + 1.5 * 2]
    assert torch.equal(guide(u, c, 1.0), c) and torch.equal(guide(u, c, 0.0), u)


def test_sampling_draws_the_start_and_one_noise_per_step_in_order():
    """x_T, then z for each of the S steps (even where σ = 0), from one generator: the order of
    the official sampler, so the same seed gives the same noise."""
    schedule = ddim_schedule(cumulative_alphas(linear_betas(20)), 4, eta=1.0)
    seen = []

    def noise_fn(x, t):
        seen.append((x.clone(), t.clone()))
        return 0.1 * x

    shape = (2, 3, 4, 4)
    out = ddim_sample(noise_fn, shape, schedule, torch.zeros(()), torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)
    draws = [torch.randn(shape, generator=generator) for _ in range(1 + 4)]
    assert [t.tolist() for _, t in seen] == [[16, 16], [11, 11], [6, 6], [1, 1]]
    torch.testing.assert_close(seen[0][0], draws[0])
    x = draws[0].double().numpy()
    a = reference_alphas_cumprod(20)
    for k, step in enumerate([16, 11, 6, 1]):
        previous = a[step - 5] if step > 1 else a[0]
        x = reference_step(x, 0.1 * x, a[step], previous, 1.0, draws[1 + k].double().numpy())
    np.testing.assert_allclose(out.numpy(), x, rtol=1e-5, atol=1e-5)


def test_a_whole_run_matches_diffusers_ddim_scheduler():
    """diffusers' DDIMScheduler, set up as Stable Diffusion's LDM sampler (scaled_linear β,
    steps_offset 1, the last step to ᾱ_0), is an independent implementation of the same walk."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", set_alpha_to_one=False, steps_offset=1,
                              clip_sample=False, timestep_spacing="leading")
    scheduler.set_timesteps(10)
    schedule = ddim_schedule(cumulative_alphas(linear_betas()), 10, eta=1.0)
    assert scheduler.timesteps.tolist() == schedule.timesteps.flip(0).tolist()

    def noise_fn(x, t):
        return torch.tanh(x) * (t.float().view(-1, 1, 1, 1) / 1000)

    shape = (1, 4, 3, 3)
    ours = ddim_sample(noise_fn, shape, schedule, torch.zeros(()), torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(3)
    draws = [torch.randn(shape, generator=generator) for _ in range(11)]
    x = draws[0]
    for k, t in enumerate(scheduler.timesteps):
        x = scheduler.step(noise_fn(x, t.view(1)), t, x, eta=1.0, variance_noise=draws[1 + k]).prev_sample
    # diffusers computes its β in float32, the LDM code in float64
    torch.testing.assert_close(ours, x, rtol=1e-4, atol=1e-4)


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match="eta"):
        ddim_schedule(cumulative_alphas(linear_betas()), 10, eta=-1)
    with pytest.raises(ValueError, match="sigma > 0"):
        ddim_step(torch.zeros(1), torch.zeros(1), 0.5, 0.6, 0.1)
    with pytest.raises(ValueError):
        linear_betas(1000, 0.012, 0.00085)
