"""Per-app server state: config, database, device, and the long-lived services the packages start.

Every service is a declared attribute set by one package's `init_app` (see server.app), so
a reader finds where each comes from; nothing is created lazily on first use.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from flask import current_app

from server.config import ServerConfig
from server.db import Database

log = logging.getLogger(__name__)
EXTENSION_KEY = "latent"


class ServerState:
    """Shared by all requests of one app."""

    def __init__(self, config: ServerConfig, db: Database, device: str = "cpu", device_name: str = "CPU", token: str | None = None):
        self.config = config
        self.db = db
        self.device = device
        self.device_name = device_name
        self.token = token
        # True when this server holds the data directory's lock: only then does it run the
        # job queue and resume interrupted walks (two servers on one folder would race).
        self.owns_data_dir = False
        self.model_cache = None   # server.generation.model_cache.ModelCache   (server.app)
        self.preparations = None  # server.datasets.prepare.PreparationRunner (datasets)
        self.scheduler = None     # server.jobs.scheduler.Scheduler           (jobs)
        self.job_status = None    # server.jobs.status.JobStatusCache         (jobs)
        self.renders = None       # server.generation.render_queue.RenderQueue (generation)
        self.walk_runner = None   # server.walks.runner.WalkRunner            (walks)
        self.directions = None    # server.directions.cache.DirectionCache    (directions)
        self.projections = None   # server.projections.runner.ProjectionRunner (projections)
        self._shutdown_hooks: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._shut_down = False

    def add_shutdown_hook(self, fn: Callable[[], None]) -> None:
        with self._lock:
            self._shutdown_hooks.append(fn)

    def shutdown(self) -> None:
        """Run the hooks once, newest first (later subsystems depend on earlier ones)."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            hooks = list(reversed(self._shutdown_hooks))
        for hook in hooks:
            try:
                hook()
            except Exception:  # one failing hook must not keep the others from cleaning up
                log.exception("shutdown hook %r failed", hook)


def current_state() -> ServerState:
    return current_app.extensions[EXTENSION_KEY]
