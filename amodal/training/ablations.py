"""The paper's ablations (Table 4), rerun small: tiny Amodal-DAV2 variants on synthetic scenes.

Each variant trains the same tiny network (:data:`~amodal.models.configs.TINY_SYNTH`'s shape
with the paper's head, ``fill_residual = 0``) with the ``amodal-dav2-tiny-synth`` recipe for
the same number of steps, changing one thing, and is scored on the same held-out scenes
(:func:`amodal.evaluation.scoring.evaluate_items`, hidden pixels). The variants:

- ``full`` — the paper's model: guidance ``[M_a, D_o]``, SILog on ``M_a``.
- ``no_guidance`` — neither map: an image-only depth network (paper: 7.549 vs 3.682).
- ``mask_only`` — ``M_a`` but no ``D_o``.
- ``depth_only`` — ``D_o`` but no ``M_a`` ("no mask", paper: 4.369).
- ``hidden_supervision`` — SILog on the hidden part only (paper: 3.845).
- ``scene_supervision`` — SILog on every pixel.
- ``ssi`` — no Sigmoid; an L1 loss after least-squares scale-and-shift alignment to the
  target on ``M_a`` (affine-invariant training); it can only be scored after alignment.
- ``aligned_inference`` — ``full``'s predictions aligned to ``D_o`` on ``M_vis`` before
  scoring (paper: 4.015): no training of its own, the *aligned* column of ``full``.
- ``fill_residual`` — ours (the shipped tiny model's design): a correction of the
  harmonic fill.

A dropped map is replaced by zeros at training and at evaluation alike
(:class:`GuidanceDrop`); the loss region always uses the true ``M_a``.
"""
from __future__ import annotations

import csv
import json
import platform
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from amodal.align import align
from amodal.data.streams import SynthPool, SynthStream
from amodal.evaluation.predictors import model_predictor
from amodal.evaluation.scoring import evaluate_items, summarise
from amodal.losses import silog
from amodal.models.amodal_dav2 import AmodalDAV2
from amodal.models.configs import TINY_SYNTH
from amodal.training.loop import TrainingStopped, train
from amodal.training.objectives import REGIONS, loss_region
from amodal.training.recipes import get_recipe
from amodal.training.state import (CHECKPOINT_NAME, describe_differences, read_training_checkpoint,
                                   recipe_differences)

# Table 4 of the paper: RMSE×100 on the hidden region of the ADIW test set (Amodal-DAV2-L).
PAPER_ABLATIONS = {
    "full": 3.682,
    "no_guidance": 7.549,
    "depth_only": 4.369,
    "hidden_supervision": 3.845,
    "aligned_inference": 4.015,
}


@dataclass(frozen=True)
class Variant:
    """One ablation: which guidance the network sees, where the loss counts, which loss."""

    name: str
    keep: tuple[str, ...] = ("amodal_mask", "observed_depth")
    region: str = "object"
    loss: str = "silog"  # or "ssi"
    fill_residual: float = 0.0
    score: str = "raw"  # the metric variant that is the result: "raw" or "aligned"
    trains: bool = True  # False: scored from another variant's model (``full``)


VARIANTS = {v.name: v for v in (
    Variant("full"),
    Variant("no_guidance", keep=()),
    Variant("mask_only", keep=("amodal_mask",)),
    Variant("depth_only", keep=("observed_depth",)),
    Variant("hidden_supervision", region="hidden"),
    Variant("scene_supervision", region="scene"),
    Variant("ssi", loss="ssi", score="aligned"),
    Variant("aligned_inference", score="aligned", trains=False),
    Variant("fill_residual", fill_residual=TINY_SYNTH.fill_residual),
)}


class GuidanceDrop(torch.nn.Module):
    """An Amodal-DAV2 whose dropped guidance maps are replaced by zeros before it sees them.

    Args:
        model: the network.
        keep: the maps it is given: a subset of ``("amodal_mask", "observed_depth")``.
    """

    def __init__(self, model: AmodalDAV2, keep: tuple[str, ...]):
        super().__init__()
        unknown = set(keep) - {"amodal_mask", "observed_depth"}
        if unknown:
            raise ValueError(f"keep names maps amodal_mask and observed_depth only, got {sorted(unknown)}")
        self.model, self.keep = model, tuple(keep)

    @property
    def needs_visible_mask(self) -> bool:
        return self.model.needs_visible_mask

    def forward(self, image, amodal_mask, observed_depth, visible_mask=None):
        if "amodal_mask" not in self.keep:
            amodal_mask = torch.zeros_like(amodal_mask)
        if "observed_depth" not in self.keep:
            observed_depth = torch.zeros_like(observed_depth)
        return self.model(image, amodal_mask, observed_depth, visible_mask)


def ssi_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error on ``mask`` after each prediction's least-squares scale and shift to ``target``.

    Args:
        prediction, target: ``(B, 1, H, W)``; mask: ``(B, 1, H, W)`` bool.

    Returns:
        scalar, differentiable through the fit.
    """
    aligned = align(prediction.double(), target.double(), mask, check=False)
    return ((aligned - target.double()).abs() * mask).sum().float() / mask.sum().clamp(min=1)


def aligned_to_observed(predictor):
    """``predictor`` followed by the least-squares scale and shift to ``D_o`` on ``M_vis``, clipped
    to [0, 1] — the aligned metric's own rule, applied before scoring, for a network (SSI) whose
    raw output may be negative. Falls back to the clipped raw output when the fit is undetermined."""

    def predict(item):
        raw = np.asarray(predictor(item), np.float64)
        visible = (item["visible_mask"][0].numpy() > 0.5) & (item["amodal_mask"][0].numpy() > 0.5)
        try:
            raw = align(raw, item["observed_depth"][0].numpy().astype(np.float64), visible)
        except ValueError:
            pass
        return np.clip(raw, 0.0, 1.0).astype(np.float32)

    return predict


def build_variant(variant: Variant, seed: int = 2024) -> torch.nn.Module:
    """The tiny network of ``variant``, randomly initialised from ``seed``."""
    torch.manual_seed(seed)
    model = AmodalDAV2(replace(TINY_SYNTH, fill_residual=variant.fill_residual))
    if variant.loss == "ssi":
        model.head.scratch.output_conv2[3] = torch.nn.Identity()  # no Sigmoid: any affine frame
    return GuidanceDrop(model, variant.keep)


def variant_objective(variant: Variant, lam: float = 0.85):
    """``objective(model, batch)`` of ``variant`` for :func:`amodal.training.loop.train`."""
    if variant.region not in REGIONS or variant.loss not in ("silog", "ssi"):
        raise ValueError(f"variant {variant.name}: unknown region {variant.region!r} or loss {variant.loss!r}")

    def objective(model, batch):
        prediction = model(batch["image"], batch["amodal_mask"], batch["observed_depth"], batch["visible_mask"]).float()
        region = loss_region(batch, variant.region)
        if variant.loss == "ssi":
            return ssi_l1(prediction, batch["target_depth"].float(), region)
        return silog(prediction, batch["target_depth"].float(), region, lam=lam)

    return objective


def score(summary: dict, variant: Variant) -> dict:
    """RMSE×100 and δ1 % (overall and hard) of the metric variant that ``variant`` is scored by."""
    table = summary[variant.score]
    return {f"{bucket}_{name}": (100.0 * table[bucket][name] if bucket in table else float("nan"))
            for bucket in ("overall", "hard") for name in ("rmse", "delta1")} | {"count": table["overall"]["count"]}


def trend(results: dict) -> dict:
    """For each variant of :data:`PAPER_ABLATIONS`: does it land on the same side of ``full`` as in the paper?"""
    out = {}
    ours_full, paper_full = results["full"]["overall_rmse"], PAPER_ABLATIONS["full"]
    for name, paper in PAPER_ABLATIONS.items():
        if name == "full" or name not in results:
            continue
        ours = results[name]["overall_rmse"]
        out[name] = {"paper": paper, "paper_full": paper_full, "ours": ours, "ours_full": ours_full,
                     "agrees": (ours > ours_full) == (paper > paper_full)}
    return out


def run_ablations(output: str | Path, steps: int = 400, pool: int = 1500, held_out: int = 240,
                  names: tuple[str, ...] | None = None, seed: int = 2024, held_out_seed: int = 2026,
                  command: str = "", progress: bool = True) -> dict:
    """Train and score every variant; write ``output/ablations.json`` and return its content.

    Each variant trains into ``output/<name>/`` (a finished one is scored again, not
    retrained; an interrupted one resumes), so a long run can be stopped and restarted.
    A folder whose run has another recipe (other ``steps``, ``pool`` or ``seed``) is refused,
    never reused under the new values.

    Args:
        output: run folder.
        steps: optimiser steps per variant (the recipe's schedule is squeezed to them).
        pool: synthetic training scenes (:class:`~amodal.data.streams.SynthPool`).
        held_out: held-out scenes (seed ``held_out_seed``, all three buckets).
        names: variants to run (default all).
        command: the command line, recorded in the JSON.

    Raises:
        ValueError: an unknown variant, or a variant's folder holding a run of another recipe
            (the differing fields are named).
    """

    output = Path(output)
    names = tuple(names or VARIANTS)
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    if "aligned_inference" in names and "full" not in names:
        names = ("full", *names)
    recipe = _recipe(steps, pool, seed)
    data = SynthPool(seed, pool, recipe.input_size)
    items = _held_out(held_out, held_out_seed, recipe.input_size)
    results, models, timings = {}, {}, {}
    for name in names:
        variant = VARIANTS[name]
        if not variant.trains:
            continue
        models[name] = _train(variant, recipe, data, output / name, progress)
        timings[name] = _logged_seconds(output / name, recipe.batch_size)
    for name in names:
        variant = VARIANTS[name]
        model = models[name if variant.trains else "full"]
        predictor = model_predictor(model)
        if variant.loss == "ssi":  # its output lives in no fixed frame: put it in D_o's before scoring
            predictor = aligned_to_observed(predictor)
        summary = summarise(evaluate_items(predictor, items, progress=progress))
        results[name] = score(summary, variant)
    report = {
        "command": command,
        "machine": machine(),
        "steps": steps, "batch_size": recipe.batch_size, "pool": pool, "held_out": held_out,
        "held_out_seed": held_out_seed, "seed": seed, "train_seconds": timings,
        "results": results, "paper": PAPER_ABLATIONS, "trend": trend(results) if "full" in results else {},
    }
    output.mkdir(parents=True, exist_ok=True)
    (output / "ablations.json").write_text(json.dumps(report, indent=2))
    return report


def run_data_scale(output: str | Path, steps: int = 400, pool: int = 1500, held_out: int = 240,
                   fractions: tuple[float, ...] = (1 / 8, 1 / 4, 1 / 2, 1.0), variant: str = "fill_residual",
                   seed: int = 2024, held_out_seed: int = 2026, command: str = "", progress: bool = True) -> dict:
    """The same recipe and step budget on the first ``fraction · pool`` scenes of one pool.

    Writes ``output/data_scale.json``: for each fraction the number of scenes, the
    hidden RMSE×100 and δ1 % (overall, hard) on the held-out scenes, and the training time.
    Runs go to ``output/scale-<count>/`` and resume like :func:`run_ablations`.
    """

    output = Path(output)
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ValueError(f"fractions must lie in (0, 1], got {fractions}")
    chosen = VARIANTS[variant]
    recipe = _recipe(steps, pool, seed)
    items = _held_out(held_out, held_out_seed, recipe.input_size)
    rows = []
    for fraction in fractions:
        count = max(1, round(pool * fraction))
        model = _train(chosen, recipe, SynthPool(seed, count, recipe.input_size), output / f"scale-{count}", progress)
        seconds = _logged_seconds(output / f"scale-{count}", recipe.batch_size)
        summary = summarise(evaluate_items(model_predictor(model), items, progress=progress))
        rows.append({"fraction": fraction, "scenes": count, "train_seconds": seconds, **score(summary, chosen)})
    report = {"command": command, "machine": machine(), "variant": variant, "steps": steps,
              "batch_size": recipe.batch_size, "held_out": held_out, "held_out_seed": held_out_seed, "seed": seed,
              "rows": rows}
    output.mkdir(parents=True, exist_ok=True)
    (output / "data_scale.json").write_text(json.dumps(report, indent=2))
    return report


def machine() -> dict:
    """What ran it: CPU (or GPU), Python, torch, threads."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "gpu": gpu, "python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def _recipe(steps: int, pool: int, seed: int):
    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    return get_recipe("amodal-dav2-tiny-synth", max_steps=steps, decay_steps=steps, warmup_steps=min(50, steps // 10),
                      synth_pool=pool, seed=seed, validate_every=10**9)


def _held_out(count: int, seed: int, size: int) -> list[dict]:
    stream = SynthStream(seed, size)
    return [stream[k] for k in range(count)]


def _logged_seconds(folder: Path, batch: int) -> float:
    """Training seconds of a run from its ``log.csv`` (each step's ``batch`` over its samples/s),
    so that a run loaded or resumed later still reports the time its steps took."""

    with open(folder / "log.csv", newline="") as handle:
        return sum(batch / float(row["samples_per_s"]) for row in csv.DictReader(handle))


def _train(variant: Variant, recipe, data, folder: Path, progress: bool) -> torch.nn.Module:
    """``variant`` trained by ``recipe`` into ``folder``; a finished run is loaded, a stopped one resumed.

    Raises:
        TrainingStopped: SIGTERM or Ctrl-C stopped the training (its checkpoint is saved).
        ValueError: ``folder`` holds a run of another recipe (other ``--steps`` or ``--pool``,
            the differing fields named): reusing it would label an old model with new settings.
    """

    model = build_variant(variant, recipe.seed)
    checkpoint = folder / CHECKPOINT_NAME
    if checkpoint.is_file():
        state = read_training_checkpoint(folder)  # tensors and plain values only: no code runs from the file
        changed = recipe_differences(state["recipe"], recipe)  # max_steps too: a finished run is reused as it is
        if changed:
            raise ValueError(f"{checkpoint} holds variant {variant.name!r} trained with other settings "
                             f"({describe_differences(changed)}; --steps sets max_steps, decay_steps and "
                             f"warmup_steps, --pool synth_pool); write to another output folder, "
                             f"or delete {folder} to train it again")
        if state["step"] >= recipe.max_steps:
            model.load_state_dict(state["model"])
            return model
    result = train(model, variant_objective(variant), data, recipe, folder, resume=checkpoint.is_file(),
                   progress=progress, checkpoint_every=max(recipe.max_steps // 4, 1))
    if result.interrupted:  # a half-trained variant must not be scored, nor the next one started
        raise TrainingStopped(f"stopped by {result.signal.name} while training {folder} (step {result.step} of "
                              f"{recipe.max_steps}, checkpoint saved); run the same command again to continue",
                              result.signal)
    return model


def format_ablations(report: dict) -> str:
    """A plain-text table: each variant's hidden RMSE×100 (overall, hard), the paper's, and the trend."""
    lines = [f"{'variant':<20} {'RMSE×100':>9} {'hard':>7} {'δ1 %':>7} {'paper':>7}  trend vs full"]
    for name, row in report["results"].items():
        paper = report["paper"].get(name)
        agree = report["trend"].get(name, {}).get("agrees")
        verdict = "" if agree is None else ("agrees" if agree else "disagrees")
        lines.append(f"{name:<20} {row['overall_rmse']:>9.3f} {row['hard_rmse']:>7.3f} {row['overall_delta1']:>7.2f} "
                     f"{'' if paper is None else f'{paper:.3f}':>7}  {verdict}")
    return "\n".join(lines)
