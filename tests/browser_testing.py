"""Chromium for the browser tests (tests/app/test_browser.py, tests/app/test_jupyterlab.py).

Chromium is Debian's ``/usr/bin/chromium`` (Playwright cannot download its own browser
here). Run as root (a CI container, a fresh machine under ``make test``), the tests install
it with ``apt-get install -y chromium`` themselves, and fail if they cannot. Elsewhere,
without it, they are skipped with the command that enables it — except where ``CI`` is
set: there they fail. The ``browser`` fixture (tests/app/conftest.py) launches it.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("AMODAL_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
ENABLE = ("install Chromium (sudo apt-get install -y chromium) or run the tests as root, which installs it; "
          "AMODAL_CHROMIUM=/path/to/chromium points at another build")


def as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def ensure_chromium() -> Path | None:
    """The Chromium binary, installed with apt-get first when running as root and it is missing."""
    if CHROMIUM.is_file():
        return CHROMIUM
    if as_root() and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "chromium"]
        if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
            subprocess.run(install, env=env, capture_output=True, timeout=900)
    return CHROMIUM if CHROMIUM.is_file() else None


def missing(what: str):
    """Where the test must run (CI, or root, who can install), a failure; elsewhere a skip saying how to enable it."""
    if os.environ.get("CI") or as_root():
        pytest.fail(f"{what}: {ENABLE}")
    pytest.skip(f"{what}: {ENABLE}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
