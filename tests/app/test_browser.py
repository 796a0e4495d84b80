"""The explorer in a real browser: ``python -m amodal explore`` started on loopback by the test,
Chromium driven by Playwright; the reproduction report opened the same way.

What the programmatic tests (test_widgets.py) cannot see: that Voila serves the page, the
widgets render, a control moved in the browser reaches the kernel and the figure that comes
back changes, and that a mouse stroke paints the amodal mask through ipympl's pointer events.

Chromium is Debian's ``/usr/bin/chromium``, installed by the test when run as root, skipped
with the command that enables it elsewhere, failed under ``CI`` (tests/browser_testing.py; the
``browser`` fixture is in tests/app/conftest.py). Every notebook run in JupyterLab in the same
browser: tests/app/test_jupyterlab.py.
Screenshots go to ``runs/browser/`` (explorer.png, photo.png, report.png).
"""
from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import browser_testing
import pytest
from browser_testing import free_port, missing

from amodal.utils.paths import repo_root

SHOTS = repo_root() / "runs" / "browser"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python -m amodal explore`` with a tiny random Amodal-DAV2, on a free loopback port."""
    import torch

    from amodal.models.amodal_dav2 import AmodalDAV2
    from amodal.models.configs import TINY

    folder = tmp_path_factory.mktemp("explore")
    torch.manual_seed(0)
    AmodalDAV2(TINY).save_pretrained(folder / "model")
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AMODAL_RUNS_DIR": str(folder / "runs"),
           # the kernel imports this checkout, whatever is installed
           "PYTHONPATH": os.pathsep.join(filter(None, [str(repo_root()), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "amodal", "explore", "--model", str(folder / "model"), "--count", "6",
               "--size", "56", "--port", str(port)]
    log = open(folder / "voila.log", "w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(url + "voila/static/voila.js", timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the explorer did not start: {(folder / 'voila.log').read_text()[-3000:]}")
        time.sleep(0.5)
    # the address the command printed, with its token: without it the page is a login form
    address = re.search(rf"http://127\.0\.0\.1:{port}/\?token=[0-9a-f]+", (folder / "voila.log").read_text()).group(0)
    yield address
    os.killpg(process.pid, signal.SIGTERM)  # the command, which stops Voila and the kernels it started
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    log.close()


def _status(page, index: int = 0) -> str:
    return page.locator(".amodal-status").nth(index).inner_text()


def _settled(figure, before: bytes | None = None, timeout: float = 60.0) -> bytes:
    """The figure's picture once it differs from ``before`` and two views 0.5 s apart agree."""
    deadline = time.monotonic() + timeout
    last = figure.screenshot()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        shot = figure.screenshot()
        if shot == last and shot != before:
            return shot
        last = shot
    raise AssertionError("the figure did not change and settle in time")


@pytest.mark.slow
def test_explorer_page_follows_a_control(browser, server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1250})
    page.goto(server, timeout=180_000)
    page.wait_for_function("() => [...document.querySelectorAll('.amodal-status')].some(e => e.innerText.includes('draw 1'))",
                           timeout=180_000)
    figure = page.locator(".jupyter-matplotlib-figure").first
    before = _settled(figure)
    assert "Amodal-DAV2" in _status(page)
    page.select_option(".amodal-source select", label="fill: plane")
    page.wait_for_function("() => document.querySelector('.amodal-status').innerText.includes('fill: plane · row')",
                           timeout=60_000)
    assert "draw 2" in _status(page)
    after = _settled(figure, before)  # the kernel's new picture reached the page
    assert after != before
    page.screenshot(path=str(SHOTS / "explorer.png"), full_page=True)
    page.close()


@pytest.mark.slow
def test_photo_tab_paints_the_amodal_mask_with_the_mouse(browser, server):
    page = browser.new_page(viewport={"width": 1400, "height": 1250})
    page.goto(server, timeout=180_000)
    page.wait_for_function("() => document.querySelectorAll('.amodal-status').length >= 2", timeout=180_000)
    page.get_by_text("your own photo", exact=True).click()
    page.wait_for_function("() => document.querySelectorAll('.amodal-status')[1].innerText.includes('0 px in M_a')",
                           timeout=60_000)
    page.locator(".amodal-mode").get_by_text("amodal: brush").click()
    figure = page.locator(".jupyter-matplotlib-figure").nth(1)
    figure.scroll_into_view_if_needed()
    before = _settled(figure)
    canvas = figure.locator("canvas").last.bounding_box()
    x, y, w, h = canvas["x"], canvas["y"], canvas["width"], canvas["height"]
    # the photo fills the left column (about 0.05–0.64 of the width, 0.10–0.97 of the height), over 512 px
    assert 0.59 * w >= 512 or 0.87 * h >= 512, canvas
    page.mouse.move(x + 0.22 * w, y + 0.22 * h)
    page.mouse.down()
    for k in range(1, 9):
        page.mouse.move(x + (0.22 + 0.02 * k) * w, y + (0.22 + 0.02 * k) * h)
    page.mouse.up()
    page.wait_for_function("() => /[1-9][0-9]* px in M_a/.test(document.querySelectorAll('.amodal-status')[1].innerText)",
                           timeout=60_000)
    painted = int(re.search(r"(\d+) px in M_a", _status(page, 1)).group(1))
    assert painted > 50
    assert _settled(figure, before) != before
    # to the end: depth from the painted mask, then the PLY as a link
    page.get_by_role("button", name="run", exact=True).click()
    page.wait_for_function("() => document.querySelectorAll('.amodal-status')[1].innerText.includes('· depth')",
                           timeout=120_000)
    page.get_by_role("button", name="export PLY").click()
    page.wait_for_selector("a[download$='.ply']", timeout=60_000)
    page.screenshot(path=str(SHOTS / "photo.png"), full_page=True)
    page.close()


def test_report_page_shows_its_embedded_figure(browser, tmp_path):
    from amodal.harness.report import write_html_report
    from amodal.harness.run_notebooks import NotebookResult

    folder = tmp_path / "07_explorer"
    folder.mkdir()
    shot = SHOTS / "explorer.png"
    png = shot.read_bytes() if shot.is_file() else base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
    (folder / "explorer.png").write_bytes(png)
    (folder / "metrics.json").write_text(json.dumps({"figures": ["explorer.png"], "metrics": {"samples": 6, "rmse": 0.05}}))
    path = write_html_report(tmp_path, [NotebookResult("07_explorer", 42.0, True)], "quick")
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    page.goto(path.as_uri())
    assert page.locator("h1").inner_text().startswith("amodal: reproduction report")
    widths = page.eval_on_selector_all("img", "images => images.map(i => i.complete ? i.naturalWidth : 0)")
    assert widths and all(w > 0 for w in widths)  # the embedded PNG decodes in the browser
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "report.png"), full_page=True)
    page.close()


def test_a_missing_browser_skips_only_where_nobody_can_install_it(monkeypatch):
    """The gate itself, without a browser: a skip saying how to enable it; a failure under CI or root."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(browser_testing, "as_root", lambda: False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        missing("no Chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no Chromium"):
        missing("no Chromium")
    monkeypatch.delenv("CI")
    monkeypatch.setattr(browser_testing, "as_root", lambda: True)
    with pytest.raises(pytest.fail.Exception):
        missing("no Chromium")
