"""amodal.utils.paths: the checkout's folders, the runs folder override used by the tests, script helpers."""
import sys

import pytest

from amodal.utils.paths import checkout_module, checkpoints_dir, data_samples_dir, repo_root, runs_dir


def test_repo_root_holds_the_project():
    root = repo_root()
    assert (root / "pyproject.toml").is_file() and (root / "amodal" / "__init__.py").is_file()
    assert data_samples_dir() == root / "data_samples"
    assert checkpoints_dir() == root / "checkpoints"


def test_runs_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AMODAL_RUNS_DIR", str(tmp_path))
    assert runs_dir() == tmp_path
    monkeypatch.delenv("AMODAL_RUNS_DIR")
    assert runs_dir() == repo_root() / "runs"


def test_inside_refuses_paths_that_leave_the_root(tmp_path):
    from amodal.utils.paths import inside

    (tmp_path / "data" / "a").mkdir(parents=True)
    assert inside(tmp_path / "data", "a/b.png") == tmp_path / "data" / "a" / "b.png"
    assert inside(tmp_path / "data", "a/../c.png") == tmp_path / "data" / "a" / ".." / "c.png"  # still inside
    with pytest.raises(ValueError, match=r"sample 7: image file: '\.\./\.\./secret\.png' leads outside"):
        inside(tmp_path / "data", "../../secret.png", "sample 7: image file")
    with pytest.raises(ValueError, match="is an absolute path"):
        inside(tmp_path / "data", "/etc/passwd")
    (tmp_path / "data" / "link").symlink_to(tmp_path)  # a link inside that points out is followed and refused
    with pytest.raises(ValueError, match="leads outside"):
        inside(tmp_path / "data", "link/x.png")


def test_checkout_module_imports_a_script_helper_once_with_its_neighbours(monkeypatch):
    monkeypatch.delitem(sys.modules, "amodal_benchmarks_memory", raising=False)
    module = checkout_module("benchmarks/memory.py")  # it imports bench_train, which imports costs
    assert module.__file__ == str(repo_root() / "benchmarks" / "memory.py")
    assert checkout_module("benchmarks/memory.py") is module  # one copy per process: one set of classes
    assert str(repo_root() / "benchmarks") not in sys.path  # the folder was there only while it was imported
    with pytest.raises(FileNotFoundError, match="no scripts/nothing.py in the checkout"):
        checkout_module("scripts/nothing.py")
