r"""DDIM sampling with classifier-free guidance, as the LDM code base runs it (pix2gestalt).

pix2gestalt (Ozguroglu et al., CVPR 2024) is a latent diffusion model: a UNet predicts
the noise :math:`\varepsilon` in a noisy latent, and sampling walks from pure noise back
to a latent with DDIM (Song et al., ICLR 2021). This module holds that walk on plain
tensors and a ``noise(x, t)`` callable, so it is tested on closed-form predictors,
independently of any network.

**Schedule.** LDM's ``"linear"`` schedule is linear in :math:`\sqrt\beta`:
:math:`\beta_i = \big(\sqrt{\beta_s} + \tfrac{i}{T-1}(\sqrt{\beta_e} - \sqrt{\beta_s})\big)^2`,
:math:`i = 0 \dots T-1`, and :math:`\bar\alpha_i = \prod_{j \le i} (1 - \beta_j)`
(``make_beta_schedule`` in ``ldm/modules/diffusionmodules/util.py``, float64). pix2gestalt's
config: :math:`T = 1000`, :math:`\beta_s = 0.00085`, :math:`\beta_e = 0.012`.

**Timesteps.** With :math:`S` steps, LDM's ``"uniform"`` discretisation visits
:math:`\tau_k = k\lfloor T/S \rfloor + 1`, :math:`k = 0 \dots S-1`, from the last down
(``make_ddim_timesteps``: 100 steps give 991, 981, …, 1; a step count that does not divide
:math:`T` gives a few more steps, as there). At :math:`\tau_k` it uses
:math:`a = \bar\alpha_{\tau_k}` and :math:`a' = \bar\alpha_{\tau_{k-1}}`, with
:math:`a' = \bar\alpha_0 = 1 - \beta_0` for :math:`k = 0` (not 1:
``make_ddim_sampling_parameters``).

**One step** (DDIM paper, eq. 12, with :math:`\sigma` of eq. 16):

.. math::
    \sigma = \eta \sqrt{\tfrac{1 - a'}{1 - a}} \sqrt{1 - \tfrac{a}{a'}}, \qquad
    \hat x_0 = \frac{x - \sqrt{1 - a}\,\varepsilon}{\sqrt a}, \qquad
    x' = \sqrt{a'}\,\hat x_0 + \sqrt{1 - a' - \sigma^2}\,\varepsilon + \sigma z .

:math:`\eta = 0` is deterministic DDIM, :math:`\eta = 1` the DDPM-like sampler; the official
``run_pix2gestalt`` defaults to :math:`\eta = 1` and the demos do not change it.

**Classifier-free guidance** (Ho & Salimans 2022): the network is called on the
unconditional and the conditional input in one batch (unconditional first, as
``DDIMSampler.p_sample_ddim`` does) and
:math:`\varepsilon = \varepsilon_u + s\,(\varepsilon_c - \varepsilon_u)`; :math:`s = 1` is
the conditional prediction alone (the official sampler then skips the unconditional call).

**The step it skips.** pix2gestalt's ``DDIMSampler.ddim_sampling`` (as zero123's, which it
copies) keeps ``timesteps[:t_start]`` with a default ``t_start = -1``: it drops the highest
timestep, so :math:`S` steps make :math:`S - 1` network calls and :math:`x_T` enters at
:math:`\tau_{S-2}` (981 for 100 steps), not :math:`\tau_{S-1}` (991); one step returns
:math:`x_T` itself. ``skip_first=True`` of :func:`ddim_schedule` does the same, for parity;
the difference is one step near pure noise (:math:`\bar\alpha` 0.0048 instead of 0.0047).

**Random numbers.** The official sampler draws :math:`x_T` and then one :math:`z` per step,
even where :math:`\sigma = 0`; :func:`ddim_sample` draws in the same order, so the same
generator seed gives the same noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from amodal.models.flow_matching import draw

NoisePredictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def linear_betas(total: int = 1000, start: float = 0.00085, end: float = 0.012) -> torch.Tensor:
    """LDM's ``"linear"`` β schedule: ``(T,)`` float64, linear in √β from ``start`` to ``end``."""
    if total < 2 or not 0 < start < end < 1:
        raise ValueError(f"need total ≥ 2 and 0 < start < end < 1, got {total}, {start}, {end}")
    return torch.linspace(start**0.5, end**0.5, total, dtype=torch.float64) ** 2


def cumulative_alphas(betas: torch.Tensor) -> torch.Tensor:
    """``ᾱ_i = Π_{j ≤ i} (1 − β_j)``, ``(T,)`` in the dtype of ``betas``."""
    return torch.cumprod(1 - betas, 0)


def ddim_timesteps(steps: int, total: int = 1000) -> torch.Tensor:
    """The ascending timesteps ``k·⌊T/S⌋ + 1 < T + 1`` that DDIM visits (last first).

    Like the official ``make_ddim_timesteps`` (whose length check is commented out), a
    ``steps`` that does not divide ``T`` gives ``⌈T / ⌊T/S⌋⌉`` of them: 4 for ``S = 3``.

    Raises:
        ValueError: ``steps`` outside ``1 … total``, or a count whose last timestep would be
            ``T``, past the schedule (3 of 1000: the official sampler fails on it too).
    """
    if not 1 <= steps <= total:
        raise ValueError(f"steps must be in 1 … {total}, got {steps}")
    timesteps = torch.arange(0, total, total // steps, dtype=torch.long) + 1
    if timesteps[-1] >= total:
        raise ValueError(f"{steps} steps of {total} would visit timestep {int(timesteps[-1])}, past the schedule's "
                         f"last ({total - 1}); choose another number of steps")
    return timesteps


@dataclass
class DDIMSchedule:
    """What each DDIM step needs, indexed by the step ``k`` (ascending timesteps).

    Attributes:
        timesteps: ``(S,)`` long, the network's time input ``τ_k``.
        alphas: ``(S,)`` float64, ``ᾱ_{τ_k}``.
        alphas_prev: ``(S,)`` float64, ``ᾱ_{τ_{k−1}}`` (``ᾱ_0`` for ``k = 0``).
        sigmas: ``(S,)`` float64, the noise level of each step.
    """

    timesteps: torch.Tensor
    alphas: torch.Tensor
    alphas_prev: torch.Tensor
    sigmas: torch.Tensor


def ddim_schedule(alphas_cumprod: torch.Tensor, steps: int, eta: float = 0.0,
                  skip_first: bool = False) -> DDIMSchedule:
    """The DDIM parameters of ``steps`` steps on the ``(T,)`` schedule ``alphas_cumprod``.

    Args:
        alphas_cumprod: ``(T,)`` ``ᾱ``.
        steps: ``S``.
        eta: ``η``, 0 for deterministic DDIM.
        skip_first: leave out the step at the highest timestep, as the official sampler does
            (see the module's notes): ``S − 1`` steps remain.

    Raises:
        ValueError: ``eta < 0`` or ``steps`` outside ``1 … T``.
    """
    if eta < 0:
        raise ValueError(f"eta must be ≥ 0, got {eta}")
    cumulative = alphas_cumprod.detach().double().cpu()
    timesteps = ddim_timesteps(steps, cumulative.shape[0])
    alphas = cumulative[timesteps]
    alphas_prev = torch.cat([cumulative[:1], cumulative[timesteps[:-1]]])
    sigmas = eta * ((1 - alphas_prev) / (1 - alphas) * (1 - alphas / alphas_prev)).sqrt()
    keep = slice(0, -1 if skip_first else None)
    return DDIMSchedule(timesteps[keep], alphas[keep], alphas_prev[keep], sigmas[keep])


def guide(noise_uncond: torch.Tensor, noise_cond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: ``ε_u + s·(ε_c − ε_u)``, any matching shapes."""
    return noise_uncond + scale * (noise_cond - noise_uncond)


def ddim_step(x: torch.Tensor, noise: torch.Tensor, alpha: float, alpha_prev: float, sigma: float = 0.0,
              z: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One DDIM step from ``x`` at ``ᾱ = alpha`` to ``ᾱ = alpha_prev``.

    Args:
        x: ``(B, C, h, w)`` the current latent.
        noise: ``(B, C, h, w)`` the predicted ``ε``.
        alpha, alpha_prev: ``ᾱ`` now and after the step.
        sigma: the step's noise level.
        z: ``(B, C, h, w)`` standard normal noise; needed when ``sigma > 0``.

    Returns:
        ``(x_prev, pred_x0)``, both like ``x``.
    """
    if sigma > 0 and z is None:
        raise ValueError("a step with sigma > 0 needs the noise z")
    pred_x0 = (x - (1 - alpha) ** 0.5 * noise) / alpha**0.5
    x_prev = alpha_prev**0.5 * pred_x0 + (1 - alpha_prev - sigma**2) ** 0.5 * noise
    if sigma > 0:
        x_prev = x_prev + sigma * z
    return x_prev, pred_x0


def ddim_sample(noise_fn: NoisePredictor, shape: tuple[int, ...], schedule: DDIMSchedule, like: torch.Tensor,
                generator: torch.Generator | None = None, x_T: torch.Tensor | None = None,
                return_path: bool = False) -> torch.Tensor | list[torch.Tensor]:
    """Walk from ``x_T ~ N(0, I)`` down the schedule with :func:`ddim_step`.

    Args:
        noise_fn: ``noise_fn(x, t) -> ε`` with ``t`` a ``(B,)`` long tensor of timesteps.
        shape: ``(B, C, h, w)`` of the latent.
        schedule: from :func:`ddim_schedule`.
        like: a tensor with the wanted dtype and device.
        generator: drives ``x_T`` and every step's ``z`` (any device, see
            :func:`~amodal.models.flow_matching.draw`).
        x_T: the starting noise itself (then only the ``z`` are drawn).
        return_path: also return every intermediate latent.

    Returns:
        The final latent ``x_0`` (``shape``), or ``[x_T, …, x_0]`` if ``return_path``.
    """
    x = draw(torch.randn, shape, like, generator) if x_T is None else x_T.to(like)
    path = [x]
    for k in reversed(range(len(schedule.timesteps))):
        t = torch.full((shape[0],), int(schedule.timesteps[k]), dtype=torch.long, device=like.device)
        z = draw(torch.randn, shape, like, generator)  # drawn every step, like the official sampler
        x, _ = ddim_step(x, noise_fn(x, t).to(x.dtype), float(schedule.alphas[k]), float(schedule.alphas_prev[k]),
                         float(schedule.sigmas[k]), z)
        path.append(x)
    return path if return_path else x
