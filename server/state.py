"""Per-app server state (config, database, device), reachable from any request."""

from __future__ import annotations

import logging
import threading
from typing import Callable

from flask import current_app

from .config import ServerConfig
from .db import Database

log = logging.getLogger(__name__)
EXTENSION_KEY = "latent"


class ServerState:
    """Shared by all requests of one app. Other modules may hang their own attributes on it."""

    def __init__(self, config: ServerConfig, db: Database, device: str = "cpu", device_name: str = "CPU", token: str | None = None):
        self.config = config
        self.db = db
        self.device = device
        self.device_name = device_name
        self.token = token
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
