"""GPU memory of a training recipe, computed where it cannot be measured.

A training step at its peak holds, on each device (Adam, fp32 weights, bf16 autocast):

    16 bytes · trainable parameters      fp32 weight, gradient, Adam's first and second moment
  +  4 bytes · frozen parameters         fp32 weight only (DepthFM's VAE)
  +  activations(batch)                  what autograd keeps from the forward pass for the backward

The peak falls in the backward pass of a micro-batch after the first of an accumulated step:
the gradients of the earlier micro-batches and Adam's moments are held, and so is every
activation of this one. The recipes accumulate (32 = 4 × 8, 128 = 16 × 8), so all four terms
meet.

**Activations are counted, not guessed.** One forward pass of the recipe's training
objective runs under ``torch.autograd.graph.saved_tensors_hooks``: its pack hook sees every
tensor autograd saves for the backward pass. The bytes of their distinct storages, less the
parameters' own (counted above), are the activations; under bf16 autocast the bf16 copies
of the weights that autocast caches are among them. The hook hands autograd nothing back,
so the counted tensors are freed as the forward goes on and the count needs little memory
(the backward is never run). Activations grow linearly with the batch: counted at batches 1
and 2, ``fixed + per_sample · batch`` gives any other batch without running it.

**Activation checkpointing** (Amodal-DAV2-L's recipe) keeps only each encoder block's input
in the forward pass and recomputes one block at a time in the backward pass. The count is
taken with checkpointing off, each tensor credited to the block whose forward saved it
(forward hooks on the blocks), and then the blocks' tensors are replaced by the blocks'
inputs plus the largest block's own tensors (the one being recomputed, less its input,
which is already held).

Not counted: transients (an op's workspace, the gradient being formed, Adam's foreach
temporaries), the CUDA context and the caching allocator's rounding and fragmentation. The
figure is what ``torch.cuda.max_memory_allocated`` should come close to from below;
``scripts/gpu_check.py`` prints the two side by side. The count runs on the CPU where no GPU
is at hand: CPU autocast casts the same kinds of ops (matrix products, convolutions,
attention) to bf16, but its lists of ops kept in fp32 are not CUDA's in every detail.

**Checked against a measured peak.** :func:`measured_cpu_peak` runs real optimiser steps
(micro-batches accumulated, the gradient norm clipped, Adam) on the CPU under torch's
profiler with ``profile_memory=True``: the CPU allocator then reports, with every
allocation, the bytes it holds that were allocated since the profiling began ("Total
Allocated"). Its largest value, plus the bytes held before (weights and Adam's moments,
from a first step outside the profile), is the step's measured peak: the computed figure
must lie below it (it leaves out only transients) and not far below.

    python benchmarks/memory.py                 # the README's table (a few minutes on a CPU)
    python benchmarks/memory.py --recipes amodal-dav2-s-paper --device cuda
    python benchmarks/memory.py --recipes amodal-dav2-s-paper --measure-cpu   # and the CPU's measured peak
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass, field

import torch
from torch.multiprocessing.reductions import StorageWeakRef

from amodal.training.objectives import FlowMatchingLoss, flow_matching_objective
from amodal.training.recipes import get_recipe
from amodal.training.setup import ModelSetup, build_model, make_optimiser
from bench_depthfm import full_model
from bench_train import batch_of

GiB = 2**30
PAPER_RECIPES = ("amodal-dav2-s-paper", "amodal-dav2-b-paper", "amodal-dav2-l-paper", "amodal-depthfm-paper")


@dataclass
class SavedTensors:
    """What one forward pass saved for the backward pass, in bytes of distinct storages.

    Attributes:
        sizes: storage id → bytes, every storage saved (parameters excluded).
        outside: ids saved by ops outside the blocks.
        inside: block index → the ids saved by ops inside that block.
        inputs: block index → the id and bytes of its input (the one tensor checkpointing keeps),
            for the blocks that ran.
    """

    sizes: dict[int, int] = field(default_factory=dict)
    outside: set[int] = field(default_factory=set)
    inside: dict[int, set[int]] = field(default_factory=dict)
    inputs: dict[int, tuple[int, int]] = field(default_factory=dict)

    def total(self) -> int:
        """Bytes held between the forward and the backward pass without checkpointing."""
        return sum(self.sizes.values())

    def kept_with_checkpointing(self) -> int:
        """Bytes held through the forward pass with each block checkpointed: what the ops
        outside the blocks saved, and the blocks' inputs."""
        kept = dict(self.inputs.values())
        kept.update({uid: self.sizes[uid] for uid in self.outside})
        return sum(kept.values())

    def largest_recompute(self) -> int:
        """Bytes one checkpointed block saves again when it is recomputed in the backward pass
        (its own tensors less its input, which is held already), for the largest block."""
        return max((sum(self.sizes[uid] for uid in self.inside[index] - {input_id})
                    for index, (input_id, _) in self.inputs.items()), default=0)

    def checkpointed(self) -> int:
        """Bytes at the peak with each block checkpointed: those kept, and one block recomputed."""
        return self.kept_with_checkpointing() + self.largest_recompute()


class _StorageIds:
    """A stable id per storage for one count: a freed storage's address may be reused by a later one."""

    def __init__(self):
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.next = 0

    def __call__(self, tensor: torch.Tensor) -> int:
        ref = StorageWeakRef(tensor.untyped_storage())
        known = self.live.get(ref.cdata)
        if known is None or known[0].expired():
            known = (ref, self.next)
            self.live[ref.cdata] = known
            self.next += 1
        return known[1]


def count_saved_tensors(fn, parameters, blocks=()) -> SavedTensors:
    """Run ``fn()`` (one forward pass, gradients on) and record what autograd saved for the backward.

    Args:
        fn: a forward pass of the training objective (its result is dropped).
        parameters: the model's parameters; their storages are not activations.
        blocks: modules whose saved tensors and inputs are recorded apart (checkpointed blocks).

    Returns:
        :class:`SavedTensors`.
    """
    ids, saved = _StorageIds(), SavedTensors()
    excluded = {ids(p) for p in parameters}
    saved.inside = {index: set() for index in range(len(blocks))}
    current: list[int] = []  # the block running now

    def pack(tensor):
        uid = ids(tensor)
        if uid not in excluded:
            saved.sizes[uid] = tensor.untyped_storage().nbytes()
            (saved.inside[current[-1]] if current else saved.outside).add(uid)
        return None  # nothing kept: the backward is never run

    def enter(index):
        def hook(module, args):
            saved.inputs[index] = (ids(args[0]), args[0].untyped_storage().nbytes())
            current.append(index)
        return hook

    def leave(module, args, output):
        current.pop()  # and return None: a forward hook's result would replace the block's output

    handles = [block.register_forward_pre_hook(enter(i)) for i, block in enumerate(blocks)]
    handles += [block.register_forward_hook(leave) for block in blocks]
    try:
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda _: None):
            fn()
    finally:
        for handle in handles:
            handle.remove()
    return saved


@dataclass
class TrainingMemory:
    """Bytes a training step holds on one device at its peak, as a function of the batch.

    Attributes:
        trainable: parameters Adam updates.
        frozen: parameters that only take part in the forward pass.
        fixed: activation bytes that do not grow with the batch (autocast's weight copies).
        per_sample: activation bytes per sample.
    """

    trainable: int
    frozen: int
    fixed: int
    per_sample: int

    @property
    def states(self) -> int:
        """fp32 weights (all), gradients and Adam's two moments (trainable ones): 16 and 4 bytes a parameter."""
        return 16 * self.trainable + 4 * self.frozen

    def activations(self, batch: int) -> int:
        return self.fixed + self.per_sample * batch

    def total(self, batch: int) -> int:
        return self.states + self.activations(batch)


def training_memory(objective_at, parameters, trainable, blocks=(), checkpointing: bool = False) -> TrainingMemory:
    """Count activations at batches 1 and 2 and fit ``fixed + per_sample · batch``.

    Args:
        objective_at: ``objective_at(batch)`` runs one forward pass of the objective on ``batch`` samples.
        parameters: every parameter of the model (frozen ones included).
        trainable: the parameters Adam updates.
        blocks: the blocks checkpointing wraps; ``checkpointing`` says whether it is on.
    """
    def count(batch):
        saved = count_saved_tensors(lambda: objective_at(batch), parameters, blocks)
        return saved.checkpointed() if checkpointing else saved.total()

    one, two = count(1), count(2)
    n_trainable = sum(p.numel() for p in trainable)
    n_all = sum(p.numel() for p in parameters)
    return TrainingMemory(n_trainable, n_all - n_trainable, fixed=2 * one - two, per_sample=two - one)


def recipe_setup(recipe) -> ModelSetup:
    """The recipe's network with random weights in its full shape (weights do not change memory)."""
    if recipe.model == "amodal-depthfm":
        model = full_model(None, None)  # DepthFM's UNet and SD's VAE, random
        model.autoencoder.requires_grad_(False)
        return ModelSetup(FlowMatchingLoss(model, recipe.time_grid, recipe.hidden_loss_weight), flow_matching_objective,
                          list(model.unet.parameters()))
    return build_model(recipe, "none")


def recipe_memory(recipe, device: str = "cpu") -> TrainingMemory:
    """:class:`TrainingMemory` of ``recipe`` at its input size, bf16 autocast, counted on ``device``."""
    module, objective, trainable = recipe_setup(recipe)
    module.to(device).train()
    checkpointing = bool(recipe.activation_checkpointing)
    blocks = ()
    if checkpointing:  # counted with it off, then corrected (SavedTensors.checkpointed)
        module.set_gradient_checkpointing(False)
        blocks = tuple(module.encoder.blocks)

    def objective_at(batch):
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            objective(module, batch_of(recipe.input_size, batch, device))

    return training_memory(objective_at, list(module.parameters()), trainable, blocks, checkpointing)


def peak_allocated(trace: dict) -> int:
    """The most bytes the CPU allocator held above its count at the start of a profile.

    Each CPU memory event of the trace carries ``Bytes`` (+ allocated, − freed) and ``Total
    Allocated``, the allocator's running count after it. The count is process-wide and may
    hold bytes of an earlier profile, so the peak is taken above the count before the first
    event.

    Args:
        trace: ``json.load`` of :meth:`torch.profiler.profile.export_chrome_trace`'s file.

    Raises:
        ValueError: the trace holds no CPU memory events (the profile ran without ``profile_memory``).
    """
    events = sorted((event for event in trace["traceEvents"]
                     if event.get("name") == "[memory]" and event["args"].get("Device Type") == 0),
                    key=lambda event: event["ts"])
    if not events:
        raise ValueError("the trace holds no CPU memory events: profile with profile_memory=True")
    start = events[0]["args"]["Total Allocated"] - events[0]["args"]["Bytes"]
    return max(event["args"]["Total Allocated"] for event in events) - start


def measured_cpu_peak(recipe, micro_batches: int = 2) -> int:
    """Bytes at the peak of one real optimiser step of ``recipe`` on the CPU, bf16 autocast.

    The step is the loop's (:func:`amodal.training.loop.train_step`): gradients set to
    ``None``, ``micro_batches`` forward and backward passes of ``recipe.batch_per_device``
    samples summed, the norm clipped, Adam. A first step outside the profile makes Adam's
    moments, so that the profiled one holds all four terms of :class:`TrainingMemory`.

    Returns:
        the profiled step's peak of bytes allocated since its start, plus the 12 bytes per
        trainable and 4 per frozen parameter (fp32 weights and the two moments) held before it.
    """
    module, objective, trainable = recipe_setup(recipe)
    module.train()
    optimizer, _ = make_optimiser(trainable, recipe)
    batch = batch_of(recipe.input_size, recipe.batch_per_device, "cpu")

    def step():
        optimizer.zero_grad(set_to_none=True)
        for _ in range(micro_batches):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = objective(module, batch).float() / micro_batches
            loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, recipe.max_grad_norm)
        optimizer.step()

    step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as profile:
        step()
    with tempfile.TemporaryDirectory() as scratch:
        profile.export_chrome_trace(f"{scratch}/trace.json")
        with open(f"{scratch}/trace.json") as handle:
            peak = peak_allocated(json.load(handle))
    n_trainable = sum(p.numel() for p in trainable)
    n_frozen = sum(p.numel() for p in module.parameters()) - n_trainable
    return peak + 12 * n_trainable + 4 * n_frozen


def print_table(rows) -> None:
    """A Markdown table: recipe, parameters, states, activations and total at the recipe's batch per
    device, and the CPU's measured peak of a step where it was measured (``rows``: (recipe, memory, bytes or None))."""
    print("| recipe | batch per device | input | trainable / frozen params | weights + grads + Adam | "
          "activations | total, computed | peak measured on the CPU |")
    print("|---|---|---|---|---|---|---|---|")
    for recipe, memory, measured in rows:
        batch = recipe.batch_per_device
        peak = "not measured" if measured is None else (
            f"{measured / GiB:.2f} GiB ({measured / memory.total(batch):.2f} × computed)")
        print(f"| {recipe.name} | {batch} | {recipe.input_size}² | {memory.trainable / 1e6:.1f}M / "
              f"{memory.frozen / 1e6:.1f}M | {memory.states / GiB:.2f} GiB | {memory.activations(batch) / GiB:.2f} GiB "
              f"| {memory.total(batch) / GiB:.2f} GiB | {peak} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(PAPER_RECIPES))
    parser.add_argument("--device", default="cpu", help="where the forward passes run (cpu or cuda)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--measure-cpu", action="store_true",
                        help="also measure a real step's peak on the CPU "
                             "(Amodal-DAV2-S at 518²: about 10 minutes and 7 GB of RAM on 2 cores)")
    parser.add_argument("--size", default=None, help="another model size for every recipe (tiny: a quick look)")
    parser.add_argument("--input-size", type=int, default=None, help="another input side for every recipe")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {k: v for k, v in (("size", args.size), ("input_size", args.input_size)) if v is not None}
    rows = []
    for name in args.recipes:
        recipe = get_recipe(name, **overrides)
        measured = measured_cpu_peak(recipe) if args.measure_cpu else None
        rows.append((recipe, recipe_memory(recipe, args.device), measured))
        print(f"counted {name}", file=sys.stderr, flush=True)
    print(f"computed: activations counted on {args.device} (torch {torch.__version__}) with saved-tensor hooks at "
          "batches 1 and 2, bf16 autocast; states 16 bytes per trainable parameter, 4 per frozen one"
          + ("; measured: the CPU allocator's peak over one step of 2 micro-batches (profile_memory)"
             if args.measure_cpu else ""))
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
