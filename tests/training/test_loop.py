"""The training loop: it learns, resumes bit for bit, stops cleanly, and splits over processes exactly."""
import csv
import os
import signal

import numpy as np
import pytest
import torch

from amodal.models.amodal_dav2 import TINY, AmodalDAV2
from amodal.training.loop import micro_batches_per_step, train
from amodal.training.objectives import amodal_dav2_objective, loss_region
from amodal.training.recipes import get_recipe
from pickle_testdata import write_hostile_checkpoint

SIZE = 28


def _data(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        amodal = torch.zeros(1, SIZE, SIZE)
        amodal[:, 6:22, 5:20] = 1
        visible = amodal.clone()
        visible[:, :, 12:] = 0
        ramp = torch.linspace(0.2, 0.8, SIZE).view(1, SIZE, 1).expand(1, SIZE, SIZE)  # a floor: nearer below
        target = torch.where(amodal > 0, torch.full_like(ramp, 0.9), ramp)
        observed = torch.where(visible > 0, target, ramp)
        items.append({"image": torch.rand(3, SIZE, SIZE, generator=g), "amodal_mask": amodal, "visible_mask": visible,
                      "observed_depth": observed, "target_depth": target, "id": f"s{i}"})
    return items


def _recipe(**overrides):
    settings = dict(batch_size=4, batch_per_device=2, max_steps=6, warmup_steps=2, decay_steps=5, lr=1e-3,
                    max_grad_norm=1.0, seed=7, validate_every=100)
    settings.update(overrides)
    return get_recipe("amodal-dav2-s-paper", **settings)


def _model():
    torch.manual_seed(0)
    return AmodalDAV2(TINY)


def _log(folder):
    with open(folder / "log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_loss_regions():
    batch = _data(1)[0]
    batch = {k: v[None] for k, v in batch.items() if isinstance(v, torch.Tensor)}
    assert loss_region(batch, "object").sum() == 16 * 15
    assert loss_region(batch, "hidden").sum() == 16 * 8  # columns 12..19 of the object are hidden
    assert loss_region(batch, "scene").all()
    with pytest.raises(ValueError, match="loss region"):
        loss_region(batch, "visible")


def test_resume_is_bit_identical(tmp_path):
    data, objective = _data(), amodal_dav2_objective()
    whole = _model()
    full = train(whole, objective, data, _recipe(), tmp_path / "full", progress=False)
    assert full.step == 6 and len(full.losses) == 6

    first = train(_model(), objective, data, _recipe(max_steps=3), tmp_path / "split", progress=False)
    resumed_model = _model()
    torch.manual_seed(123)  # the checkpoint, not the caller, decides every random draw
    second = train(resumed_model, objective, data, _recipe(), tmp_path / "split", resume=True, progress=False)
    assert first.losses + second.losses == full.losses
    for (name, a), b in zip(whole.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name
    assert [r["loss"] for r in _log(tmp_path / "split")] == [r["loss"] for r in _log(tmp_path / "full")]
    assert AmodalDAV2.from_pretrained(tmp_path / "full" / "model").state_dict().keys() == whole.state_dict().keys()


def test_schedule_and_clip_reach_the_optimiser(tmp_path):
    train(_model(), amodal_dav2_objective(), _data(), _recipe(max_grad_norm=1e-3), tmp_path, progress=False)
    rows = _log(tmp_path)
    lrs = [float(r["lr"]) for r in rows]
    # warm-up 0, 1/2 of 1e-3, then 1e-3 · 0.01^((n − 2) / 3)
    assert lrs[:3] == pytest.approx([0.0, 5e-4, 1e-3])
    assert lrs[3:] == pytest.approx([1e-3 * 0.01 ** (1 / 3), 1e-3 * 0.01 ** (2 / 3), 1e-5])
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]


def test_training_lowers_the_loss(tmp_path):
    recipe = _recipe(max_steps=30, warmup_steps=1, decay_steps=30, lr=3e-3, final_ratio=0.5)
    result = train(_model(), amodal_dav2_objective(), _data(2), recipe, tmp_path, progress=False)
    assert sum(result.losses[-5:]) < 0.5 * sum(result.losses[:5])


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_and_stops_after_the_step_and_is_named(tmp_path, stop):
    calls = []
    base = amodal_dav2_objective()
    before = signal.getsignal(stop)

    def objective(model, batch):
        calls.append(1)
        if len(calls) == 4:  # during step 2 (two micro-batches a step)
            os.kill(os.getpid(), stop)
        return base(model, batch)

    result = train(_model(), objective, _data(), _recipe(), tmp_path, progress=False)
    assert result.interrupted and result.step == 2 and result.signal == stop
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 2
    assert signal.getsignal(stop) is before
    finished = train(_model(), base, _data(), _recipe(max_steps=3), tmp_path / "whole", progress=False)
    assert not finished.interrupted and finished.signal is None


def test_resume_refuses_another_recipe(tmp_path):
    train(_model(), amodal_dav2_objective(), _data(), _recipe(max_steps=1), tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"other settings \(lr: 0.001 → 0.002\)"):
        train(_model(), amodal_dav2_objective(), _data(), _recipe(lr=2e-3), tmp_path, resume=True, progress=False)
    with pytest.raises(ValueError, match="already holds a run"):
        train(_model(), amodal_dav2_objective(), _data(), _recipe(max_steps=1), tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(_model(), amodal_dav2_objective(), _data(), _recipe(), tmp_path / "new", resume=True, progress=False)


def test_batch_must_divide(tmp_path):
    with pytest.raises(ValueError, match=r"batch_size must be a multiple of batch_per_device \(3\)"):
        _recipe(batch_per_device=3)
    recipe = _recipe(batch_size=4, batch_per_device=2)
    assert micro_batches_per_step(recipe, 1) == 2 and micro_batches_per_step(recipe, 2) == 1
    with pytest.raises(ValueError, match="not a multiple of batch_per_device 2 × 3 processes"):
        micro_batches_per_step(recipe, 3)


def _ddp_worker(rank, world, init_file, folder, result_file):
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        result = train(_model(), amodal_dav2_objective(), _data(), _recipe(batch_per_device=2, max_steps=3),
                       folder, progress=False)
        if rank == 0:
            torch.save({"losses": result.losses}, result_file)
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_equal_one_with_accumulation(tmp_path):
    """2 processes × batch 2 = 1 process × 2 micro-batches of 2: same losses and weights."""
    import torch.multiprocessing as mp

    single = _model()
    reference = train(single, amodal_dav2_objective(), _data(), _recipe(batch_per_device=2, max_steps=3),
                      tmp_path / "one", progress=False)
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "two"), str(tmp_path / "result.pt")),
             nprocs=2, join=True)
    losses = torch.load(tmp_path / "result.pt", weights_only=True)["losses"]
    assert losses == pytest.approx(reference.losses, rel=1e-5)
    distributed = AmodalDAV2.from_pretrained(tmp_path / "two" / "model")
    for (name, a), b in zip(single.state_dict().items(), distributed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.slow
def test_bf16_autocast_and_compile_paths_run_on_cpu(tmp_path):
    """The CUDA settings (bf16 autocast, torch.compile) exercised on the CPU; weights stay float32."""
    model = _model()
    result = train(model, amodal_dav2_objective(), _data(), _recipe(max_steps=2), tmp_path, progress=False, bf16=True)
    assert len(result.losses) == 2 and all(l == l for l in result.losses)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    eager = train(_model(), amodal_dav2_objective(), _data(), _recipe(max_steps=2), tmp_path / "a", progress=False)
    compiled = train(_model(), amodal_dav2_objective(), _data(), _recipe(max_steps=2), tmp_path / "b", progress=False,
                     compile="eager")
    assert compiled.losses == pytest.approx(eager.losses, rel=1e-5)
    assert result.losses != eager.losses  # bf16 really ran


def test_amodal_depthfm_trains_through_the_loss_module_and_resumes_exactly(tmp_path):
    """The flow-matching loss as a module: the UNet alone learns, and a resume repeats every noise draw."""
    from amodal.models.depthfm import AmodalDepthFM, tiny_amodal_depthfm
    from amodal.training.objectives import FlowMatchingLoss, flow_matching_objective

    data = [dict(item, image=item["image"], target_depth=item["target_depth"]) for item in _data()]
    data = [{k: (v[:, :24, :24] if isinstance(v, torch.Tensor) else v) for k, v in item.items()} for item in data]
    recipe = get_recipe("amodal-depthfm-paper", batch_size=4, batch_per_device=2, max_steps=4, warmup_steps=1,
                        decay_steps=4, lr=1e-3, max_grad_norm=1.0, validate_every=100)

    def run(folder, steps, resume=False):
        wrapper = FlowMatchingLoss(tiny_amodal_depthfm(seed=0), time_grid=recipe.time_grid)
        vae_before = {k: v.clone() for k, v in wrapper.model.autoencoder.state_dict().items()}
        result = train(wrapper, flow_matching_objective, data, recipe.__class__(**{**recipe.__dict__, "max_steps": steps}),
                       folder, resume=resume, parameters=list(wrapper.model.unet.parameters()), progress=False)
        assert all(torch.equal(v, wrapper.model.autoencoder.state_dict()[k]) for k, v in vae_before.items())
        return wrapper, result

    whole, full = run(tmp_path / "full", 4)
    _, first = run(tmp_path / "split", 2)
    resumed, second = run(tmp_path / "split", 4, resume=True)
    assert first.losses + second.losses == full.losses
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))
    loaded = AmodalDepthFM.from_pretrained(tmp_path / "full" / "model")
    assert all(torch.equal(a, b) for a, b in zip(loaded.unet.state_dict().values(), whole.model.unet.state_dict().values()))


def test_tensorboard_gets_the_logged_scalars_where_installed(tmp_path, monkeypatch):
    import sys
    import types

    written = []

    class Writer:
        def __init__(self, folder):
            written.append(("folder", folder))

        def add_scalar(self, name, value, step):
            written.append((name, step))

        def close(self):
            written.append(("closed",))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    train(_model(), amodal_dav2_objective(), _data(), _recipe(max_steps=2), tmp_path, progress=False)
    assert written[0] == ("folder", str(tmp_path / "tensorboard")) and written[-1] == ("closed",)
    assert ("train/loss", 1) in written and ("train/lr", 2) in written and ("train/grad_norm", 2) in written


def test_validation_rows_are_written_and_change_nothing_of_training(tmp_path):
    """validate runs every validate_every steps and at the end; it may draw random numbers
    without changing the run, and a resumed run keeps the earlier rows once."""
    data, objective = _data(), amodal_dav2_objective()
    calls = []

    def validate(model):
        calls.append(model.training)
        torch.rand(3)  # a validator may draw: the loop forks the RNG around it
        return {"score": float(len(calls))}

    plain = train(_model(), objective, data, _recipe(validate_every=2), tmp_path / "plain", progress=False)
    checked = train(_model(), objective, data, _recipe(validate_every=2), tmp_path / "checked", progress=False,
                    validate=validate)
    assert checked.losses == plain.losses
    assert calls == [False, False, False]  # steps 2, 4, 6, each in eval mode
    with open(tmp_path / "checked" / "validation.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["step"], float(r["score"])) for r in rows] == [("2", 1.0), ("4", 2.0), ("6", 3.0)]

    calls.clear()
    train(_model(), objective, data, _recipe(validate_every=2, max_steps=3), tmp_path / "split", progress=False,
          validate=validate, checkpoint_every=3)
    resumed = train(_model(), objective, data, _recipe(validate_every=2), tmp_path / "split", resume=True,
                    progress=False, validate=validate)
    assert resumed.losses == plain.losses[3:]
    with open(tmp_path / "split" / "validation.csv", newline="") as handle:
        # step 3 was the end of the first run, so it was validated too; no step twice
        assert [r["step"] for r in csv.DictReader(handle)] == ["2", "3", "4", "6"]


def test_a_checkpoint_older_than_a_recipe_field_resumes_when_the_field_keeps_its_default(tmp_path):
    train(_model(), amodal_dav2_objective(), _data(), _recipe(max_steps=1), tmp_path, progress=False)
    record = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    del record["recipe"]["tiny_model"]  # as written before Recipe.tiny_model existed
    torch.save(record, tmp_path / "checkpoint.pt")
    result = train(_model(), amodal_dav2_objective(), _data(), _recipe(max_steps=2), tmp_path, resume=True, progress=False)
    assert result.step == 2
    with pytest.raises(ValueError, match=r"other settings \(tiny_model: None → 'pooled-8'\)"):
        train(_model(), amodal_dav2_objective(), _data(), _recipe(tiny_model="pooled-8"), tmp_path, resume=True,
              progress=False)


def test_a_hostile_checkpoint_is_not_run_on_resume(tmp_path):
    write_hostile_checkpoint(tmp_path / "checkpoint.pt", tmp_path / "ran")
    with pytest.raises(ValueError, match=r"checkpoint.pt was not loaded: .*posix.mkdir"):
        train(_model(), amodal_dav2_objective(), _data(), _recipe(), tmp_path, resume=True, progress=False)
    assert not (tmp_path / "ran").exists()


def test_a_checkpoint_holding_numpy_state_as_an_array_resumes_exactly(tmp_path):
    """Checkpoints written before the state was stored as ints hold numpy's key as a uint32 array."""
    whole = train(_model(), amodal_dav2_objective(), _data(), _recipe(max_steps=3), tmp_path / "whole", progress=False)
    first = train(_model(), amodal_dav2_objective(), _data(), _recipe(max_steps=2), tmp_path, progress=False)
    record = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    kind, key, *rest = record["rng"]["numpy"]
    record["rng"]["numpy"] = (kind, np.array(key, dtype=np.uint32), *rest)
    torch.save(record, tmp_path / "checkpoint.pt")
    second = train(_model(), amodal_dav2_objective(), _data(), _recipe(max_steps=3), tmp_path, resume=True, progress=False)
    assert first.losses + second.losses == whole.losses
