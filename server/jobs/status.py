"""Job status from memory: what GET /jobs/{id} answers, re-read only when the database changed.

Clients poll a job's status many times a second while it trains. Each poll used to open
SQLite connections and run queries, competing for the CPU with the training worker. Here a
single read connection asks SQLite's `data_version` (a counter of commits made by any other
connection: the worker's progress and heartbeats, the scheduler, the routes) and serves the
rows it read before until that counter moves. A poll is then a lock and a dict lookup.
"""

from __future__ import annotations

import sqlite3
import threading

from server.db import BUSY_TIMEOUT_MS, Database
from server.jobs.store import read_job, read_transitions

MAX_CACHED_JOBS = 1024  # polls of many (or made-up) ids cannot grow it without bound


class JobStatusCache:
    def __init__(self, db: Database):
        self._conn = sqlite3.connect(db.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                     check_same_thread=False)  # used by every HTTP thread, under the lock
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._version = None
        self._jobs: dict[int, tuple[dict | None, list[dict]]] = {}

    def job_with_history(self, job_id: int) -> tuple[dict | None, list[dict]]:
        """(the job row or None, its transitions), as committed in the database now. The
        answer is shared: callers build new objects from it and never change it."""
        with self._lock:
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._version or len(self._jobs) >= MAX_CACHED_JOBS:
                self._jobs.clear()
                self._version = version
            cached = self._jobs.get(job_id)
            if cached is None:
                self._conn.execute("BEGIN")  # one snapshot for the row and its history
                try:
                    cached = (read_job(self._conn, job_id), read_transitions(self._conn, job_id))
                finally:
                    self._conn.execute("COMMIT")
                self._jobs[job_id] = cached
            return cached

    def close(self) -> None:
        with self._lock:
            self._conn.close()
