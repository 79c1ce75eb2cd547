"""One run per output folder: a pretraining process (and an experiment, its results folder) locks its folder (`flock` on
the folder's own descriptor) while it writes there, so that a second command started into the same folder (a job
submitted twice, a rerun while the first still runs) stops before it loads anything instead of interleaving its
checkpoints with the first's. The lock is the process's: it goes when the process ends, however it ends, and leaves no
file behind; forked children (data loader workers) do not keep it. It is the machine's: on a network file system
(NFS), processes on other machines do not see it. Standard library only."""

import os
from collections.abc import Collection

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so no protection
    fcntl = None

# Real path → the open descriptor that holds its lock.
_held: dict[str, int] = {}


def _forget_in_child() -> None:
    # A forked child shares the parent's lock through the descriptors it inherits: closed here, the lock goes with the
    # parent alone (closing a copy never releases the parent's).
    while _held:
        os.close(_held.popitem()[1])


os.register_at_fork(after_in_child=_forget_in_child)


def hold_folder(path: str, option: str = "--output_dir") -> None:
    """Locks the folder `path` for this process until `release_folders`; a folder it holds already, or that does not
    exist yet, is left as it is (hold it again once it is made). Raises `ValueError` naming `option` when another
    process holds it. A folder that cannot be opened, or a file system without locks, gives no protection and no
    error (the scripts' folder checks speak for the first)."""
    real = os.path.realpath(path)
    if fcntl is None or real in _held or not os.path.isdir(real):
        return
    try:
        descriptor = os.open(real, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise ValueError(
            f"Another process is running in {option} {path} (the same run started twice, or a rerun while the first "
            f"still runs): wait for it to end, or choose another {option}."
        ) from None
    except OSError:
        os.close(descriptor)
        return
    _held[real] = descriptor


def held_folders() -> set[str]:
    """The real paths of the folders this process holds."""
    return set(_held)


def release_folders(keep: Collection[str] = ()) -> None:
    """Releases the folders this process holds, but those in `keep` (real paths, `held_folders()` of an outer
    caller)."""
    for real in [real for real in _held if real not in keep]:
        os.close(_held.pop(real))
