"""SQLite access: one short-lived connection per unit of work, so threads and processes can share a file."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Iterator

BUSY_TIMEOUT_MS = 30_000  # writers from worker processes wait rather than fail with "database is locked"


class Database:
    """Holds only the path: cheap to pickle into a spawned worker process."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._open()
        try:
            # WAL lets readers run while a writer commits; it is a property of the file, set once.
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")  # durable enough with WAL, much faster
        return conn

    @contextlib.contextmanager
    def connect(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection inside one transaction: committed on success, rolled back on error, closed.

        immediate=True takes the write lock up front: use it for read-then-write sequences,
        which otherwise could interleave with another writer (or fail to upgrade their lock).
        """
        conn = self._open()
        try:
            conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def executescript(self, sql: str) -> None:
        conn = self._open()
        try:
            conn.executescript(sql)
        finally:
            conn.close()

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r})"
