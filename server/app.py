"""`create_app(config)`: the Flask application factory (no serving here; see server.cli.serve)."""

from __future__ import annotations

import logging

from flask import Flask

from .auth import install_auth, load_or_create_token
from .config import ServerConfig
from .datasets import store as dataset_store
from .db import Database
from .errors import register_error_handlers
from .state import EXTENSION_KEY, ServerState

log = logging.getLogger(__name__)

# Room for multipart boundaries and small form fields on top of the upload limit.
BODY_OVERHEAD_BYTES = 1 << 20


def _resolve_device(spec: str) -> tuple[str, str]:
    from gan_core.device import describe_device, resolve_device  # imports torch: only when an app is built

    device = resolve_device(spec)
    if device.type == "cuda" and device.index is None:
        import torch

        device = torch.device("cuda", torch.cuda.current_device())
    return str(device), describe_device(device)


def create_app(config: ServerConfig) -> Flask:
    for folder in (config.data_dir, config.datasets_dir, config.models_dir, config.jobs_dir, config.walks_dir):
        folder.mkdir(parents=True, exist_ok=True)
    token = load_or_create_token(config.token_path, config.token)
    db = Database(config.db_path)
    dataset_store.init_schema(db)

    device, device_name = _resolve_device(config.device)
    app = Flask(__name__, static_folder=None)  # no /static route: the API serves JSON and generated files only
    # Flask refuses larger bodies before a handler reads them; the upload code enforces the exact limit.
    app.config["MAX_CONTENT_LENGTH"] = config.max_upload_bytes + BODY_OVERHEAD_BYTES
    app.json.sort_keys = False
    state = ServerState(config, db, device=device, device_name=device_name, token=token)
    app.extensions[EXTENSION_KEY] = state

    register_error_handlers(app)
    install_auth(app, token)

    from .blueprints.health import bp as health_bp
    from .datasets.prepare import PreparationRunner, recover_after_restart
    from .datasets.routes import bp as datasets_bp
    from .models.routes import bp as models_bp
    from .openapi import bp as openapi_bp

    interrupted = recover_after_restart(state)
    if interrupted:
        log.warning("%d dataset preparation(s) were interrupted by the last stop and are marked failed", interrupted)
    state.preparations = PreparationRunner(state)
    for blueprint in (health_bp, openapi_bp, datasets_bp, models_bp):
        app.register_blueprint(blueprint)

    # Jobs, training workers, generation and walks (the jobs side of the server).
    from .generation.routes import bp as generation_bp
    from .jobs import init_jobs
    from .jobs.routes import bp as jobs_bp

    init_jobs(app)
    app.register_blueprint(jobs_bp)
    app.register_blueprint(generation_bp)

    from .models.routes import import_in_background

    import_in_background(state)
    return app
