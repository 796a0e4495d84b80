"""Optional dependencies: a missing one names the extra that installs it."""
import json

import pytest

from amodal.utils.optional import EXTRAS, MissingDependency, require


def test_a_present_module_is_returned():
    assert require("json", "a test") is json


def test_a_missing_module_names_its_extra(monkeypatch):
    monkeypatch.setitem(EXTRAS, "no_such_module_for_amodal_tests", "onnx")
    with pytest.raises(MissingDependency, match=r"no_such_module_for_amodal_tests is not installed \(it runs ONNX "
                                                r"models\): pip install 'amodal\[onnx\]'"):
        require("no_such_module_for_amodal_tests", "it runs ONNX models")


def test_it_is_an_import_error():
    # code that catches ImportError for optional features keeps working
    assert issubclass(MissingDependency, ImportError)


def test_the_onnx_modules_belong_to_the_onnx_extra():
    import tomllib

    from amodal.utils.paths import repo_root

    extras = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pinned = {line.split("==")[0] for line in extras["onnx"]}
    assert {"onnx", "onnxscript", "onnxruntime"} <= pinned
    assert {module for module, extra in EXTRAS.items() if extra == "onnx"} <= pinned
    assert set(extras["onnx"]) <= set(extras["test"])  # CI installs and tests it
