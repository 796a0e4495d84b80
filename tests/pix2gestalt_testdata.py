"""A tiny pix2gestalt checkpoint in the released layout, built without the library's converters.

``epoch=000005.ckpt`` is what PyTorch Lightning 1.4.2 (pix2gestalt's pin) writes for the
``LatentDiffusion`` module of ``ldm/models/diffusion/ddpm.py``:

- top level ``{epoch, global_step, pytorch-lightning_version, state_dict, callbacks,
  optimizer_states, lr_schedulers}`` (``CheckpointConnector.dump_checkpoint``); before 1.5,
  ``callbacks`` is keyed by the callback's class, here ``ModelCheckpoint`` with its state
  ``{monitor, best_model_score, best_model_path, current_score, dirpath}``;
- ``state_dict``: ``model.diffusion_model.*`` (the UNet), ``model_ema.*`` (``LitEma``: the
  parameter name without dots, plus ``decay`` and ``num_updates``), ``first_stage_model.*``,
  ``cond_stage_model.model.*`` (OpenAI CLIP without its text transformer), ``cc_projection.*``
  and the buffers of ``register_schedule`` (float64 numpy maths stored as float32).

The key lists come from :mod:`ldm_reference`; every tensor is random.
"""
import sys
import types

import numpy as np
import torch

from ldm_reference import clip_shapes, ldm_unet_shapes, ldm_vae_shapes, random_weights

# The tiny sizes of amodal.models.pix2gestalt.TINY_CONFIG / TINY_CLIP, written out again here.
TINY_UNET = {"image_size": 8, "in_channels": 12, "out_channels": 4, "model_channels": 32,
             "attention_resolutions": [1, 2], "num_res_blocks": 1, "channel_mult": [1, 2, 2], "num_heads": 2,
             "use_spatial_transformer": True, "transformer_depth": 1, "context_dim": 32, "legacy": False}
TINY_VAE = {"double_z": True, "z_channels": 4, "resolution": 32, "in_channels": 3, "out_ch": 3, "ch": 32,
            "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0}
TINY_CLIP = {"width": 128, "layers": 2, "patch": 4, "grid": 4, "output_dim": 48}


def schedule_buffers(timesteps=1000, start=0.00085, end=0.012):
    """The schedule buffers ``DDPM.register_schedule`` saves (``v_posterior`` 0), float32."""
    betas = np.linspace(start**0.5, end**0.5, timesteps, dtype=np.float64) ** 2
    alphas = np.cumprod(1.0 - betas)
    previous = np.append(1.0, alphas[:-1])
    variance = betas * (1.0 - previous) / (1.0 - alphas)
    buffers = {"betas": betas, "alphas_cumprod": alphas, "alphas_cumprod_prev": previous,
               "sqrt_alphas_cumprod": np.sqrt(alphas), "sqrt_one_minus_alphas_cumprod": np.sqrt(1 - alphas),
               "log_one_minus_alphas_cumprod": np.log(1 - alphas), "sqrt_recip_alphas_cumprod": np.sqrt(1 / alphas),
               "sqrt_recipm1_alphas_cumprod": np.sqrt(1 / alphas - 1), "posterior_variance": variance,
               "posterior_log_variance_clipped": np.log(np.maximum(variance, 1e-20)),
               "posterior_mean_coef1": betas * np.sqrt(previous) / (1 - alphas),
               "posterior_mean_coef2": (1 - previous) * np.sqrt(1 - betas) / (1 - alphas)}
    return {k: torch.tensor(v, dtype=torch.float32) for k, v in buffers.items()}


def tiny_parts(seed=0):
    """The tiny model's parts in their official names: ``unet``, ``ema`` (another UNet), ``vae``,
    ``clip`` (OpenAI names), ``cc_projection`` (``weight``, ``bias``)."""
    out_dim, context = TINY_CLIP["output_dim"], TINY_UNET["context_dim"]
    generator = torch.Generator().manual_seed(seed + 4)
    return {"unet": random_weights(ldm_unet_shapes(TINY_UNET), seed),
            "ema": random_weights(ldm_unet_shapes(TINY_UNET), seed + 1),
            "vae": random_weights(ldm_vae_shapes(TINY_VAE), seed + 2),
            "clip": random_weights(clip_shapes(**TINY_CLIP), seed + 3),
            "cc_projection": {"weight": torch.randn(context, out_dim, generator=generator) / out_dim**0.5,
                              "bias": 0.1 * torch.randn(context, generator=generator)}}


def lightning_state_dict(parts, ema=True, schedule=None):
    """The ``LatentDiffusion.state_dict()`` of ``parts``, prefixes and all."""
    state = {f"model.diffusion_model.{k}": v for k, v in parts["unet"].items()}
    if ema:
        # LitEma: register_buffer(name.replace('.', ''), ...) for each parameter of self.model
        state.update({"model_ema." + f"diffusion_model.{k}".replace(".", ""): v for k, v in parts["ema"].items()})
        state.update({"model_ema.decay": torch.tensor(0.9999),
                      "model_ema.num_updates": torch.tensor(1234, dtype=torch.int32)})
    state.update({f"first_stage_model.{k}": v for k, v in parts["vae"].items()})
    state.update({f"cond_stage_model.model.{k}": v for k, v in parts["clip"].items()})
    state.update({f"cc_projection.{k}": v for k, v in parts["cc_projection"].items()})
    state.update(schedule if schedule is not None else schedule_buffers())
    return state


def _model_checkpoint_class():
    """A class whose pickled name is Lightning's ``ModelCheckpoint`` (Lightning is not installed)."""
    names = ["pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint"]
    modules = {name: types.ModuleType(name) for name in names}
    cls = type("ModelCheckpoint", (), {"__module__": names[-1]})
    modules[names[-1]].ModelCheckpoint = cls
    return modules, cls


def write_lightning_checkpoint(path, state, extra_globals=()):
    """``torch.save`` ``state`` as Lightning 1.4.2 saves a training run (callbacks keyed by class)."""
    modules, model_checkpoint = _model_checkpoint_class()
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        checkpoint = {
            "epoch": 5, "global_step": 50_000, "pytorch-lightning_version": "1.4.2", "state_dict": state,
            "callbacks": {model_checkpoint: {"monitor": None, "best_model_score": None, "best_model_path": "",
                                             "current_score": None, "dirpath": "logs/checkpoints"}},
            "optimizer_states": [{"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(2),
                                                "exp_avg_sq": torch.zeros(2)}},
                                  "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8,
                                                    "weight_decay": 0.01, "amsgrad": False, "initial_lr": 1e-4,
                                                    "params": [0]}]}],
            "lr_schedulers": [{"base_lrs": [1e-4], "last_epoch": 3, "_step_count": 4, "verbose": False,
                               "_get_lr_called_within_step": False, "_last_lr": [1e-4], "lr_lambdas": [{}]}],
            **{f"extra_{i}": g for i, g in enumerate(extra_globals)},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(checkpoint, path)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return path
