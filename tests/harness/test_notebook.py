"""amodal.harness.notebook: profiles, overrides, seeding and what a run writes."""
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from amodal.harness.notebook import load_profile, require_inputs, setup_run
from amodal.utils.seeding import resolve_device


def test_profile_settings_and_overrides(tmp_path):
    run = setup_run("02_scale_shift_alignment", "quick", tmp_path / "out", seed=3, device="cpu", batch=None)
    assert run["batch"] == load_profile("02_scale_shift_alignment", "quick")["batch"]  # None keeps the profile's
    run = setup_run("02_scale_shift_alignment", "full", tmp_path / "out", seed=3, device="cpu", batch=5)
    assert run["batch"] == 5 and run.profile == "full" and run.device == "cpu"
    assert (tmp_path / "out").is_dir()


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown setting 'btach'"):
        setup_run("02_scale_shift_alignment", "quick", tmp_path, btach=4)
    with pytest.raises(ValueError, match="profile must be one of"):
        load_profile("02_scale_shift_alignment", "fast")
    with pytest.raises(ValueError, match="no profile file"):
        load_profile("99_missing", "quick")


def test_seed_makes_runs_repeatable(tmp_path):
    draws = []
    for _ in range(2):
        setup_run("02_scale_shift_alignment", "quick", tmp_path, seed=11, device="cpu")
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert draws[0] == draws[1]


def test_write_metrics_makes_plain_json(tmp_path):
    run = setup_run("02_scale_shift_alignment", "quick", tmp_path, seed=1, device="cpu")
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    run.save_figure(fig, "empty")
    path = run.write_metrics({"rmse": np.float32(0.25), "per_bucket": {"easy": np.arange(2)}, "where": tmp_path})
    record = json.loads(path.read_text())
    assert record["metrics"] == {"rmse": 0.25, "per_bucket": {"easy": [0, 1]}, "where": str(tmp_path)}
    assert record["figures"] == ["empty.png"] and (tmp_path / "empty.png").is_file()
    assert record["seed"] == 1 and record["notebook"] == "02_scale_shift_alignment"
    assert not list(tmp_path.glob("*.tmp"))


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


def test_write_metrics_is_flushed_to_disk(tmp_path, monkeypatch):
    # metrics.json is what the notebook runner trusts afterwards: its bytes are flushed
    # before the rename makes it visible, and the folder after.
    import amodal.utils.atomic

    flushed = []
    monkeypatch.setattr(amodal.utils.atomic, "fsync_path", lambda p: flushed.append(Path(p)))
    run = setup_run("02_scale_shift_alignment", "quick", tmp_path, seed=1, device="cpu")
    path = run.write_metrics({"rmse": 0.5})
    assert [p.name.startswith(".metrics.json.") for p in flushed] == [True, False] and flushed[1] == tmp_path
    assert json.loads(path.read_text())["metrics"] == {"rmse": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_full_profile_inputs_are_a_path_or_for_weights_a_hub_id(tmp_path):
    """A checkpoint parameter may be a hub id (its loader fetches it or names it as missing); a data
    folder must exist; what is missing is named by its parameter."""
    run = setup_run("05_training", "full", tmp_path / "out", device="cpu",
                    dav2_checkpoint="depth-anything/Depth-Anything-V2-Small", adiw_dir=str(tmp_path))
    require_inputs(run, weights=("dav2_checkpoint",), paths=("adiw_dir",))
    run.settings["adiw_dir"] = "depth-anything/Depth-Anything-V2-Small"   # a data folder is no hub id
    with pytest.raises(FileNotFoundError, match=r"the full profile needs ADIW_DIR \(got 'depth-anything/"):
        require_inputs(run, weights=("dav2_checkpoint",), paths=("adiw_dir",))
    for value in (None, str(tmp_path / "missing.pth")):
        run.settings["dav2_checkpoint"] = value
        with pytest.raises(FileNotFoundError, match="needs DAV2_CHECKPOINT .*Hugging Face Hub id.*; weights first"):
            require_inputs(run, weights=("dav2_checkpoint",), hint="weights first")
