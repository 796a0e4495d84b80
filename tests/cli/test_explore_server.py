"""``python -m amodal explore`` running: the token, the cap on kernels, idle culling, no tracebacks in
the page, and a clean stop on SIGTERM or Ctrl-C.

Each test starts the real command on a free loopback port with ``TMPDIR`` pointed at its own
folder, so that Voila's notebook (``amodal-explore-*``), its connection files (``voila_*``)
and so every kernel's command line (``-f .../voila_*/kernel-<id>.json``) name that folder:
the kernels a test counts are the processes whose command line names it (read from
``/proc``). The app is tiny (``--count 1 --size 28``, no model); a kernel still takes a few
seconds to run it.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from amodal.utils.paths import repo_root

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="counts kernels in /proc")]

ADDRESS = re.compile(r"http://127\.0\.0\.1:\d+/\?token=[0-9a-f]+")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _processes_naming(folder: Path) -> dict[int, str]:
    """pid → command line of every process whose command line names ``folder``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:  # gone meanwhile
                continue
            if str(folder) in line:
                found[int(entry.name)] = line
    return found


def _kernels(folder: Path) -> int:
    return sum("ipykernel" in line for line in _processes_naming(folder).values())


def _get(url: str) -> tuple[int, str, str]:
    """Status, final address (after redirects) and body of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=300) as response:
            return response.status, response.url, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, url, error.read().decode()


class Explorer:
    """``python -m amodal explore`` in a subprocess, its temporary files under ``folder``."""

    def __init__(self, folder: Path, *arguments: str):
        self.folder = folder
        self.tmp = folder / "tmp"
        self.tmp.mkdir(parents=True)
        self.port = _free_port()
        self.log_path = folder / "explore.log"
        env = {**os.environ, "TMPDIR": str(self.tmp), "OMP_NUM_THREADS": "1", "AMODAL_RUNS_DIR": str(folder / "runs"),
               # the server and its kernels import this checkout, whatever is installed
               "PYTHONPATH": os.pathsep.join(filter(None, [str(repo_root()), os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, "-m", "amodal", "explore", "--model", "none", "--count", "1", "--size", "28",
                   "--port", str(self.port), *arguments]
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.root = f"http://127.0.0.1:{self.port}/"
        self.address = self._wait_until_served()

    def log(self) -> str:
        return self.log_path.read_text()

    def _wait_until_served(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if _get(self.root + "voila/static/voila.js")[0] == 200:
                    return ADDRESS.search(self.log()).group(0)
            except OSError:
                pass
            time.sleep(0.5)
        self.close()
        pytest.fail(f"the explorer did not start: {self.log()[-3000:]}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for pid in _processes_naming(self.folder):  # whatever a failed test left running
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def start(tmp_path):
    started = []

    def start_(*arguments: str) -> Explorer:
        started.append(Explorer(tmp_path / f"run{len(started)}", *arguments))
        return started[-1]

    yield start_
    for explorer in started:
        explorer.close()


def test_no_kernel_without_the_token_at_most_the_cap_with_it_and_idle_ones_culled(start):
    server = start("--max-kernels", "2", "--idle-timeout", "4")
    for url in (server.root, server.root + "?token=wrong"):
        status, final, body = _get(url)
        assert "/login" in final and "token" in body.lower()  # the login page
    time.sleep(2)
    assert _kernels(server.folder) == 0

    results, most = [], 0

    def request():
        results.append(_get(server.address))

    threads = [threading.Thread(target=request) for _ in range(3)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        most = max(most, _kernels(server.folder))
        time.sleep(0.2)
    assert sorted(status for status, _, _ in results) == [200, 200, 503]
    assert 1 <= most <= 2
    refused = next(body for status, _, body in results if status == 503)
    assert "--max-kernels" in refused and "Traceback" not in refused
    assert all("application/vnd.jupyter.widget-view+json" in body for status, _, body in results if status == 200)

    deadline = time.monotonic() + 60
    while _kernels(server.folder) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _kernels(server.folder) == 0, "idle kernels were not culled"
    assert "Culling 'idle' kernel" in server.log()
    assert _get(server.address)[0] == 200  # the freed places serve pages again


def test_an_error_in_the_app_goes_to_the_log_not_the_page(start, tmp_path):
    (tmp_path / "empty").mkdir()
    server = start("--data", str(tmp_path / "empty"))
    status, _, body = _get(server.address)
    assert status == 200 and "server&#39;s log" in body
    assert "Traceback" not in body and "FileNotFoundError" not in body and "neither ADIW shards" not in body
    assert "FileNotFoundError" in server.log() and "neither ADIW shards" in server.log()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stop_signal_ends_voila_its_kernels_and_the_temporary_folder(start, stop):
    server = start()
    assert _get(server.address)[0] == 200
    assert _kernels(server.folder) == 1
    assert any(server.tmp.glob("amodal-explore-*")) and any(server.tmp.glob("voila_*"))
    server.process.send_signal(stop)  # to the command alone, as kill does; Voila hears it from the command
    assert server.process.wait(90) == 0
    assert "stopping the explorer" in server.log()
    assert not any(server.tmp.glob("amodal-explore-*")) and not any(server.tmp.glob("voila_*"))
    assert _processes_naming(server.folder) == {}
