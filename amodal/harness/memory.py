"""Peak memory of a process tree, sampled while it runs.

A notebook runs in a kernel, a child process of the runner (and the kernel may start
children of its own: data-loader workers, a build's pool). What the machine must hold is
the sum of their resident memory at the worst moment, which no single process's
``ru_maxrss`` gives. :class:`TreeMemorySampler` reads the resident set size (RSS) of every
descendant of a process every ``interval`` seconds on a background thread and keeps the
largest sum. Pages shared between processes count once per process, as RSS counts them; a
peak shorter than ``interval`` can be missed.
"""
from __future__ import annotations

import os
import threading

import psutil


def tree_rss(pid: int | None = None, include_self: bool = False) -> int:
    """Bytes resident now in the descendants of ``pid`` (default: this process), and in ``pid``
    itself with ``include_self``. Processes that end while they are read count as 0."""
    root = psutil.Process(os.getpid() if pid is None else pid)
    processes = root.children(recursive=True) + ([root] if include_self else [])
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return total


class TreeMemorySampler:
    """The largest :func:`tree_rss` seen between ``__enter__`` and ``__exit__``.

    Args:
        pid: the root process (default: this one).
        interval: seconds between samples.
        include_self: count the root too (default: only its descendants, e.g. a kernel).

    Attributes:
        peak_bytes: the largest sum seen; ``samples``: how many were taken.

    Example::

        with TreeMemorySampler() as memory:
            subprocess.run(command)
        print(memory.peak_bytes / 2**30, "GiB")
    """

    def __init__(self, pid: int | None = None, interval: float = 0.2, include_self: bool = False):
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self.pid = os.getpid() if pid is None else pid
        self.interval = interval
        self.include_self = include_self
        self.peak_bytes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> int:
        """Take one sample now; returns it."""
        now = tree_rss(self.pid, self.include_self)
        self.peak_bytes = max(self.peak_bytes, now)
        self.samples += 1
        return now

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "TreeMemorySampler":
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="tree-memory-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
