"""Before the first step: the recipe's network, what it minimises, and Adam with its schedule.

:func:`build_model` makes the network a recipe names (Amodal-DAV2 of a size, or
Amodal-DepthFM), from pretrained weights as the paper does (``init``: Depth Anything V2 for
Amodal-DAV2, DepthFM for Amodal-DepthFM) or at random, together with its objective and the
parameters to update. :func:`make_optimiser` is Adam at the recipe's rate with the schedule of
:mod:`amodal.training.schedule` (linear warm-up, then exponential decay).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from amodal.models.amodal_dav2 import AmodalDAV2
from amodal.models.configs import CONFIGS, SMALL_CONFIGS
from amodal.models.depthfm import TINY_MODELS, AmodalDepthFM, tiny_amodal_depthfm
from amodal.models.flow_matching import NOISING_STEP
from amodal.models.mask_completer import MaskCompleter, completer_config
from amodal.training.objectives import (
    FlowMatchingLoss,
    amodal_dav2_objective,
    flow_matching_objective,
    mask_completion_objective,
)
from amodal.training.recipes import Recipe
from amodal.training.schedule import lr_factor
from amodal.utils.hub import KNOWN_WEIGHTS


@dataclass
class ModelSetup:
    """What :func:`amodal.training.loop.train` trains.

    Attributes:
        module: the module to train (for Amodal-DepthFM a
            :class:`~amodal.training.objectives.FlowMatchingLoss` around the model).
        objective: ``objective(module, batch) -> scalar loss``.
        parameters: what Adam updates (Amodal-DepthFM: the UNet's only; its VAE is frozen).
    """

    module: torch.nn.Module
    objective: Callable[[torch.nn.Module, dict], torch.Tensor]
    parameters: list[torch.nn.Parameter]

    def __iter__(self):  # module, objective, parameters = build_model(...)
        return iter((self.module, self.objective, self.parameters))


def build_model(recipe: Recipe, init: str | None, vae: str | None = None) -> ModelSetup:
    """The recipe's network, initialised from ``init`` (``"none"``: random), and how to train it.

    Args:
        recipe: the run's recipe (its model, size, seed, loss).
        init: a Depth Anything V2 checkpoint (Amodal-DAV2), DepthFM's ``depthfm-v1.ckpt``
            (Amodal-DepthFM, with ``vae``), a saved mask completer (to go on training it), or ``"none"``; ``None`` is allowed only for
            recipes that start from random weights. A path or a hub id
            (``depth-anything/Depth-Anything-V2-Small``, ``…-Small-hf``; :func:`amodal.utils.hub.resolve`).
        vae: Amodal-DepthFM: Stable Diffusion's VAE (a diffusers folder or file, or a hub id).

    Raises:
        ValueError: an unknown model or size, or no ``init`` for a recipe that starts from weights.
    """
    if init is None and recipe.init is not None:
        file = f"depth_anything_v2_vit{recipe.size}.pth"
        hub_id = next((repo for repo, known in KNOWN_WEIGHTS.items() if known.fetch.files == (file,)), None)
        # the same weights in transformers' format live at the id with -hf
        ids = [i for i in (hub_id, hub_id and f"{hub_id}-hf") if i in KNOWN_WEIGHTS]
        hint = (file + (f" (or its hub id {' or '.join(ids)})" if ids else "") if recipe.model == "amodal-dav2"
                else "depthfm-v1.ckpt with --vae path/to/sd-vae (or stable-diffusion-v1-5/stable-diffusion-v1-5)")
        raise ValueError(f"recipe {recipe.name!r} starts from {recipe.init} weights: give --init {hint}, "
                         "or --init none for random weights")
    random_init = init is None or init == "none"
    torch.manual_seed(recipe.seed)  # the new parts of the network (guidance, projections) or all of it
    if recipe.model == "amodal-dav2":
        config = {**CONFIGS, **SMALL_CONFIGS}.get(recipe.size)
        if config is None:
            raise ValueError(f"recipe {recipe.name!r}: unknown model size {recipe.size!r} "
                             f"({', '.join([*CONFIGS, *SMALL_CONFIGS])})")
        model = AmodalDAV2(config) if random_init else AmodalDAV2.from_dav2(init, config=config)
        model.set_gradient_checkpointing(recipe.activation_checkpointing)
        return ModelSetup(model, amodal_dav2_objective(recipe.loss_region, recipe.silog_lambda), list(model.parameters()))
    if recipe.model == "amodal-depthfm":
        if random_init:
            name = recipe.tiny_model or "pooled-8"
            if name not in TINY_MODELS:
                raise ValueError(f"recipe {recipe.name!r}: unknown tiny_model {name!r} ({', '.join(TINY_MODELS)})")
            model = tiny_amodal_depthfm(seed=recipe.seed, noising_step=recipe.noising_step or NOISING_STEP,
                                        **TINY_MODELS[name])
        else:
            model = AmodalDepthFM.from_depthfm(init, vae=vae)
        model.autoencoder.requires_grad_(False)  # the VAE is frozen
        return ModelSetup(FlowMatchingLoss(model, recipe.time_grid, recipe.hidden_loss_weight), flow_matching_objective,
                          list(model.unet.parameters()))
    if recipe.model == "mask-completer":
        config = completer_config(recipe.size, recipe.input_size)
        if random_init:
            model = MaskCompleter(config)
        else:
            model = MaskCompleter.from_pretrained(init)
            if model.config != config:
                raise ValueError(f"--init {init}: its mask completer is {model.config}, the recipe's {config}")
        return ModelSetup(model, mask_completion_objective, list(model.parameters()))
    raise ValueError(f"recipe {recipe.name!r}: unknown model {recipe.model!r}")


def make_optimiser(parameters: Sequence[torch.nn.Parameter], recipe: Recipe):
    """Adam at ``recipe.lr`` and its schedule: ``lr = recipe.lr · lr_factor(step)``.

    Returns:
        ``(optimizer, scheduler)``; call ``scheduler.step()`` after each ``optimizer.step()``.
    """
    optimizer = torch.optim.Adam(parameters, lr=recipe.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, recipe.warmup_steps, recipe.decay_steps, recipe.final_ratio))
    return optimizer, scheduler
