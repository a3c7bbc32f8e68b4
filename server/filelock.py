"""An exclusive OS lock on a file, released by the kernel when the holder dies.

Used for "one server per data directory" (server.app) and "one worker per job
directory" (server.jobs.worker): a crashed holder never leaves a stale lock behind.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

POLL_S = 0.2


class FileLock:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._fh = None

    def try_acquire(self) -> bool:
        """Take the lock now or return False; never waits."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a+b")
        try:
            if os.name == "nt":
                import msvcrt

                self._fh.seek(0)  # msvcrt locks bytes from the current position
                msvcrt.locking(self._fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def acquire(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the lock."""
        deadline = time.monotonic() + timeout
        while not self.try_acquire():
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_S)
        return True

    def release(self) -> None:
        """Closing the file drops the lock."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
