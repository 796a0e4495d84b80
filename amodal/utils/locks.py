"""One writer per output folder: an exclusive lock file that says who holds it.

Two trainings into one folder interleave their ``log.csv``; two builds delete each other's
temporary files. So every command that writes a folder (``build``, ``train``, ``evaluate``,
``ablate``) first takes its lock, ``FOLDER/.amodal.lock`` (builds with ``--rank``: one per
rank, ``.amodal-rank-R.lock``, since ranks share the folder by design). The file holds the
holder's pid, host and command, so a second process can say who is at work::

    error: runs/x is in use by pid 4242 on host gpu1 (amodal train ...) since 2026-12-05 10:00:00; ...

The lock itself is ``fcntl.flock`` on that file, which the kernel releases when the holder
dies, however it dies (kill -9 included). A lock file left by a dead process is therefore
simply taken over, with a message naming the dead holder. (The pid in the file is only
for people: pids are reused, so it never decides who holds the lock.)
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

LOCK_NAME = ".amodal.lock"


class FolderInUseError(ValueError):
    """Another live process holds the folder's lock."""


def lock_name(rank: int | None = None) -> str:
    """The lock file's name: one per folder, or one per rank where ranks share a folder."""
    return LOCK_NAME if rank is None else f".amodal-rank-{rank}.lock"


def _holder(text: str) -> dict:
    try:
        holder = json.loads(text)
        return holder if isinstance(holder, dict) else {}
    except json.JSONDecodeError:
        return {}


def _in_use(folder: Path, holder: dict) -> FolderInUseError:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return FolderInUseError(
        f"{folder} is in use by pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
        f"({holder.get('command', '?')}) since {since}; wait for it to finish, or write into another folder")


class FolderLock:
    """An exclusive lock on ``folder`` (created if missing), held from :meth:`acquire` to :meth:`release`.

    Use it as a context manager. Re-entrant for the same object only.

    Args:
        folder: the output folder.
        name: the lock file's name (:func:`lock_name`).
        command: what the holder is doing, recorded for whoever finds the folder locked.

    Raises:
        FolderInUseError: another live process holds the lock (named).
    """

    def __init__(self, folder: str | os.PathLike, name: str = LOCK_NAME, command: str | None = None):
        self.folder = Path(folder)
        self.path = self.folder / name
        self.command = command or " ".join(["amodal", *sys.argv[1:]])
        self._fd: int | None = None

    def acquire(self) -> "FolderLock":
        if self._fd is not None:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
                os.close(fd)
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                raise _in_use(self.folder, _holder(text)) from None
            # The holder may have removed the file between our open and our flock: then we
            # hold a lock on a name that no longer exists, and must try again on the new one.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            break
        previous = _holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
        if previous:
            print(f"taking over the lock of {self.folder} left by pid {previous.get('pid', '?')} "
                  f"({previous.get('command', '?')}), which no longer runs", file=sys.stderr)
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                             "started": time.time()}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding it: nobody takes over a file being removed
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
