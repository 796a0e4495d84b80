"""Atomic writes: a file or folder appears whole under its name, or not at all.

Every file the library writes that someone may later trust — a sample, a manifest, a
checkpoint, a ``metrics.json`` — goes through here. The recipe is the POSIX one:

1. write everything under a temporary name in the *same* folder (a rename across file
   systems is a copy, and not atomic);
2. ``fsync`` the temporary file, so that its bytes are on disk before any name points
   at them (without it a power cut after the rename can leave a named empty file);
3. ``os.replace`` it onto the real name (atomic on POSIX and Windows);
4. ``fsync`` the folder, so that the rename itself is durable.

A writer killed at any moment leaves the old file or the new one, plus perhaps a
temporary ``.<name>.<pid>.<n>.tmp`` that no reader looks at (:func:`remove_leftovers`
clears them). Folders (a saved model: ``unet/``, ``vae/``, config) are built under a
temporary sibling and swapped in by :func:`atomic_directory`; there the swap is two
renames, so a crash between them leaves the old folder under ``.<name>.<pid>.<n>.old``
and no folder under the real name — never a mix of old and new files.

Files that belong together but must keep their own names in a shared folder (a
prediction's ``.png``, ``.npy`` and ``.ply`` beside other predictions') are written by
:func:`atomic_file_set`: all of them into a temporary folder first, then renamed into
place, with a marker that stays only if the renames themselves are cut short.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

_counter = itertools.count()


def _temporary_sibling(path: Path, suffix: str = ".tmp") -> Path:
    """A name beside ``path`` that no other writer (thread or process) uses."""
    return path.with_name(f".{path.name}.{os.getpid()}.{next(_counter)}{suffix}")


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's or a folder's contents to disk (folders: their entries)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if Path(path).is_dir() else os.O_RDONLY
    try:
        descriptor = os.open(path, flags)
    except OSError:  # some platforms cannot open folders; durability is best effort there
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def fsync_tree(folder: str | os.PathLike) -> None:
    """``fsync`` every file and folder under ``folder`` (and ``folder`` itself)."""
    for root, _, files in os.walk(folder):
        for name in files:
            fsync_path(Path(root) / name)
        fsync_path(root)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any], fsync: bool = True) -> Path:
    """Call ``write(temporary_path)``, then move the result onto ``path`` atomically.

    Args:
        path: the file to (re)place; its folder is created if missing.
        write: writes the whole file at the path it is given (``PIL.Image.save``,
            ``safetensors.torch.save_file``, ...). It must write *to that path*, not
            to a name derived from it.
        fsync: flush file and folder to disk (off only for scratch files).

    Returns:
        ``path``.

    Raises:
        Whatever ``write`` raises; the temporary file is removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_sibling(path)
    try:
        write(temporary)
        if not temporary.is_file():
            raise FileNotFoundError(f"the writer for {path} wrote nothing at {temporary}")
        if fsync:
            fsync_path(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_path(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda p: p.write_bytes(data), fsync)


def atomic_write_text(path: str | os.PathLike, text: str, fsync: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write_bytes(path, text.encode("utf-8"), fsync)


def atomic_write_json(path: str | os.PathLike, data: Any, fsync: bool = True, **dumps: Any) -> Path:
    """``json.dumps(data, **dumps)`` plus a final newline, written atomically."""
    return atomic_write_text(path, json.dumps(data, **dumps) + "\n", fsync)


@contextmanager
def atomic_directory(path: str | os.PathLike, fsync: bool = True) -> Iterator[Path]:
    """Build a folder under a temporary name; on success swap it in for ``path``.

    Usage::

        with atomic_directory(folder) as tmp:
            unet.save_pretrained(tmp / "unet")
            ...

    On an exception inside the block the temporary folder is deleted and ``path`` is
    left as it was. Whatever ``path`` held before is replaced whole (files of the old
    folder that the new one lacks are gone, so a reader never sees a mix).

    Yields:
        The temporary folder (empty, beside ``path``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_sibling(path)
    temporary.mkdir()
    try:
        yield temporary
        if fsync:
            fsync_tree(temporary)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = _temporary_sibling(path, ".old")
        os.replace(path, old)
    os.replace(temporary, path)
    if fsync:
        fsync_path(path.parent)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() else old.unlink()


def remove_leftovers(folder: str | os.PathLike) -> int:
    """Delete the temporary files and folders that killed writers left in ``folder``.

    Only names this module makes (``.<name>.<...>.tmp``) are touched. Call it only
    where no other writer is at work in ``folder`` (e.g. a shard owned by one worker).

    Returns:
        How many were removed.
    """
    removed = 0
    for leftover in Path(folder).glob(".*.tmp"):
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        removed += 1
    return removed


INCOMPLETE_SUFFIX = ".incomplete"


def _set_marker(folder: Path, name: str) -> Path:
    return folder / f".{name}{INCOMPLETE_SUFFIX}"


@contextmanager
def atomic_file_set(folder: str | os.PathLike, name: str, replaces: Iterable[str] = (), fsync: bool = True) -> Iterator[Path]:
    """Write a set of files that belong together (a prediction's ``.png``, ``.npy``, ``.ply``) into ``folder``.

    The block writes the set's files, under their final names, into the temporary folder it
    is given (inside ``folder``, so the moves below are renames on one file system). When
    the block ends without error:

    1. the files are flushed to disk;
    2. a marker ``folder/.<name>.incomplete`` is written (it lists the set's files);
    3. each file is moved onto its name in ``folder`` (``os.replace``), and the names in
       ``replaces`` that the new set lacks are deleted (an older set's ``.ply``, say);
    4. the marker is deleted.

    So a full disk, or any error while writing, leaves the older set untouched and no
    trace of the new one: a disk fills inside the block or in step 2, before any name changes. Only a
    kill during step 3 leaves old and new files side by side, and then the marker says so
    (:func:`incomplete_sets`); writing the set again repairs it. Temporary folders that
    killed writers of the same set left behind are removed when the set is next written.

    Args:
        folder: where the set's files live (created if missing).
        name: the set's name (a file stem), for the marker and the temporary folder.
        replaces: file names in ``folder`` that belong to this set in any version.

    Yields:
        The temporary folder (empty).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    leftover = re.compile(rf"\.{re.escape(name)}\.\d+\.\d+\.tmp")
    for path in folder.iterdir():
        if leftover.fullmatch(path.name) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
    temporary = _temporary_sibling(folder / name)
    temporary.mkdir()
    try:
        yield temporary
        files = sorted(p.name for p in temporary.iterdir())
        if fsync:
            fsync_tree(temporary)
        marker = _set_marker(folder, name)
        atomic_write_text(marker, "\n".join(files) + "\n", fsync)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    for file in files:
        os.replace(temporary / file, folder / file)
    for old in set(replaces) - set(files):
        (folder / old).unlink(missing_ok=True)
    if fsync:
        fsync_path(folder)
    marker.unlink()
    if fsync:
        fsync_path(folder)
    shutil.rmtree(temporary, ignore_errors=True)


def incomplete_sets(folder: str | os.PathLike) -> list[str]:
    """Names of the sets in ``folder`` whose renames were cut short (see :func:`atomic_file_set`)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name[1:-len(INCOMPLETE_SUFFIX)] for p in folder.glob(f".*{INCOMPLETE_SUFFIX}"))
