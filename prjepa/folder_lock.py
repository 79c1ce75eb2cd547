"""One run per output folder: a pretraining process (and an experiment, its results folder) locks its folder (`flock` on
the folder's own descriptor) while it writes there, so that a second command started into the same folder (a job
submitted twice, a rerun while the first still runs) stops before it loads anything instead of interleaving its
checkpoints with the first's. The lock is the
process's: it goes when the process ends, however it ends, and leaves no file behind. Standard library only."""

import os

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so no protection
    fcntl = None

# Real path → the open descriptor that holds its lock.
_held: dict[str, int] = {}


def hold_folder(path: str, option: str = "--output_dir") -> None:
    """Locks the folder `path` for this process until `release_folders`; a folder it holds already, or that does not
    exist yet, is left as it is (hold it again once it is made). Raises `ValueError` naming `option` when another
    process holds it. A file system without locks (some network mounts) gives no protection and no error."""
    real = os.path.realpath(path)
    if fcntl is None or real in _held or not os.path.isdir(real):
        return
    descriptor = os.open(real, os.O_RDONLY)
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


def release_folders() -> None:
    """Releases every folder this process holds."""
    while _held:
        os.close(_held.popitem()[1])
