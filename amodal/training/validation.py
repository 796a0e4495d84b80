"""Validation during training: hidden-region error on held-out synthetic scenes.

The paper validates every 10k steps on held-out ADIW; on ``--data synth`` the trainer
validates on synthetic scenes of another seed than the training stream's, scored by the
evaluation's own code (:mod:`amodal.evaluation.scoring`: hidden pixels, +1e-5 offset, means over
samples), so the curve in ``validation.csv`` is in the units of the final table. A mask
completer is scored the same way by its own measure, the hidden-part IoU
(:mod:`amodal.evaluation.mask_completion`), beside the convex hull's on the same scenes.
"""
from __future__ import annotations

from typing import Callable

import torch

from amodal.data.mask_items import synth_mask_items
from amodal.data.streams import SynthStream
from amodal.evaluation.mask_completion import convex_hull, network_completer, score_completers, summarise_completion
from amodal.evaluation.predictors import model_predictor
from amodal.evaluation.scoring import evaluate_items, summarise


def synth_validator(seed: int, count: int = 48, size: int = 112, shapes: str = "simple",
                    realism: str = "plain") -> Callable[[torch.nn.Module], dict[str, float]]:
    """``validate(model)`` for :func:`amodal.training.loop.train`, on ``count`` scenes of ``seed``
    drawn from the shape set ``shapes`` (:data:`amodal.scenes.synth.SHAPE_SETS`) with the
    realism setting ``realism`` (:data:`amodal.scenes.realism.REALISM`).

    The scenes are rendered once, here (about 35 ms each at 112²).

    Returns:
        a function of an Amodal-DAV2 giving ``hidden_rmse_x100`` and ``hidden_delta1_pct``
        (raw, all buckets together).
    """
    if count < 1:
        raise ValueError(f"validation needs count ≥ 1 scenes, got {count}")
    stream = SynthStream(seed, size, shapes=shapes, realism=realism)
    items = [stream[k] for k in range(count)]

    def validate(model: torch.nn.Module) -> dict[str, float]:
        overall = summarise(evaluate_items(model_predictor(model), items))["raw"]["overall"]
        return {"hidden_rmse_x100": 100.0 * overall["rmse"], "hidden_delta1_pct": 100.0 * overall["delta1"]}

    return validate


def mask_completion_validator(seed: int, count: int = 48, size: int = 128, shapes: str = "simple",
                              realism: str = "plain") -> Callable[[torch.nn.Module], dict[str, float]]:
    """``validate(model)`` for a mask completer: mean hidden-part IoU on ``count`` synthetic
    occlusions of ``seed`` (``size``² scenes of the shape set ``shapes``, realism ``realism``),
    and the convex hull's.

    Returns:
        a function of a :class:`~amodal.models.mask_completer.MaskCompleter` giving
        ``hidden_iou`` and ``hull_hidden_iou`` (all buckets together).
    """
    if count < 1:
        raise ValueError(f"validation needs count ≥ 1 scenes, got {count}")
    items = synth_mask_items(count, seed, size, shapes, realism)
    hull = summarise_completion(score_completers({"hull": convex_hull}, items), resamples=1)["hull"]["overall"]

    def validate(model: torch.nn.Module) -> dict[str, float]:
        records = score_completers({"model": network_completer(model)}, items)
        overall = summarise_completion(records, resamples=1)["model"]["overall"]
        return {"hidden_iou": overall["hidden_iou"], "hull_hidden_iou": hull["hidden_iou"]}

    return validate
