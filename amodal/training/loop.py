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

The steps, each a function a reader can follow: :func:`micro_batches_per_step` (how a step is
cut over processes), :func:`amodal.training.setup.make_optimiser` (Adam and its schedule),
:func:`start_or_resume` (seeds, or the checkpoint's state), :func:`wrap_network` (DDP,
``torch.compile``), :func:`train_step` (one optimiser step), validation and
:func:`amodal.training.state.save_checkpoint`; :func:`train` runs them in order.

Outputs in ``output/``: ``log.csv`` (one row per step: loss, lr, grad norm, samples/s; also
to ``output/tensorboard/`` where TensorBoard is installed; :mod:`amodal.training.logs`),
``checkpoint.pt`` (:mod:`amodal.training.state`) every ``checkpoint_every`` steps and at
the end, and the weights in the model's ``save_pretrained`` format in ``output/model/``.
SIGTERM and Ctrl-C finish the step under way, save a checkpoint and return, saying which
signal stopped the run (``TrainResult.signal``; the ``train`` command exits 128 + its
number, so a scheduler sees that the run did not finish); ``resume`` continues from the
last checkpoint and gives the losses and weights of an uninterrupted run, bit for bit on CPU.
"""
from __future__ import annotations

import contextlib
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from amodal.training.logs import TrainingLog
from amodal.training.order import SampleOrder, collate, micro_batch_positions
from amodal.training.recipes import Recipe
from amodal.training.setup import make_optimiser
from amodal.training.state import CHECKPOINT_NAME, load_checkpoint, save_checkpoint, set_rng_state
from amodal.utils.seeding import seed_everything

Objective = Callable[[torch.nn.Module, dict], torch.Tensor]


@dataclass
class TrainResult:
    """What a call of :func:`train` did.

    Attributes:
        step: optimiser steps done in all (including those before a resume).
        losses: the loss of each step this call ran.
        interrupted: stopped early by SIGTERM / Ctrl-C (a checkpoint was saved).
        signal: the signal that stopped it (``signal.SIGTERM`` or ``signal.SIGINT``), else ``None``.
    """

    step: int
    losses: list[float] = field(default_factory=list)
    interrupted: bool = False
    signal: signal.Signals | None = None


class TrainingStopped(KeyboardInterrupt):
    """A run stopped by SIGTERM or Ctrl-C after saving its checkpoint, raised where the caller cannot
    go on (the ``train`` command, the ablations) so that the process ends with ``128 + signal``.

    A ``KeyboardInterrupt``, so that no ``except Exception`` swallows it.

    Args:
        message: what stopped and how to continue.
        signal: the signal that stopped the run.
    """

    def __init__(self, message: str, signal: signal.Signals):
        super().__init__(message)
        self.signal = signal


def distributed() -> tuple[int, int]:
    """``(rank, world size)`` under ``torchrun`` (``torch.distributed`` initialised), else ``(0, 1)``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _StopFlag:
    """SIGTERM / SIGINT set a flag that the loop reads between steps (handlers restored on exit).

    ``received`` holds one flag per signal of :data:`STOP_SIGNALS`, so that processes can add
    theirs up and all agree on stopping and on why.
    """

    def __init__(self):
        self.received = [0.0] * len(STOP_SIGNALS)

    def __enter__(self):
        self._previous = {}
        for sig in STOP_SIGNALS:
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no handlers, no graceful stop
                pass
        return self

    def _handle(self, signum, frame):
        self.received[STOP_SIGNALS.index(signum)] = 1.0

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def micro_batches_per_step(recipe: Recipe, world: int) -> int:
    """Forward passes per process per step: ``batch_size / (batch_per_device · world)``.

    Raises:
        ValueError: a batch that does not divide over processes and micro-batches.
    """
    per_step = recipe.batch_per_device * world
    if recipe.batch_size % per_step:
        raise ValueError(f"batch_size {recipe.batch_size} is not a multiple of batch_per_device "
                         f"{recipe.batch_per_device} × {world} processes")
    return recipe.batch_size // per_step


def start_or_resume(model: torch.nn.Module, optimizer, scheduler, recipe: Recipe, output: Path, resume: bool,
                    rank: int) -> int:
    """Seed every generator for a fresh run, or restore a checkpoint's state; returns the step to start from.

    A fresh run seeds every generator from the recipe (per rank, so that processes draw
    different noise); a resumed one restores the model, optimiser, schedule and generators.

    Raises:
        ValueError: a fresh run into a folder that already holds one (it would be overwritten),
            or a resume from another recipe's checkpoint.
        FileNotFoundError: ``resume`` without a checkpoint.
    """
    if not resume and (output / CHECKPOINT_NAME).is_file():
        raise ValueError(f"{output} already holds a run ({CHECKPOINT_NAME}); resume it, or train into another folder")
    seed_everything(recipe.seed + rank)
    if not resume:
        return 0
    state = load_checkpoint(output, recipe)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return state["step"]


def wrap_network(model: torch.nn.Module, device: torch.device, world: int, compile: bool | str = False) -> torch.nn.Module:
    """The module the steps run: ``model`` itself, in DDP under ``torchrun``, compiled if asked."""
    network = model
    if world > 1:
        # static_graph: the same parameters are used every step, and some never are (DPT's
        # refinenet4.resConfUnit1, as in the official head), which plain DDP rejects.
        network = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, static_graph=True)
    if compile:
        network = torch.compile(network, backend=compile if isinstance(compile, str) else "inductor")
    return network


def train_step(network: torch.nn.Module, objective: Objective, data, order: SampleOrder, optimizer, scheduler,
               parameters: Sequence[torch.nn.Parameter], recipe: Recipe, step: int, micro_batches: int, device: torch.device,
               autocast) -> tuple[torch.Tensor, float, float]:
    """One optimiser step: the micro-batches of this process, gradients summed, the global norm
    clipped, Adam, the schedule.

    Returns:
        ``(loss, grad_norm, lr)``: this process's loss (a 0-d tensor, averaged over its
        micro-batches), the gradient norm before clipping and the learning rate of the step.
    """
    rank, world = distributed()
    network.train()
    optimizer.zero_grad(set_to_none=True)
    total = torch.zeros((), device=device)
    for micro in range(micro_batches):
        positions = micro_batch_positions(step, micro, rank, world, recipe.batch_size, recipe.batch_per_device)
        batch = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                 for k, v in collate(data, order, positions).items()}
        # gradients are averaged across processes on the last micro-batch only
        sync = contextlib.nullcontext() if world == 1 or micro == micro_batches - 1 else network.no_sync()
        with sync:
            with autocast:
                loss = objective(network, batch).float() / micro_batches
            loss.backward()
        total += loss.detach()
    grad_norm = torch.nn.utils.clip_grad_norm_(parameters, recipe.max_grad_norm)
    lr = optimizer.param_groups[0]["lr"]
    optimizer.step()
    scheduler.step()
    return total, float(grad_norm), lr


def validate_model(model: torch.nn.Module, validate, device: torch.device) -> dict[str, float]:
    """``validate(model)`` in eval mode, without gradients, and with forked generators, so that
    validating changes nothing of the training itself."""
    was_training = model.training
    model.eval()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
        metrics = validate(model)
    model.train(was_training)
    return metrics


def train(
    model: torch.nn.Module,
    objective: Objective,
    data: Sequence[dict],
    recipe: Recipe,
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
        model: the network, already initialised as the recipe says
            (:func:`amodal.training.setup.build_model`).
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
            ``recipe.validate_every`` steps and at the end (:func:`validate_model`); its rows go
            to ``output/validation.csv`` (and TensorBoard).

    Returns:
        :class:`TrainResult`.

    Raises:
        ValueError: a batch that does not divide over processes and micro-batches, a
            resume from another recipe's checkpoint, or a fresh run into a folder that
            already holds one (it would be overwritten).
        FileNotFoundError: ``resume`` without a checkpoint.
    """
    rank, world = distributed()
    micro_batches = micro_batches_per_step(recipe, world)
    output, device = Path(output), torch.device(device)
    output.mkdir(parents=True, exist_ok=True)
    try:
        length = len(data)
    except TypeError:
        length = None
    order = SampleOrder(length, recipe.seed, recipe.flip_p)

    model.to(device)
    params = list(parameters) if parameters is not None else [p for p in model.parameters() if p.requires_grad]
    optimizer, scheduler = make_optimiser(params, recipe)
    step = start_or_resume(model, optimizer, scheduler, recipe, output, resume, rank)
    network = wrap_network(model, device, world, compile)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" if bf16 is None else bf16)
    checkpoint_every = checkpoint_every or recipe.validate_every
    result = TrainResult(step)
    log = TrainingLog(output, step, writes=rank == 0)
    bar = tqdm(total=recipe.max_steps, initial=step, desc=recipe.name, disable=not progress or rank != 0)

    def run_validation():
        if validate is None or rank != 0 or log.validated(step):
            return
        metrics = validate_model(model, validate, device)
        log.validation(step, metrics)
        bar.write(f"step {step}: " + ", ".join(f"{k} {float(v):.4g}" for k, v in metrics.items()))

    def checkpoint():
        if rank == 0:
            save_checkpoint(output, model, optimizer, scheduler, step, recipe)

    try:
        with _StopFlag() as stop:
            while step < recipe.max_steps:
                start = time.perf_counter()
                loss, grad_norm, lr = train_step(network, objective, data, order, optimizer, scheduler, params, recipe,
                                                 step, micro_batches, device, autocast)
                step += 1
                # every process agrees on the mean loss and on stopping (and on which signal stopped it)
                flags = torch.cat([loss[None], torch.tensor(stop.received, device=device)])
                if world > 1:
                    torch.distributed.all_reduce(flags)
                    flags[0] /= world
                loss_value, *received = flags.tolist()
                stopping = next((sig for sig, count in zip(STOP_SIGNALS, received) if count), None)
                result.losses.append(loss_value)
                log.step(step, loss_value, lr, grad_norm, recipe.batch_size / (time.perf_counter() - start))
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}")
                if stopping is not None:
                    result.interrupted, result.signal = True, stopping
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
        log.close()
    result.step = step
    return result
