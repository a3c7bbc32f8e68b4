"""Base models, training jobs, and the poll that keeps the job list and sample grid current."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty

from .. import bridge, properties
from ..core import api, joblist, work
from ..core.client import ClientError
from .base import Refused, ServerOperator, scene_from, selected_job_id

SAMPLE_IMAGE = "Latent Training Samples"


class LATENT_OT_refresh_models(ServerOperator, bpy.types.Operator):
    """Fetch the list of base models from the server"""

    bl_idname = "latent.refresh_models"
    bl_label = "Refresh Models"

    def start(self, context, client, plan):
        bridge.runner.submit("refresh_models", work.fetch_models, client, label="Refresh models",
                             context={"scene": context.scene.name}, on_result=_models_loaded)
        return {"FINISHED"}


def _models_loaded(msg):
    properties.set_model_items(msg.payload["models"])
    refused = msg.payload["refused"]
    text = f"{len(msg.payload['models'])} models"
    if refused:
        text += f", {len(refused)} refused: " + "; ".join(f"{r['file']}: {r['reason']}" for r in refused[:3])
    bridge.notify("WARNING" if refused else "INFO", text)


class LATENT_OT_start_training(ServerOperator, bpy.types.Operator):
    """Start a training job on the prepared dataset"""

    bl_idname = "latent.start_training"
    bl_label = "Start Training"

    def plan(self, context):
        s = context.scene.latent
        if not s.dataset_id or s.dataset_state != api.DATASET_READY:
            raise Refused("Upload and prepare a dataset first")

    def start(self, context, client, plan):
        s = context.scene.latent
        body = {
            "title": s.job_title or f"{context.scene.name} {s.dataset_id}",
            "dataset_id": s.dataset_id,
            "base_model": s.base_model or api.SCRATCH_MODEL,
            "resolution": int(s.resolution),
            "steps": s.steps,
            "batch": s.batch,
            "mirror": s.mirror,
            "augmentation": s.augmentation,
            "snapshot_every": s.snapshot_every,
        }
        if s.preset != "auto":
            body["preset"] = s.preset
        bridge.runner.submit("start_job", work.start_job, client, body, label="Start training",
                             context={"scene": context.scene.name}, on_result=_job_changed)
        self.report({"INFO"}, "Starting training")
        return {"FINISHED"}


class LATENT_OT_refresh_jobs(ServerOperator, bpy.types.Operator):
    """Fetch the job list, the selected job's snapshots and its latest sample grid"""

    bl_idname = "latent.refresh_jobs"
    bl_label = "Refresh Jobs"

    def start(self, context, client, plan):
        _start_watch(context.scene.name, client, selected_job_id(context.scene.latent))
        return {"FINISHED"}


class LATENT_OT_job_action(ServerOperator, bpy.types.Operator):
    """Cancel or continue the selected training job"""

    bl_idname = "latent.job_action"
    bl_label = "Job Action"

    action: EnumProperty(items=[("cancel", "Cancel", "Stop gracefully, keeping the last snapshot"),
                                ("resume", "Continue", "Continue training up to the Steps total")])

    def plan(self, context):
        job_id = selected_job_id(context.scene.latent)
        if not job_id:
            raise Refused("Select a training job first")
        return job_id

    def start(self, context, client, job_id):
        s = context.scene.latent
        job = s.jobs[s.job_index]
        # resume takes a new total, which must be beyond what the job already has
        steps = max(s.steps, job.steps + 1) if self.action == "resume" else None
        bridge.runner.submit("job_action", work.job_action, client, job_id, self.action, steps,
                             label=f"{self.action.title()} job {job_id}", context={"scene": context.scene.name},
                             on_result=_job_changed)
        return {"FINISHED"}


def _job_changed(msg):
    """A job was created, cancelled or resumed: show the new list and follow that job."""
    scene = scene_from(msg)
    job = msg.payload["job"]
    _apply_jobs(scene, msg.payload["jobs"], select_id=str(job["id"]))
    bridge.notify("INFO", f"Training job {job['id']}: {job['state']}")
    try:
        _start_watch(scene.name, bridge.make_client(), str(job["id"]))
    except ClientError as exc:
        bridge.notify("ERROR", exc.message)


# -- the watch: one worker polls while jobs are active; each poll lands here -------------

def _start_watch(scene_name, client, job_id):
    grid_dir, _tmp = bridge.output_dir("samples")
    for t in bridge.runner.active():
        if t.name == "watch_jobs":
            t.cancel()
    bridge.runner.submit("watch_jobs", work.watch_jobs, client, job_id, grid_dir, label="Watch training",
                         context={"scene": scene_name}, on_progress=_watch_progress, on_result=_watch_done,
                         on_cancelled=_watch_replaced)


def _watch_progress(msg):
    _apply_poll(scene_from(msg), msg.payload["poll"])


def _watch_done(msg):
    _apply_poll(scene_from(msg), msg.payload)


def _watch_replaced(msg):
    """A newer watch took over, or the add-on is shutting down: nothing to tell the user."""


def _apply_poll(scene, poll):
    _apply_jobs(scene, poll["jobs"])
    if poll["snapshots"] is not None and poll["job_id"] == selected_job_id(scene.latent):
        _apply_snapshots(scene, poll["snapshots"])
    if poll["grid"]:
        scene.latent.sample_image = bridge.load_image(poll["grid"], SAMPLE_IMAGE).name


def _apply_jobs(scene, jobs, select_id=None):
    s = scene.latent
    keep = select_id or selected_job_id(s)
    rows = joblist.job_rows(jobs)
    s.jobs.clear()
    for row in rows:
        item = s.jobs.add()
        for key, value in row.items():
            setattr(item, key, value)
    s.job_index = joblist.index_of([r["job_id"] for r in rows], keep)


def _apply_snapshots(scene, snapshots):
    s = scene.latent
    keep = s.snapshots[s.snapshot_index].step if 0 <= s.snapshot_index < len(s.snapshots) else None
    rows = joblist.snapshot_rows(snapshots)
    s.snapshots.clear()
    for row in rows:
        item = s.snapshots.add()
        item.step, item.kimg = row["step"], row["kimg"]
    steps = [r["step"] for r in rows]
    s.snapshot_index = joblist.index_of(steps, keep, fallback=max(0, len(steps) - 1))


classes = (LATENT_OT_refresh_models, LATENT_OT_start_training, LATENT_OT_refresh_jobs, LATENT_OT_job_action)
