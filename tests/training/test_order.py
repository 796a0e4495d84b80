"""The step → samples map: every position read once per epoch, the same for any world size."""
import numpy as np
import torch

from amodal.training.order import SampleOrder, collate, micro_batch_positions


def test_each_epoch_is_a_permutation_and_epochs_differ():
    order = SampleOrder(10, seed=3)
    first = [order.item(p) for p in range(10)]
    second = [order.item(p) for p in range(10, 20)]
    assert sorted(first) == list(range(10)) and sorted(second) == list(range(10))
    assert first != second
    assert [SampleOrder(10, seed=3).item(p) for p in range(10)] == first  # no hidden state


def test_endless_stream_reads_position():
    order = SampleOrder(None, seed=0)
    assert [order.item(p) for p in (0, 5, 10**9)] == [0, 5, 10**9]


def test_flips_are_per_position_and_near_p():
    order = SampleOrder(None, seed=1, flip_p=0.5)
    flips = [order.flip(p) for p in range(4000)]
    assert abs(np.mean(flips) - 0.5) < 0.03
    assert [SampleOrder(None, seed=1, flip_p=0.5).flip(p) for p in (7, 3, 7)] == [flips[7], flips[3], flips[7]]
    assert not any(SampleOrder(None, seed=1).flip(p) for p in range(100))


def test_positions_cover_each_step_once_for_any_split():
    def step_positions(world, per_device, batch=12, step=5):
        micro = batch // (world * per_device)
        return sorted(p for m in range(micro) for r in range(world)
                      for p in micro_batch_positions(step, m, r, world, batch, per_device))

    assert step_positions(1, 12) == list(range(60, 72))
    assert step_positions(2, 3) == list(range(60, 72))
    assert step_positions(3, 2) == list(range(60, 72))
    # two ranks with batch b read what one rank reads in two micro-batches of b
    assert micro_batch_positions(5, 0, 1, 2, 12, 3) == micro_batch_positions(5, 1, 0, 1, 12, 3)


def test_collate_flips_maps_only():
    data = [{"image": torch.arange(6.0).reshape(1, 2, 3), "id": f"s{i}"} for i in range(2)]
    order = SampleOrder(None, seed=0, flip_p=1.0)
    batch = collate(data, order, [0, 1])
    assert batch["image"].shape == (2, 1, 2, 3)
    assert batch["image"][0, 0, 0].tolist() == [2.0, 1.0, 0.0]
    assert batch["id"] == ["s0", "s1"]
