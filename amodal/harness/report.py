"""The reproduction report: ``runs/<profile>/report.html``, one self-contained page.

``make reproduce`` (:mod:`amodal.harness.run_notebooks`) executes every notebook into
``runs/<profile>/<notebook>/``. This module gathers from each folder

- the **headline metrics**: the numbers of its ``metrics.json``, nested names joined by ``/``;
- its **figures**: the PNGs the notebook saved (listed in ``metrics.json``), or else the
  ``image/png`` outputs of the executed notebook;
- **evaluation tables**: every ``table.txt`` below it (:func:`amodal.evaluation.tables.write_evaluation`),
  with the paper's Table 1 (:data:`amodal.metrics.PAPER_TABLE`) beside them;
- its **inputs**: the weights it read (as given, and the file each was read from) and its data;
  in a rehearsal, the claims about trained weights it only recorded (``expectations``);

and adds the **environment** (Python, platform, CPU or GPU, the versions of the pinned
packages) and the **timings** (with each notebook's peak memory where the runner measured it). Figures are embedded as base64 PNG, so the one file can be
mailed or archived and opens without the folder.
"""
from __future__ import annotations

import base64
import html
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Iterable

import torch

from amodal.metrics import PAPER_TABLE
from amodal.utils.atomic import atomic_write_text

MOST_METRICS = 12
STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}.ok{color:#1a7f37}.failed{color:#c62828}img{max-width:100%;border:1px solid #eee;margin:4px 0}
pre{background:#f7f7f7;padding:8px;overflow-x:auto}section{border-top:2px solid #ddd;margin-top:2em}"""


def headline_metrics(metrics: dict, most: int = MOST_METRICS, prefix: str = "") -> list[tuple[str, float]]:
    """The first ``most`` numbers of a (nested) metrics dict as ``(name, value)``: a level's own
    numbers before those of its sub-dicts (joined by ``/``); booleans are not numbers."""
    found = [(f"{prefix}{k}", v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    for key, value in metrics.items():
        if len(found) >= most:
            break
        if isinstance(value, dict):
            found += headline_metrics(value, most - len(found), f"{prefix}{key}/")
    return found[:most]


def notebook_figures(folder: Path, record: dict | None) -> list[tuple[str, bytes]]:
    """``(name, PNG bytes)`` of a notebook's figures: the files ``metrics.json`` lists, else its outputs."""
    listed = [(name, (folder / name).read_bytes()) for name in (record or {}).get("figures", []) if (folder / name).is_file()]
    if listed:
        return listed
    executed = folder / f"{folder.name}.ipynb"
    if not executed.is_file():
        return []
    figures = []
    for k, cell in enumerate(json.loads(executed.read_text()).get("cells", [])):
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get("image/png")
            if data:
                figures.append((f"cell {k}", base64.b64decode("".join(data) if isinstance(data, list) else data)))
    return figures


def environment() -> dict:
    """Python, platform, CPU, GPUs (or none) and the versions of the project's pinned packages."""

    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").is_file():
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        cpu = f"{names[0]} × {len(names)}" if names else cpu
    try:
        gpus = [torch.cuda.get_device_name(k) for k in range(torch.cuda.device_count())]
    except ImportError:
        gpus = []
    try:
        wanted = [r.split("==")[0].split(";")[0].strip() for r in metadata.requires("amodal") or []]
    except metadata.PackageNotFoundError:
        wanted = ["torch", "numpy", "matplotlib"]
    packages = {}
    for name in wanted:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "not installed"
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
            "gpu": ", ".join(gpus) or "none", "cores": os.cpu_count(), "packages": packages}


def _table(header: Iterable[str], rows: Iterable[Iterable]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def inputs_html(record: dict) -> list[str]:
    """The weights and data of a ``metrics.json`` record, and a rehearsal's expectations, as HTML tables."""
    inputs = record.get("inputs") or {}
    parts = []
    weights = [(html.escape(role), f"<code>{html.escape(str(w.get('spec')))}</code>",
                "<br>".join(f"<code>{html.escape(f['path'])}</code> ({_gib(f['bytes'], 2)})" for f in w.get("files", []))
                or html.escape(w.get("note", "")),
                "<br>".join(f"<code>{html.escape(p)}</code>" for p in w.get("pinned", [])))
               for role, w in inputs.get("weights", {}).items()]
    if weights:
        parts += ["<h3>Weights read</h3>", _table(("role", "given", "read from", "pinned"), weights)]
    data = [(html.escape(role), f"<code>{html.escape(str(value))}</code>") for role, value in inputs.get("data", {}).items()]
    if data:
        parts += ["<h3>Data read</h3>", _table(("role", "what"), data)]
    expectations = record.get("expectations") or {}
    if expectations:
        rows = [(html.escape(claim), "met" if met else "<span class=failed>not met</span>") for claim, met in expectations.items()]
        parts += ["<h3>Claims about trained weights (recorded, not asserted: stand-in weights)</h3>",
                  _table(("claim", "with these weights"), rows)]
    return parts


def _gib(n: int | None, digits: int = 1) -> str:
    if n is None:
        return ""
    return f"{n / 2**30:.{digits}f} GiB" if n >= 2**28 else f"{n / 2**20:.{max(digits, 1)}f} MiB"


def build_report(output_root: str | os.PathLike, results: Iterable | None = None, profile: str = "quick") -> str:
    """The report's HTML for the notebook folders under ``output_root``.

    Args:
        output_root: ``runs/<profile>/``, one folder per notebook.
        results: the runner's results (``name``, ``seconds``, ``ok``, ``error`` each), for the
            timings and failures; without them every folder found is reported, untimed.
        profile: shown in the title.
    """

    root = Path(output_root)
    results = list(results or [])
    by_name = {r.name: r for r in results}
    names = [r.name for r in results] or sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "metrics.json").is_file())
    parts = [f"<h1>amodal: reproduction report ({html.escape(profile)} profile)</h1>",
             f"<p>written {time.strftime('%Y-%m-%d %H:%M:%S')}; outputs in <code>{html.escape(str(root))}</code></p>"]
    memory = any(getattr(r, "peak_rss", None) is not None for r in results)
    timing_rows = [(html.escape(r.name), f"<span class={'ok' if r.ok else 'failed'}>{'ok' if r.ok else 'FAILED'}</span>",
                    f"{r.seconds:.1f}", *([_gib(getattr(r, "peak_rss", None))] if memory else []), html.escape(r.error))
                   for r in results]
    if results:
        peaks = [r.peak_rss for r in results if getattr(r, "peak_rss", None) is not None]
        timing_rows.append(("<b>total</b>", f"{sum(r.ok for r in results)}/{len(results)} ok",
                            f"{sum(r.seconds for r in results):.1f}", *([_gib(max(peaks)) + " (largest)"] if memory else []), ""))
        header = ("notebook", "status", "seconds", *(["peak RSS"] if memory else []), "error")
        parts += ["<h2>Timings</h2>", _table(header, timing_rows)]
    env = environment()
    parts += ["<h2>Environment</h2>",
              _table(("", ""), [(k, html.escape(str(env[k]))) for k in ("python", "platform", "cpu", "cores", "gpu")]),
              "<details><summary>package versions</summary>",
              _table(("package", "version"), [(html.escape(k), html.escape(v)) for k, v in env["packages"].items()]),
              "</details>"]
    paper = _table(("model (paper, Table 1, ADIW test)", "RMSE×100", "δ1 %"),
                   [(html.escape(m), f"{row['rmse']:.3f}", f"{row['delta1']:.2f}") for m, row in PAPER_TABLE.items()])
    for name in names:
        folder = root / name
        record = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else None
        result = by_name.get(name)
        seconds = f", {result.seconds:.1f} s" if result else ""
        parts.append(f"<section><h2>{html.escape(name)}{seconds}</h2>")
        if result is not None and not result.ok:
            parts.append(f"<p class=failed>failed: {html.escape(result.error)}</p>")
        metrics = headline_metrics(record.get("metrics", {})) if record else []
        if metrics:
            parts.append(_table(("metric", "value"), [(html.escape(k), _number(v)) for k, v in metrics]))
        parts += inputs_html(record or {})
        tables = sorted(folder.rglob("table.txt")) if folder.is_dir() else []
        for table in tables:
            parts.append(f"<h3>{html.escape(str(table.relative_to(folder)))} beside the paper</h3>"
                         f"<div style='display:flex;gap:2em;align-items:flex-start'><pre>{html.escape(table.read_text())}</pre>{paper}</div>")
        for title, png in notebook_figures(folder, record) if folder.is_dir() else []:
            encoded = base64.b64encode(png).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{encoded}'>"
                         f"<figcaption>{html.escape(title)}</figcaption></figure>")
        parts.append("</section>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>amodal report ({html.escape(profile)})</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")


def write_html_report(output_root: str | os.PathLike, results: Iterable | None = None, profile: str = "quick") -> Path:
    """Write :func:`build_report`'s page to ``output_root/report.html`` (atomically) and return its path."""
    return atomic_write_text(Path(output_root) / "report.html", build_report(output_root, results, profile))
