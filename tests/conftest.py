"""Test-wide settings: notebook outputs go to a temporary folder, never to runs/; nothing is
fetched from the Hugging Face Hub (a test that wants hub files builds a cache: ``hub_cache``)."""
import atexit
import os
import shutil
import tempfile

import matplotlib
import pytest

matplotlib.use("Agg")

# Set at import so that kernels started later (nbval, papermill) inherit it; removed when the run ends.
if "AMODAL_RUNS_DIR" not in os.environ:
    os.environ["AMODAL_RUNS_DIR"] = tempfile.mkdtemp(prefix="amodal-test-runs-")
    atexit.register(shutil.rmtree, os.environ["AMODAL_RUNS_DIR"], ignore_errors=True)
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face Hub cache that every hub id is read from, offline; fill it with
    ``hub_testdata.add_to_cache``."""
    cache = tmp_path / "hf-home" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache
