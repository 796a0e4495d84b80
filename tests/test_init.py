"""The public names of `amodal` all resolve, lazily."""
import subprocess
import sys

import amodal


def test_every_public_name_resolves():
    for name in amodal.__all__:
        assert getattr(amodal, name) is not None, name


def test_import_is_light():
    # `import amodal` must not import torch: notebooks and the CLI pay only for what they use.
    code = "import sys, amodal; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_each_public_name_has_one_tier():
    names = [name for tier in amodal.TIERS.values() for name in tier]
    assert len(names) == len(set(names)) == len(amodal.__all__)
