"""``python -m amodal explore``: the explorer (:func:`amodal.app.widgets.explorer_app`) as a web app, served by Voila.

Voila runs a notebook and shows only its widgets. The command writes a two-cell notebook
(``%matplotlib widget``, then the app) and, beside it, ``explorer_settings.json``: the
app's keyword arguments, which the notebook reads as data — a path or a name never becomes
Python source. Both go into a temporary folder, removed when the command stops (Ctrl-C,
``SIGTERM`` or ``SIGHUP``: the command stops Voila, which stops its kernels, then cleans up).

The server is made safe to leave running:

- it listens on 127.0.0.1 only (reach it from elsewhere through an SSH tunnel), on exactly
  ``--port`` (Voila would otherwise move to a free port nearby and the printed address be wrong);
- a random token, as Jupyter's: the printed address carries it (``/?token=...``), and a request
  without it gets the login page, not a kernel. Voila reads it from ``JUPYTER_TOKEN`` in its
  environment, so it does not show in the process list. ``--no-token`` turns it off, with a warning;
- every page is a kernel of about 0.6 GB: at most ``--max-kernels`` run at once
  (:class:`amodal.app.serving.CappedKernelManager`; one more request gets a 503 page saying
  why), and a kernel without activity for ``--idle-timeout`` seconds is stopped, open tab or not;
- errors go to the server's log (this command's standard error), never a traceback to the browser.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import nbformat

from amodal.adiw.sam_masks import SAM_FILES
from amodal.cli.arguments import base_depth, device, non_negative_int, port, positive_int, weights
from amodal.models.checkpoints import HUB_FOLDER
from amodal.utils.hub import parse_hub_id, resolve
from amodal.utils.paths import repo_root

EXPLORE_EXAMPLES = """\
examples:
  # held-out synthetic scenes, the fills, and the sample photos (no weights needed):
  python -m amodal explore
  # a trained model on our ADIW shards, sorted by an evaluation's per-sample errors:
  python -m amodal explore --data runs/adiw_samples --model runs/dav2/model --report runs/eval --port 8870

Then open the printed address, http://127.0.0.1:PORT/?token=..., in a browser (from another
machine: ssh -L PORT:127.0.0.1:PORT host, then the same address there). Each open page is a
kernel of about 0.6 GB: at most --max-kernels at once, and one idle for --idle-timeout seconds
is stopped (reload the page to start again). Ctrl-C stops the server.
"""
DEFAULT_MODEL = "checkpoints/amodal-dav2-tiny-synth"
SETTINGS_NAME = "explorer_settings.json"  # beside the notebook, which reads it from its own folder
STOP_TIMEOUT = 30  # seconds Voila has to stop its kernels before it is killed
CELL_ERROR = "The error is in the server's log: the terminal that runs python -m amodal explore."
# Ctrl-C, kill's default and a closed terminal (no SIGHUP on Windows)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def add_explore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="synth", help="'synth' (held-out synthetic scenes), a folder of our ADIW shards, or the official layout (default synth)")
    parser.add_argument("--model", default=None,
                        help=f"an Amodal-DAV2 (model.safetensors, a saved folder, or a hub id such as "
                        f"zhyever/Amodal-Depth-Anything-DAV2); default {DEFAULT_MODEL} when it exists, "
                        "else none (the fills only); 'none' for none")
    parser.add_argument("--report", type=Path, default=None, help="an evaluation's --output folder (samples.csv) to sort and filter by")
    parser.add_argument("--photos", type=Path, default=None, help="the photos an ADIW folder was built from, to recover its occluders (default data_samples/images)")
    parser.add_argument("--count", type=positive_int, default=24, help="how many samples to load (default 24)")
    parser.add_argument("--size", type=positive_int, default=112, help="the samples' side, a multiple of 14 (default 112)")
    parser.add_argument("--base", type=base_depth, default="row-prior",
                        help="D_o of the photos: a Depth Anything V2 checkpoint or hub id (depth-anything/Depth-Anything-V2-Large), "
                        "or 'row-prior', a toy without weights that the page labels as such (default row-prior)")
    parser.add_argument("--pix2gestalt", type=weights, default=None,
                        help="pix2gestalt's released checkpoint (a path or ORG/NAME:FILE): the photo page gets a button "
                        "that proposes the whole object's mask from its painting")
    parser.add_argument("--sam-checkpoint", default=None, help="SAM for the photo's clicks, a path or a hub id such as "
                        "ybelkada/segment-anything (default: the classical random-walker fallback)")
    parser.add_argument("--sam-model", default="vit_h", help="SAM size of --sam-checkpoint (default vit_h)")
    parser.add_argument("--device", type=device, default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--port", type=port, default=8866, help="port on 127.0.0.1 (default 8866)")
    parser.add_argument("--max-kernels", type=non_negative_int, default=4,
                        help="the most pages open at once, each a kernel of about 0.6 GB; one more is refused (default 4; 0: no limit)")
    parser.add_argument("--idle-timeout", type=non_negative_int, default=600,
                        help="stop a page's kernel after this many seconds without activity, even with its tab open "
                        "(default 600; 0: never)")
    parser.add_argument("--no-token", action="store_true",
                        help="serve without a token (by default a new random one each run, in the printed address): "
                        "anyone who can reach the port, every user and program on this machine, can open pages")
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
        model = weights_path(model)
    def absolute(path):
        return None if path is None else str(Path(path).resolve())

    return {"data": args.data if args.data == "synth" else absolute(args.data), "model": model, "report": absolute(args.report),
            "photos": absolute(args.photos), "count": args.count, "size": args.size,
            "sam_checkpoint": weights_path(args.sam_checkpoint), "sam_model": args.sam_model, "device": args.device,
            "base": args.base if args.base == "row-prior" else weights_path(args.base),
            "pix2gestalt": weights_path(args.pix2gestalt)}


def weights_path(spec: str | None) -> str | None:
    """A path made absolute (the app runs in another folder); a hub id that is no path as it is."""
    if spec is None or (not Path(spec).exists() and parse_hub_id(spec) is not None):
        return spec
    return str(Path(spec).resolve())


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


def voila_command(notebook: Path, port: int, max_kernels: int = 4, idle_timeout: int = 600, token: bool = True) -> list[str]:
    """Voila on 127.0.0.1:``port`` exactly, without opening a browser, as the module docstring says.

    With ``token``, Voila takes it from ``JUPYTER_TOKEN`` in its environment (:func:`serve` sets it).
    """

    manager = "CappedKernelManager"
    command = [sys.executable, "-m", "voila", str(notebook), f"--port={port}", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0",
               "--no-browser", "--VoilaConfiguration.show_tracebacks=False", f"--VoilaExecutor.cell_error_instruction={CELL_ERROR}",
               f"--VoilaConfiguration.multi_kernel_manager_class=amodal.app.serving.{manager}",
               f"--{manager}.max_kernels={max_kernels}", f"--{manager}.cull_idle_timeout={idle_timeout}",
               f"--{manager}.cull_interval={max(1, min(60, idle_timeout // 4))}", f"--{manager}.cull_connected=True",
               # the login page must not write a password into the user's Jupyter configuration
               "--PasswordIdentityProvider.allow_password_change=False"]
    if token:
        command.append("--Voila.auto_token=True")
    return command


def check_port_free(port: int) -> None:
    """A clear error now rather than Voila's failure later, where 127.0.0.1:``port`` is taken."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: a closed port is free
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ValueError(f"--port {port}: 127.0.0.1:{port} is already in use; choose another port") from None
            raise


def _stop_here(signum, frame):
    # Once only: a second Ctrl-C must not cut short Voila's stopping of its kernels.
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    raise KeyboardInterrupt


@contextlib.contextmanager
def _stopped_by_signals():
    """Ctrl-C, SIGTERM and SIGHUP (a closed terminal) raise ``KeyboardInterrupt`` here, so cleanup runs."""
    if threading.current_thread() is not threading.main_thread():  # signals reach only the main thread
        yield
        return
    previous = {number: signal.signal(number, _stop_here) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to Voila (which then stops its kernels), a kill after :data:`STOP_TIMEOUT` seconds."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def serve(command: list[str], env: dict) -> int:
    """Run Voila until it exits, or until this process is stopped (``KeyboardInterrupt``); then stop it, once.

    Voila runs in its own session, so a Ctrl-C or a closed terminal reaches only this process,
    which passes one SIGTERM on: Voila stops its kernels on SIGTERM, but a SIGHUP would end it at
    once and leave its connection folder behind. Returns Voila's exit code, or 0 after a stop.
    """

    process = None
    try:
        process = subprocess.Popen(command, env=env, start_new_session=True)
        return process.wait()
    except KeyboardInterrupt:
        print("stopping the explorer", file=sys.stderr, flush=True)
        return 0
    finally:
        if process is not None:
            _stop(process)


def run_explore(args: argparse.Namespace) -> int:
    for name in ("data", "report", "photos"):
        value = getattr(args, name)
        if value is not None and str(value) != "synth" and not Path(value).exists():
            raise FileNotFoundError(f"--{name.replace('_', '-')}: no such file or folder: {value}")
    # weights are fetched now, once, so that a hub id that cannot be had is one line here, not an app that fails
    if args.sam_checkpoint is not None:
        resolve(args.sam_checkpoint, SAM_FILES.get(args.sam_model), what="--sam-checkpoint")
    if args.model not in (None, "none"):
        resolve(args.model, fallback=HUB_FOLDER, what="--model: Amodal-DAV2 checkpoint")
    settings = app_settings(args)
    if args.write_notebook is not None:
        written = write_app(args.write_notebook, settings)
        print(f"wrote {args.write_notebook} and, beside it, its settings {written}")
        return 0
    check_port_free(args.port)
    env = dict(os.environ)
    env.pop("JUPYTER_TOKEN", None)
    address = f"http://127.0.0.1:{args.port}/"
    if args.no_token:
        print(f"warning: --no-token: anyone who can reach 127.0.0.1:{args.port} (every user and program on this machine, "
              "and whoever shares a tunnel to it) can open the explorer and start its kernels", file=sys.stderr)
    else:
        env["JUPYTER_TOKEN"] = secrets.token_hex(24)
        address += f"?token={env['JUPYTER_TOKEN']}"
    limits = (f"at most {args.max_kernels} pages at once" if args.max_kernels else "no limit on open pages") + (
        f", each stopped after {args.idle_timeout} s idle" if args.idle_timeout else ", never stopped when idle")
    with _stopped_by_signals(), tempfile.TemporaryDirectory(prefix="amodal-explore-") as folder:
        notebook = Path(folder) / "explorer.ipynb"
        write_app(notebook, settings)
        print(f"serving the explorer at {address} ({limits}; Ctrl-C stops it)", flush=True)
        return serve(voila_command(notebook, args.port, args.max_kernels, args.idle_timeout, not args.no_token), env)
