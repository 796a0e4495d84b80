"""The ablation variants: what each network sees, its loss, and a short run end to end."""
import json
import os
import signal

import numpy as np
import pytest
import torch

from amodal.training import ablations
from amodal.training.ablations import (PAPER_ABLATIONS, VARIANTS, GuidanceDrop, build_variant, format_ablations, run_ablations,
                              ssi_l1, trend, variant_objective)
from amodal.training.loop import TrainingStopped
from pickle_testdata import write_hostile_checkpoint


def test_guidance_drop_zeroes_only_the_dropped_maps():
    seen = {}

    class Spy(torch.nn.Module):
        needs_visible_mask = False

        def forward(self, image, amodal_mask, observed_depth, visible_mask=None):
            seen.update(mask=amodal_mask.clone(), depth=observed_depth.clone())
            return observed_depth

    ones = torch.ones(1, 1, 4, 4)
    GuidanceDrop(Spy(), ("amodal_mask",))(torch.zeros(1, 3, 4, 4), ones, ones * 0.5)
    assert seen["mask"].eq(1).all() and seen["depth"].eq(0).all()
    GuidanceDrop(Spy(), ("observed_depth",))(torch.zeros(1, 3, 4, 4), ones, ones * 0.5)
    assert seen["mask"].eq(0).all() and seen["depth"].eq(0.5).all()
    with pytest.raises(ValueError, match="keep names"):
        GuidanceDrop(Spy(), ("visible_mask",))


def test_ssi_l1_is_zero_for_an_affine_copy_and_matches_numpy():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 1, 6, 6, generator=g)
    mask = torch.rand(2, 1, 6, 6, generator=g) > 0.3
    assert ssi_l1(3 * target - 1, target, mask) < 1e-6
    prediction = torch.rand(2, 1, 6, 6, generator=g)
    expected = []
    for b in range(2):  # float64 least squares by numpy, then the masked L1
        p, t, m = prediction[b, 0].double().numpy(), target[b, 0].double().numpy(), mask[b, 0].numpy()
        a = np.stack([p[m], np.ones(m.sum())], 1)
        s, c = np.linalg.lstsq(a, t[m], rcond=None)[0]
        expected.append(np.abs(s * p[m] + c - t[m]))
    assert abs(float(ssi_l1(prediction, target, mask)) - np.concatenate(expected).mean()) < 1e-6


def test_variants_build_and_their_objectives_are_finite():
    batch = {"image": torch.rand(2, 3, 28, 28), "amodal_mask": torch.zeros(2, 1, 28, 28),
             "observed_depth": torch.rand(2, 1, 28, 28), "target_depth": torch.rand(2, 1, 28, 28) * 0.8 + 0.1}
    batch["amodal_mask"][:, :, 5:20, 5:20] = 1
    batch["visible_mask"] = batch["amodal_mask"].clone()
    batch["visible_mask"][:, :, :, 12:] = 0
    for variant in VARIANTS.values():
        model = build_variant(variant)
        loss = variant_objective(variant)(model, batch)
        assert torch.isfinite(loss), variant.name
    assert isinstance(build_variant(VARIANTS["ssi"]).model.head.scratch.output_conv2[3], torch.nn.Identity)


def test_trend_compares_sides_of_full():
    results = {"full": {"overall_rmse": 2.0}, "no_guidance": {"overall_rmse": 3.0}, "depth_only": {"overall_rmse": 1.5}}
    out = trend(results)
    assert out["no_guidance"]["agrees"] and not out["depth_only"]["agrees"]
    assert out["no_guidance"]["paper"] == PAPER_ABLATIONS["no_guidance"]


@pytest.mark.slow
def test_a_short_run_writes_the_json_and_resumes(tmp_path):
    names = ("full", "depth_only", "aligned_inference")
    report = run_ablations(tmp_path, steps=2, pool=4, held_out=3, names=names, command="test", progress=False)
    saved = json.loads((tmp_path / "ablations.json").read_text())
    assert saved["results"].keys() == set(names) and saved["command"] == "test"
    assert set(saved["trend"]) == {"depth_only", "aligned_inference"}
    assert "aligned_inference" not in saved["train_seconds"]
    again = run_ablations(tmp_path, steps=2, pool=4, held_out=3, names=names, progress=False)  # finished: scored again
    assert again["results"] == report["results"]
    assert "depth_only" in format_ablations(again)


def test_a_finished_variant_is_reused_only_for_the_same_steps_and_pool(tmp_path, capsys):
    from amodal.cli import main

    run_ablations(tmp_path, steps=2, pool=4, held_out=1, names=("full",), progress=False)
    weights = (tmp_path / "full" / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match=r"full.checkpoint.pt holds variant 'full' trained with other settings "
                                         r"\(decay_steps: 2 → 1, max_steps: 2 → 1; .*delete .*full to train it again"):
        run_ablations(tmp_path, steps=1, pool=4, held_out=1, names=("full",), progress=False)
    with pytest.raises(ValueError, match=r"other settings \(synth_pool: 4 → 3;"):
        run_ablations(tmp_path, steps=2, pool=3, held_out=1, names=("full",), progress=False)
    assert main(["ablate", "--variants", "full", "--steps", "2", "--pool", "3", "--held-out", "1", "--quiet",
                 "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "synth_pool: 4 → 3" in err and err.count("\n") == 1
    assert (tmp_path / "full" / "checkpoint.pt").read_bytes() == weights  # refused, not retrained
    assert run_ablations(tmp_path, steps=2, pool=4, held_out=1, names=("full",), progress=False)["steps"] == 2


def test_a_hostile_checkpoint_in_a_variant_folder_is_refused_and_runs_nothing(tmp_path):
    write_hostile_checkpoint(tmp_path / "depth_only" / "checkpoint.pt", tmp_path / "ran")
    with pytest.raises(ValueError, match=r"depth_only.checkpoint.pt was not loaded: .*posix.mkdir"):
        run_ablations(tmp_path, steps=1, pool=2, held_out=1, names=("depth_only",), progress=False)
    assert not (tmp_path / "ran").exists()


def test_a_stopped_variant_ends_the_run_without_a_report(tmp_path, monkeypatch):
    def stopping(variant):
        objective = variant_objective(variant)

        def first_step_then_sigterm(model, batch):
            os.kill(os.getpid(), signal.SIGTERM)  # read by the loop after this step
            return objective(model, batch)
        return first_step_then_sigterm

    monkeypatch.setattr(ablations, "variant_objective", stopping)
    with pytest.raises(TrainingStopped, match="stopped by SIGTERM while training .*full .step 1 of 3") as stopped:
        run_ablations(tmp_path, steps=3, pool=2, held_out=1, names=("full", "depth_only"), progress=False)
    assert stopped.value.signal == signal.SIGTERM
    assert (tmp_path / "full" / "checkpoint.pt").is_file() and not (tmp_path / "depth_only").exists()
    assert not (tmp_path / "ablations.json").exists()


def test_data_scale_trains_on_nested_pools(tmp_path):
    from amodal.training.ablations import run_data_scale

    report = run_data_scale(tmp_path, steps=1, pool=8, held_out=2, fractions=(0.25, 1.0), progress=False)
    assert [r["scenes"] for r in report["rows"]] == [2, 8]
    assert (tmp_path / "scale-2" / "checkpoint.pt").is_file() and (tmp_path / "data_scale.json").is_file()
    with pytest.raises(ValueError, match="fractions"):
        run_data_scale(tmp_path, fractions=(0.0,))


def test_command_line(tmp_path, capsys):
    from amodal.cli import main

    assert main(["ablate", "--variants", "nope", "--output", str(tmp_path)]) == 2
    assert "unknown variant" in capsys.readouterr().err


def test_ssi_predictions_are_put_in_the_observed_frame_before_scoring():
    from amodal.training.ablations import aligned_to_observed

    amodal = torch.zeros(1, 8, 8)
    amodal[:, 2:6, 2:6] = 1
    visible = amodal.clone()
    visible[:, :, 4:] = 0
    observed = torch.linspace(0, 1, 64).view(1, 8, 8)
    item = {"amodal_mask": amodal, "visible_mask": visible, "observed_depth": observed}
    out = aligned_to_observed(lambda it: -3 * it["observed_depth"][0].numpy() + 7)(item)  # an affine copy, negated
    np.testing.assert_allclose(out, observed[0].numpy(), atol=1e-5)
