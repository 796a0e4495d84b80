"""Optional dependencies: imported only by the code that needs them, with a clear error when absent.

The ONNX export and runtime (``pip install 'amodal[onnx]'``) are heavy and most users never
need them, so they are not core requirements. :func:`require` imports one by name and,
when it is missing, raises :class:`MissingDependency`, which names the extra to install;
the command line reports it in one line (exit code 2), as any other input error.
"""
from __future__ import annotations

import importlib
from types import ModuleType

# module → the extra of pyproject.toml that installs it
EXTRAS = {"onnx": "onnx", "onnxscript": "onnx", "onnxruntime": "onnx"}


class MissingDependency(ImportError):
    """An optional dependency that is not installed; the message says how to install it."""


def require(module: str, why: str) -> ModuleType:
    """Import ``module``, or say which extra installs it.

    Args:
        module: a top-level module name of :data:`EXTRAS`.
        why: what needs it, for the message (``"it runs ONNX models"``).

    Raises:
        MissingDependency: ``module`` cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        extra = EXTRAS.get(module, module)
        raise MissingDependency(f"{module} is not installed ({why}): pip install 'amodal[{extra}]' "
                                f"({error})") from None
