r"""Flow matching from image latents to depth latents (DepthFM; paper §3.3).

DepthFM learns a velocity field :math:`v_\theta(x_t, t)` that carries the latent of
an image to the latent of its depth map along straight lines:

.. math::
    x_0 = \sqrt{\bar\alpha}\, z_{img} + \sqrt{1-\bar\alpha}\,\varepsilon, \qquad
    x_1 = z_{depth}, \qquad
    x_t = (1 - t)\,x_0 + t\,x_1, \qquad
    \mathcal{L} = \big\| v_\theta(x_t, t) - (x_1 - x_0) \big\|^2 .

The source :math:`x_0` is the image latent with a little noise mixed in ("noise
augmentation"): :math:`\bar\alpha` is the cosine-schedule value at diffusion step
400 of 1000, so :math:`x_0 = 0.809\,z_{img} + 0.588\,\varepsilon`. The noise is what
makes the model generative: different :math:`\varepsilon` give different, equally
plausible depth maps. Time ``t ∈ [0, 1]`` goes into the network as is (no ×1000).

At inference the ODE :math:`\dot x = v_\theta(x, t)` is integrated from ``t = 0`` to
``t = 1`` with a few Euler steps. Because the learned paths are nearly straight,
four steps are enough (one step already gives a usable map).

Several samples come from several *independent* noise draws of the same input; their
per-pixel mean is a point estimate and their per-pixel standard deviation shows
where the model is unsure (for amodal depth: the hidden part of the object). The
official Amodal-DepthFM ensembling averages a batch without repeating the input,
so with one image it never draws more than one sample; here each sample is drawn.

Everything in this module works on plain tensors and a ``velocity(x, t)``
callable, so it is tested on closed-form velocity fields, independently of any
network.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

NOISING_STEP = 400
DIFFUSION_STEPS = 1000


def cosine_alpha_bar(step: float, total: int = DIFFUSION_STEPS, eps: float = 1e-5) -> float:
    r"""ᾱ of the cosine noise schedule at diffusion ``step`` of ``total``.

    DepthFM writes it through the log signal-to-noise ratio,
    ``ᾱ = sigmoid(−2·log(tan(π·s/2) + eps))`` with ``s = step/total``, which is
    ``cos²(π·s/2)`` up to ``eps``.

    Returns:
        ᾱ in (0, 1] as a Python float.
    """
    s = step / total
    log_snr = -2.0 * math.log(math.tan(math.pi * s / 2.0) + eps)
    return 1.0 / (1.0 + math.exp(-log_snr))


def noise_augmentation(noising_step: int = NOISING_STEP) -> tuple[float, float]:
    """The weights ``(√ᾱ, √(1−ᾱ))`` of image latent and noise in ``x0`` (0.809, 0.588 at step 400)."""
    alpha_bar = cosine_alpha_bar(noising_step)
    return math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar)


def draw(sampler: Callable[..., torch.Tensor], shape: tuple[int, ...], like: torch.Tensor,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """``sampler(shape)`` (``torch.randn``, ``torch.rand``) with the dtype and on the device of ``like``.

    The numbers are drawn where ``generator`` lives and then moved to ``like``'s device:
    ``torch.randn`` alone refuses a generator of another device, so a model moved to a GPU
    would break every caller that seeds a CPU generator; this way a CPU generator drives a
    model anywhere and gives the same draws on every device.

    Args:
        sampler: ``torch.randn`` or ``torch.rand``.
        shape: the shape to draw.
        like: a tensor with the wanted dtype and device.
        generator: optional; drawn on its device when given, on ``like``'s otherwise.
    """
    device = like.device if generator is None else generator.device
    return sampler(shape, generator=generator, device=device, dtype=like.dtype).to(like.device)


def source_latent(
    image_latent: torch.Tensor,
    noising_step: int = NOISING_STEP,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """The flow's starting point ``x0 = √ᾱ·z_img + √(1−ᾱ)·ε``.

    Args:
        image_latent: ``(B, C, h, w)`` latent of the image.
        noising_step: diffusion step whose ᾱ sets the noise level; 0 disables the noise.
        generator: drives ``ε`` for repeatable samples (any device, see :func:`draw`).
        noise: ``ε`` itself, same shape (overrides ``generator``).

    Returns:
        ``(B, C, h, w)`` tensor, same dtype and device.
    """
    if noising_step <= 0:
        return image_latent
    signal, sigma = noise_augmentation(noising_step)
    if noise is None:
        noise = draw(torch.randn, image_latent.shape, image_latent, generator)
    elif noise.shape != image_latent.shape:
        raise ValueError(f"noise has shape {tuple(noise.shape)}, expected {tuple(image_latent.shape)}")
    return signal * image_latent + sigma * noise


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The point ``x_t = (1 − t)·x0 + t·x1`` on the straight path; ``t`` is ``(B,)``."""
    t = t.to(x0.dtype).view(-1, *([1] * (x0.ndim - 1)))
    return (1 - t) * x0 + t * x1


def flow_matching_loss(
    velocity: Velocity,
    x0: torch.Tensor,
    x1: torch.Tensor,
    t: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error between the predicted and the straight-path velocity.

    Args:
        velocity: ``velocity(x_t, t) -> (B, C, h, w)``, the network.
        x0: ``(B, C, h, w)`` source latents (noise-augmented image latents).
        x1: ``(B, C, h, w)`` target latents (depth latents).
        t: ``(B,)`` times in [0, 1].
        mask: optional ``(B, 1, h, w)`` bool/{0,1} at latent size; the error is averaged
            over the masked positions and all channels (Amodal-DepthFM uses ``M_a``).
            Non-negative weights work too: the mean is then weighted by them.

    Returns:
        Scalar loss.

    Raises:
        ValueError: mismatched shapes, or a mask with no pixel set.
    """
    if x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have the same shape, got {tuple(x0.shape)} and {tuple(x1.shape)}")
    if t.shape != (x0.shape[0],):
        raise ValueError(f"t must have shape ({x0.shape[0]},), got {tuple(t.shape)}")
    error = (velocity(interpolate(x0, x1, t), t) - (x1 - x0)) ** 2
    if mask is None:
        return error.mean()
    if mask.shape != (x0.shape[0], 1, *x0.shape[2:]):
        raise ValueError(f"mask must have shape {(x0.shape[0], 1, *x0.shape[2:])}, got {tuple(mask.shape)}")
    weight = mask.to(error.dtype).expand_as(error)
    total = weight.sum()
    if total == 0:
        raise ValueError("the loss mask has no pixel set")
    return (error * weight).sum() / total


def euler_sample(
    velocity: Velocity, x0: torch.Tensor, steps: int = 4, return_path: bool = False
) -> torch.Tensor | list[torch.Tensor]:
    """Integrate ``dx/dt = velocity(x, t)`` from ``t = 0`` to ``1`` with ``steps`` Euler steps.

    ``x_{k+1} = x_k + h·velocity(x_k, t_k)`` with ``h = 1/steps`` and ``t_k = k·h``
    (the fixed-step Euler of torchdiffeq that DepthFM uses).

    Args:
        velocity: ``velocity(x, t) -> like x``; ``t`` is passed as a ``(B,)`` tensor.
        x0: ``(B, ...)`` starting point.
        steps: number of Euler steps, ≥ 1.
        return_path: also return every intermediate ``x_k``.

    Returns:
        ``x`` at ``t = 1``, or the list ``[x_0, x_1, ..., x_steps]`` if ``return_path``.
    """
    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    h = 1.0 / steps
    x = x0
    path = [x]
    for k in range(steps):
        t = torch.full((x.shape[0],), k * h, device=x.device, dtype=x.dtype)
        x = x + h * velocity(x, t)
        path.append(x)
    return path if return_path else x


def ensemble_statistics(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel mean and spread of ``n`` samples.

    Args:
        samples: ``(n, B, 1, H, W)`` samples of the same inputs.

    Returns:
        ``(mean, spread)``, each ``(B, 1, H, W)``; spread is the population standard
        deviation (zero for a single sample).
    """
    if samples.ndim < 2:
        raise ValueError(f"samples must be (n, ...), got shape {tuple(samples.shape)}")
    return samples.mean(0), samples.std(0, correction=0)
