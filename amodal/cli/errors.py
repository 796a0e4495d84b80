"""One error path for every command: a bad input is one line and exit code 2, a bug a traceback on demand.

The library raises what Python and its dependencies raise — ``ValueError`` and
``FileNotFoundError`` with the file named, ``OSError`` from the disk (a full disk is
``ENOSPC``), PIL's errors for images that do not decode, safetensors' for torn weights,
:class:`amodal.utils.optional.MissingDependency` for an optional extra not installed.
:func:`run_command` turns each of these into one line on standard error::

    error: <what> (<which file>): <why>

and exit code 2. Anything else is a bug: one line that says so and exit code 1, and with
``--debug`` the traceback. Ctrl-C exits 130, as a shell expects; a training stopped by a
signal (:class:`amodal.training.loop.TrainingStopped`, a ``KeyboardInterrupt``) exits
128 + the signal's number (143 for SIGTERM) after saying how to continue.
"""
from __future__ import annotations

import errno
import json
import sys
from typing import Callable

from PIL import Image, UnidentifiedImageError
from safetensors import SafetensorError

from amodal.utils.optional import MissingDependency

EXIT_BAD_INPUT, EXIT_BUG, EXIT_INTERRUPTED = 2, 1, 130

# What a user can cause with a file, an argument or a full disk: reported in one line.
INPUT_ERRORS = (ValueError, OSError, UnidentifiedImageError, Image.DecompressionBombError, SafetensorError,
                json.JSONDecodeError, EOFError, MissingDependency)


def describe(error: BaseException) -> str:
    """The one line (without ``error: ``) for an input error."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        where = f" ({error.filename})" if error.filename else ""
        return f"disk full{where}: no space left on device; free some space and run the same command again"
    if isinstance(error, Image.DecompressionBombError):
        return f"image too large: {error}"
    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"{error.strerror} ({error.filename})"
    if isinstance(error, SafetensorError):
        return f"unreadable safetensors file: {error}"
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())  # one line


def run_command(run: Callable[[], int], debug: bool = False) -> int:
    """Call ``run()`` and turn what it raises into one line and an exit code (module docstring).

    Args:
        run: the command's body; returns its exit code.
        debug: let every error through with its traceback.
    """
    try:
        return run()
    except KeyboardInterrupt as error:
        print(str(error) or "interrupted", file=sys.stderr)
        stopped_by = getattr(error, "signal", None)  # set by a training that saved its checkpoint first
        return EXIT_INTERRUPTED if stopped_by is None else 128 + int(stopped_by)
    except INPUT_ERRORS as error:
        if debug:
            raise
        print(f"error: {describe(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:  # noqa: BLE001 - every other error is a bug, reported as one
        if debug:
            raise
        print(f"internal error: {type(error).__name__}: {describe(error)} (a bug; rerun with --debug for the "
              "traceback and report it)", file=sys.stderr)
        return EXIT_BUG
