"""One training loop for both models: accumulation, clipping, schedule, DDP, logs, exact resume.

Per optimiser step (paper recipes in :mod:`amodal.training.recipes`)::

    for each of the accumulation micro-batches of this process:
        loss = objective(model, batch) / micro-batches       (gradients add up)
    clip the global gradient norm; Adam step; lr = base · f(step)   (schedule.lr_factor)

The model-specific part is the ``objective``: ``objective(model, batch) -> scalar loss``
(SILog on ``M_a`` for Amodal-DAV2, the latent flow-matching MSE for Amodal-DepthFM).

Under ``torchrun`` (``torch.distributed`` initialised) the model is wrapped in
``DistributedDataParallel`` and each process reads its own share of every step
(:func:`amodal.training.order.micro_batch_positions`): ``W`` processes with ``b``
samples each compute what one process computes with ``W`` micro-batches of ``b``.
Gradients are averaged across processes only on the last micro-batch (``no_sync``).
Only rank 0 writes files.

Outputs in ``output/``: ``log.csv`` (one row per step: loss, lr, grad norm, samples/s; also
to ``output/tensorboard/`` where TensorBoard is installed),
``checkpoint.pt`` (:mod:`amodal.training.state`) every ``checkpoint_every`` steps and at
the end, and the weights in the model's ``save_pretrained`` format in ``output/model/``.
SIGTERM and Ctrl-C finish the step under way, save a checkpoint and return; ``resume``
continues from the last checkpoint and gives the losses and weights of an uninterrupted
run, bit for bit on CPU.
"""
from __future__ import annotations

import contextlib
import csv
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from amodal.harness.notebook import seed_everything
from amodal.training.order import SampleOrder, collate, micro_batch_positions
from amodal.training.schedule import lr_factor
from amodal.training.state import CHECKPOINT_NAME, load_checkpoint, save_checkpoint, set_rng_state

LOG_FIELDS = ("step", "loss", "lr", "grad_norm", "samples_per_s")
VALIDATION_NAME = "validation.csv"


@dataclass
class TrainResult:
    """What a call of :func:`train` did.

    Attributes:
        step: optimiser steps done in all (including those before a resume).
        losses: the loss of each step this call ran.
        interrupted: stopped early by SIGTERM / Ctrl-C (a checkpoint was saved).
    """

    step: int
    losses: list[float] = field(default_factory=list)
    interrupted: bool = False


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class _StopFlag:
    """SIGTERM / SIGINT set a flag that the loop reads between steps (handlers restored on exit)."""

    def __init__(self):
        self.raised = False

    def __enter__(self):
        self._previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no handlers, no graceful stop
                pass
        return self

    def _handle(self, signum, frame):
        self.raised = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _tensorboard(output: Path):
    """A TensorBoard writer into ``output/tensorboard`` where TensorBoard is installed, else ``None``."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional; log.csv holds the same numbers
        return None
    return SummaryWriter(str(output / "tensorboard"))


def _write_rows(path: Path, rows: list[dict]) -> None:
    """Rewrite a small CSV whose columns are the union of the rows' keys, in order of appearance."""
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        writer.writerows(rows)


def _read_log(path: Path, up_to: int) -> list[dict]:
    """Rows of an earlier run's ``log.csv`` up to step ``up_to`` (later rows were not checkpointed)."""
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [row for row in csv.DictReader(handle) if int(row["step"]) <= up_to]


def train(
    model: torch.nn.Module,
    objective: Callable[[torch.nn.Module, dict], torch.Tensor],
    data: Sequence[dict],
    recipe,
    output: str | Path,
    resume: bool = False,
    device: str | torch.device = "cpu",
    checkpoint_every: int | None = None,
    parameters: Sequence[torch.nn.Parameter] | None = None,
    progress: bool = True,
    bf16: bool | None = None,
    compile: bool | str = False,
    validate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
) -> TrainResult:
    """Train ``model`` by ``recipe`` until ``recipe.max_steps``.

    Args:
        model: the network, already initialised as the recipe says (e.g. ``from_dav2``).
        objective: ``objective(model, batch) -> scalar loss``; ``batch`` holds ``(B, C, H, W)``
            tensors on ``device`` (see :func:`amodal.training.order.collate`).
        data: items (dicts of ``(C, H, W)`` tensors); ``len(data)`` may raise ``TypeError``
            for an endless stream.
        recipe: a :class:`amodal.training.recipes.Recipe`.
        output: the run's folder.
        resume: continue from ``output/checkpoint.pt``.
        device: where the model trains.
        checkpoint_every: steps between checkpoints (default ``recipe.validate_every``).
        parameters: what Adam updates (default all of the model's; DepthFM: the UNet's).
        progress: show a tqdm bar.
        bf16: run the objective under bf16 autocast (default: on CUDA only). Weights,
            optimiser state and the logged loss stay float32.
        compile: wrap the network in ``torch.compile`` (a string names the backend; ``True``: inductor).
        validate: ``validate(model) -> {name: value}``, run by rank 0 every
            ``recipe.validate_every`` steps and at the end, in eval mode and without
            gradients; its rows go to ``output/validation.csv`` (and TensorBoard). It runs
            with forked RNG states, so it changes nothing of the training itself.

    Returns:
        :class:`TrainResult`.

    Raises:
        ValueError: a batch that does not divide over processes and micro-batches, a
            resume from another recipe's checkpoint, or a fresh run into a folder that
            already holds one (it would be overwritten).
        FileNotFoundError: ``resume`` without a checkpoint.
    """
    from tqdm.auto import tqdm

    rank, world = _distributed()
    per_step = recipe.batch_per_device * world
    if recipe.batch_size % per_step:
        raise ValueError(f"batch_size {recipe.batch_size} is not a multiple of batch_per_device "
                         f"{recipe.batch_per_device} × {world} processes")
    micro_batches = recipe.batch_size // per_step
    output, device = Path(output), torch.device(device)
    output.mkdir(parents=True, exist_ok=True)
    try:
        length = len(data)
    except TypeError:
        length = None
    order = SampleOrder(length, recipe.seed, recipe.flip_p)

    model.to(device)
    params = list(parameters) if parameters is not None else [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=recipe.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, recipe.warmup_steps, recipe.decay_steps, recipe.final_ratio))
    if not resume and (output / CHECKPOINT_NAME).is_file():
        raise ValueError(f"{output} already holds a run ({CHECKPOINT_NAME}); resume it, or train into another folder")
    step, rows = 0, []
    # A fresh run seeds every generator from the recipe (per rank, so that processes draw
    # different noise); a resumed one restores the generators' states instead.
    seed_everything(recipe.seed + rank)
    if resume:
        state = load_checkpoint(output, recipe)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        step = state["step"]
        rows = _read_log(output / "log.csv", step)
    validation_rows = _read_log(output / VALIDATION_NAME, step) if resume else []
    network = model
    if world > 1:
        # static_graph: the same parameters are used every step, and some never are (DPT's
        # refinenet4.resConfUnit1, as in the official head), which plain DDP rejects.
        network = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, static_graph=True)

    if compile:
        network = torch.compile(network, backend=compile if isinstance(compile, str) else "inductor")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" if bf16 is None else bf16)
    checkpoint_every = checkpoint_every or recipe.validate_every
    result = TrainResult(step)
    log = open(output / "log.csv", "w", newline="") if rank == 0 else None
    writer = csv.DictWriter(log, LOG_FIELDS) if log else None
    if writer:
        writer.writeheader()
        writer.writerows(rows)
        log.flush()
    bar = tqdm(total=recipe.max_steps, initial=step, desc=recipe.name, disable=not progress or rank != 0)
    board = _tensorboard(output) if rank == 0 else None

    def checkpoint():
        if rank == 0:
            save_checkpoint(output, model, optimizer, scheduler, step, recipe)

    def run_validation():
        if validate is None or rank != 0 or any(int(r["step"]) == step for r in validation_rows):
            return
        was_training = model.training
        model.eval()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            metrics = validate(model)
        model.train(was_training)
        validation_rows.append({"step": step, **{k: repr(float(v)) for k, v in metrics.items()}})
        _write_rows(output / VALIDATION_NAME, validation_rows)
        if board is not None:
            for name, value in metrics.items():
                board.add_scalar(f"validation/{name}", float(value), step)
        bar.write(f"step {step}: " + ", ".join(f"{k} {float(v):.4g}" for k, v in metrics.items()))

    try:
        with _StopFlag() as stop:
            while step < recipe.max_steps:
                start = time.perf_counter()
                network.train()
                optimizer.zero_grad(set_to_none=True)
                total = torch.zeros((), device=device)
                for micro in range(micro_batches):
                    positions = micro_batch_positions(step, micro, rank, world, recipe.batch_size, recipe.batch_per_device)
                    batch = _to(collate(data, order, positions), device)
                    sync = contextlib.nullcontext() if world == 1 or micro == micro_batches - 1 else network.no_sync()
                    with sync:
                        with autocast:
                            loss = objective(network, batch).float() / micro_batches
                        loss.backward()
                    total += loss.detach()
                grad_norm = torch.nn.utils.clip_grad_norm_(params, recipe.max_grad_norm)
                lr = optimizer.param_groups[0]["lr"]
                optimizer.step()
                scheduler.step()
                step += 1
                flags = torch.stack([total, torch.tensor(float(stop.raised), device=device)])
                if world > 1:
                    torch.distributed.all_reduce(flags)
                    flags[0] /= world
                loss_value, stopping = flags.tolist()
                result.losses.append(loss_value)
                if writer:
                    seconds = time.perf_counter() - start
                    writer.writerow({"step": step, "loss": repr(loss_value), "lr": repr(lr),
                                     "grad_norm": repr(float(grad_norm)), "samples_per_s": f"{recipe.batch_size / seconds:.3f}"})
                    log.flush()
                if board is not None:
                    for name, value in (("loss", loss_value), ("lr", lr), ("grad_norm", float(grad_norm))):
                        board.add_scalar(f"train/{name}", value, step)
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}")
                if stopping:
                    result.interrupted = True
                    break
                if step % recipe.validate_every == 0 and step < recipe.max_steps:
                    run_validation()
                if step % checkpoint_every == 0 and step < recipe.max_steps:
                    checkpoint()
        if step >= recipe.max_steps:
            run_validation()
        checkpoint()
        if rank == 0 and hasattr(model, "save_pretrained"):
            model.save_pretrained(output / "model")
    finally:
        bar.close()
        if log:
            log.close()
        if board is not None:
            board.close()
    result.step = step
    return result
