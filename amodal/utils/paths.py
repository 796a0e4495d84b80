"""Where the repository's own folders are, wherever a notebook or script runs from."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType


def repo_root() -> Path:
    """The checkout that holds ``data_samples/`` (the package is installed editable).

    Looks beside the package first, then upwards from the working directory, so that
    notebooks run from ``notebooks/`` and scripts run from the top both find it.
    """
    candidates = [Path(__file__).resolve().parents[2], *Path.cwd().resolve().parents]
    candidates.insert(1, Path.cwd().resolve())
    for folder in candidates:
        if (folder / "data_samples").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    raise FileNotFoundError(
        "cannot find the amodal checkout (a folder with pyproject.toml and data_samples/); "
        "install the package editable from the repository (pip install -e .)"
    )


def data_samples_dir() -> Path:
    """``data_samples/`` of the checkout."""
    return repo_root() / "data_samples"


def runs_dir() -> Path:
    """Where executed notebooks and their outputs go: ``$AMODAL_RUNS_DIR`` or ``runs/`` of the checkout.

    The test suite points ``AMODAL_RUNS_DIR`` at a temporary folder so that tests never
    overwrite the outputs of a reproduction run.
    """
    override = os.environ.get("AMODAL_RUNS_DIR")
    return Path(override) if override else repo_root() / "runs"


def checkpoints_dir() -> Path:
    """``checkpoints/`` of the checkout: weights this repository trained itself, each folder
    with a ``MODEL_CARD.md`` that says how (the command, the data, the machine)."""
    return repo_root() / "checkpoints"


def results_dir() -> Path:
    """``results/`` of the checkout: committed measurements (ablations, studies) with their commands."""
    return repo_root() / "results"


def checkout_module(relative: str) -> ModuleType:
    """A helper file of the checkout's ``benchmarks/`` or ``scripts/``, imported by its path.

    Those folders hold scripts, not packages: a script run as ``python scripts/x.py`` sees
    only its own folder on ``sys.path``, and a test that loads a script by path sees neither.
    The file is imported once per process (under ``amodal_<folder>_<name>``), so that every
    script and test that loads it shares its classes and exceptions, and with its own folder
    first on ``sys.path`` while it is imported, as when it runs as a script, so that its
    imports of its neighbours (``from costs import ...``) work.

    Args:
        relative: the file's path in the checkout, e.g. ``"scripts/official_code.py"``.

    Raises:
        FileNotFoundError: no such file in the checkout.
    """
    path = repo_root() / relative
    if not path.is_file():
        raise FileNotFoundError(f"no {relative} in the checkout {repo_root()}")
    name = f"amodal_{path.parent.name}_{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.parent))
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]  # a failed import is not kept half-done
            raise
        finally:
            sys.path.remove(str(path.parent))
    return sys.modules[name]


def inside(root: str | os.PathLike, relative: str | os.PathLike, what: str = "path") -> Path:
    """``root / relative``, refused unless it stays inside ``root``.

    Data files name other files (a manifest its sample's files, a sample its source photo).
    A name such as ``../../secret.png`` or ``/etc/passwd`` would read outside the dataset, so
    such names are errors, not paths. Symbolic links inside ``root`` are followed and checked
    too, as :meth:`pathlib.Path.resolve` sees them.

    Raises:
        ValueError: ``relative`` is absolute or leads outside ``root`` (``what`` names it).
    """
    if Path(relative).is_absolute():
        raise ValueError(f"{what}: {relative!r} is an absolute path; data files may only name files inside {root}")
    base = Path(root).resolve()
    path = (base / relative).resolve()
    if path != base and base not in path.parents:
        raise ValueError(f"{what}: {relative!r} leads outside {root}; data files may only name files inside it")
    return Path(root) / relative
