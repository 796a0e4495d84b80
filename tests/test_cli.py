"""Tests for ``python -m amodal``: help texts, a build from the command line, clear errors."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from adiw_testdata import write_sources
from amodal.__main__ import main, make_parser


def test_top_level_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "build" in out and "import-pix2gestalt" in out


def test_build_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    out = capsys.readouterr().out
    for text in ("--images", "--masks", "--sam-checkpoint", "--depth", "--workers", "--size", "--seed", "examples:", "data_samples"):
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


def test_clear_errors(tmp_path, capsys):
    assert main(["build", "--images", str(tmp_path / "nope"), "--output", str(tmp_path / "out")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "imgs").mkdir()
    assert main(["build", "--images", str(tmp_path / "imgs"), "--output", str(tmp_path / "o"), "--depth", str(tmp_path / "x.pth")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "amodal", "build", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--output" in result.stdout
    assert make_parser().prog == "python -m amodal"
