"""Bodies of the jobs routes. Limits come from gan_core.rules, defaults from the training
library's own TrainingConfig, so a job asks for nothing the trainer would refuse later."""

import dataclasses
from typing import Literal

from pydantic import Field

from gan_core import rules
from gan_core.train.config import TrainingConfig
from server.jobs.states import ALL_STATES
from server.models.library import SCRATCH_ID
from server.validation import Document, Schema, Timestamp, choice, ruled, text, whole

TRAINING_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainingConfig)}
MAX_TITLE = 200

# Training processes of one job: a count or "all" (rules.check_gpus); the server checks it
# against its GPUs (or, on a CPU server, its cores) and the batch split.
Gpus = ruled(int | str, lambda value, name: rules.check_gpus(value, name),
             {"anyOf": [{"type": "integer", "minimum": 1, "maximum": rules.MAX_TRAIN_PROCESSES},
                        {"type": "string", "enum": [rules.ALL_GPUS]}],
              "description": "training processes, one per GPU ('all': every GPU the server was given); on a CPU "
                             "server, gloo processes sharing its cores"})

Resolution = ruled(int, lambda value, name: rules.check_resolution(value, name),
                   {"type": "integer", "minimum": rules.NETWORK_MIN_RESOLUTION,
                    "maximum": rules.NETWORK_MAX_RESOLUTION, "description": "a power of two"}, nullable=True)


class JobCreate(Schema):
    """POST /jobs. `steps` and `snapshot_every` have server-dependent limits (--max-steps,
    and the job's steps), checked by the route."""

    title: text(MAX_TITLE) = "untitled"
    dataset_id: text(64) = Field(description="an id from GET /api/v1/datasets (prepared)")
    base_model: text(200) = Field(SCRATCH_ID, description=f"'{SCRATCH_ID}' or a model id from GET /api/v1/models")
    resolution: Resolution = Field(None, description="must be the dataset's; null: the dataset's")
    steps: whole(1, nullable=True) = Field(None, description=f"total steps; null: {TRAINING_DEFAULTS['steps']} "
                                           "or the server's --max-steps if lower")
    batch: whole(1, rules.MAX_TRAIN_BATCH) = TRAINING_DEFAULTS["batch"]
    mirror: bool = TRAINING_DEFAULTS["mirror"]
    augmentation: choice(rules.AUG_MODES) = TRAINING_DEFAULTS["aug"]
    snapshot_every: whole(1, nullable=True) = Field(None, description=f"at most steps; null: {TRAINING_DEFAULTS['snapshot_every']} "
                                                    "or steps if lower")
    preset: choice(rules.PRESET_CHOICES) = TRAINING_DEFAULTS["preset"]
    seed: whole(0, rules.MAX_SEED) = TRAINING_DEFAULTS["seed"]
    precision: choice(rules.PRECISION_CHOICES) = Field(
        TRAINING_DEFAULTS["precision"], description="dtype of the networks' reduced-precision blocks; auto: fp16 on "
        "a GPU, fp32 on the CPU (which refuses fp16)")
    keep_snapshots: whole(1, nullable=True) = Field(None, description="keep only the newest N snapshots (and the "
                                                    "best by metric); null: keep all")
    gpus: Gpus = 1
    tileable: bool = Field(TRAINING_DEFAULTS["tileable"], description="train for seamless textures (wrap-around "
                           "padding, rolled views for D); the model then generates seamless images by default")


class JobResume(Schema):
    """POST /jobs/{id}/resume: continue to a new total of steps (null: the job's own)."""

    steps: whole(1, nullable=True) = None


class Transition(Document):
    from_state: str | None
    to_state: str
    reason: str | None
    at: Timestamp


class Estimate(Document):
    """Measured on the job's first steps (gan_core.train.estimate): shown before a long wait."""
    step: int
    sec_per_step: float
    eta_s: float
    snapshot_bytes: int = Field(description="disk per snapshot")
    snapshots_kept: int = Field(description="snapshots on disk when the job ends")
    timelapse_bytes: int = Field(0, description="disk the time-lapse (frames and video) takes when the job ends")
    disk_bytes: int = Field(description="disk the job's folder takes when it ends: kept snapshots and time-lapse")
    warning: str | None = Field(description="set when a CPU run would take more than a few hours")


class JobOut(Document):
    id: int
    title: str
    state: Literal[ALL_STATES]
    dataset_id: str | None
    base_model: str
    resolution: int | None
    steps: int
    step: int
    batch: int | None
    mirror: bool | None
    augmentation: str | None
    snapshot_every: int | None
    preset: str | None
    precision: str | None = Field(None, description="as asked (auto: the device's default)")
    keep_snapshots: int | None = Field(None, description="retention: the newest N snapshots are kept; null: all")
    gpus: int | str = Field(1, description="training processes as asked: a count or 'all'")
    tileable: bool = Field(False, description="trained for seamless textures")
    estimate: Estimate | None = Field(None, description="null until the first steps have been measured")
    kimg: float
    losses: dict[str, float]
    ada_p: float | None
    sec_per_kimg: float | None
    eta_s: float | None
    latest_grid_url: str | None
    snapshots_url: str
    timelapse_url: str | None = Field(None, description="the sample grids as an MP4, one frame per snapshot; "
                                      "null until the first snapshot")
    timelapse_frames_url: str | None = Field(None, description="the same frames as a zip of numbered PNGs")
    chart_url: str | None = Field(None, description="a chart of the losses, ADA, metrics and speed; null until "
                                  "training has started")
    error: str | None
    attempt: int
    pid: int | None
    heartbeat: Timestamp | None = Field(description="the worker's last sign of life")
    created_at: Timestamp
    updated_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    history: list[Transition] | None = Field(None, description="state changes, oldest first (GET /jobs/{id} only)")


class JobList(Document):
    jobs: list[JobOut]


class SnapshotOut(Document):
    step: int
    kimg: float
    grid_url: str
    download_url: str
    model_id: str = Field(description="for generate/walks `model` and as a job's base_model")


class SnapshotList(Document):
    snapshots: list[SnapshotOut]
