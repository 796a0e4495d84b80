"""python -m amodal train: overrides, data and model choice, clear errors, and a run killed by SIGKILL resumed exactly."""
import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from amodal.data.items import training_data
from amodal.training.recipes import parse_overrides
from amodal.training.setup import build_model
from amodal.training.recipes import RECIPES, get_recipe


def test_overrides_are_typed():
    assert parse_overrides(["max_steps=3", "lr=1e-4", "size=tiny", "time_grid=none"]) == {
        "max_steps": 3, "lr": 1e-4, "size": "tiny", "time_grid": None}
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        parse_overrides(["max_steps"])
    with pytest.raises(ValueError, match="no field 'steps'"):
        parse_overrides(["steps=3"])
    assert parse_overrides(["activation_checkpointing=false"]) == {"activation_checkpointing": False}
    assert parse_overrides(["activation_checkpointing=True"]) == {"activation_checkpointing": True}
    with pytest.raises(ValueError, match="not true or false"):
        parse_overrides(["activation_checkpointing=maybe"])
    with pytest.raises(ValueError, match="'x' is not a int"):
        parse_overrides(["max_steps=x"])


def test_model_and_data_errors(tmp_path):
    recipe = get_recipe("amodal-dav2-s-paper")
    with pytest.raises(ValueError, match="--init depth_anything_v2_vits.pth"):
        build_model(recipe, None)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        training_data(str(tmp_path / "none"), recipe)
    with pytest.raises(FileNotFoundError, match="neither ADIW shards"):
        training_data(str(tmp_path), recipe)
    with pytest.raises(FileNotFoundError, match="not found"):
        build_model(recipe, str(tmp_path / "missing.pth"))
    assert type(training_data("synth", recipe)).__name__ == "SynthStream"
    with pytest.raises(ValueError, match="--init depthfm-v1.ckpt with --vae"):
        build_model(get_recipe("amodal-depthfm-paper"), None)


def test_depthfm_model_trains_its_unet_only():
    module, objective, parameters = build_model(get_recipe("amodal-depthfm-paper"), "none")
    unet = {id(p) for p in module.model.unet.parameters()}
    assert {id(p) for p in parameters} == unet
    assert not any(p.requires_grad for p in module.model.autoencoder.parameters())


RUN = ["--recipe", "amodal-dav2-s-paper", "--data", "synth", "--init", "none", "--quiet",
       "--set", "size=tiny", "--set", "input_size=42", "--set", "batch_size=2", "--set", "batch_per_device=1",
       "--set", "warmup_steps=2", "--set", "decay_steps=20", "--set", "lr=1e-3", "--set", "max_grad_norm=1.0",
       "--checkpoint-every", "2"]


def _cli(*args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "amodal", "train", *args], capture_output=True, text=True, env=env, **kw)


def _losses(folder):
    with open(folder / "log.csv", newline="") as handle:
        return [(row["step"], row["loss"]) for row in csv.DictReader(handle)]


def test_bad_recipe_and_resume_errors(tmp_path):
    out = _cli("--recipe", "nope", "--data", "synth", "--output", str(tmp_path))
    assert out.returncode == 2 and "unknown recipe 'nope'" in out.stderr
    out = _cli(*RUN, "--set", "max_steps=1", "--output", str(tmp_path / "new"), "--resume")
    assert out.returncode == 2 and "nothing to resume" in out.stderr


def test_sigkill_between_checkpoints_then_resume_equals_uninterrupted(tmp_path):
    full = _cli(*RUN, "--set", "max_steps=8", "--output", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr
    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-m", "amodal", "train", *RUN, "--set", "max_steps=8",
                                "--output", str(tmp_path / "killed")], env=env, stderr=subprocess.PIPE)
    log = tmp_path / "killed" / "log.csv"
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once step 5 is logged: after the step-4 checkpoint, before step 6's
        if log.is_file() and len(_losses(tmp_path / "killed")) >= 5:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=False)["step"] in (4, 6)
    resumed = _cli(*RUN, "--set", "max_steps=8", "--output", str(tmp_path / "killed"), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert _losses(tmp_path / "killed") == _losses(tmp_path / "full")
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("recipe, size", [("amodal-dav2-b-paper", "tiny"), ("amodal-depthfm-paper", None)])


def test_paper_recipes_run_from_the_command_line_at_tiny_size(tmp_path, recipe, size):
    """Both paper recipes, tiny networks, two steps on synth: a log, a checkpoint and a loadable model."""
    from amodal.models.amodal_dav2 import AmodalDAV2
    from amodal.models.depthfm import AmodalDepthFM

    extra = ["--set", f"size={size}"] if size else []
    out = _cli("--recipe", recipe, "--data", "synth", "--init", "none", "--quiet", *extra, "--set", "input_size=28"
               if size else "input_size=32", "--set", "batch_size=4", "--set", "batch_per_device=2",
               "--set", "max_steps=2", "--output", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert [step for step, _ in _losses(tmp_path)] == ["1", "2"]
    loader = AmodalDAV2 if size else AmodalDepthFM
    assert loader.from_pretrained(tmp_path / "model") is not None


def test_tiny_synth_recipe_trains_a_fill_residual_model_with_validation(tmp_path):
    from amodal.models.amodal_dav2 import AmodalDAV2

    out = _cli("--recipe", "amodal-dav2-tiny-synth", "--data", "synth", "--init", "none", "--quiet",
               "--set", "input_size=42", "--set", "synth_pool=3", "--set", "batch_size=2", "--set", "batch_per_device=2",
               "--set", "max_steps=2", "--set", "validate_every=1", "--validation-count", "2", "--output", str(tmp_path))
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "validation.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["step"] for r in rows] == ["1", "2"] and 0 < float(rows[-1]["hidden_rmse_x100"]) < 100
    model = AmodalDAV2.from_pretrained(tmp_path / "model")
    assert model.config.fill_residual == 0.2 and model.needs_visible_mask


def test_rich_recipe_draws_its_pool_and_validation_from_the_rich_shapes(tmp_path):
    recipe = get_recipe("amodal-dav2-tiny-synth-rich", input_size=42, synth_pool=2)
    assert (recipe.synth_shapes, RECIPES["amodal-dav2-tiny-synth"].synth_shapes) == ("rich", "simple")
    data = training_data("synth", recipe)
    assert len(data) == 2 and data[0]["id"].startswith("synth-rich-")
    out = _cli("--recipe", "amodal-dav2-tiny-synth", "--data", "synth", "--init", "none", "--quiet",
               "--set", "synth_shapes=cubist", "--output", str(tmp_path))
    assert out.returncode == 2 and "unknown shape set 'cubist'" in out.stderr


def test_tiny_synth_recipe_trains_the_lossless_toy_model_from_the_command_line(tmp_path):
    """amodal-depthfm-tiny-synth on --data bend: two steps, a log, a model that loads and samples."""
    from amodal.models.autoencoders import SpaceToDepthAutoencoder
    from amodal.models.depthfm import AmodalDepthFM

    out = _cli("--recipe", "amodal-depthfm-tiny-synth", "--data", "bend", "--init", "none", "--quiet",
               "--set", "batch_size=4", "--set", "batch_per_device=2", "--set", "max_steps=2", "--output", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert [step for step, _ in _losses(tmp_path)] == ["1", "2"]
    model = AmodalDepthFM.from_pretrained(tmp_path / "model")
    assert isinstance(model.autoencoder, SpaceToDepthAutoencoder) and model.autoencoder.downsample == 2
    assert model.noising_step == 400 and model.unet.config.in_channels == 2 * 12 + 2


def test_bend_data_and_the_tiny_model_choice():
    recipe = get_recipe("amodal-depthfm-tiny-synth")
    data = training_data("bend", recipe)
    assert type(data).__name__ == "BendStream" and data[0]["image"].shape == (3, 32, 32) and data.seed == recipe.seed
    module, objective, _ = build_model(recipe, "none")
    assert type(module.model.autoencoder).__name__ == "SpaceToDepthAutoencoder"
    # the recipe's hidden_loss_weight reaches the loss: weighting the hidden pixels changes it
    weighted, _, _ = build_model(get_recipe("amodal-depthfm-tiny-synth", hidden_loss_weight=3.0), "none")
    assert (module.hidden_weight, weighted.hidden_weight) == (0.0, 3.0)
    batch = {k: v[None] if torch.is_tensor(v) else v for k, v in data[0].items()}
    losses = []
    for m in (module, weighted):
        torch.manual_seed(0)
        losses.append(objective(m, batch).item())
    assert losses[0] != pytest.approx(losses[1], rel=1e-4)
    # the paper recipe with --init none still builds the default tiny model, as before
    module, _, _ = build_model(get_recipe("amodal-depthfm-paper"), "none")
    assert type(module.model.autoencoder).__name__ == "PixelAutoencoder" and module.model.noising_step == 400
    with pytest.raises(ValueError, match="unknown tiny_model 'huge'"):
        build_model(get_recipe("amodal-depthfm-tiny-synth", tiny_model="huge"), "none")
    assert parse_overrides(["tiny_model=pooled-8", "noising_step=120"]) == {"tiny_model": "pooled-8", "noising_step": 120}
    assert parse_overrides(["tiny_model=none"]) == {"tiny_model": None}
