"""amodal.harness.memory: the resident memory of a process tree, against the kernel's own count
(``VmRSS`` in ``/proc/<pid>/status``) of a child that holds a known number of bytes."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from amodal.harness.memory import TreeMemorySampler, tree_rss

HELD = 200 * 2**20
CHILD = f"""
import sys, time
block = bytearray({HELD})
block[::4096] = b"x" * len(block[::4096])   # touch every page: resident, not just reserved
print("ready", flush=True)
sys.stdin.readline()
"""


def _vm_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_tree_rss_counts_a_child_as_the_kernel_does_and_the_sampler_keeps_the_peak():
    before = tree_rss()  # descendants earlier tests left running (multiprocessing's resource tracker, say)
    with TreeMemorySampler(interval=0.05) as memory:
        child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            reference = _vm_rss(child.pid)
            now = tree_rss()
            time.sleep(0.3)
        finally:
            child.communicate("\n")
    assert reference > HELD
    assert abs(now - before - reference) < 8 * 2**20  # the child is what this test added to the tree
    assert memory.peak_bytes >= HELD and memory.samples >= 3
    assert tree_rss() - before < HELD                 # gone after it ends: the peak is what remains
    assert tree_rss(include_self=True) >= _vm_rss(os.getpid()) - 8 * 2**20


def test_the_sampler_refuses_a_non_positive_interval():
    with pytest.raises(ValueError, match="interval must be > 0"):
        TreeMemorySampler(interval=0)
