"""Shared by the benchmark scripts: wall-clock timing and the name of the machine.

The scripts run as ``python benchmarks/bench_<topic>.py``, so this folder is on
``sys.path`` and ``from timing import ...`` finds this file.
"""
from __future__ import annotations

import os
import platform
import statistics
import time


def run_times(fn, repeats: int, sync=lambda: None) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn()`` after one warm-up; ``sync`` waits for a GPU."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def interleaved_times(fns: dict, repeats: int, sync=lambda: None) -> dict[str, list[float]]:
    """Seconds of ``repeats`` calls of each function, taken in turns (a, b, a, b, ...).

    Each function is called once first (warm-up). On a machine whose cores are shared, the
    load from other work then falls on every contender alike, so their ratio holds where
    separate blocks of runs would each catch a different load.

    Args:
        fns: name → function of no arguments.

    Returns:
        name → list of ``repeats`` durations in seconds.
    """
    for fn in fns.values():
        fn()
        sync()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def median_seconds(fn, repeats: int, sync=lambda: None) -> float:
    """Median of :func:`run_times` (robust when other work shares the cores)."""
    return statistics.median(run_times(fn, repeats, sync))


def best_seconds(fn, repeats: int, sync=lambda: None) -> float:
    """Fastest of :func:`run_times` (the machine's capability, least disturbed)."""
    return min(run_times(fn, repeats, sync))


def cpu_name() -> str:
    """The CPU model as the kernel reports it, with the number of cores visible."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores visible"
