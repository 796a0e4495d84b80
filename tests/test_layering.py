"""The layers of the library hold (tests/layering.py), and the check would see them broken."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from layering import LAYERS, cycles, layer_of, violations

ROOT = Path(__file__).resolve().parents[1]


def test_the_library_keeps_its_layers():
    problems = violations(ROOT)
    assert not problems, "\n" + "\n".join(problems)


def test_every_module_has_a_layer():
    for path in sorted((ROOT / "amodal").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        assert layer_of(module) in LAYERS


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "amodal" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def test_an_upward_import_is_reported_with_its_file_and_line(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "align.py": "import numpy\n\nfrom amodal.app.explorer import overlay\n",
        "app/__init__.py": "",
        "app/explorer.py": "def overlay():\n    pass\n",
    })
    problems = violations(root)
    assert problems == ["amodal/align.py:3: amodal.align (core) imports amodal.app.explorer (app), a higher layer"]


def test_an_import_inside_a_function_counts(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "models/__init__.py": "",
        "models/net.py": "def build():\n    from amodal.training.loop import train\n",
        "training/__init__.py": "",
        "training/loop.py": "def train():\n    pass\n",
    })
    assert [p.split(":")[:2] for p in violations(root)] == [["amodal/models/net.py", "2"]]


def test_a_cycle_within_one_layer_is_reported(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "app/__init__.py": "",
        "app/a.py": "from amodal.app.b import x\ny = 1\n",
        "app/b.py": "x = 1\n\ndef f():\n    from amodal.app.a import y\n",
    })
    (problem,) = violations(root)
    assert problem.startswith("import cycle between amodal.app.a, amodal.app.b")
    assert "amodal/app/a.py:1" in problem and "amodal/app/b.py:4" in problem


def test_a_private_name_of_another_module_is_reported(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "adiw/__init__.py": "",
        "adiw/build.py": "def _resize():\n    pass\n",
        "app/__init__.py": "",
        "app/explorer.py": "from amodal.adiw.build import _resize\n",
    })
    assert violations(root) == ["amodal/app/explorer.py:1: amodal.app.explorer imports _resize, private to amodal.adiw.build"]


def test_relative_imports_resolve(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "utils/__init__.py": "",
        "utils/paths.py": "from ..app import widgets\n",
        "app/__init__.py": "",
        "app/widgets.py": "",
    })
    assert violations(root) == ["amodal/utils/paths.py:1: amodal.utils.paths (utils) imports amodal.app.widgets (app), a higher layer"]


def test_cycles_finds_components():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("module, layer", [("amodal", "cli"), ("amodal.align", "core"), ("amodal.inference", "inference"),
                                           ("amodal.models", "models"), ("amodal.app.widgets", "app")])
def test_layer_of(module, layer):
    assert layer_of(module) == layer


def test_test_files_mirror_the_library_and_their_names_are_unique():
    # pytest imports test files by their base name (no __init__.py): two of one name would clash
    tests = sorted((ROOT / "tests").rglob("test_*.py"))
    names = [path.name for path in tests]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    folders = {path.parent.name for path in tests} - {"tests"}
    assert folders <= set(LAYERS) - {"core", "inference"}, folders  # tests/<layer>/, core and inference at the top
