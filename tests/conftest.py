"""Test-wide settings: notebook outputs go to a temporary folder, never to runs/."""
import os
import tempfile

import matplotlib

matplotlib.use("Agg")

# Set at import so that kernels started later (nbval, papermill) inherit it.
os.environ.setdefault("AMODAL_RUNS_DIR", tempfile.mkdtemp(prefix="amodal-test-runs-"))
os.environ.setdefault("MPLBACKEND", "Agg")
