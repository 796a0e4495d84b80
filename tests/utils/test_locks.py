"""amodal.utils.locks: one writer per folder; a dead holder's lock is taken over."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from amodal.utils.locks import LOCK_NAME, FolderInUseError, FolderLock, lock_name

HOLD = """
import sys, time
from amodal.utils.locks import FolderLock
with FolderLock(sys.argv[1], command="holder"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_the_lock_file_names_its_holder_and_goes_with_it(tmp_path):
    with FolderLock(tmp_path / "run", command="amodal train x") as lock:
        holder = json.loads(lock.path.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert holder["command"] == "amodal train x" and lock.path.name == LOCK_NAME
    assert not (tmp_path / "run" / LOCK_NAME).exists()


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    with FolderLock(tmp_path, command="first"):
        with pytest.raises(FolderInUseError, match=rf"in use by pid {os.getpid()} on host .* \(first\)"):
            FolderLock(tmp_path, command="second").acquire()
    FolderLock(tmp_path).acquire().release()  # free again once released


def test_another_process_is_refused_and_a_killed_holders_lock_is_taken_over(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderInUseError, match=f"pid {holder.pid}"):
            FolderLock(tmp_path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / LOCK_NAME).exists()  # kill -9 left the file behind...
    with FolderLock(tmp_path, command="next"):  # ...but not the lock: the kernel released it
        assert json.loads((tmp_path / LOCK_NAME).read_text())["command"] == "next"
    assert f"left by pid {holder.pid}" in capsys.readouterr().err


def test_ranks_lock_apart():
    assert lock_name() == LOCK_NAME and lock_name(3) == ".amodal-rank-3.lock"


def test_ranks_of_one_folder_do_not_block_each_other(tmp_path):
    with FolderLock(tmp_path, lock_name(0)), FolderLock(tmp_path, lock_name(1)):
        with pytest.raises(FolderInUseError):
            FolderLock(tmp_path, lock_name(1)).acquire()


def test_a_garbled_lock_file_is_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text("not json")
    started = time.time()
    with FolderLock(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["started"] >= started
