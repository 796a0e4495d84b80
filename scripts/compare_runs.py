"""Compare two reproduction runs number by number: every notebook's ``metrics.json`` under two folders.

    python scripts/compare_runs.py runs/quick /elsewhere/runs/quick

Prints each metric that differs (nested names joined by ``/``) and exits 1 if any does.
Wall-clock times differ from run to run by nature; keys that name a time (``seconds``,
``minutes``, ``time``) are left out. Used to check that a change of the code's shape
(moving modules, splitting functions) changed no number.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

TIMING_WORDS = ("seconds", "minutes", "time")


def flatten(value, prefix: str = "") -> dict:
    """Nested dicts and lists → ``{"a/b/0": leaf}``."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flatten(item, f"{prefix}{key}/").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{prefix}{i}/").items()}
    return {prefix.rstrip("/"): value}


def is_timing(name: str) -> bool:
    """A metric that measures wall-clock time (``train_seconds``, ``seconds_by_steps/4``)."""
    return any(word in name for word in TIMING_WORDS)


def differences(first: Path, second: Path, tolerance: float = 0.0) -> list[str]:
    """Every metric of the notebooks under ``first`` that is missing or different under ``second``."""
    found = []
    for metrics in sorted(first.glob("*/metrics.json")):
        other = second / metrics.parent.name / "metrics.json"
        if not other.is_file():
            found.append(f"{metrics.parent.name}: no metrics.json under {second}")
            continue
        a = flatten(json.loads(metrics.read_text())["metrics"])
        b = flatten(json.loads(other.read_text())["metrics"])
        for name in sorted(set(a) | set(b)):
            if is_timing(name):
                continue
            x, y = a.get(name, "<missing>"), b.get(name, "<missing>")
            same = x == y or (isinstance(x, float) and isinstance(y, float)
                              and (math.isclose(x, y, rel_tol=tolerance, abs_tol=tolerance) or (math.isnan(x) and math.isnan(y))))
            if not same:
                found.append(f"{metrics.parent.name}: {name}: {x!r} vs {y!r}")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--tolerance", type=float, default=0.0, help="relative and absolute tolerance (default 0: equal)")
    args = parser.parse_args(argv)
    found = differences(args.first, args.second, args.tolerance)
    notebooks = len(list(args.first.glob("*/metrics.json")))
    print("\n".join(found) if found else f"{notebooks} notebooks: every metric equal (times left out)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
