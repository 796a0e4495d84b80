"""amodal.utils.paths: the checkout's folders, and the runs folder override used by the tests."""
from amodal.utils.paths import checkpoints_dir, data_samples_dir, repo_root, runs_dir


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
