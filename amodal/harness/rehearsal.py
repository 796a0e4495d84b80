"""The full profile, rehearsed on a CPU: ``make rehearse``.

The full profile (real checkpoints and data, a GPU) is the reproduction, and the one part of
the repository nothing here can run for real: no weights can be fetched. The rehearsal runs
it anyway, as far as a CPU allows, so that what breaks breaks here rather than on a rented GPU:

1. **stand-ins** (:mod:`amodal.harness.standins`): every weights file the notebooks read, at
   the released sizes and in the released formats, with random values; the hub ones in a
   Hugging Face Hub cache (``HF_HUB_CACHE``, read offline), so the notebooks name them by hub id;
2. **data**: an SA-1B folder (the sample photos as ``sa_<k>.jpg`` + ``sa_<k>.json``) and an
   ADIW folder in the official layout with ``data_split/sam/{train,val}.txt``, built from the
   sample photos by our builder (:func:`amodal.adiw.build.build`, the paper's label recipe,
   the toy row prior for depth) and written by :func:`amodal.adiw.official.write_official`;
3. **every notebook in the full profile** with ``AMODAL_REHEARSAL=1``: the counts of each
   profile file's ``rehearsal`` section (steps, samples, images), nothing else
   (:func:`amodal.harness.notebook.apply_rehearsal`), while :class:`TreeMemorySampler`
   follows the kernel's memory.

It writes into ``runs/rehearse/``: each notebook's folder (executed notebook, figures,
``metrics.json`` naming the weights and data it read), ``report.html``, and the table of wall
time and peak memory per notebook as ``rehearsal.md`` and ``rehearsal.json``. The numbers the
notebooks print are those of random weights: the rehearsal tests the code paths, the
formats, the sizes, the time and the memory, never the results.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import papermill

from amodal.adiw.build import BuildConfig, build
from amodal.adiw.official import write_official
from amodal.adiw.sa1b import read_sa1b, write_sa1b
from amodal.adiw.sample import read_sample
from amodal.adiw.shards import manifest_records
from amodal.adiw.sources import find_sources
from amodal.harness.memory import TreeMemorySampler
from amodal.harness.notebook import REHEARSAL_ENV
from amodal.harness.report import environment, write_html_report
from amodal.harness.run_notebooks import NotebookResult, notebook_paths, run_notebook
from amodal.harness.standins import SIZES, write_standins
from amodal.utils.paths import data_samples_dir, repo_root, runs_dir

BUDGET_SECONDS = 30 * 60  # the whole rehearsal, on a 2-core CPU
VAL_SAMPLES = 3           # of the ADIW stand-in, the rest is the training list
INPUTS = "inputs.json"
# Notebook 05 fine-tunes Amodal-DAV2-S (its recipe's size); the others read ViT-L.
PER_NOTEBOOK = {"05_training": {"DAV2_CHECKPOINT": "DAV2_S_CHECKPOINT"}}


def write_sa1b_folder(folder: str | os.PathLike, photos: str | os.PathLike | None = None) -> Path:
    """The sample photos as an SA-1B folder: ``sa_<k>.jpg`` beside ``sa_<k>.json`` (``image_id`` k,
    ``file_name`` renamed, every annotation as it is), as SA-1B's tar files hold them."""
    photos = Path(photos) if photos else data_samples_dir()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for k, source in enumerate(find_sources(photos / "images", photos / "sa1b"), 1):
        record = read_sa1b(source.annotations)
        info = dict(record["image"], image_id=k, file_name=f"sa_{k}.jpg")
        shutil.copyfile(source.image, folder / info["file_name"])
        write_sa1b(folder / f"sa_{k}.json", info, record["annotations"])
    return folder


def write_adiw_folder(folder: str | os.PathLike, work: str | os.PathLike, seed: int = 0,
                      samples_per_image: int = 2) -> dict[str, Path]:
    """A handful of ADIW samples in the official layout, with a training and a validation list.

    Built from the sample photos by our builder with the official label recipe
    (``label_mode="paper"``: 512² samples) and the row prior for depth (the labels show the
    mechanics only), into shards under ``work``, then written in the official layout.

    Returns:
        ``{"root": ..., "train": .../train.txt, "val": .../val.txt}``.
    """
    photos = data_samples_dir()
    shutil.rmtree(work, ignore_errors=True)
    config = BuildConfig(samples_per_image=samples_per_image, label_mode="paper", seed=seed)
    build(find_sources(photos / "images", photos / "sa1b"), work, "row-prior", config, progress=False)
    samples = [read_sample(shard, record) for shard, record in manifest_records(work) if record["type"] == "sample"]
    if len(samples) <= VAL_SAMPLES:
        raise RuntimeError(f"the sample photos gave {len(samples)} ADIW samples; need more than {VAL_SAMPLES}")
    ids = [s.sample_id for s in samples]
    root = Path(folder)
    shutil.rmtree(root, ignore_errors=True)
    write_official(samples, root, {"train": ids[:-VAL_SAMPLES], "val": ids[-VAL_SAMPLES:]})
    lists = root / "data_split" / "sam"
    return {"root": root, "train": lists / "train.txt", "val": lists / "val.txt"}


def prepare(output: str | os.PathLike, size: str = "real", seed: int = 0) -> dict:
    """Stand-in weights and data under ``output``; returns (and writes as ``inputs.json``) the
    notebooks' parameters and the environment that reads the hub cache offline."""
    output = Path(output).resolve()  # the notebooks run in notebooks/: every path given them is absolute
    output.mkdir(parents=True, exist_ok=True)
    standins = write_standins(output, size, seed)
    sa1b = write_sa1b_folder(output / "data" / "sa1b")
    adiw = write_adiw_folder(output / "data" / "adiw", output / "data" / "adiw-shards", seed)
    parameters = dict(standins.parameters, SA1B_DIR=str(sa1b), ADIW_DIR=str(adiw["root"]),
                      TRAIN_SPLIT=str(adiw["train"]), VAL_SPLIT=str(adiw["val"]), SPLIT=str(adiw["val"]))
    inputs = {"size": size, "parameters": parameters, "weights": {k: v for k, v in standins.parameters.items() if k.endswith("_CHECKPOINT") or k == "VAE"},
              "environment": standins.environment(), "files": standins.files}
    (output / INPUTS).write_text(json.dumps(inputs, indent=2) + "\n")
    return inputs


def notebook_parameters(path: Path, pool: dict) -> dict:
    """The values of ``pool`` that ``path``'s parameters cell names (``PER_NOTEBOOK`` maps a few)."""
    rename = PER_NOTEBOOK.get(path.stem, {})
    keys = {name: rename.get(name, name) for name in papermill.inspect_notebook(str(path))}
    return {name: pool[key] for name, key in keys.items() if pool.get(key) is not None}


@contextmanager
def environment_set(values: dict[str, str]):
    """``os.environ`` with ``values`` set (a kernel started inside inherits them), restored after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class Row:
    """One line of the rehearsal's table; ``weights``: the specs of the weights the notebook read."""

    name: str
    seconds: float
    peak_rss: int
    ok: bool
    error: str = ""
    weights: list[str] = field(default_factory=list)


def weights_read(metrics_file: Path | None) -> list[str]:
    """The weights a run's ``metrics.json`` says were read (a file found for them), as given."""
    if metrics_file is None or not Path(metrics_file).is_file():
        return []
    weights = json.loads(Path(metrics_file).read_text()).get("inputs", {}).get("weights", {})
    return sorted({w["spec"] for w in weights.values() if w.get("files")})


def unread_weights(given: dict, weights: dict[str, str], read: list[str]) -> list[str]:
    """The parameters in ``given`` that name stand-in weights (a value of ``weights``) the notebook
    did not read: a full-profile notebook that falls back to something else without saying so."""
    specs = set(weights.values())
    return sorted(name for name, value in given.items() if value in specs and value not in read)


def rehearse(output: str | os.PathLike, size: str = "real", only: list[str] | None = None,
             interval: float = 0.5) -> list[Row]:
    """Prepare the inputs (in a child process, measured like a notebook), run the notebooks, and
    write ``report.html``, ``rehearsal.md`` and ``rehearsal.json`` into ``output``."""
    output = Path(output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    command = [sys.executable, "-m", "amodal.harness.rehearsal", "--prepare-only", "--output", str(output), "--size", size]
    with TreeMemorySampler(interval=interval) as memory:
        prepared = subprocess.run(command)
    rows = [Row("stand-ins and data", time.perf_counter() - start, memory.peak_bytes, prepared.returncode == 0,
                "" if prepared.returncode == 0 else f"exit code {prepared.returncode}")]
    results = []
    if prepared.returncode == 0:
        inputs = json.loads((output / INPUTS).read_text())
        paths = [p for p in notebook_paths() if not only or p.stem in only]
        env = dict(inputs["environment"], **{REHEARSAL_ENV: "1", "AMODAL_PROFILE": "full"})
        with environment_set(env):
            for path in paths:
                print(f"rehearsing {path.name} ...", flush=True)
                given = notebook_parameters(path, inputs["parameters"])
                with TreeMemorySampler(interval=interval) as memory:
                    result = run_notebook(path, "full", output, given)
                result.peak_rss = memory.peak_bytes
                read = weights_read(result.metrics_file)
                unread = unread_weights(given, inputs["weights"], read) if result.ok else []
                if unread:  # no silent fallback: weights given and not read fail the notebook
                    result.ok, result.error = False, f"given and not read: {', '.join(unread)}"
                results.append(result)
                rows.append(Row(result.name, result.seconds, memory.peak_bytes, result.ok, result.error, read))
                print(f"  {result.seconds:.0f} s, peak {memory.peak_bytes / 2**30:.1f} GiB, "
                      f"{'ok' if result.ok else 'FAILED: ' + result.error}", flush=True)
    total = time.perf_counter() - start
    record = {"command": "python -m amodal.harness.rehearsal " + " ".join(sys.argv[1:]), "size": size,
              "budget_seconds": BUDGET_SECONDS, "environment": environment()}
    earlier = output / "rehearsal.json"
    if only and earlier.is_file():  # a rerun of a few notebooks: the table keeps the others' rows
        previous = json.loads(earlier.read_text())
        rows = merge_rows([Row(**r) for r in previous["rows"]], rows)
        total = sum(r.seconds for r in rows)
        record["reruns"] = previous.get("reruns", []) + [{"notebooks": sorted(only), "environment": record["environment"]}]
        results = [NotebookResult(r.name, r.seconds, r.ok, r.error, _metrics_file(output / r.name), r.peak_rss)
                   for r in rows[1:]]
    write_html_report(output, results, "full, rehearsed on stand-ins")
    record.update(seconds=total, rows=[asdict(r) for r in rows])
    (output / "rehearsal.json").write_text(json.dumps(record, indent=2) + "\n")
    (output / "rehearsal.md").write_text(table(rows, total) + "\n")
    return rows


def merge_rows(previous: list[Row], new: list[Row]) -> list[Row]:
    """The rows of an earlier rehearsal with the notebooks of a rerun in place of their old rows.

    The first row (stand-ins and data) stays the earlier one: a rerun reuses the stand-ins it
    wrote, so its own first row times a reuse. Notebooks keep their numbered order."""
    by_name = {r.name: r for r in previous[1:]} | {r.name: r for r in new[1:]}
    return previous[:1] + [by_name[name] for name in sorted(by_name)]


def _metrics_file(folder: Path) -> Path | None:
    return folder / "metrics.json" if (folder / "metrics.json").is_file() else None


def table(rows: list[Row], total: float | None = None) -> str:
    """The rows as a Markdown table: wall time and peak RSS of each step, then the total."""
    lines = ["| step | wall time | peak RSS (kernel tree) | status | weights read |", "|---|---:|---:|---|---|"]
    for r in rows:
        status = "ok" if r.ok else f"FAILED: {r.error}"
        weights = ", ".join(f"`{_shown(w)}`" for w in r.weights)
        lines.append(f"| {r.name} | {_minutes(r.seconds)} | {r.peak_rss / 2**30:.1f} GiB | {status} | {weights} |")
    total = sum(r.seconds for r in rows) if total is None else total
    peak = max((r.peak_rss for r in rows), default=0)
    lines.append(f"| **total** | **{_minutes(total)}** | **{peak / 2**30:.1f} GiB** (largest) | "
                 f"{sum(r.ok for r in rows)}/{len(rows)} ok | |")
    return "\n".join(lines)


def _shown(weights: str) -> str:
    """A weights file inside the repository as a path relative to its root (the table goes in the
    README, whose readers have their own checkout); hub ids and paths elsewhere as they are."""
    path = Path(weights)
    if path.is_absolute() and path.is_relative_to(repo_root()):
        return path.relative_to(repo_root()).as_posix()
    return weights


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s" if seconds >= 60 else f"{seconds:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=None, help="default: runs/rehearse/")
    parser.add_argument("--size", choices=SIZES, default="real", help="stand-ins at the released sizes, or tiny")
    parser.add_argument("--only", nargs="*", default=None, help="notebook names (e.g. 03_amodal_dav2)")
    parser.add_argument("--prepare-only", action="store_true", help="write the stand-ins and data, run nothing")
    args = parser.parse_args(argv)
    output = args.output or runs_dir() / "rehearse"
    if args.prepare_only:
        prepare(output, args.size)
        return 0
    rows = rehearse(output, args.size, args.only)
    print()
    print(table(rows, json.loads((output / "rehearsal.json").read_text())["seconds"]))
    print(f"\nreport: {output / 'report.html'}; table: {output / 'rehearsal.md'}")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
