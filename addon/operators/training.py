"""Base models and training jobs: start, refresh, cancel, continue (watch.py follows them)."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty

from .. import bridge, properties, watch
from ..core import api, work
from ..core.messages import server_text
from .base import Refused, ServerOperator, scene_from, selected_job, selected_job_id


class LATENT_OT_refresh_models(ServerOperator, bpy.types.Operator):
    """Fetch the list of base models from the server"""

    bl_idname = "latent.refresh_models"
    bl_label = "Refresh Models"

    rescan: BoolProperty(name="Rescan", default=False, options={"SKIP_SAVE"},
                         description="First have the server import the models newly copied into its models folder")

    @classmethod
    def description(cls, context, properties):
        if properties.rescan:
            return ("Look for models you copied into the server's models folder (importing .pkl files can take a "
                    "minute), then fetch the list: no server restart needed")
        return cls.__doc__

    def start(self, context, client, plan):
        label = "Rescan models folder" if self.rescan else "Refresh models"
        bridge.runner.submit("refresh_models", work.fetch_models, client, self.rescan, label=label,
                             context={"scene": context.scene.name}, on_result=_models_loaded)
        return {"FINISHED"}


def _models_loaded(msg):
    properties.set_model_items(msg.payload["models"], scene_from(msg).latent)
    refused = msg.payload["refused"]
    text = f"{len(msg.payload['models'])} models"
    if msg.payload["rescanned"]:
        text = "Models folder scanned: " + text
    if refused:
        text += f", {len(refused)} refused: " + "; ".join(server_text(f"{r['file']}: {r['reason']}")
                                                           for r in refused[:3])
    bridge.notify("WARNING" if refused else "INFO", text)


class LATENT_OT_start_training(ServerOperator, bpy.types.Operator):
    """Start a training job on the prepared dataset"""

    bl_idname = "latent.start_training"
    bl_label = "Start Training"

    @classmethod
    def unavailable(cls, context):
        s = context.scene.latent
        if not s.dataset_id or s.dataset_state != api.DATASET_READY:
            return "Upload and prepare a dataset first (Dataset > Upload & Prepare)"
        return None

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
        if s.precision != "auto":
            body["precision"] = s.precision
        if s.keep_snapshots:  # 0 keeps all: the server's default, so not sent
            body["keep_snapshots"] = s.keep_snapshots
        if s.gpus != 1:  # one is the server's default: not sent, so older servers still take the job
            body["gpus"] = s.gpus or "all"
        if s.tileable:  # off is the server's default: not sent, so older servers still take the job
            body["tileable"] = True
        bridge.runner.submit("start_job", work.start_job, client, body, label="Start training",
                             context={"scene": context.scene.name}, on_result=watch.job_changed)
        self.report({"INFO"}, "Starting training")
        return {"FINISHED"}


class LATENT_OT_refresh_jobs(ServerOperator, bpy.types.Operator):
    """Fetch the job list, the selected job's snapshots and its latest sample grid"""

    bl_idname = "latent.refresh_jobs"
    bl_label = "Refresh Jobs"

    def start(self, context, client, plan):
        watch.follow(context.scene)
        return {"FINISHED"}


class LATENT_OT_job_action(ServerOperator, bpy.types.Operator):
    """Cancel or continue the selected training job"""

    bl_idname = "latent.job_action"
    bl_label = "Job Action"

    action: EnumProperty(items=[("cancel", "Cancel", "Stop gracefully, keeping the last snapshot"),
                                ("resume", "Continue", "Continue training up to the Steps total")])

    @classmethod
    def unavailable(cls, context):
        return None if selected_job_id(context.scene.latent) else "Select a training job first (Refresh Jobs)"

    def plan(self, context):
        job = selected_job(context.scene.latent)
        if job is None:
            raise Refused("Select a training job first")
        if self.action == "cancel" and job.state not in api.JOB_WATCHED_STATES:
            raise Refused(f"Job '{job.title}' is {job.state}: only a queued or running job can be cancelled")
        if self.action == "resume" and job.state in api.JOB_WATCHED_STATES:
            raise Refused(f"Job '{job.title}' is {job.state}: it is still going")
        return job.job_id

    def start(self, context, client, job_id):
        s = context.scene.latent
        job = s.jobs[s.job_index]
        # resume takes a new total, which must be beyond what the job already has
        steps = max(s.steps, job.steps + 1) if self.action == "resume" else None
        bridge.runner.submit("job_action", work.job_action, client, job_id, self.action, steps,
                             label=f"{self.action.title()} job {job_id}", context={"scene": context.scene.name},
                             on_result=watch.job_changed)
        return {"FINISHED"}


classes = (LATENT_OT_refresh_models, LATENT_OT_start_training, LATENT_OT_refresh_jobs, LATENT_OT_job_action)
