"""The server's API vocabulary in one place: route prefix, resource states, fields we read.

These mirror the server (server/jobs/states.py, server/datasets/store.py,
server/walks/store.py and the routes' OpenAPI schemas); tests/unit/test_addon_contract.py
checks them against it, so the add-on never guesses at names the server does not send.
"""

API_PREFIX = "/api/v1"

# -- GET /health (the one route without a token) -> {"status", "version", "device", "device_name"}
HEALTH_FIELDS = ("version", "device", "device_name")

# -- datasets: GET /datasets/{id} -> {"id", "state", "progress" (0..1), "error" (str or null), ...}
DATASET_UPLOADED = "uploaded"
DATASET_PREPARING = "preparing"
DATASET_READY = "ready"
DATASET_FAILED = "failed"
DATASET_STATES = (DATASET_UPLOADED, DATASET_PREPARING, DATASET_READY, DATASET_FAILED)
DATASET_FIELDS = ("id", "state", "progress", "error")

# -- training jobs: GET /jobs -> {"jobs": [job]}; GET /jobs/{id}/snapshots -> {"snapshots": [snapshot]}
JOB_QUEUED = "queued"
JOB_RUNNING = "running"
JOB_CANCELLING = "cancelling"
JOB_COMPLETED = "completed"
JOB_CANCELLED = "cancelled"
JOB_FAILED = "failed"
JOB_INTERRUPTED = "interrupted"
JOB_STATES = (JOB_QUEUED, JOB_RUNNING, JOB_CANCELLING, JOB_COMPLETED, JOB_CANCELLED, JOB_FAILED, JOB_INTERRUPTED)
# While a job is in one of these it changes without anyone asking, so the add-on keeps polling.
JOB_WATCHED_STATES = (JOB_QUEUED, JOB_RUNNING, JOB_CANCELLING)
# A job that reaches one of these is announced once ("interrupted" is not an end: the server
# queues it again when it starts).
JOB_FINISHED_STATES = (JOB_COMPLETED, JOB_CANCELLED, JOB_FAILED)
# The server refuses to delete a job in one of these (409 job_active): "interrupted" is
# queued again when the server starts.
JOB_ACTIVE_STATES = (JOB_QUEUED, JOB_RUNNING, JOB_CANCELLING, JOB_INTERRUPTED)
JOB_FIELDS = ("id", "title", "state", "step", "steps", "kimg", "eta_s", "error", "estimate")
# A job's "estimate": null until the worker timed its first steps; `warning` is a sentence or null.
ESTIMATE_FIELDS = ("step", "sec_per_step", "eta_s", "snapshot_bytes", "snapshots_kept", "disk_bytes", "warning")
JOBS = "jobs"
SNAPSHOTS = "snapshots"
SNAPSHOT_FIELDS = ("step", "kimg")

# -- base models: GET /models -> {"models": [model], "refused": [{"file", "reason"}], "pending": [...]}
MODELS = "models"
REFUSED = "refused"
MODEL_FIELDS = ("id", "name", "kind", "resolution")
SCRATCH_MODEL = "scratch"  # the base_model that means "train from random weights"
# Models in the server's models folder: the only kinds DELETE /models/{id} removes (a job's
# snapshot goes with its job).
LIBRARY_MODEL_KINDS = ("checkpoint", "imported")

# -- latent walks: POST /walks and GET /walks/{id} -> {"id", "state", "error", "frames_done", "frames_total"}
WALK_QUEUED = "queued"
WALK_RENDERING = "rendering"
WALK_COMPLETED = "completed"
WALK_FAILED = "failed"
WALK_STATES = (WALK_QUEUED, WALK_RENDERING, WALK_COMPLETED, WALK_FAILED)
WALK_FIELDS = ("id", "state", "error", "frames_done", "frames_total")

# -- projections: POST /projections and GET /projections/{id} -> {"id", "state", "steps", "steps_done",
#    "loss", "note", "error", "result": null | {"w", "ws", "w_plus", "final_loss", ...}}
PROJECTION_QUEUED = "queued"
PROJECTION_RUNNING = "running"
PROJECTION_DONE = "done"
PROJECTION_FAILED = "failed"
PROJECTION_STATES = (PROJECTION_QUEUED, PROJECTION_RUNNING, PROJECTION_DONE, PROJECTION_FAILED)
PROJECTION_FIELDS = ("id", "state", "steps", "steps_done", "loss", "loss_kind", "note", "error", "result")
PROJECTION_RESULT_FIELDS = ("w", "ws", "w_plus", "final_loss")

# -- the latent-space explorer: POST /explore -> {"model", "grid", "center_index", "cells": [cell], ...}
EXPLORE_FIELDS = ("model", "grid", "center_index", "resolution", "cells")
EXPLORE_CELL_FIELDS = ("index", "row", "col", "z", "w", "png")
EXPLORE_IMAGES = "cells"  # the add-on shows one preview per cell: no need for the whole-grid PNG

# -- a dataset's report.json is the dataset builder's: {"resolution", "counts": {"accepted", ...},
#    "rejected": [{"file", "code", "reason"}], ...}
