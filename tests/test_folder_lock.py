"""The output folder lock: held by the process that took it, by no forked child, released by what took it."""

import os

import pytest
from helpers import locked

from prjepa import folder_lock

pytest.importorskip("fcntl", reason="advisory locks are POSIX (on Windows the lock does nothing)")


def test_a_forked_child_does_not_keep_the_lock_its_parent_released(tmp_path):
    """Data loader workers are forked: a worker still alive (its parent killed, its watchdog not yet run) must not keep
    the folder from the rerun."""
    folder_lock.hold_folder(str(tmp_path))
    released, child_done = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: reports what it holds, then lives on until the parent has released
        try:
            os.write(child_done[1], b"1" if folder_lock.held_folders() else b"0")
            os.read(released[0], 1)
        finally:
            os._exit(0)  # never back into the test runner, whatever happened
    try:
        assert os.read(child_done[0], 1) == b"0"
        assert locked(tmp_path)
        folder_lock.release_folders()
        assert not locked(tmp_path)  # while the child lives
    finally:
        os.write(released[1], b"x")
        os.waitpid(pid, 0)
        for descriptor in (*released, *child_done):
            os.close(descriptor)


def test_release_keeps_the_folders_an_outer_caller_held(tmp_path):
    outer, inner = tmp_path / "outer", tmp_path / "inner"
    outer.mkdir()
    inner.mkdir()
    folder_lock.hold_folder(str(outer))
    held_by_caller = folder_lock.held_folders()
    folder_lock.hold_folder(str(inner))
    folder_lock.release_folders(keep=held_by_caller)
    assert locked(outer) and not locked(inner)
    folder_lock.release_folders()
    assert not locked(outer)


def test_a_folder_that_cannot_be_opened_or_is_not_there_is_left_to_the_folder_checks(tmp_path):
    folder_lock.hold_folder(str(tmp_path / "missing"))
    unreadable = tmp_path / "unreadable"
    unreadable.mkdir(mode=0)
    try:
        folder_lock.hold_folder(str(unreadable))  # root opens it anyway; anyone else gets no lock and no error
    finally:
        folder_lock.release_folders()
        unreadable.chmod(0o755)
    assert folder_lock.held_folders() == set()
