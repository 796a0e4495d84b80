"""scripts/gpu_check.py on a CPU: its tiny mode end to end with stand-in clones and weights, and its parts.

The stand-in clones (``official_testdata.py``) compute with our own exact network, so their
parity rows say nothing about the official code; they exercise the script's importing,
loading of the official layouts, its training run, notebook run and table. The figures that
matter come from a CUDA machine with the real weights (README, "GPU readiness").
"""
import re
import shlex

import pytest
import torch
from official_testdata import write_dav2_clones
from safetensors.torch import save_file

from amodal.models import checkpoints
from amodal.models.amodal_dav2 import AmodalDAV2
from amodal.models.configs import TINY
from amodal.utils.paths import checkout_module, repo_root

gpu_check = checkout_module("scripts/gpu_check.py")
official_code = checkout_module("scripts/official_code.py")


@pytest.fixture
def paths(tmp_path):
    """Stand-in clones and empty weight files: enough for what happens before any weights are read."""
    dav2, amodal = write_dav2_clones(tmp_path)
    for name in ("depth_anything_v2_vits.pth", "model.safetensors"):
        (tmp_path / name).write_bytes(b"")
    return {"--dav2": dav2, "--official": amodal, "--dav2-checkpoint": tmp_path / "depth_anything_v2_vits.pth",
            "--amodal-dav2-checkpoint": tmp_path / "model.safetensors"}


@pytest.fixture
def stand_ins(tmp_path):
    """Stand-in clones, and weights in the official layouts: a DAV2 ViT-S ``.pth`` and an
    Amodal-DAV2 ViT-S ``model.safetensors`` named as the released one (``encoder.*``)."""
    folder = tmp_path / "official"
    dav2, amodal = write_dav2_clones(folder)
    plain = official_code.perturb(official_code.official_dav2(official_code.import_dav2_dpt("dav2", dav2), "vits"), 0)
    state = plain.state_dict()
    state["depth_head.scratch.output_conv2.2.bias"] += 1.0  # random heads end below the final ReLU: all zeros
    torch.save(state, folder / "depth_anything_v2_vits.pth")
    guided = official_code.official_amodal_dav2(official_code.import_dav2_dpt("official", amodal), "vits")
    official_code.perturb(guided, 1)
    save_file({f"encoder.{k}": v.contiguous() for k, v in guided.state_dict().items()}, str(folder / "model.safetensors"))
    return {"--dav2": dav2, "--official": amodal, "--dav2-checkpoint": folder / "depth_anything_v2_vits.pth",
            "--amodal-dav2-checkpoint": folder / "model.safetensors"}


def _argv(paths: dict, *extra) -> list[str]:
    return [item for option, path in paths.items() for item in (option, str(path))] + list(extra)


@pytest.mark.slow
def test_the_tiny_check_runs_every_stage_on_a_cpu(stand_ins, tmp_path, capsys):
    out_folder = tmp_path / "out"
    code = gpu_check.main(_argv(stand_ins, "--dav2-s-checkpoint", str(stand_ins["--dav2-checkpoint"]),
                                "--device", "cpu", "--tiny", "--output", str(out_folder)))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "GPU readiness check (tiny sizes) on CPU" in out and "commit unknown (not a git clone)" in out
    assert re.search(r"^stages: parity \d+ s, training \d+ s, notebook \d+ s ", out, re.MULTILINE)
    rows = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line) for line in out.splitlines())
            if cells[-1] in ("pass", "FAIL")}
    parity = [check for check in rows if check.startswith(("DAV2 ViT-S 84×56", "Amodal-DAV2 ViT-S 56²"))]
    assert len(parity) == 8  # two networks × (exact, fast, official bf16, ours bf16)
    exact = [float(rows[check][0]) for check in parity if "ours exact" in check]
    # the stand-in is our exact network fed the official input de-normalised again: only that rounding differs
    assert len(exact) == 2 and all(gap < 1e-6 for gap in exact), exact
    assert any("train amodal-dav2-s-paper, 3 steps of 4 at 56², bf16, DAV2-S weights: samples/s" in c for c in rows)
    assert any("peak memory (peak RSS growth)" in c and "computed" in rows[c][0] for c in rows)
    assert any(c.startswith("notebook 04_amodal_depthfm (quick profile, DEVICE=cpu)") for c in rows)
    assert all(cells[-1] == "pass" for cells in rows.values()), out
    assert (out_folder / "train" / "log.csv").is_file()
    assert (out_folder / "notebooks" / "04_amodal_depthfm" / "04_amodal_depthfm.ipynb").is_file()


def test_without_a_gpu_it_says_so_in_one_line(paths, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(_argv(paths)) == 2
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "no CUDA device" in out and "--device cpu --tiny" in out


def test_a_cpu_runs_only_the_tiny_check(paths, capsys):
    with pytest.raises(SystemExit):
        gpu_check.parse_args(_argv(paths, "--device", "cpu"))
    assert "add --tiny" in capsys.readouterr().err
    assert gpu_check.parse_args(_argv(paths, "--device", "cpu", "--tiny")).tiny


def test_the_full_notebook_profile_needs_all_three_files(paths, tmp_path, capsys):
    (tmp_path / "depthfm-v1.ckpt").write_bytes(b"")
    with pytest.raises(SystemExit):
        gpu_check.parse_args(_argv(paths, "--depthfm-checkpoint", str(tmp_path / "depthfm-v1.ckpt")))
    err = capsys.readouterr().err
    assert "missing: --vae, --amodal-depthfm-checkpoint" in err


def test_a_missing_weights_file_is_named(paths, tmp_path, capsys):
    paths = {**paths, "--dav2-checkpoint": tmp_path / "nowhere.pth"}
    with pytest.raises(SystemExit):
        gpu_check.parse_args(_argv(paths))
    assert f"--dav2-checkpoint {tmp_path / 'nowhere.pth'}: no such file" in capsys.readouterr().err


def test_a_wrong_clone_ends_in_one_error_line(paths, tmp_path, capsys):
    (tmp_path / "elsewhere").mkdir()
    code = gpu_check.main(_argv({**paths, "--official": tmp_path / "elsewhere"}, "--device", "cpu", "--tiny"))
    err = capsys.readouterr().err
    assert code == 2 and "zhyever/Amodal-Depth-Anything" in err and err.count("\n") == 1


def test_steady_samples_per_s_is_samples_over_seconds(tmp_path):
    # steps 3 and 4 at 10 and 30 samples/s, 30 samples each: 60 samples in 3 + 1 seconds = 15/s
    (tmp_path / "log.csv").write_text("step,loss,lr,grad_norm,samples_per_s\n1,1,1,1,1.000\n2,1,1,1,2.000\n"
                                      "3,1,1,1,10.000\n4,1,1,1,30.000\n")
    assert gpu_check.steady_samples_per_s(tmp_path / "log.csv", skip=2) == pytest.approx(15.0)
    with pytest.raises(ValueError, match="no step after the first 4"):
        gpu_check.steady_samples_per_s(tmp_path / "log.csv", skip=4)


def test_the_released_layout_is_read_with_its_prefix_dropped(tmp_path):
    official = official_code.perturb(AmodalDAV2(TINY), 0)
    released = {f"encoder.{k}": v.contiguous() for k, v in checkpoints.to_official(official.state_dict(), True).items()}
    save_file(released, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="is no DAV2 ViT-S/B/L/G"):  # read, its prefix dropped, then sized
        gpu_check.official_weights(tmp_path / "model.safetensors", amodal=True)
    save_file({"encoder.pretrained.cls_token": torch.zeros(1, 1, 384), "head.x": torch.zeros(1)},
              str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"keys outside encoder\.\*: \['head.x'\]"):
        gpu_check.official_weights(tmp_path / "model.safetensors", amodal=True)


def test_parity_rows_hold_each_mode_to_its_tolerance():
    model = official_code.perturb(AmodalDAV2(TINY), 0)
    generator = torch.Generator().manual_seed(0)
    inputs = (torch.rand(1, 3, 28, 42, generator=generator), torch.ones(1, 1, 28, 42),
              torch.rand(1, 1, 28, 42, generator=generator))
    with torch.no_grad():
        model.set_exact(True)
        reference = model(*inputs)
    assert reference.abs().max() > 0.1
    rows = gpu_check.parity_rows("tiny", lambda: reference.clone(), model, inputs, "cpu")
    assert [row.check for row in rows] == ["tiny: ours exact, fp32", "tiny: ours fast, fp32",
                                           "tiny: official, bf16 autocast", "tiny: ours fast, bf16 autocast"]
    assert float(rows[0].measured) == 0.0 and all(row.passed for row in rows[:2])
    # an official output off by 1e-3 of its range fails the fp32 rows and passes the bf16 ones
    shifted = reference + 1e-3 * reference.abs().max()
    rows = gpu_check.parity_rows("tiny", lambda: shifted.clone(), model, inputs, "cpu")
    assert [row.passed for row in rows] == [False, False, True, True]


def test_a_failing_row_is_marked_and_counted(capsys):
    gpu_check.print_table([gpu_check.Row("a", "1", "≤ 2", True), gpu_check.Row("b", "3", "≤ 2", False)], ["header"])
    out = capsys.readouterr().out
    assert re.search(r"^b\s+3\s+≤ 2\s+FAIL$", out, re.MULTILINE) and "1 of 2 checks pass; 1 FAIL" in out


def test_the_make_target_passes_options_the_script_knows(paths):
    """The gpu-check recipe of the Makefile, its variables set (make's ``$(if …)`` kept when set),
    parses with the script's own parser."""
    text = (repo_root() / "Makefile").read_text()
    recipe = re.search(r"^gpu-check:.*?\n((?:\t.*\n)+)", text, re.MULTILINE).group(1).replace("\\\n", " ")
    command = re.sub(r"\$\(if \$\(\w+\),([^()]*(?:\$\(\w+\)[^()]*)*)\)", r"\1", recipe)
    weights = str(paths["--dav2-checkpoint"])
    command = re.sub(r"\$\((\w+)\)", lambda m: {"BIN": ".venv/bin", "DAV2_CODE": str(paths["--dav2"]),
                                                  "AMODAL_CODE": str(paths["--official"])}.get(m.group(1), weights),
                     command)
    words = shlex.split(command)
    assert words[:2] == [".venv/bin/python", "scripts/gpu_check.py"]
    args = gpu_check.parse_args(words[2:])
    assert args.dav2 == paths["--dav2"] and args.official == paths["--official"]
    given = [args.dav2_checkpoint, args.amodal_dav2_checkpoint, args.dav2_s_checkpoint, args.depthfm_checkpoint,
             args.vae, args.amodal_depthfm_checkpoint]
    assert all(str(path) == weights for path in given)
