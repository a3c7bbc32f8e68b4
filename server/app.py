"""`create_app(config)`: the Flask application factory (no serving here; see server.cli.serve).

Each resource package wires itself in with `init_app(app, state)`: its tables, its
background services (declared on ServerState) and its blueprint. The order matters only
for shutdown, which runs the hooks newest first.
"""

from __future__ import annotations

import atexit
import logging
import os
from pathlib import Path

from flask import Flask

from server import health, openapi
from server.auth import install_auth, load_or_create_token
from server.config import ServerConfig
from server.datasets import routes as datasets
from server.directions import routes as directions
from server.db import Database, open_checked
from server.errors import register_error_handlers
from server.explore import routes as explore
from server.filelock import FileLock
from server.generation import routes as generation
from server.generation.model_cache import ModelCache
from server.jobs import routes as jobs
from server.models import routes as models
from server.projections import routes as projections
from server.state import EXTENSION_KEY, ServerState
from server.walks import routes as walks

log = logging.getLogger(__name__)

# Room for multipart boundaries and small form fields on top of the upload limit.
BODY_OVERHEAD_BYTES = 1 << 20
PRIVATE_DIR_MODE = 0o700  # the data directory holds the token and everyone's uploads: owner only
# Present while the owning server runs; left behind by a crash or kill -9, which makes the next
# start check the whole database (integrity_check) instead of the quick check.
RUNNING_MARKER = "server.running"
PACKAGES = (health, openapi, datasets, models, jobs, generation, directions, walks, explore, projections)


def _resolve_device(spec: str) -> tuple[str, str]:
    from gan_core.device import describe_device, resolve_device  # imports torch: only when an app is built

    device = resolve_device(spec)
    if device.type == "cuda" and device.index is None:
        import torch

        device = torch.device("cuda", torch.cuda.current_device())
    return str(device), describe_device(device)


def make_private_dirs(*folders: Path) -> None:
    """Create the folders 0700, and tighten ones made earlier with looser modes."""
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
        if os.name == "posix" and folder.stat().st_mode & 0o077:
            os.chmod(folder, PRIVATE_DIR_MODE)


def _open_database(config: ServerConfig) -> Database:
    """The database, checked by SQLite before anything uses it: thoroughly when the last
    server did not stop cleanly. A damaged one raises DatabaseDamagedError (the way out
    is in its message), so the server never starts on top of it."""
    return open_checked(config.db_path, thorough=(config.data_dir / RUNNING_MARKER).exists())


def _claim_data_dir(state: ServerState) -> None:
    """One server runs the queues of a data directory; a second one only serves requests.
    The OS drops the lock when the process dies, so a crash leaves no stale lock."""
    lock = FileLock(state.config.data_dir / "server.lock")
    state.owns_data_dir = lock.try_acquire()
    state.add_shutdown_hook(lock.release)  # added first: released last
    if state.owns_data_dir:
        marker = state.config.data_dir / RUNNING_MARKER
        marker.touch()
        state.add_shutdown_hook(lambda: marker.unlink(missing_ok=True))  # added second: runs just before the release


def create_app(config: ServerConfig) -> Flask:
    make_private_dirs(config.data_dir, config.datasets_dir, config.models_dir, config.jobs_dir, config.walks_dir)
    db = _open_database(config)  # first: a damaged database stops the start before anything else
    token = load_or_create_token(config.token_path, config.token)
    device, device_name = _resolve_device(config.device)
    app = Flask(__name__, static_folder=None)  # no /static route: the API serves JSON and generated files only
    # Flask refuses larger bodies before a handler reads them; the upload code enforces the exact limit.
    app.config["MAX_CONTENT_LENGTH"] = config.max_upload_bytes + BODY_OVERHEAD_BYTES
    app.json.sort_keys = False
    state = ServerState(config, db, device=device, device_name=device_name, token=token)
    app.extensions[EXTENSION_KEY] = state
    register_error_handlers(app)
    install_auth(app, token)

    _claim_data_dir(state)
    state.model_cache = ModelCache(device=state.device)  # shared by generate and walks
    for package in PACKAGES:
        package.init_app(app, state)
    atexit.register(state.shutdown)  # also when the process ends without serve's clean stop
    return app
