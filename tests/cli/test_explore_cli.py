"""python -m amodal explore: the arguments, the app's notebook and the Voila command (the served page: test_browser.py)."""
import json
from pathlib import Path

import nbformat

from amodal.cli import main, make_parser
from amodal.cli.explore import DEFAULT_MODEL, app_notebook, app_settings, voila_command
from amodal.utils.paths import repo_root


def test_settings_are_absolute_and_the_default_model_is_used_only_where_it_exists(tmp_path):
    args = make_parser().parse_args(["explore", "--data", str(tmp_path), "--report", "eval", "--port", "9001"])
    settings = app_settings(args)
    assert settings["data"] == str(tmp_path.resolve()) and Path(settings["report"]).is_absolute()
    assert settings["count"] == 24 and settings["size"] == 112 and args.port == 9001
    default = repo_root() / DEFAULT_MODEL
    assert settings["model"] == (str(default) if default.exists() else None)
    assert app_settings(make_parser().parse_args(["explore", "--model", "none"]))["model"] is None
    assert app_settings(make_parser().parse_args(["explore"]))["data"] == "synth"


def test_write_notebook_holds_the_widget_backend_and_the_app(tmp_path, capsys):
    path = tmp_path / "app.ipynb"
    assert main(["explore", "--model", "none", "--count", "5", "--write-notebook", str(path)]) == 0
    notebook = nbformat.read(path, as_version=4)
    assert notebook.cells[0].source == "%matplotlib widget"
    source = notebook.cells[1].source
    assert "explorer_app(" in source
    settings = json.loads(source.split("'''")[1])
    assert settings["count"] == 5 and settings["model"] is None and settings["data"] == "synth"
    assert app_notebook(settings).metadata["kernelspec"]["name"] == "python3"


def test_missing_paths_are_named(tmp_path, capsys):
    assert main(["explore", "--data", str(tmp_path / "nowhere")]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["explore", "--model", str(tmp_path / "none.safetensors")]) == 2
    assert "--model" in capsys.readouterr().err


def test_voila_listens_on_loopback_only(tmp_path):
    command = voila_command(tmp_path / "app.ipynb", 8123)
    assert command[1:3] == ["-m", "voila"] and "--port=8123" in command
    assert "--Voila.ip=127.0.0.1" in command and "--no-browser" in command
