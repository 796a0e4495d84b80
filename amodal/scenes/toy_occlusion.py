"""A toy world whose hidden depth is ambiguous, a short training loop, and a score for its samples.

The scenes are made for the point of a *generative* amodal model (paper §3.3): the
visible part of an object says nothing about how its hidden part continues, so the right
answer is a distribution with two modes, and the samples' spread should rise behind the
occluder. The scenes are built on the CPU from a CPU generator, so a seed gives the same
scenes on any device; they are then moved to the model's device.

:func:`train_toy` is a few-second loop for experiments; the model notebook 04 loads,
``checkpoints/amodal-depthfm-tiny-synth``, was trained by ``python -m amodal train`` on
the same scenes (:class:`amodal.data.streams.BendStream`). :func:`mode_coverage` asks
whether a model's samples reach *both* hidden shapes of held-out scenes
(:func:`held_out_seeds`): which shape each sample is nearer to, how many scenes get both,
and how far the samples are from their shape against the mean shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
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


def scene_seed(stream: int, index: int) -> int:
    """The generator seed of scene ``index`` of the stream seeded ``stream`` (64 bits).

    :class:`amodal.data.streams.BendStream` draws its item ``k`` from
    ``scene_seed(seed, k)``; a held-out set takes the scenes of another stream seed
    (:data:`HELD_OUT_STREAM`), so the two share no scene (a 64-bit collision aside).
    """
    words = np.random.SeedSequence([stream, index]).generate_state(2)
    return int(words[0]) << 32 | int(words[1])


HELD_OUT_STREAM = 999_983  # the stream of held-out scenes; training streams use other seeds (the recipes': 0, 2024)


def held_out_seeds(count: int, stream: int = HELD_OUT_STREAM) -> list[int]:
    """The scene seeds of the first ``count`` held-out scenes (:func:`scene_seed` of ``stream``)."""
    return [scene_seed(stream, k) for k in range(count)]


def held_out_scenes(seeds: Sequence[int], size: int = 32, slope: float = 0.3,
                    device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """One scene of :func:`ambiguous_occlusion_batch` per seed, with both of its possible shapes.

    Scene ``i`` is the single scene drawn from ``torch.Generator().manual_seed(seeds[i])``,
    so a held-out set is a list of seeds that training never uses. The scene is drawn three
    times from the same seed, with ``slope``, ``bend·slope`` and ``−bend·slope``: the
    generator draws the same numbers whatever the slope, so the last two are the plate bent
    towards the camera and away from it, whichever way the scene itself bends.

    Returns:
        the keys of :func:`ambiguous_occlusion_batch` (``B = len(seeds)``), plus ``modes``
        ``(2, B, 1, S, S)``: ``modes[0]`` bent away (disparity ``− slope·u``), ``modes[1]``
        towards the camera (``+ slope·u``).
    """
    scenes, modes = [], []
    for seed in seeds:
        scene = ambiguous_occlusion_batch(1, size, torch.Generator().manual_seed(int(seed)), slope)
        bend = float(scene["bend"][0])
        modes.append(torch.stack([ambiguous_occlusion_batch(1, size, torch.Generator().manual_seed(int(seed)),
                                                            sign * bend * slope)["target_depth"] for sign in (-1, 1)]))
        scenes.append(scene)
    out = {k: torch.cat([s[k] for s in scenes]) for k in scenes[0]}
    out["modes"] = torch.cat(modes, 1)
    return {k: v.to(device) for k, v in out.items()}


@dataclass
class ModeCoverage:
    """How samples of the toy's hidden part spread over its two possible shapes.

    Attributes:
        nearer: ``(n, B)`` long, the mode each sample is nearer to on the hidden pixels
            (0: bent away, 1: towards the camera).
        both_modes: fraction of scenes with each mode the nearer one for at least one sample.
        mode_fractions: ``(away, towards)``, the fraction of all samples nearer to each mode.
        rmse_nearer: hidden-pixel RMSE of a sample to its nearer mode, averaged over samples
            and scenes.
        rmse_mean_shape: the same for the mean shape (the average of the two modes), which
            is as far from either mode: what a model that regresses to the mean would score.
    """

    nearer: torch.Tensor
    both_modes: float
    mode_fractions: tuple[float, float]
    rmse_nearer: float
    rmse_mean_shape: float

    def summary(self) -> dict[str, float]:
        """The scalars, for a table or ``metrics.json``."""
        return {"scenes": self.nearer.shape[1], "samples_per_scene": self.nearer.shape[0],
                "both_modes": self.both_modes, "fraction_away": self.mode_fractions[0],
                "fraction_towards": self.mode_fractions[1], "rmse_nearer": self.rmse_nearer,
                "rmse_mean_shape": self.rmse_mean_shape}

    def meets(self, both_modes: float = 0.5, min_fraction: float = 0.25, rmse_ratio: float = 0.5) -> bool:
        """Whether the samples reach both modes: ``both_modes`` of the scenes see both, each mode
        takes at least ``min_fraction`` of the samples, and ``rmse_nearer ≤ rmse_ratio·rmse_mean_shape``."""
        return (self.both_modes >= both_modes and min(self.mode_fractions) >= min_fraction
                and self.rmse_nearer <= rmse_ratio * self.rmse_mean_shape)


def score_modes(samples: torch.Tensor, modes: torch.Tensor, hidden_mask: torch.Tensor) -> ModeCoverage:
    """Score samples against two known modes on the hidden pixels.

    Args:
        samples: ``(n, B, 1, H, W)`` depth samples (aligned to the visible part).
        modes: ``(2, B, 1, H, W)`` the two possible shapes of each scene.
        hidden_mask: ``(B, 1, H, W)`` where the modes differ and the samples are scored
            (``M_a ∧ ¬M_vis``); every scene needs at least one pixel.

    Returns:
        :class:`ModeCoverage`.
    """
    if samples.ndim != 5 or modes.shape != (2, *samples.shape[1:]) or hidden_mask.shape != samples.shape[1:]:
        raise ValueError(f"need samples (n, B, 1, H, W), modes (2, B, 1, H, W), hidden_mask (B, 1, H, W); got "
                         f"{tuple(samples.shape)}, {tuple(modes.shape)}, {tuple(hidden_mask.shape)}")
    weight = (hidden_mask > 0).to(torch.float64).flatten(1)  # (B, P)
    count = weight.sum(1)
    if (count == 0).any():
        raise ValueError("every scene needs at least one hidden pixel")

    def rmse(a, b):  # (..., B, 1, H, W) pairs → (..., B) RMSE over each scene's hidden pixels
        return (((a.double() - b.double()) ** 2).flatten(-3) * weight).sum(-1).div(count).sqrt()

    to_mode = torch.stack([rmse(samples, modes[k]) for k in (0, 1)])  # (2, n, B)
    nearer = to_mode.argmin(0)  # (n, B)
    both = ((nearer == 0).any(0) & (nearer == 1).any(0)).double().mean()
    towards = nearer.double().mean()
    return ModeCoverage(nearer=nearer, both_modes=float(both), mode_fractions=(float(1 - towards), float(towards)),
                        rmse_nearer=float(to_mode.min(0).values.mean()),
                        rmse_mean_shape=float(rmse(modes.mean(0), modes[0]).mean()))


@torch.no_grad()
def mode_coverage(model: AmodalDepthFM, seeds: Sequence[int], n: int = 8, steps: int = 4, size: int = 32,
                  slope: float = 0.3, sample_seed: int = 0, batch: int = 16, align: bool | str = False) -> ModeCoverage:
    """Draw ``n`` samples of each held-out scene and score them with :func:`score_modes`.

    The samples are scored as the model draws them (``align=False``): the toy's
    ``target_depth`` is in the frame of ``D_o``, so the model is trained to sample in that
    frame, and least-squares alignment on this toy is ill-conditioned. The visible part of
    the plate is nearly flat (its ``D_o`` varies by a standard deviation of about 0.013),
    so the fitted scale is ``var(D_o) / (var(D_o) + e²)`` for a visible error ``e``: an
    error of 0.013 halves every sample's hidden bend, and the exact shapes, passed through
    the average-pooling toy latent, get a scale of about ±0.1 and all land on one side.
    ``align=True`` scores what :meth:`AmodalDepthFM.sample` returns by default;
    ``align="shift"`` fits the shift alone (:func:`amodal.align.align_shift`), which is
    well-conditioned on a flat visible part and removes a sample's offset from the plate's
    level without touching its bend.

    Args:
        model: a trained Amodal-DepthFM.
        seeds: scene seeds (:func:`held_out_seeds`), none of which training drew.
        n: samples per scene; steps: Euler steps.
        sample_seed: seeds the CPU generator of the samples' noise.
        batch: scenes per call of the model (memory only).
        align: ``False``, ``True`` or ``"shift"``: how each sample is aligned to ``D_o`` on
            the visible pixels before scoring (:meth:`AmodalDepthFM.sample`).
    """
    device = next(model.parameters()).device
    scenes = held_out_scenes(seeds, size, slope)
    generator = torch.Generator().manual_seed(sample_seed)
    samples = []
    for start in range(0, len(seeds), batch):
        part = {k: v[start:start + batch].to(device) for k, v in scenes.items() if k != "modes"}
        samples.append(model.sample(part["image"], amodal_mask=part["amodal_mask"],
                                    observed_depth=part["observed_depth"], visible_mask=part["visible_mask"],
                                    n=n, steps=steps, generator=generator, align=align).samples.cpu())
    hidden = (scenes["amodal_mask"] > 0) & (scenes["visible_mask"] == 0)
    return score_modes(torch.cat(samples, 1), scenes["modes"], hidden)
