"""Argument types that check a value when the command line is parsed, before anything is written.

``argparse`` calls a type with the text; a ``ValueError`` or ``argparse.ArgumentTypeError``
becomes its usual one-line usage error (exit code 2) naming the option.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from amodal.adiw.depth import RowPriorDepth
from amodal.utils.hub import is_local_or_hub_id

TOY_BASE = RowPriorDepth.name  # the base-depth "model" that needs no weights


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be ≥ {least}, got {value}")
    return value


def positive_int(text: str) -> int:
    """A count, size or number of steps: an integer ≥ 1."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """A seed or an index: an integer ≥ 0."""
    return _whole_number(text, 0)


def port(text: str) -> int:
    """A TCP port, 1–65535."""
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1–65535, got {value}")
    return value


def device(text: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` (``mps`` where torch has it), and only one this machine has."""
    try:
        parsed = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError("cuda is not available here (no GPU visible to torch); use --device cpu")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text}: this machine has {torch.cuda.device_count()} GPU(s)")
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise argparse.ArgumentTypeError("mps is not available here; use --device cpu")
    elif parsed.type != "cpu":
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use cpu, cuda or cuda:N")
    return text


def existing_path(text: str) -> Path:
    """An input: a file or folder that exists."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file or folder: {text}")
    return path


def weights(text: str) -> str:
    """Weights: a file or folder that exists, or a Hugging Face Hub id ``ORG/NAME[@REVISION][:FILE]``
    (fetched when the command loads it; :func:`amodal.utils.hub.resolve`)."""
    if not is_local_or_hub_id(text):
        raise argparse.ArgumentTypeError(f"no such file or folder: {text} (nor a Hugging Face Hub id ORG/NAME)")
    return text


def base_depth(text: str) -> str:
    """What gives ``D_o``: weights as :func:`weights` takes them, or ``row-prior`` (a toy without weights)."""
    return text if text == TOY_BASE else weights(text)


def crop_margin(text: str) -> float | None:
    """The object-centred crop's margin (a number ≥ 0), or ``whole`` for the whole photo (``None``)."""
    if text == "whole":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a margin ≥ 0 (such as 0.25) or 'whole', got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"a margin ≥ 0 (such as 0.25) or 'whole', got {text!r}")
    return value


def output_folder(text: str) -> Path:
    """A folder to write into: it may not exist yet, but it may not be a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder; give a folder for the outputs")
    return path


def onnx_file(text: str) -> Path:
    """An ONNX file to write: the name ends in ``.onnx`` and is not a folder."""
    path = Path(text)
    if path.suffix.lower() != ".onnx":
        raise argparse.ArgumentTypeError(f"{text}: an ONNX model's file name ends in .onnx")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give the .onnx file to write")
    return path
