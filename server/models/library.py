"""Every model a job can start from or generation can use, from three sources: "scratch"
(train from nothing), checkpoints and imported pickles in data_dir/models
(gan_core.models.library), and snapshots of finished jobs (the jobs store).

Listing never imports (fast; new pickles appear under "pending"); importing happens on
POST /models/rescan and in a background scan when the server starts.
"""

from __future__ import annotations

import logging
import threading

from server.jobs.store import list_job_models
from server.state import ServerState

log = logging.getLogger(__name__)

SCRATCH_ID = "scratch"  # the base_model that means "train from random weights"
SCRATCH = {"id": SCRATCH_ID, "name": "From scratch", "kind": "scratch", "resolution": None, "thumbnail_path": None}


def scan_library(state: ServerState, import_pickles: bool) -> dict:
    """data_dir/models as {"models", "refused", "pending"}; entries carry `thumbnail_path`."""
    from gan_core.models.library import scan_model_library  # imports torch: not at server import

    result = scan_model_library(state.config.models_dir, import_pickles=import_pickles)
    models = [{**m, "thumbnail_path": m.get("thumbnail")} for m in result.get("models", [])]
    return {"models": models, "refused": list(result.get("refused", [])), "pending": list(result.get("pending", []))}


def import_in_background(state: ServerState) -> threading.Thread:
    """At start-up: import pickles dropped into the models folder while the server was off."""
    def run():
        try:
            scan_library(state, import_pickles=True)
        except Exception:  # never take the server down over the library
            log.exception("background scan of %s failed", state.config.models_dir)

    thread = threading.Thread(target=run, name="model-library-import", daemon=True)
    thread.start()
    return thread


def all_models(state: ServerState, import_pickles: bool = False) -> tuple[list[dict], dict]:
    """([scratch, library models..., job snapshots...], the library scan)."""
    scanned = scan_library(state, import_pickles)
    return [dict(SCRATCH), *scanned["models"], *list_job_models(state)], scanned
