"""``python -m amodal explore``: the explorer (:func:`amodal.app.widgets.explorer_app`) as a web app, served by Voila.

Voila runs a notebook and shows only its widgets. The command writes a two-cell notebook
(``%matplotlib widget``, then the app) and, beside it, ``explorer_settings.json``: the
app's keyword arguments, which the notebook reads as data — a path or a name never becomes
Python source. It serves them from a temporary folder on 127.0.0.1 (this machine only; reach
it from elsewhere through an SSH tunnel).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from amodal.cli.arguments import device, port, positive_int
from amodal.utils.paths import repo_root

EXPLORE_EXAMPLES = """\
examples:
  # held-out synthetic scenes, the fills, and the sample photos (no weights needed):
  python -m amodal explore
  # a trained model on our ADIW shards, sorted by an evaluation's per-sample errors:
  python -m amodal explore --data runs/adiw_samples --model runs/dav2/model --report runs/eval --port 8870

Then open http://127.0.0.1:PORT/ in a browser (from another machine: ssh -L PORT:127.0.0.1:PORT host).
"""
DEFAULT_MODEL = "checkpoints/amodal-dav2-tiny-synth"
SETTINGS_NAME = "explorer_settings.json"  # beside the notebook, which reads it from its own folder


def add_explore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="synth", help="'synth' (held-out synthetic scenes), a folder of our ADIW shards, or the official layout (default synth)")
    parser.add_argument("--model", default=None,
                        help=f"an Amodal-DAV2 (model.safetensors or a saved folder); default {DEFAULT_MODEL} when it exists, "
                        "else none (the fills only); 'none' for none")
    parser.add_argument("--report", type=Path, default=None, help="an evaluation's --output folder (samples.csv) to sort and filter by")
    parser.add_argument("--photos", type=Path, default=None, help="the photos an ADIW folder was built from, to recover its occluders (default data_samples/images)")
    parser.add_argument("--count", type=positive_int, default=24, help="how many samples to load (default 24)")
    parser.add_argument("--size", type=positive_int, default=112, help="the samples' side, a multiple of 14 (default 112)")
    parser.add_argument("--sam-checkpoint", type=Path, default=None, help="SAM for the photo's clicks (default: the classical random-walker fallback)")
    parser.add_argument("--sam-model", default="vit_h", help="SAM size of --sam-checkpoint (default vit_h)")
    parser.add_argument("--device", type=device, default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--port", type=port, default=8866, help="port on 127.0.0.1 (default 8866)")
    parser.add_argument("--write-notebook", type=Path, default=None,
                        help=f"write the app's notebook here, and {SETTINGS_NAME} beside it, and exit (to run it in JupyterLab)")


def app_settings(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`amodal.app.widgets.explorer_app` for the command's arguments (paths made absolute)."""

    model = args.model
    if model is None:
        default = repo_root() / DEFAULT_MODEL
        model = str(default) if default.exists() else None
    elif model == "none":
        model = None
    else:
        model = str(Path(model).resolve())
    def absolute(path):
        return None if path is None else str(Path(path).resolve())

    return {"data": args.data if args.data == "synth" else absolute(args.data), "model": model, "report": absolute(args.report),
            "photos": absolute(args.photos), "count": args.count, "size": args.size,
            "sam_checkpoint": absolute(args.sam_checkpoint), "sam_model": args.sam_model, "device": args.device}


def app_notebook() -> dict:
    """The notebook Voila serves: the ipympl backend, then the app with the settings beside it.

    Its source is the same for every setting: a kernel runs in its notebook's folder (Voila's
    and JupyterLab's alike), so the fixed name finds the settings that :func:`write_app` wrote.
    """

    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%matplotlib widget"),
        nbformat.v4.new_code_cell(f"import json\n\nfrom amodal.app.widgets import explorer_app\n\n"
                                  f"# written by `python -m amodal explore` beside this notebook\n"
                                  f"with open({SETTINGS_NAME!r}, encoding=\"utf-8\") as file:\n"
                                  f"    settings = json.load(file)\n"
                                  f"explorer_app(**settings)"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def write_app(notebook: Path, settings: dict) -> Path:
    """Write the app's notebook and its settings beside it; returns the settings' path."""
    notebook = Path(notebook)
    path = notebook.parent / SETTINGS_NAME
    path.write_text(json.dumps(settings, indent=1), encoding="utf-8")
    nbformat.write(app_notebook(), notebook)
    return path


def voila_command(notebook: Path, port: int) -> list[str]:
    """Voila on 127.0.0.1 without opening a browser."""
    return [sys.executable, "-m", "voila", str(notebook), f"--port={port}", "--Voila.ip=127.0.0.1", "--no-browser",
            "--VoilaConfiguration.show_tracebacks=True"]


def run_explore(args: argparse.Namespace) -> int:
    for name in ("data", "report", "photos", "sam_checkpoint"):
        value = getattr(args, name)
        if value is not None and str(value) != "synth" and not Path(value).exists():
            raise FileNotFoundError(f"--{name.replace('_', '-')}: no such file or folder: {value}")
    if args.model not in (None, "none") and not Path(args.model).exists():
        raise FileNotFoundError(f"--model: no such checkpoint: {args.model}")
    settings = app_settings(args)
    if args.write_notebook is not None:
        written = write_app(args.write_notebook, settings)
        print(f"wrote {args.write_notebook} and, beside it, its settings {written}")
        return 0
    with tempfile.TemporaryDirectory(prefix="amodal-explore-") as folder:
        path = Path(folder) / "explorer.ipynb"
        write_app(path, settings)
        print(f"serving the explorer at http://127.0.0.1:{args.port}/ (Ctrl-C stops it)", flush=True)
        try:
            return subprocess.call(voila_command(path, args.port))
        except KeyboardInterrupt:
            return 0
