"""Every notebook run as a person runs it: JupyterLab on loopback, the notebook opened in
headless Chromium (Playwright), "Run > Run All Cells" chosen from the menu bar.

What the executed-notebook tests (tests/harness/, nbval) cannot see: that the notebook opens
in JupyterLab, the kernel it starts sees the quick profile, and the page shows what the kernel
sent — no traceback, every ipywidget rendered (no "Error displaying widget"), every figure
there as a decoded picture, notebook 07's explorers as ipympl canvases with something drawn.

The server gets a random free port on 127.0.0.1 and a random token, a temporary root where the
notebooks are copied (JupyterLab saves outputs into the file it opened; the checkout's
notebooks stay stripped) and ``AMODAL_RUNS_DIR`` in that root, so no output lands in the
checkout; a screenshot of each page (and of its first ipympl figure) goes to ``<root>/shots/``. Its own settings keep every cell in the page (``windowingMode: none``: off-screen
cells would otherwise not be attached, and their widgets not rendered) and turn off the news
feed. The Voila page of the same explorer is driven in tests/app/test_browser.py.

Chromium: tests/browser_testing.py (installed when root, a skip with advice elsewhere, a
failure under ``CI``). Several minutes for all nine notebooks on a 2-core CPU; one notebook::

    .venv/bin/python -m pytest tests/app/test_jupyterlab.py -k 07_explorer
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser_testing import as_root, free_port

from amodal.utils.paths import repo_root

NOTEBOOKS = sorted(path.name for path in (repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
RUN_ALL_TIMEOUT_S = 600   # a quick notebook takes ≤ 90 s alone; the browser and a busy CPU add to it (06 once took over 420 s under load)
# each notebook's explorers that show a matplotlib figure through ipympl (``%matplotlib widget``)
IPYMPL_FIGURES = {"07_explorer.ipynb": 4}
SETTINGS = {
    # attach every cell, on screen or not, so that every output and widget is rendered and counted
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # no requests to the news feed and no pop-up asking about it
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                          "checkForUpdates": False},
}

# the prompts of the code cells, "[3]:" once run, "[*]:" while queued or running, "[ ]:" never run
PROMPTS = "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.innerText.trim())"
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
# how many pictures decoded, and for each ipympl figure whether a canvas of it holds more than one colour
PICTURES = """() => {
  const images = [...document.querySelectorAll('.jp-OutputArea-output img')];
  const drawn = [...document.querySelectorAll('.jupyter-matplotlib-figure')].map(figure =>
    [...figure.querySelectorAll('canvas')].some(canvas => {
      if (!canvas.width || !canvas.height) return false;
      const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 4; i < pixels.length; i += 4)
        for (let c = 0; c < 4; c++) if (pixels[i + c] !== pixels[c]) return true;
      return false;
    }));
  return {images: images.filter(i => i.complete && i.naturalWidth > 0).length, undecoded: images.length -
          images.filter(i => i.complete && i.naturalWidth > 0).length, ipympl: drawn};
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``jupyter lab`` on a free loopback port with a random token; yields (address, token, root)."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(repo_root() / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".*"))
    for name, values in SETTINGS.items():
        (root / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "settings" / name).write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(24)
    env = {key: value for key, value in os.environ.items() if key != "MPLBACKEND"}  # the kernel's own inline backend
    env.update({
        "AMODAL_PROFILE": "quick", "AMODAL_RUNS_DIR": str(root / "runs"),
        # the kernel imports this checkout, whatever is installed
        "PYTHONPATH": os.pathsep.join(filter(None, [str(repo_root()), os.environ.get("PYTHONPATH")])),
        "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
    })
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.extension_manager=readonly"] + (["--allow-root"] if as_root() else [])  # CI containers
    log = open(root / "lab.log", "w")
    process = subprocess.Popen(command, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    address = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{address}/api/status?token={token}", timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"JupyterLab did not start: {(root / 'lab.log').read_text()[-3000:]}")
        time.sleep(0.5)
    yield address, token, root
    os.killpg(process.pid, signal.SIGTERM)  # the server, which shuts down the kernels it started
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    log.close()


def _shut_down_kernels(address: str, token: str):
    """Stop every kernel of the server, so that the next notebook has the CPU to itself."""
    with urllib.request.urlopen(f"{address}/api/kernels?token={token}", timeout=10) as response:
        kernels = json.load(response)
    for kernel in kernels:
        request = urllib.request.Request(f"{address}/api/kernels/{kernel['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


def run_all_in_lab(browser, lab, path: str) -> dict:
    """Open ``path`` (relative to the server's root) in JupyterLab, choose Run > Run All Cells, wait
    until the kernel is done, save, and report what the page and the saved file show.

    Returns:
        a dict: ``prompts`` (each code cell's prompt, ``[n]:`` once run), ``tracebacks`` (the text of
        every error output on the page), ``errors`` (``ename: evalue`` of every error output in the
        saved file), ``widget_errors`` (widgets shown as ipywidgets' error view or "Error displaying widget"),
        ``pictures`` (decoded images, undecoded images, and for each ipympl figure whether its
        canvas has something drawn), ``seconds`` (from opening to the last cell done).
    """
    # Playwright is optional: without it the ``browser`` fixture has already skipped (or failed under CI)
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    address, token, root = lab
    started = time.monotonic()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        # a workspace of its own, reset: the page holds this notebook alone, not the tabs of earlier ones
        workspace = re.sub(r"\W", "-", path)
        page.goto(f"{address}/lab/workspaces/{workspace}/tree/{path}?reset&token={token}", timeout=120_000)
        page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=120_000)
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=120_000)
        page.locator(".jp-NotebookPanel .jp-Cell").first.click()
        page.locator(".lm-MenuBar-item").filter(has_text="Run").first.click()
        page.locator(".lm-Menu li[data-command='runmenu:run-all']").click()
        # done: nothing queued or running, and every code cell numbered or a cell failed (the rest stay unrun)
        page.wait_for_function(
            f"""() => {{
              const prompts = ({PROMPTS})();
              if (prompts.some(p => p.includes('*'))) return false;
              return prompts.every(p => /\\[\\d+\\]/.test(p)) ||
                     [...document.querySelectorAll("{STDERR}")].some(o => o.innerText.includes('Traceback'));
            }}""", timeout=RUN_ALL_TIMEOUT_S * 1000, polling=1000)
        seconds = time.monotonic() - started
        # widgets are built in the page after their cell finished: wait until none still says so
        page.wait_for_function("() => ![...document.querySelectorAll('.jp-OutputArea-output')]"
                               ".some(o => o.innerText.includes('Loading widget'))", timeout=60_000)
        page.locator(".lm-MenuBar-item").filter(has_text="File").first.click()
        page.locator(".lm-Menu li[data-command='docmanager:save']").click()
        page.wait_for_function("() => !document.querySelector('.lm-TabBar-tab.jp-mod-dirty')", timeout=60_000)
        # an ipympl canvas is painted when the kernel's picture arrives, after the cell is done
        try:
            page.wait_for_function(f"() => ({PICTURES})().ipympl.every(drawn => drawn)", timeout=60_000, polling=1000)
        except PlaywrightTimeout:
            pass  # the report names the figures left blank
        report = {
            "prompts": page.evaluate(PROMPTS),
            "tracebacks": page.eval_on_selector_all(
                STDERR, "outputs => outputs.map(o => o.innerText).filter(t => t.includes('Traceback'))"),
            # ipywidgets' error view (a widget whose front end failed) and the message it expands to
            "widget_errors": page.locator(".jupyter-widgets-error-widget").count()
            + page.locator("body").inner_text().count("Error displaying widget"),
            "pictures": page.evaluate(PICTURES),
            "seconds": seconds,
        }
        # last: scrolling a figure into view resizes the ipympl canvases, which clears them until redrawn
        shot = root / "shots" / Path(path).with_suffix(".png").name
        shot.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(shot))
        if page.locator(".jupyter-matplotlib-figure").count():  # the first explorer, as a person sees it
            page.locator(".jupyter-matplotlib-figure").first.screenshot(path=str(shot.with_suffix(".widget.png")))
    finally:
        page.close()
        _shut_down_kernels(address, token)
    cells = json.loads((root / path).read_text())["cells"]
    assert any(cell.get("execution_count") for cell in cells), f"{path} was not saved after the run"
    report["errors"] = [f"{output['ename']}: {output['evalue']}" for cell in cells
                        for output in cell.get("outputs", []) if output["output_type"] == "error"]
    return report


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_all_cells_in_jupyterlab(browser, lab, name):
    report = run_all_in_lab(browser, lab, f"notebooks/{name}")
    prompts, pictures = report["prompts"], report["pictures"]
    assert not report["tracebacks"], f"{name}: {report['tracebacks'][0][-2000:]}"
    assert not report["errors"], report["errors"]
    assert all(re.fullmatch(r"\[\d+\]:", p) for p in prompts), f"{name}: cells left unrun: {prompts}"
    assert report["widget_errors"] == 0
    # the notebook reached its last cell, which lists the figures it saved; each is on the page
    record = json.loads((lab[2] / "runs" / "quick" / name.removesuffix(".ipynb") / "metrics.json").read_text())
    assert record["profile"] == "quick"
    assert pictures["undecoded"] == 0, pictures
    assert len(record["figures"]) >= 1
    assert pictures["images"] + len(pictures["ipympl"]) >= len(record["figures"]), (pictures, record["figures"])
    assert len(pictures["ipympl"]) >= IPYMPL_FIGURES.get(name, 0) and all(pictures["ipympl"]), pictures
    print(f"{name}: run all {report['seconds']:.0f} s, {len(prompts)} code cells, {pictures['images']} pictures, "
          f"{len(pictures['ipympl'])} ipympl figures")


BROKEN = [
    # a widget whose front-end module does not exist: the page must say "Error displaying widget"
    "import ipywidgets\nfrom traitlets import Unicode\n\n"
    "class Missing(ipywidgets.DOMWidget):\n"
    "    _model_name = Unicode('MissingModel').tag(sync=True)\n"
    "    _model_module = Unicode('amodal-no-such-module').tag(sync=True)\n"
    "    _view_name = Unicode('MissingView').tag(sync=True)\n"
    "    _view_module = Unicode('amodal-no-such-module').tag(sync=True)\n\nMissing()",
    "1 / 0",
    "print('never run')",
]


@pytest.mark.slow
def test_run_all_in_lab_sees_errors_and_broken_widgets(browser, lab):
    """The checks above can fail: a notebook with a broken widget and a failing cell is reported as such."""
    cells = [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
             for source in BROKEN]
    notebook = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    (lab[2] / "broken.ipynb").write_text(json.dumps(notebook))
    report = run_all_in_lab(browser, lab, "broken.ipynb")
    assert len(report["tracebacks"]) == 1 and "ZeroDivisionError" in report["tracebacks"][0]
    assert report["errors"] == ["ZeroDivisionError: division by zero"]
    assert re.fullmatch(r"\[\d+\]:", report["prompts"][1]) and not re.fullmatch(r"\[\d+\]:", report["prompts"][2])
    assert report["widget_errors"] >= 1
