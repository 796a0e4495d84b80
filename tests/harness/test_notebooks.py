"""Notebook conventions (DESIGN.md), the papermill parameters cell, and the runner.

Every notebook under notebooks/ is also executed by nbval (`make test` passes
`notebooks` to pytest with --nbval-lax); these tests check what nbval cannot.
The suite holds with any subset of the notebooks present.
"""
import json
import re

import pytest

from amodal.harness.notebook import load_profile
from amodal.utils.paths import repo_root
from amodal.harness.run_notebooks import NotebookResult, notebook_paths, parse_parameters, run_notebook, summary_table

NOTEBOOKS = notebook_paths()
IDS = [p.stem for p in NOTEBOOKS]


def cells_of(path):
    return json.loads(path.read_text())["cells"]


def source(cell):
    return "".join(cell["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_conventions(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert cells[0]["cell_type"] == "markdown" and source(cells[0]).lstrip().startswith("# ")
    with_outputs = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not with_outputs, f"outputs kept in git in cells {with_outputs}; strip them"
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    params = source(cells[tagged[0]])
    assert 'PROFILE = os.environ.get("AMODAL_PROFILE", "quick")' in params
    for name in ("OUTPUT_DIR = None", "SEED = ", 'DEVICE = "auto"'):
        assert name in params, f"parameters cell lacks {name!r}"
    assert f'setup_run("{path.stem}"' in source(cells[tagged[0] + 1]), "the cell after parameters calls setup_run"
    code = [c for c in cells if c["cell_type"] == "code"]
    assert "write_metrics" in source(code[-1]), "the last code cell writes metrics.json"
    for i, c in enumerate(cells):
        assert "sys.path" not in source(c), f"cell {i} edits sys.path"
    assert any("assert " in source(c) for c in code), "sections end in an assert on an invariant"
    # Both profiles exist with the same keys, so `-p PROFILE full` can never miss a setting.
    assert load_profile(path.stem, "quick").keys() == load_profile(path.stem, "full").keys()


def test_every_profile_file_has_a_notebook_and_matching_keys():
    folder = repo_root() / "amodal" / "harness" / "profiles"
    profile_files = sorted(folder.glob("*.json"))
    assert {p.stem for p in profile_files} == set(IDS), "one profile file per notebook"
    for profile_file in profile_files:
        table = json.loads(profile_file.read_text())
        assert {"quick", "full"} <= set(table) <= {"quick", "full", "rehearsal"}, profile_file.name
        assert table["quick"].keys() == table["full"].keys(), profile_file.name
        assert set(table.get("rehearsal", {})) <= set(table["full"]), profile_file.name


@pytest.mark.slow
def test_papermill_injects_parameters(tmp_path):
    """Run one real notebook with injected values and check they were used."""
    if not NOTEBOOKS:
        pytest.skip("no notebooks yet")
    path = min(NOTEBOOKS, key=lambda p: p.stat().st_size)  # the smallest one is quickest
    out = tmp_path / "out"
    result = run_notebook(path, "quick", out, parameters={"SEED": 7})
    assert result.ok, result.error
    record = json.loads((out / path.stem / "metrics.json").read_text())
    assert record["seed"] == 7 and record["profile"] == "quick" and record["notebook"] == path.stem
    executed = json.loads((out / path.stem / path.name).read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "SEED = 7" in source(injected[0])
    assert "ok" in summary_table([result])


def test_parse_parameters():
    assert parse_parameters(["SEED=3", "CHECKPOINT=/w/x.pth", "LR=0.5"]) == {"SEED": 3, "CHECKPOINT": "/w/x.pth", "LR": 0.5}
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        parse_parameters(["oops"])


def test_summary_table_shows_the_first_scalars_of_each_notebook(tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"metrics": {"table": {"a": 1}, "rmse": 0.036821, "n": 200, "ok": True, "more": 1.0,
                                               "last": 2.0}}))
    table = summary_table([NotebookResult("02_x", 1.5, True, metrics_file=metrics), NotebookResult("03_y", 2.0, False, "boom")])
    assert "rmse=0.03682  n=200  more=1" in table.splitlines()[1]
    assert "FAILED" in table and "boom" in table and "1/2 ok" in table


def parameters_source(path):
    return "".join(source(c) for c in cells_of(path) if "parameters" in c["metadata"].get("tags", []))


NEEDS_WEIGHTS = [p for p in NOTEBOOKS if "_CHECKPOINT = None" in parameters_source(p)]


@pytest.mark.slow
@pytest.mark.parametrize("path", NEEDS_WEIGHTS, ids=[p.stem for p in NEEDS_WEIGHTS])
def test_full_profile_without_weights_names_what_is_missing(path, tmp_path):
    """`-p PROFILE full` with no checkpoint paths stops early with a FileNotFoundError that says which."""
    result = run_notebook(path, "full", tmp_path)
    assert not result.ok
    assert "FileNotFoundError" in result.error and "needs" in result.error, result.error
