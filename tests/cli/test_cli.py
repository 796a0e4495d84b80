"""Tests for ``python -m amodal``: help texts, a build from the command line, clear errors."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
import sys

import pytest
import torch

from adiw_testdata import write_sources
from amodal.cli import main, make_parser


def test_top_level_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "build" in out and "import-pix2gestalt" in out


def test_help_names_only_commands_that_exist():
    import re

    import amodal.cli as cli

    description = make_parser().description.lower()
    for missing in ("train", "evaluate", "predict", "explore"):
        assert missing not in description
    assert set(re.findall(r"^- ``([a-z0-9-]+)``", cli.__doc__, re.MULTILINE)) == set(cli.COMMANDS)


def test_build_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    out = capsys.readouterr().out
    for text in ("--images", "--masks", "--sam-checkpoint", "--depth", "--workers", "--size", "--seed", "--retry-errors", "--rank", "--world-size", "examples:", "data_samples"):
        assert text in out


def test_every_option_has_help():
    parser = make_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, command in commands.items():
        for action in command._actions:
            assert action.help, f"{name} {action.option_strings} has no help text"


def test_build_from_the_command_line(tmp_path, capsys):
    write_sources(tmp_path / "src", 2)
    args = ["build", "--images", str(tmp_path / "src/images"), "--masks", str(tmp_path / "src/sa1b"), "--output", str(tmp_path / "out"), "--quiet", "--samples-per-image", "2", "--size", "48"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[0])
    assert summary["sources"] == {"ok": 2}
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["samples"] == summary["samples"]
    # running again resumes: nothing new to do
    assert main(args) == 0
    assert json.loads((tmp_path / "out" / "report.json").read_text())["this_run"]["sources_processed"] == 0


def test_build_options_reach_the_builder(tmp_path, monkeypatch):
    import amodal.cli.build

    seen = {}

    def fake_build(sources, output, depth, config, **options):
        seen.update(options, depth=depth)
        seen["label_mode"] = config.label_mode
        return {"sources": {}, "skipped_sources": {}, "failed_sources": {}, "samples": 0, "buckets": {}, "sources_pending": 0}

    monkeypatch.setattr(amodal.cli.build, "build", fake_build)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # --device cuda is checked at parse time
    (tmp_path / "x.pth").write_bytes(b"")
    (tmp_path / "imgs").mkdir()
    args = ["build", "--images", str(tmp_path / "imgs"), "--output", str(tmp_path / "o"), "--quiet", "--depth", str(tmp_path / "x.pth")]
    assert main(args + ["--device", "cuda", "--workers", "2", "--retry-errors", "--rank", "1", "--world-size", "3",
                        "--label-mode", "paper", "--max-pixels", "1000"]) == 0
    depth = seen.pop("depth")
    assert seen == {"workers": 2, "progress": False, "device": "cuda", "retry_errors": True, "rank": 1, "world_size": 3,
                    "label_mode": "paper", "max_pixels": 1000}
    # the model is made in each worker, on the device the builder gives that worker
    assert depth.args == (str(tmp_path / "x.pth"),) and "device" not in depth.keywords


def test_clear_errors(tmp_path, capsys):
    assert main(["build", "--images", str(tmp_path / "nope"), "--output", str(tmp_path / "out")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "imgs").mkdir()
    assert main(["build", "--images", str(tmp_path / "imgs"), "--output", str(tmp_path / "o"), "--depth", str(tmp_path / "x.pth")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["build", "--images", str(tmp_path / "imgs"), "--output", str(tmp_path / "o"), "--rank", "2", "--world-size", "2"]) == 2
    assert "rank must be" in capsys.readouterr().err


@pytest.mark.slow
def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "amodal", "build", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--output" in result.stdout
    assert make_parser().prog == "amodal"


@pytest.mark.slow
def test_console_script():
    script = Path(sys.executable).parent / "amodal"  # installed by pip from [project.scripts]
    result = subprocess.run([str(script), "evaluate", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--model" in result.stdout


def test_build_depth_and_sam_by_hub_id(tmp_path, monkeypatch, hub_cache, capsys):
    """--depth by hub id is fetched once, here, and handed to the workers pinned to its commit;
    one that cannot be had stops the command in one line before anything is written."""
    import amodal.cli.build
    from hub_testdata import add_to_cache

    seen = {}
    monkeypatch.setattr(amodal.cli.build, "build", lambda sources, output, depth, config, **options: seen.update(
        depth=depth) or {"sources": {}, "skipped_sources": {}, "failed_sources": {}, "samples": 0, "buckets": {},
                         "sources_pending": 0})
    commit = add_to_cache(hub_cache, "depth-anything/Depth-Anything-V2-Large", {"depth_anything_v2_vitl.pth": b"L"})
    (tmp_path / "imgs").mkdir()
    args = ["build", "--images", str(tmp_path / "imgs"), "--output", str(tmp_path / "o"), "--quiet"]
    assert main([*args, "--depth", "depth-anything/Depth-Anything-V2-Large"]) == 0
    assert seen["depth"].args == (f"depth-anything/Depth-Anything-V2-Large@{commit}:depth_anything_v2_vitl.pth",)
    capsys.readouterr()
    assert main([*args, "--depth", "depth-anything/Depth-Anything-V2-Small"]) == 2
    err = capsys.readouterr().err
    assert "--depth checkpoint depth-anything/Depth-Anything-V2-Small" in err and err.count("\n") == 1
    assert "`hf download depth-anything/Depth-Anything-V2-Small depth_anything_v2_vits.pth`" in err
    assert main([*args, "--sam-checkpoint", "ybelkada/segment-anything", "--sam-model", "vit_l"]) == 2
    err = capsys.readouterr().err
    assert "`hf download ybelkada/segment-anything checkpoints/sam_vit_l_0b3195.pth`" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
