"""python -m amodal explore: the arguments, the app's notebook and its settings, the Voila command
(the running server: test_explore_server.py; the served page in a browser: test_browser.py)."""
import json
import re
import socket
import sys
import types
from pathlib import Path

import nbformat
import pytest

from amodal.cli import main, make_parser
from amodal.cli import explore
from amodal.cli.explore import DEFAULT_MODEL, SETTINGS_NAME, app_notebook, app_settings, voila_command
from amodal.utils.paths import repo_root


def test_settings_are_absolute_and_the_default_model_is_used_only_where_it_exists(tmp_path):
    args = make_parser().parse_args(["explore", "--data", str(tmp_path), "--report", "eval", "--port", "9001"])
    settings = app_settings(args)
    assert settings["data"] == str(tmp_path.resolve()) and Path(settings["report"]).is_absolute()
    assert settings["count"] == 24 and settings["size"] == 112 and args.port == 9001
    assert args.max_kernels == 4 and args.idle_timeout == 600 and not args.no_token
    default = repo_root() / DEFAULT_MODEL
    assert settings["model"] == (str(default) if default.exists() else None)
    assert app_settings(make_parser().parse_args(["explore", "--model", "none"]))["model"] is None
    assert app_settings(make_parser().parse_args(["explore"]))["data"] == "synth"


def test_write_notebook_writes_the_app_and_its_settings_beside_it(tmp_path, capsys):
    path = tmp_path / "app.ipynb"
    assert main(["explore", "--model", "none", "--count", "5", "--write-notebook", str(path)]) == 0
    notebook = nbformat.read(path, as_version=4)
    assert notebook.cells[0].source == "%matplotlib widget"
    assert "explorer_app(**settings)" in notebook.cells[1].source
    assert notebook.cells[1].source == app_notebook().cells[1].source  # no setting in the source
    settings = json.loads((tmp_path / SETTINGS_NAME).read_text())
    assert settings["count"] == 5 and settings["model"] is None and settings["data"] == "synth"
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    assert SETTINGS_NAME in capsys.readouterr().out


def _run_app_cell(folder: Path, monkeypatch) -> dict:
    """Run the notebook's app cell as its kernel would (in the notebook's folder), with a stand-in
    ``explorer_app`` that records its arguments."""
    calls = []
    monkeypatch.setitem(sys.modules, "amodal.app.widgets", types.SimpleNamespace(explorer_app=lambda **kw: calls.append(kw)))
    monkeypatch.chdir(folder)
    source = nbformat.read(folder / "app.ipynb", as_version=4).cells[1].source
    exec(compile(source, "app.ipynb", "exec"), {})
    assert len(calls) == 1
    return calls[0]


def test_a_data_path_with_quotes_reaches_the_app_unchanged_and_runs_nothing(tmp_path, monkeypatch, capsys):
    # closes the triple-quoted string the old notebook pasted its settings into, then writes a file
    name = """x'''+open('pwned','w').write('1')+'''" \\' \"\"\"; import os; os.system('touch pwned2') #"""
    data = tmp_path / name
    data.mkdir()
    notebook = tmp_path / "nb" / "app.ipynb"
    notebook.parent.mkdir()
    assert main(["explore", "--model", "none", "--data", str(data), "--write-notebook", str(notebook)]) == 0
    received = _run_app_cell(notebook.parent, monkeypatch)
    assert received["data"] == str(data.resolve()) and received["count"] == 24
    assert not any(tmp_path.rglob("pwned*"))
    assert name not in notebook.read_text()


def test_missing_paths_are_named(tmp_path, capsys):
    assert main(["explore", "--data", str(tmp_path / "nowhere")]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["explore", "--model", str(tmp_path / "none.safetensors")]) == 2
    assert "--model" in capsys.readouterr().err


def test_a_port_in_use_is_an_error_not_another_port(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["explore", "--model", "none", "--port", str(port)]) == 2
    assert f"--port {port}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        make_parser().parse_args(["explore", "--port", "70000"])


def test_voila_listens_on_loopback_only_with_limits_and_no_tracebacks(tmp_path):
    command = voila_command(tmp_path / "app.ipynb", 8123, max_kernels=3, idle_timeout=120)
    assert command[1:3] == ["-m", "voila"] and "--port=8123" in command and "--Voila.port_retries=0" in command
    assert "--Voila.ip=127.0.0.1" in command and "--no-browser" in command
    assert "--VoilaConfiguration.show_tracebacks=False" in command
    assert "--VoilaConfiguration.multi_kernel_manager_class=amodal.app.serving.CappedKernelManager" in command
    assert {"--CappedKernelManager.max_kernels=3", "--CappedKernelManager.cull_idle_timeout=120",
            "--CappedKernelManager.cull_interval=30", "--CappedKernelManager.cull_connected=True"} <= set(command)
    assert "--Voila.auto_token=True" in command
    assert "--Voila.auto_token=True" not in voila_command(tmp_path / "app.ipynb", 8123, token=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _served(monkeypatch, argv):
    """What ``run_explore`` hands to :func:`explore.serve`, without starting Voila."""
    seen = {}

    def serve(command, env):
        seen.update(command=command, env=env, folder=Path(command[3]).parent, files=sorted(p.name for p in Path(command[3]).parent.iterdir()))
        return 0

    monkeypatch.setattr(explore, "serve", serve)
    assert main(argv) == 0
    return seen


def test_the_printed_address_carries_the_token_voila_is_given(monkeypatch, capsys):
    monkeypatch.setenv("JUPYTER_TOKEN", "from-the-environment")
    port = _free_port()
    seen = _served(monkeypatch, ["explore", "--model", "none", "--port", str(port)])
    out = capsys.readouterr().out
    token = re.search(rf"http://127\.0\.0\.1:{port}/\?token=([0-9a-f]+) ", out).group(1)
    assert len(token) >= 32 and seen["env"]["JUPYTER_TOKEN"] == token
    assert token not in " ".join(seen["command"])  # in the environment, not the process list
    assert seen["files"] == ["explorer.ipynb", SETTINGS_NAME]
    assert not seen["folder"].exists()  # removed when the command returns
    again = _served(monkeypatch, ["explore", "--model", "none", "--port", str(port)])
    assert again["env"]["JUPYTER_TOKEN"] != token  # a new one each run


def test_no_token_warns_on_stderr(monkeypatch, capsys):
    monkeypatch.setenv("JUPYTER_TOKEN", "from-the-environment")
    seen = _served(monkeypatch, ["explore", "--model", "none", "--port", str(_free_port()), "--no-token"])
    captured = capsys.readouterr()
    assert "warning: --no-token" in captured.err and "?token=" not in captured.out
    assert "JUPYTER_TOKEN" not in seen["env"] and "--Voila.auto_token=True" not in seen["command"]


def test_model_and_sam_by_hub_id(tmp_path, hub_cache, capsys):
    import torch

    from amodal.models.amodal_dav2 import AmodalDAV2
    from amodal.models.configs import TINY
    from hub_testdata import add_to_cache, folder_files

    AmodalDAV2(TINY).save_pretrained(tmp_path / "model")
    add_to_cache(hub_cache, "zhyever/Amodal-Depth-Anything-DAV2", folder_files(tmp_path / "model"))
    path = tmp_path / "app.ipynb"
    assert main(["explore", "--model", "zhyever/Amodal-Depth-Anything-DAV2", "--write-notebook", str(path)]) == 0
    settings = json.loads((tmp_path / SETTINGS_NAME).read_text())
    assert settings["model"] == "zhyever/Amodal-Depth-Anything-DAV2"   # the app reads the same cache
    assert main(["explore", "--model", "none", "--sam-checkpoint", "ybelkada/segment-anything",
                 "--write-notebook", str(path)]) == 2
    err = capsys.readouterr().err
    assert "--sam-checkpoint" in err and "checkpoints/sam_vit_h_4b8939.pth" in err and err.count("\n") == 1
    assert torch.is_tensor(AmodalDAV2.from_pretrained(settings["model"]).encoder.cls_token)


def test_base_depth_is_the_toy_by_default_and_takes_a_checkpoint(tmp_path, capsys):
    assert app_settings(make_parser().parse_args(["explore"]))["base"] == "row-prior"
    assert app_settings(make_parser().parse_args(["explore"]))["pix2gestalt"] is None
    (tmp_path / "dav2").mkdir()
    settings = app_settings(make_parser().parse_args(["explore", "--base", str(tmp_path / "dav2")]))
    assert settings["base"] == str((tmp_path / "dav2").resolve())
    with pytest.raises(SystemExit):
        make_parser().parse_args(["explore", "--base", str(tmp_path / "missing")])
    assert "no such file or folder" in capsys.readouterr().err
