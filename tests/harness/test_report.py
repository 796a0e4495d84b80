"""amodal.harness.report: a self-contained page from a tiny fake executed notebook."""
import base64
import io
import json
import re

import nbformat
import numpy as np
from PIL import Image

from amodal.metrics import PAPER_TABLE
from amodal.harness.report import build_report, environment, headline_metrics, write_html_report
from amodal.harness.run_notebooks import NotebookResult


def _png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 6, 3), colour, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _fake_run(root):
    """runs/quick/ with one executed notebook (a PNG output), its metrics and an evaluation table."""
    folder = root / "09_fake"
    folder.mkdir(parents=True)
    cell = nbformat.v4.new_code_cell("plot()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(_png(200)).decode()})]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), folder / "09_fake.ipynb")
    metrics = {"rmse": 0.0421, "ok": True, "scores": {"delta1": 0.93, "name": "x"}, "count": 7}
    (folder / "metrics.json").write_text(json.dumps({"notebook": "09_fake", "figures": [], "metrics": metrics}))
    (folder / "eval").mkdir()
    (folder / "eval" / "table.txt").write_text("bucket  RMSE×100\noverall 4.210\n")
    return folder


def test_headline_metrics_flattens_numbers_only():
    metrics = {"rmse": 0.5, "ok": True, "nested": {"d1": 0.9, "text": "a", "deeper": {"n": 3}}, "last": 1}
    assert headline_metrics(metrics) == [("rmse", 0.5), ("last", 1), ("nested/d1", 0.9), ("nested/deeper/n", 3)]
    assert headline_metrics(metrics, most=3) == [("rmse", 0.5), ("last", 1), ("nested/d1", 0.9)]


def test_report_is_self_contained_with_metrics_figures_tables_environment_and_timings(tmp_path):
    _fake_run(tmp_path)
    results = [NotebookResult("09_fake", 12.34, True), NotebookResult("10_broken", 1.0, False, "ValueError: boom")]
    path = write_html_report(tmp_path, results, "quick")
    page = path.read_text()
    assert path == tmp_path / "report.html" and page.startswith("<!DOCTYPE html>")
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert [base64.b64decode(i) for i in images] == [_png(200)]  # the notebook's output, embedded
    assert not re.search(r"(src|href)=['\"]?(http|/|\.)", page)  # nothing fetched from elsewhere
    assert "rmse" in page and "0.0421" in page and "scores/delta1" in page and "0.93" in page
    assert "<td>ok</td>" not in page  # booleans are not metrics
    assert "overall 4.210" in page and all(model in page for model in PAPER_TABLE)
    assert "12.3" in page and "FAILED" in page and "ValueError: boom" in page and "1/2 ok" in page
    env = environment()
    assert env["python"] in page and "numpy" in env["packages"] and env["packages"]["numpy"] in page


def test_saved_figures_win_over_outputs_and_folders_are_found_without_results(tmp_path):
    folder = _fake_run(tmp_path)
    (folder / "task.png").write_bytes(_png(10))
    record = json.loads((folder / "metrics.json").read_text())
    record["figures"] = ["task.png"]
    (folder / "metrics.json").write_text(json.dumps(record))
    page = build_report(tmp_path)
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert [base64.b64decode(i) for i in images] == [_png(10)] and "09_fake" in page
