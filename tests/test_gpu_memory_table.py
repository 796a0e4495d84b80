"""benchmarks/memory.py: training memory computed from parameter counts and counted activations."""
import json

import pytest
import torch

from amodal.models.amodal_dav2 import AmodalDAV2
from amodal.models.configs import TINY
from amodal.training.objectives import amodal_dav2_objective
from amodal.training.recipes import get_recipe
from amodal.utils.paths import checkout_module

memory = checkout_module("benchmarks/memory.py")
bench_train = checkout_module("benchmarks/bench_train.py")


def mlp(frozen_front: bool = False) -> torch.nn.Sequential:
    layers = [torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)]
    if frozen_front:
        layers.insert(0, torch.nn.Linear(3, 4).requires_grad_(False))
    return torch.nn.Sequential(*layers)


def test_activations_and_states_of_a_small_network_by_hand():
    """Linear(4, 8) → ReLU → Linear(8, 2) → square → mean, float32, batch B. Saved for the backward:
    the first layer's input (B·4·4 bytes, for its weight's gradient), the ReLU's output (B·8·4, also
    the second layer's input: one storage), the square's input (B·2·4): 56·B bytes. The weights the
    layers save are parameters, counted with the states: 58 parameters × 16 bytes = 928."""
    net = mlp()
    params = list(net.parameters())
    result = memory.training_memory(lambda b: net(torch.randn(b, 4)).square().mean(), params, params)
    assert (result.trainable, result.frozen, result.fixed, result.per_sample) == (58, 0, 0, 56)
    assert result.states == 928 and result.total(8) == 928 + 8 * 56


def test_frozen_parameters_hold_their_weights_only():
    # Linear(3, 4) in front, frozen: 16 parameters × 4 bytes; it saves nothing (no input needs a gradient),
    # and its output is the first trainable layer's input, saved as before
    net = mlp(frozen_front=True)
    trainable = [p for p in net.parameters() if p.requires_grad]
    result = memory.training_memory(lambda b: net(torch.randn(b, 3)).square().mean(), list(net.parameters()), trainable)
    assert (result.trainable, result.frozen, result.per_sample) == (58, 16, 56)
    assert result.states == 58 * 16 + 16 * 4


class TwoBlocks(torch.nn.Module):
    def __init__(self, checkpointing=False):
        super().__init__()
        self.blocks = torch.nn.ModuleList(torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU()) for _ in range(2))
        self.checkpointing = checkpointing

    def forward(self, x):
        for block in self.blocks:
            x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False) if self.checkpointing else block(x)
        return x.square().mean()


def test_checkpointing_by_hand():
    """Two blocks Linear(8, 8) → ReLU, then square, batch B; each activation x0, h1, h2 is 32·B bytes.
    Without checkpointing autograd keeps x0, h1, h2: 96·B. With it, the forward keeps the blocks'
    inputs x0, h1 and the square's input h2 (96·B), and recomputing a block saves its output again
    (32·B more): 128·B at the peak."""
    net = TwoBlocks()
    saved = memory.count_saved_tensors(lambda: net(torch.randn(3, 8)), list(net.parameters()), net.blocks)
    assert saved.total() == 96 * 3
    assert saved.kept_with_checkpointing() == 96 * 3 and saved.largest_recompute() == 32 * 3
    assert saved.checkpointed() == 128 * 3


@pytest.mark.parametrize("bf16", [False, True])
def test_what_checkpointing_keeps_matches_a_checkpointed_run(bf16):
    """The correction, computed from a run without checkpointing, against what autograd keeps
    in a run with it (torch.utils.checkpoint saves the blocks' inputs under the same hooks)."""
    model = AmodalDAV2(TINY).train()
    objective, batch = amodal_dav2_objective(), bench_train.batch_of(56, 2, "cpu")

    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            objective(model, batch)

    off = memory.count_saved_tensors(run, list(model.parameters()), model.encoder.blocks)
    model.set_gradient_checkpointing(True)
    on = memory.count_saved_tensors(run, list(model.parameters()), model.encoder.blocks)
    assert on.total() == off.kept_with_checkpointing() < off.total()
    assert 0 < off.largest_recompute() < off.total() - off.kept_with_checkpointing()


def test_the_count_of_a_recipe_is_linear_in_the_batch():
    recipe = get_recipe("amodal-dav2-s-paper", size="tiny", input_size=56)
    result = memory.recipe_memory(recipe)
    module, objective, _ = memory.recipe_setup(recipe)

    def at(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            objective(module.train(), bench_train.batch_of(56, batch, "cpu"))

    three = memory.count_saved_tensors(lambda: at(3), list(module.parameters())).total()
    assert result.activations(3) == three
    assert result.fixed > 0  # autocast's bf16 copies of the weights, whatever the batch
    assert result.trainable == sum(p.numel() for p in AmodalDAV2(TINY).parameters()) and result.frozen == 0


def test_bf16_autocast_halves_what_the_matrix_products_keep():
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Linear(64, 64))
    params = list(net.parameters())

    def at(batch, bf16):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return net(torch.randn(batch, 64)).float().square().mean()

    fp32 = memory.training_memory(lambda b: at(b, False), params, params)
    bf16 = memory.training_memory(lambda b: at(b, True), params, params)
    # per sample: each layer's input (64 values) and the square's fp32 input; fp32 4 bytes a value, bf16 2
    assert fp32.per_sample == 2 * 64 * 4 + 64 * 4
    assert bf16.per_sample == 2 * 64 * 2 + 64 * 4
    # the second layer keeps autocast's bf16 copy of its weight, for its input's gradient; the first
    # layer's input needs no gradient, so its weight is not kept
    assert fp32.fixed == 0 and bf16.fixed == 64 * 64 * 2


def _event(ts: int, nbytes: int, total: int, device_type: int = 0) -> dict:
    args = {"Bytes": nbytes, "Total Allocated": total, "Device Type": device_type}
    return {"name": "[memory]", "ts": ts, "args": args}


def test_peak_allocated_is_taken_above_the_count_at_the_start():
    # the count stood at 100 before the profile: +50 (150), +30 (180), −50 (130), +10 (140): peak 80 above it;
    # a CUDA event (device type 1) and an op are not CPU memory events
    trace = {"traceEvents": [_event(3, -50, 130), _event(1, 50, 150), _event(2, 30, 180), _event(4, 10, 140),
                             _event(5, 999, 9999, device_type=1), {"name": "aten::mm", "ts": 6, "ph": "X"}]}
    assert memory.peak_allocated(trace) == 80
    with pytest.raises(ValueError, match="profile_memory=True"):
        memory.peak_allocated({"traceEvents": [{"name": "aten::mm", "ts": 0}]})


def test_the_profiler_reports_known_allocations(tmp_path):
    """Two buffers of 4 MB live at once, the first freed, a third of 1 MB: the peak is 8 MB above the start."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as profile:
        first = torch.empty(2**20, dtype=torch.float32)
        second = torch.empty(2**20, dtype=torch.float32)
        del first
        third = torch.empty(2**18, dtype=torch.float32)
    profile.export_chrome_trace(str(tmp_path / "trace.json"))
    del second, third
    peak = memory.peak_allocated(json.loads((tmp_path / "trace.json").read_text()))
    assert 2 * 4 * 2**20 <= peak < 2 * 4 * 2**20 + 2**16  # the buffers, and little of torch's own bookkeeping


@pytest.mark.slow
def test_the_computed_figure_is_a_close_lower_bound_of_a_measured_step():
    """A real optimiser step of the tiny recipe, its peak measured by the CPU allocator: the computed
    figure leaves out only transients (the gradients being formed, Adam's temporaries), so it lies
    below the measured peak, and they are not the bulk of it."""
    recipe = get_recipe("amodal-dav2-s-paper", size="tiny", input_size=56, batch_per_device=2, batch_size=4)
    measured = memory.measured_cpu_peak(recipe, micro_batches=2)
    computed = memory.recipe_memory(recipe).total(2)
    assert computed < measured < 1.5 * computed, (computed, measured)


def test_the_table_of_a_tiny_recipe(capsys):
    assert memory.main(["--recipes", "amodal-dav2-s-paper", "--size", "tiny", "--input-size", "56"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("computed: activations counted on cpu") and "measured:" not in out
    row = next(line for line in out.splitlines() if line.startswith("| amodal-dav2-s-paper |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1:3] == ["8", "56²"] and cells[-1] == "not measured"
    trainable = sum(p.numel() for p in AmodalDAV2(TINY).parameters())
    assert cells[3] == f"{trainable / 1e6:.1f}M / 0.0M" and cells[4] == f"{16 * trainable / 2**30:.2f} GiB"
