"""amodal.harness.notebook: profiles, overrides, seeding and what a run writes."""
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from hub_testdata import add_to_cache

from amodal.harness.notebook import (
    COUNTS,
    RANDOM_WEIGHT_CHECKS,
    REHEARSAL_ENV,
    apply_rehearsal,
    load_profile,
    rehearsal_requested,
    require_inputs,
    setup_run,
)
from amodal.harness.run_notebooks import notebook_paths
from amodal.models.amodal_dav2 import AmodalDAV2
from amodal.models.configs import TINY
from amodal.utils.paths import repo_root
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


@pytest.mark.parametrize("notebook", [p.stem for p in notebook_paths()])
def test_each_rehearsal_lowers_counts_of_the_full_profile_only(notebook):
    table = json.loads((repo_root() / "amodal/harness/profiles" / f"{notebook}.json").read_text())
    full, rehearsed = table["full"], load_profile(notebook, "full", rehearsal=True)
    assert set(rehearsed) == set(full)
    changed = {k for k in full if rehearsed[k] != full[k]}
    assert changed <= COUNTS | RANDOM_WEIGHT_CHECKS, changed   # never a size, a weights file or a data folder
    for key in changed & RANDOM_WEIGHT_CHECKS:  # checks random stand-in weights cannot pass: only turned off
        assert full[key] is True and rehearsed[key] is False, key
    for key in changed - RANDOM_WEIGHT_CHECKS:
        lower = rehearsed[key] if isinstance(rehearsed[key], list) else [rehearsed[key]]
        upper = full[key] if isinstance(full[key], list) else [full[key]]
        assert max(lower) <= max(upper) or max(upper) == 0, key


def test_a_rehearsal_refuses_what_is_not_a_smaller_count():
    full = {"steps": 400, "size": 518, "held_out": 0, "sampling_steps": [1, 2, 4]}
    assert apply_rehearsal("nb", full, {"steps": 2, "held_out": 5, "sampling_steps": [1]}) == \
        {"steps": 2, "size": 518, "held_out": 5, "sampling_steps": [1]}   # held_out 0 = all: any cap is fewer
    for counts, says in (({"size": 64}, "counts only"), ({"steps": 401}, "more than the full profile's"),
                         ({"steps": 0}, "whole numbers"), ({"steps": 2.5}, "whole numbers"),
                         ({"sampling_steps": 1}, "like the full profile's"), ({"batch": 2}, "counts only")):
        with pytest.raises(ValueError, match=says):
            apply_rehearsal("nb", full, counts)
    with pytest.raises(ValueError, match="rehearses the full profile"):
        load_profile("05_training", "quick", rehearsal=True)
    assert rehearsal_requested({REHEARSAL_ENV: " On "}) and not rehearsal_requested({REHEARSAL_ENV: "0"})
    assert not rehearsal_requested({})


def test_expect_asserts_in_a_run_and_records_in_a_rehearsal(tmp_path):
    run = setup_run("05_training", "full", tmp_path / "full", device="cpu", rehearsal=False)
    assert run.expect(True, "the loss falls")
    with pytest.raises(AssertionError, match="the loss falls"):
        run.expect(False, "the loss falls")
    rehearsal = setup_run("05_training", "full", tmp_path / "rehearsal", device="cpu", rehearsal=True)
    assert rehearsal["steps"] < run["steps"]
    assert rehearsal.expect(False, "the loss falls") is False
    record = json.loads(rehearsal.write_metrics({}).read_text())
    assert record["rehearsal"] is True and record["expectations"] == {"the loss falls": False}


def test_a_full_run_given_hub_weights_reports_the_id_and_the_file_it_read(hub_cache, tmp_path):
    """No silent fallback: the weights a full-profile run was given are named in metrics.json by the
    hub id, with the snapshot file the loader read and the commit; weights never read say so."""
    torch.manual_seed(0)
    saved = AmodalDAV2(TINY).save_pretrained(tmp_path / "saved")
    commit = add_to_cache(hub_cache, "org/amodal-tiny", {p.name: p for p in Path(saved).iterdir()})
    run = setup_run("00_quickstart", "full", tmp_path / "out", device="cpu", amodal_dav2_checkpoint="org/amodal-tiny")
    require_inputs(run, weights=("amodal_dav2_checkpoint",))
    AmodalDAV2.from_pretrained(run["amodal_dav2_checkpoint"])   # what the notebook does with it
    run.uses(weights={"Amodal-DAV2": run["amodal_dav2_checkpoint"], "DAV2": "org/never-read", "none": None},
             data={"scene": "synthetic, seed 0"})
    inputs = json.loads(run.write_metrics({}).read_text())["inputs"]
    read = inputs["weights"]["Amodal-DAV2"]
    snapshot = hub_cache / "models--org--amodal-tiny" / "snapshots" / commit
    assert read["spec"] == "org/amodal-tiny" and read["pinned"] == [f"org/amodal-tiny@{commit}"]
    assert [Path(f["path"]) for f in read["files"]] == [snapshot]
    assert read["files"][0]["bytes"] == sum(p.stat().st_size for p in Path(saved).iterdir())
    assert inputs["weights"]["DAV2"] == {"spec": "org/never-read", "files": [], "note": "not read in this run"}
    assert "none" not in inputs["weights"] and inputs["data"] == {"scene": "synthetic, seed 0"}


def test_one_missing_input_of_the_full_profile_is_one_error_naming_it(tmp_path):
    run = setup_run("07_explorer", "full", tmp_path, device="cpu", amodal_dav2_checkpoint="org/a", dav2_checkpoint="org/b",
                    amodal_depthfm_checkpoint=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"^the full profile needs VAE \(got None\)"):
        require_inputs(run, weights=("amodal_dav2_checkpoint", "dav2_checkpoint", "amodal_depthfm_checkpoint", "vae"))


def test_a_rehearsal_may_only_turn_a_random_weight_check_off():
    full = {"ring_test": True, "steps": 10}
    assert apply_rehearsal("nb", full, {"ring_test": False}) == {"ring_test": False, "steps": 10}
    with pytest.raises(ValueError, match="may only turn 'ring_test' off"):
        apply_rehearsal("nb", full, {"ring_test": True})
