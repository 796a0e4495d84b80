"""Execute every notebook with papermill: the repository's main job.

``python -m amodal.harness.run_notebooks --profile quick`` runs ``notebooks/NN_*.ipynb`` in order,
each into ``runs/<profile>/<notebook>/`` (the executed notebook, its figures and its
``metrics.json``), prints a summary table at the end and writes ``runs/<profile>/report.html``
(:mod:`amodal.harness.report`: metrics, figures, tables beside the paper's, environment, timings).
A failing notebook does not stop the others; the exit status is non-zero if any failed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import papermill
from traitlets.config import Config

from amodal.harness.report import headline_metrics, write_html_report
from amodal.utils.paths import repo_root, runs_dir

# The kernel that runs a notebook talks to papermill over local ZeroMQ sockets. The manager
# provisions CurveZMQ keys for it (the ipykernel kernelspec declares support), so the traffic
# is encrypted and the kernel no longer warns that it runs over TCP in plain text.
KERNEL_CONFIG = Config({"KernelManager": {"transport_encryption": "auto"}})


@dataclass
class NotebookResult:
    name: str
    seconds: float
    ok: bool
    error: str = ""
    metrics_file: Path | None = None
    peak_rss: int | None = None   # bytes, where the runner measured it (amodal.harness.memory)


def notebook_paths(folder: Path | None = None) -> list[Path]:
    """The numbered notebooks ``NN_*.ipynb`` of ``folder`` (default ``notebooks/``), in order."""
    folder = folder or repo_root() / "notebooks"
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def run_notebook(path: Path, profile: str, output_root: Path, parameters: dict | None = None) -> NotebookResult:
    """Execute one notebook with papermill into ``output_root/<name>/``."""
    name = path.stem
    folder = output_root / name
    folder.mkdir(parents=True, exist_ok=True)
    params = {"PROFILE": profile, "OUTPUT_DIR": str(folder), **(parameters or {})}
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(path), str(folder / path.name), parameters=params, kernel_name="python3",
            cwd=str(path.parent), progress_bar=False, config=KERNEL_CONFIG,
        )
    except Exception as exc:  # noqa: BLE001 - a failed notebook is reported, the others still run
        first_line = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return NotebookResult(name, time.perf_counter() - start, False, first_line[:200])
    metrics = folder / "metrics.json"
    return NotebookResult(name, time.perf_counter() - start, True, metrics_file=metrics if metrics.exists() else None)



def summary_table(results: list[NotebookResult]) -> str:
    """Plain-text table: notebook, status, seconds, and its headline metrics (or the error)."""
    lines = [f"{'notebook':<28} {'status':<7} {'seconds':>8}  headline metrics"]
    for r in results:
        shown = ""
        if r.metrics_file is not None:
            metrics = headline_metrics(json.loads(r.metrics_file.read_text()).get("metrics", {}), most=3)
            shown = "  ".join(f"{name}={value:.4g}" for name, value in metrics)
        status = "ok" if r.ok else "FAILED"
        lines.append(f"{r.name:<28} {status:<7} {r.seconds:>8.1f}  {shown or r.error}")
    total = sum(r.seconds for r in results)
    lines.append(f"{'total':<28} {'':<7} {total:>8.1f}  {sum(r.ok for r in results)}/{len(results)} ok")
    return "\n".join(lines)


def parse_parameters(items: list[str]) -> dict:
    """``["SEED=3", "CHECKPOINT=/w.pth"]`` → ``{"SEED": 3, "CHECKPOINT": "/w.pth"}`` (ints/floats parsed)."""
    parameters = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise SystemExit(f"-p expects NAME=VALUE, got {item!r}")
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                continue
        parameters[name] = value
    return parameters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("quick", "full"), default="quick")
    parser.add_argument("--output", type=Path, default=None, help="default: runs/<profile>/")
    parser.add_argument("--only", nargs="*", default=None, help="notebook names (e.g. 02_scale_shift_alignment)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter for the notebooks' parameters cell, e.g. -p DAV2_CHECKPOINT=/weights/x.pth")
    args = parser.parse_args(argv)
    parameters = parse_parameters(args.param)
    output_root = args.output or runs_dir() / args.profile
    paths = notebook_paths()
    if args.only:
        paths = [p for p in paths if p.stem in set(args.only)]
    if not paths:
        print("no notebooks to run", file=sys.stderr)
        return 1
    results = []
    for path in paths:
        print(f"running {path.name} ({args.profile}) ...", flush=True)
        results.append(run_notebook(path, args.profile, output_root, parameters))
    print()
    print(summary_table(results))
    print(f"\noutputs in {output_root}; report: {write_html_report(output_root, results, args.profile)}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
