"""Reading PyTorch files runs no code from them, and every ``torch.load`` in the tree says ``weights_only=True``."""
import ast
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from amodal.utils.torch_files import NUMPY_ARRAY_GLOBALS, load_weights_only
from pickle_testdata import write_hostile_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def test_a_hostile_pickle_runs_its_code_with_weights_only_false_and_not_here(tmp_path):
    path = write_hostile_checkpoint(tmp_path / "checkpoint.pt", tmp_path / "ran")
    torch.load(path, weights_only=False)  # the file really is hostile: the old way runs it
    assert (tmp_path / "ran").is_dir()
    (tmp_path / "ran").rmdir()
    with pytest.raises(ValueError, match=r"checkpoint.pt was not loaded: .*GLOBAL posix.mkdir") as error:
        load_weights_only(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    assert "weights_only" not in str(error.value)  # torch's advice to turn the check off is not passed on
    assert not (tmp_path / "ran").exists()


def test_numpy_arrays_load_only_where_allowed(tmp_path):
    torch.save({"key": np.array([3, 1, 4], dtype=np.uint32), "t": torch.arange(2)}, tmp_path / "a.pt")
    with pytest.raises(ValueError, match="a.pt was not loaded"):
        load_weights_only(tmp_path / "a.pt")
    loaded = load_weights_only(tmp_path / "a.pt", allow=NUMPY_ARRAY_GLOBALS)
    assert loaded["key"].dtype == np.uint32 and loaded["key"].tolist() == [3, 1, 4]
    assert loaded["t"].tolist() == [0, 1]


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_weights_only(tmp_path / "nope.pt")
    (tmp_path / "notes.pt").write_text("not a pickle")
    with pytest.raises(ValueError, match="notes.pt was not loaded"):
        load_weights_only(tmp_path / "notes.pt")


def unsafe_loads(source: str) -> list[int]:
    """Lines of ``torch.load(...)`` calls in ``source`` that do not pass ``weights_only=True``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
            safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                       for k in node.keywords)
            if not safe:
                lines.append(node.lineno)
    return lines


def test_the_check_sees_an_unsafe_load():
    assert unsafe_loads("import torch\na = torch.load(p)\nb = torch.load(p, weights_only=False)\n"
                        "c = torch.load(p, map_location='cpu', weights_only=True)\n") == [2, 3]


def _notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    # IPython magics and shell lines are not Python
    return "\n".join(line for cell in code for line in cell.splitlines() if not line.lstrip().startswith(("%", "!")))


def test_every_torch_load_in_the_tree_reads_weights_only():
    problems = []
    for folder in ("amodal", "scripts", "benchmarks", "tests", "notebooks"):
        for path in sorted((ROOT / folder).rglob("*.py")) + sorted((ROOT / folder).rglob("*.ipynb")):
            if path == Path(__file__).resolve():  # its first test reads the hostile file the old way, on purpose
                continue
            source = _notebook_code(path) if path.suffix == ".ipynb" else path.read_text()
            problems += [f"{path.relative_to(ROOT)}:{line}" for line in unsafe_loads(source)]
    assert not problems, "torch.load without weights_only=True (a pickle may run code): " + ", ".join(problems)



def test_a_mapped_file_reads_the_same_and_a_named_stand_in_takes_a_foreign_global(tmp_path):
    torch.save({"t": torch.arange(5.0)}, tmp_path / "a.pt")
    assert torch.equal(load_weights_only(tmp_path / "a.pt", mmap=True)["t"], torch.arange(5.0))
    torch.save({"t": torch.arange(5.0)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert torch.equal(load_weights_only(tmp_path / "legacy.pt", mmap=True)["t"], torch.arange(5.0))  # read whole
    # a class pickled under a module that does not exist when the file is read
    foreign = type("Foreign", (), {"__module__": "not_installed_here"})
    sys.modules["not_installed_here"] = types.SimpleNamespace(Foreign=foreign)
    try:
        torch.save({foreign: 1}, tmp_path / "b.pt")
    finally:
        del sys.modules["not_installed_here"]
    with pytest.raises(ValueError, match="not_installed_here.Foreign"):
        load_weights_only(tmp_path / "b.pt")
    stand_in = type("StandIn", (), {})
    assert load_weights_only(tmp_path / "b.pt", allow=[(stand_in, "not_installed_here.Foreign")]) == {stand_in: 1}
