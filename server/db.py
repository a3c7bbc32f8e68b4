"""SQLite access: one short-lived connection per unit of work, so threads and processes can share a file.

Settings of a durable single-file store: WAL (readers never wait for the writer, and a
crash mid-write leaves the last committed state), `synchronous=FULL` (a committed
transaction survives a power cut; our writes are few, so the extra fsync is cheap),
foreign keys on, and a busy timeout instead of "database is locked". The file and its
WAL/shared-memory companions are private to the owner (0600).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Iterator

BUSY_TIMEOUT_MS = 30_000  # writers from worker processes wait rather than fail with "database is locked"
SYNCHRONOUS = "FULL"
SQLITE_MAX_INTEGER = 2**63 - 1  # the largest id a row can have; a larger one in a URL names nothing
PRIVATE_FILE_MODE = 0o600
COMPANION_SUFFIXES = ("-wal", "-shm")  # SQLite's files beside the database
MAX_REPORTED_PROBLEMS = 3


class DatabaseDamagedError(ValueError):
    """The database file cannot be trusted. The message names it and the way out."""

    def __init__(self, path: Path, problem: str):
        # SQLite's reports span lines ("*** in database main ***" then one line per page): one line here.
        lines = [line.strip() for line in str(problem).splitlines() if line.strip() and not line.startswith("***")]
        self.path, self.problem = Path(path), "; ".join(lines) or "unreadable"
        data_dir = self.path.parent
        super().__init__(
            f"the database {self.path} is damaged ({self.problem}). The server will not start on it. "
            f"Run 'latent-studio db recover --data-dir {data_dir}': it keeps the damaged file beside it "
            f"(as {self.path.name}.damaged-<time>) and rebuilds the database from what can still be read and "
            f"from the data folder. 'latent-studio db check --data-dir {data_dir}' lists the problems."
        )


def make_private(path: Path) -> None:
    """Create `path` empty with mode 0600 if missing (so it is never world-readable, not
    even briefly), and tighten it and SQLite's companion files if someone loosened them."""
    path = Path(path)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))
    for file in (path, *(path.with_name(path.name + s) for s in COMPANION_SUFFIXES)):
        try:
            if os.name == "posix" and file.stat().st_mode & 0o077:
                os.chmod(file, PRIVATE_FILE_MODE)
        except FileNotFoundError:
            pass


class Database:
    """Holds only the path: cheap to pickle into a spawned worker process."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        make_private(self.path)  # SQLite gives its -wal and -shm files the database's mode
        try:
            conn = self._open()
            try:
                # WAL lets readers run while a writer commits; it is a property of the file, set once.
                conn.execute("PRAGMA journal_mode=WAL")
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:  # "file is not a database", "disk image is malformed"
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            raise DatabaseDamagedError(self.path, str(exc)) from exc

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
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

    def problems(self, thorough: bool) -> list[str]:
        """What SQLite's own check finds wrong ([] when healthy). thorough: integrity_check
        (also cross-checks every index), else quick_check (pages and rows only)."""
        pragma = "integrity_check" if thorough else "quick_check"
        conn = self._open()
        try:
            rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}({MAX_REPORTED_PROBLEMS})")]
        except sqlite3.DatabaseError as exc:
            return [str(exc)]
        finally:
            conn.close()
        return [] if rows == ["ok"] else rows

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r})"


def open_checked(path: str | Path, thorough: bool) -> Database:
    """The database at `path` after SQLite's check (see `Database.problems`), or
    DatabaseDamagedError naming the file and the way out."""
    db = Database(path)
    problems = db.problems(thorough)
    if problems:
        raise DatabaseDamagedError(db.path, "; ".join(problems))
    return db


def add_missing_columns(db: Database, table: str, columns: dict[str, str]) -> None:
    """ALTER TABLE for columns a newer version added (CREATE TABLE IF NOT EXISTS keeps old tables)."""
    conn = db._open()
    try:
        present = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name, declaration in columns.items():
            if name not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")
    finally:
        conn.close()
