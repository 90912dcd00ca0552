"""One run per run directory: an exclusive lock held from the first write to the last.

The lock is `fcntl.flock` (POSIX) or `msvcrt.locking` (Windows) on `RUN_DIR/.lock`, which
holds the holder's process id. The operating system releases it when the process ends, however
it ends (a SIGKILL, a crash, a power cut), so the rerun of a killed run is never blocked, and a
second process started on the same directory is refused at once instead of training into it.
The file itself stays: deleting a lock file lets a third process lock a new file while a second
still holds the old one. Under `MultiWorkerMirroredStrategy` each worker locks the directory it
writes (the chief the run directory, worker N its `worker-N/`).
"""

import os

LOCK_FILE = ".lock"

try:  # POSIX
    import fcntl

    def _try_lock(handle):
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(handle):
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

except ImportError:  # Windows: a lock on the file's first byte, also released on exit
    import msvcrt

    def _try_lock(handle):
        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(handle):
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)


class RunDirectoryBusy(ValueError):
    """Another live process holds the run directory's lock."""


class RunDirectoryLock:
    """The exclusive lock of one run directory (a context manager).

    Args:
        directory: The run directory (it must exist).
    """

    def __init__(self, directory):
        self.directory = directory
        self.path = os.path.join(directory, LOCK_FILE)
        self.handle = None

    def acquire(self):
        """Take the lock, or raise `RunDirectoryBusy` naming the directory and the holder."""
        # "a+" neither truncates (the holder's pid stays readable) nor fails if it exists.
        handle = open(self.path, "a+", encoding="utf-8")
        if not _try_lock(handle):
            try:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
            except OSError:  # Windows: the locked byte cannot be read
                holder = "unknown"
            handle.close()
            raise RunDirectoryBusy(
                f"The run directory {self.directory!r} is in use by another run (process "
                f"{holder}). Wait for it to finish, stop it, or pass another --out DIR."
            )
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self.handle = handle
        return self

    def release(self):
        if self.handle is not None:
            _unlock(self.handle)
            self.handle.close()
            self.handle = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()


def process_alive(pid):
    """True if process `pid` exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:  # Windows: os.kill(pid, 0) is not a probe; take it as alive
        return True
    return True
