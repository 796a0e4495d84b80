"""The exercises' checker, the notebooks' exercise structure, and every notebook run with its solutions."""
import ast
import json
import re

import numpy as np
import papermill
import pytest
import torch

from amodal.harness.exercises import SOLUTIONS_ENV, check, exercises, mismatch, solution_code, with_solutions
from amodal.harness.run_notebooks import KERNEL_CONFIG, notebook_paths

NOTEBOOKS = notebook_paths()
IDS = [p.stem for p in NOTEBOOKS]


def square_cases(rng):
    return (rng.normal(size=(3, 4)),)


def test_check_passes_a_right_answer(capsys, monkeypatch):
    monkeypatch.delenv(SOLUTIONS_ENV, raising=False)
    assert check(lambda x: x * x, np.square, square_cases, name="square", n=4)
    assert capsys.readouterr().out == "✓ square: passed on 4 fresh inputs\n"


def test_check_reports_an_unsolved_exercise_without_raising(capsys, monkeypatch):
    monkeypatch.delenv(SOLUTIONS_ENV, raising=False)

    def square(x):
        raise NotImplementedError

    assert not check(square, np.square, square_cases)
    assert capsys.readouterr().out == "not solved yet: square\n"


def test_check_names_the_first_mismatch(capsys, monkeypatch):
    monkeypatch.delenv(SOLUTIONS_ENV, raising=False)
    assert not check(lambda x: x * x + (x > 5), np.square, lambda rng: (np.arange(8.0),), name="sq", seed=3)
    out = capsys.readouterr().out
    # 6·6 + 1 = 37 at index 6, where the reference has 36; 2 of the 8 differ
    assert out.startswith("✗ sq: result[6]: 37.0 ≠ 36.0 (2 of 8 differ)") and "seed 3" in out


def test_check_reports_an_error_of_the_learner(capsys, monkeypatch):
    monkeypatch.delenv(SOLUTIONS_ENV, raising=False)
    assert not check(lambda x: x.nope, np.square, square_cases, name="sq")
    assert "✗ sq: raised AttributeError" in capsys.readouterr().out


def test_check_raises_only_when_solutions_are_checked(monkeypatch):
    monkeypatch.setenv(SOLUTIONS_ENV, "1")
    with pytest.raises(AssertionError, match="✗ sq"):
        check(lambda x: x, np.square, square_cases, name="sq")

    def unsolved(x):
        raise NotImplementedError

    with pytest.raises(AssertionError, match="not solved yet"):
        check(unsolved, np.square, square_cases)
    assert check(np.square, np.square, square_cases)


def test_check_draws_fresh_inputs_and_protects_them():
    seen = []

    def learner(x):
        seen.append(x.copy())
        x[:] = 0   # writing into its input must not change what the reference sees
        return 1.0

    assert check(learner, lambda x: float(x.sum() != 0), lambda rng: (rng.normal(size=3),), n=3)
    assert len({tuple(s) for s in seen}) == len(seen) == 3


def test_mismatch_on_structures_tensors_and_masks():
    assert mismatch((1.0, np.ones(2)), (1.0 + 1e-9, np.ones(2))) is None
    assert mismatch(torch.tensor([1.0, 2.0]), np.array([1.0, 2.0])) is None
    assert mismatch({"rmse": 0.1, "extra": 3}, {"rmse": 0.1}) is None
    assert mismatch({"delta1": 0.5}, {"rmse": 0.1}) == "result: key 'rmse' missing"
    assert mismatch(np.array([True, False]), np.array([True, True])) == "result[1]: False ≠ True (1 of 2 differ)"
    assert mismatch(np.zeros((2, 3)), np.zeros((3, 2))) == "result: shape (2, 3) ≠ (3, 2)"
    assert mismatch((1.0,), (1.0, 2.0)).startswith("result: expected 2 values")
    assert mismatch(np.nan, np.nan) is None and mismatch(0.0, np.nan) is not None
    assert mismatch("hard", "mid") == "result: 'hard' ≠ 'mid'"
    assert mismatch(0.5 + 1e-3, 0.5) == "result: 0.501 ≠ 0.5 (1 of 1 differ)"


def markdown(text, tags=()):
    return {"cell_type": "markdown", "metadata": {"tags": list(tags)}, "source": text.splitlines(keepends=True)}


def code(text, tags=()):
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": text.splitlines(keepends=True),
            "outputs": [], "execution_count": None}


def test_with_solutions_replaces_each_starter_by_its_solution():
    nb = {"cells": [markdown("# t"),
                    code("def f(x):\n    raise NotImplementedError\n", ["exercise"]), code("check(f)", ["check"]),
                    markdown("Solution\n```python\ndef f(x):\n    return x\n```\n", ["solution"]),
                    code("last")]}
    assert exercises(nb) == [(1, 2, 3)]
    solved = with_solutions(nb)
    assert "".join(solved["cells"][1]["source"]) == "def f(x):\n    return x\n"
    assert "NotImplementedError" in "".join(nb["cells"][1]["source"])   # the original is untouched
    assert solution_code(nb["cells"][3]) == "def f(x):\n    return x\n"


def test_exercises_rejects_a_broken_structure():
    starter, checker = code("def f(): ...", ["exercise"]), code("check(f)", ["check"])
    with pytest.raises(ValueError, match="in that order"):
        exercises({"cells": [checker, starter, markdown("```python\nx\n```", ["solution"])]})
    with pytest.raises(ValueError, match="want code, code, markdown"):
        exercises({"cells": [starter, checker, code("x", ["solution"])]})
    with pytest.raises(ValueError, match="exactly one"):
        exercises({"cells": [starter, checker, markdown("no code", ["solution"])]})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_has_two_or_three_checked_exercises(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    found = exercises(nb)
    assert 2 <= len(found) <= 3, f"{len(found)} exercises"
    for starter, checker, solution in found:
        assert checker == starter + 1 and solution == checker + 1
        starter_source = "".join(cells[starter]["source"])
        defined = re.findall(r"^def (\w+)\(", starter_source, re.M)
        assert len(defined) == 1 and "raise NotImplementedError" in starter_source, "one function to complete"
        function = defined[0]
        assert f"check({function}," in "".join(cells[checker]["source"]), "the check cell checks the starter"
        assert f"def {function}(" in solution_code(cells[solution]), "the solution defines the same function"
        assert cells[solution]["metadata"]["jupyter"]["source_hidden"], "solutions are folded"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_links_the_notation_and_ends_with_where_next(path):
    cells = json.loads(path.read_text())["cells"]
    assert "[notation](../docs/NOTATION.md)" in "".join(cells[0]["source"])
    end = "".join(cells[-1]["source"])
    assert cells[-1]["cell_type"] == "markdown" and "## What you now know" in end and "## Where next" in end
    known = end.split("## What you now know", 1)[1].split("## Where next", 1)[0]
    assert 3 <= sum(line.startswith("- ") for line in known.splitlines()) <= 5
    following = [p for p in NOTEBOOKS if p.stem > path.stem]
    if following:
        assert f"]({following[0].name})" in end, "links the next notebook"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_solutions_pass_their_checks(path, tmp_path, monkeypatch):
    """The notebook with every starter replaced by its solution: every check reports passed."""
    nb = json.loads(path.read_text())
    solved = tmp_path / path.name
    solved.write_text(json.dumps(with_solutions(nb), ensure_ascii=False))
    monkeypatch.setenv(SOLUTIONS_ENV, "1")
    executed = tmp_path / "executed.ipynb"
    papermill.execute_notebook(str(solved), str(executed), parameters={"OUTPUT_DIR": str(tmp_path / "out")},
                               kernel_name="python3", cwd=str(path.parent), progress_bar=False, config=KERNEL_CONFIG)
    cells = json.loads(executed.read_text())["cells"]
    checks = [i for i, c in enumerate(cells) if "check" in c["metadata"].get("tags", [])]
    text = "".join("".join(o.get("text", "")) for i in checks for o in cells[i].get("outputs", []))
    assert text.count("✓") == len(checks) == len(exercises(nb)), text
    assert "✗" not in text and "not solved" not in text, text


def top_level_names(source):
    """name → where it comes from ("def" or "from <module>") for each name a cell binds at its top level."""
    names = {}
    tree = ast.parse("\n".join(line for line in source.splitlines() if not line.startswith(("%", "!"))))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names[node.name] = "def"
        elif isinstance(node, ast.Assign):
            names.update({t.id: "def" for t in node.targets if isinstance(t, ast.Name)})
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            origin = f"from {getattr(node, 'module', None)}"
            names.update({(a.asname or a.name).split(".")[0]: origin for a in node.names})
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_exercises_rebind_no_name_of_the_lesson(path):
    """A learner's function must not replace a map or helper the rest of the notebook uses (00 once lost its
    `hidden_mask` map to the exercise's function of that name); re-importing the same library name is harmless."""
    cells = json.loads(path.read_text())["cells"]
    exercise_cells = {i for triple in exercises({"cells": cells}) for i in triple[:2]}
    bound = {}
    for i in exercise_cells:
        bound.update(top_level_names("".join(cells[i]["source"])))
    lesson, used = {}, set()
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and i not in exercise_cells:
            source = "\n".join(line for line in "".join(cell["source"]).splitlines() if not line.startswith(("%", "!")))
            lesson.update(top_level_names(source))
            used |= {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
    clashes = [n for n in sorted((used | set(lesson)) & set(bound))
               if not (bound[n].startswith("from ") and lesson.get(n) == bound[n])]
    assert not clashes, f"the notebook uses {clashes}, which an exercise cell rebinds"
