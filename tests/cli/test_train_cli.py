"""python -m amodal train: clear errors, recipes run from the command line, a run killed by SIGKILL resumed exactly,
one stopped by SIGTERM or Ctrl-C ended with 143 or 130, and a hostile checkpoint refused without running."""
import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from pickle_testdata import write_hostile_checkpoint

from amodal.cli import main
from amodal.data.items import training_data
from amodal.training.recipes import RECIPES, get_recipe

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


@pytest.mark.slow
def test_bad_recipe_and_resume_errors(tmp_path):
    out = _cli("--recipe", "nope", "--data", "synth", "--output", str(tmp_path))
    assert out.returncode == 2 and "unknown recipe 'nope'" in out.stderr
    out = _cli(*RUN, "--set", "max_steps=1", "--output", str(tmp_path / "new"), "--resume")
    assert out.returncode == 2 and "nothing to resume" in out.stderr


@pytest.mark.slow
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
    assert torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["step"] in (4, 6)
    resumed = _cli(*RUN, "--set", "max_steps=8", "--output", str(tmp_path / "killed"), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert _losses(tmp_path / "killed") == _losses(tmp_path / "full")
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_hostile_checkpoint_is_refused_in_one_line_and_runs_nothing(tmp_path, capsys):
    checkpoint = write_hostile_checkpoint(tmp_path / "run" / "checkpoint.pt", tmp_path / "ran")
    assert main(["train", *RUN, "--set", "max_steps=2", "--output", str(tmp_path / "run"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {checkpoint} was not loaded") and err.count("\n") == 1
    assert not (tmp_path / "ran").exists()


@pytest.mark.slow
@pytest.mark.parametrize("stop, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_run_saves_a_checkpoint_and_exits_nonzero(tmp_path, stop, code):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-m", "amodal", "train", *RUN, "--set", "max_steps=200",
                                "--output", str(tmp_path)], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not ((tmp_path / "log.csv").is_file() and len(_losses(tmp_path)) >= 2):
        time.sleep(0.05)
    process.send_signal(stop)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    assert f"stopped by {stop.name} at step" in err and "--resume" in err and str(tmp_path / "checkpoint.pt") in err
    step = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"]
    assert 2 <= step < 200 and int(_losses(tmp_path)[-1][0]) == step


@pytest.mark.parametrize("recipe, size", [("amodal-dav2-b-paper", "tiny"), ("amodal-depthfm-paper", None)])


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_mask_completer_recipe_trains_validates_and_saves_from_the_command_line(tmp_path):
    """amodal-mask-completer-tiny: two steps on crops of 48² scenes, validated by hidden IoU beside the hull."""
    from amodal.models.mask_completer import MaskCompleter

    out = _cli("--recipe", "amodal-mask-completer-tiny", "--data", "synth", "--init", "none", "--quiet",
               "--set", "scene_size=48", "--set", "input_size=32", "--set", "synth_pool=3", "--set", "batch_size=2",
               "--set", "batch_per_device=2", "--set", "max_steps=2", "--set", "warmup_steps=1",
               "--set", "validate_every=1", "--validation-count", "3", "--output", str(tmp_path))
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "validation.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["step"] for r in rows] == ["1", "2"]
    assert 0 <= float(rows[-1]["hidden_iou"]) <= 1 and 0 < float(rows[-1]["hull_hidden_iou"]) <= 1
    model = MaskCompleter.from_pretrained(tmp_path / "model")
    assert model.config.input_size == 32 and model.config.width == 16
    bend = _cli("--recipe", "amodal-mask-completer-tiny", "--data", "bend", "--init", "none", "--quiet",
                "--output", str(tmp_path / "bend"))
    assert bend.returncode != 0 and "holds no objects to complete" in bend.stderr


@pytest.mark.slow
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


def test_init_by_hub_id_starts_from_the_cached_official_file(tmp_path, monkeypatch, hub_cache):
    from hub_testdata import add_to_cache
    from official_keys import official_shapes, random_state

    import amodal.cli.train
    from amodal.models.configs import TINY
    from amodal.training.loop import TrainResult

    official = random_state(official_shapes(TINY.embed_dim, TINY.depth, TINY.features, TINY.out_channels,
                                            TINY.swiglu, grid=TINY.img_size // 14), seed=7)
    torch.save(official, tmp_path / "vits.pth")
    add_to_cache(hub_cache, "depth-anything/Depth-Anything-V2-Small", {"depth_anything_v2_vits.pth": tmp_path / "vits.pth"})
    seen = {}

    def fake_train(model, objective, data, recipe, output, **options):
        seen["model"] = model
        return TrainResult(recipe.max_steps)

    monkeypatch.setattr(amodal.cli.train, "train", fake_train)
    run = [a if a != "none" else "depth-anything/Depth-Anything-V2-Small" for a in RUN]
    assert main(["train", *run, "--set", "max_steps=1", "--output", str(tmp_path / "run")]) == 0
    model = seen["model"]
    assert torch.equal(model.encoder.blocks[0].attn.qkv.weight, official["pretrained.blocks.0.attn.qkv.weight"])
    assert torch.equal(model.head.scratch.refinenet1.out_conv.weight, official["depth_head.scratch.refinenet1.out_conv.weight"])
