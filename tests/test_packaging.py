"""pyproject.toml and environment.yml pin the same exact versions."""
import re
import tomllib

from amodal.utils.paths import repo_root

REQUIRED = {"torch", "torchvision", "timm", "diffusers", "segment-anything", "pycocotools", "numpy",
            "scikit-image", "matplotlib", "ipywidgets", "jupyterlab", "papermill", "nbval", "tqdm",
            "safetensors"}


def pyproject_pins():
    project = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"]) + [d for extra in project["optional-dependencies"].values() for d in extra]
    return dict(line.split("==") for line in lines)


def environment_pins():
    text = (repo_root() / "environment.yml").read_text()
    return dict(re.findall(r"^\s*-\s+([A-Za-z0-9_.\-]+)==([^\s#]+)", text, flags=re.M))


def test_every_dependency_is_pinned_exactly():
    project = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        assert "==" in line, f"{line!r} is not an exact pin"
    assert project["requires-python"] == ">=3.11"
    assert REQUIRED <= set(pyproject_pins())
    assert pyproject_pins()["torch"] == "2.14.1" and pyproject_pins()["torchvision"] == "0.29.1"


def test_environment_yml_agrees_with_pyproject():
    assert environment_pins() == pyproject_pins()
    assert re.search(r"^\s*- python=3\.11\s*$", (repo_root() / "environment.yml").read_text(), flags=re.M)


def test_every_library_module_stays_short():
    """One concept per module, each readable in a sitting: none over 500 lines (DESIGN.md)."""
    long = {str(p.relative_to(repo_root())): n for p in (repo_root() / "amodal").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert long == {}
