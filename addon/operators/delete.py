"""Deleting on the server: a finished training job, a base model of the models folder, the
server's copy of the walk this scene baked last, the server's copy of this scene's dataset.

Each asks first (a button runs invoke(); scripts and tests call the operator with
EXEC_DEFAULT, which does not ask), deletes on a worker, then shows the lists as the server
has them now. What the add-on already has in Blender (images, baked frames) stays.
"""

from __future__ import annotations

import bpy

from .. import bridge, properties, watch
from ..core import api, work
from ..core.api import SCRATCH_MODEL
from .base import Refused, ServerOperator, scene_from, selected_job


class _Confirmed(ServerOperator):
    """invoke() asks `question(context)`; Delete runs ServerOperator.execute."""

    def question(self, context):
        raise NotImplementedError

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event, title=self.bl_label,
                                                     message=self.question(context), confirm_text="Delete",
                                                     icon="WARNING")


class LATENT_OT_delete_job(_Confirmed, bpy.types.Operator):
    """Delete the selected training job on the server, with its snapshots and sample grids (frees their disk)"""

    bl_idname = "latent.delete_job"
    bl_label = "Delete Job"

    @classmethod
    def unavailable(cls, context):
        job = selected_job(context.scene.latent)
        if job is None:
            return "Select a training job first (Refresh Jobs)"
        if job.state in api.JOB_ACTIVE_STATES:
            return f"Job '{job.title}' is {job.state}: cancel it and wait until it has stopped, then delete it"
        return None

    def question(self, context):
        job = selected_job(context.scene.latent)
        return (f"Delete job '{job.title}' on the server, with all its snapshots and sample grids? "
                "Images already in Blender stay.")

    def plan(self, context):
        job = selected_job(context.scene.latent)
        if job is None:
            raise Refused("Select a training job first")
        return job.job_id, job.title

    def start(self, context, client, plan):
        job_id, title = plan
        bridge.runner.submit("delete_job", work.delete_job, client, job_id, label=f"Delete job '{title}'",
                             context={"scene": context.scene.name, "title": title},
                             on_result=_job_deleted, on_error=_job_not_deleted)
        return {"FINISHED"}


def _job_deleted(msg):
    scene, p = scene_from(msg), msg.payload
    properties.set_model_items(p["models"], scene.latent)  # its snapshots were base models too
    watch.apply_jobs(scene, p["jobs"])
    title = msg.context["title"]
    bridge.notify("INFO", f"Deleted job '{title}' and its snapshots on the server" if p["existed"]
                  else f"Job '{title}' was already gone from the server")


def _job_not_deleted(msg):
    """Refused (the job is busy after all): say why, and show the list as it is now."""
    bridge.notify("ERROR", msg.payload["message"])
    watch.follow(scene_from(msg))


class LATENT_OT_delete_model(_Confirmed, bpy.types.Operator):
    """Delete the selected base model from the server's models folder, with the .pkl it was imported from"""

    bl_idname = "latent.delete_model"
    bl_label = "Delete Model"

    @classmethod
    def unavailable(cls, context):
        model_id = context.scene.latent.base_model
        if not model_id or model_id == SCRATCH_MODEL:
            return "Choose a base model from the server's models folder to delete (Refresh Models)"
        if properties.library_model_name(model_id) is None:
            return f"'{model_id}' is a snapshot of a training job: delete the job to delete it"
        return None

    def question(self, context):
        name = properties.library_model_name(context.scene.latent.base_model)
        return (f"Delete base model '{name}' from the server's models folder, with the .pkl it came from? "
                "Jobs trained from it keep their snapshots.")

    def plan(self, context):
        model_id = context.scene.latent.base_model
        return model_id, properties.library_model_name(model_id) or model_id

    def start(self, context, client, plan):
        model_id, name = plan
        bridge.runner.submit("delete_model", work.delete_model, client, model_id, label=f"Delete model '{name}'",
                             context={"scene": context.scene.name, "name": name}, on_result=_model_deleted)
        return {"FINISHED"}


def _model_deleted(msg):
    properties.set_model_items(msg.payload["models"], scene_from(msg).latent)
    name = msg.context["name"]
    bridge.notify("INFO", f"Deleted base model '{name}' from the server's models folder" if msg.payload["existed"]
                  else f"Base model '{name}' was already gone from the server")


class LATENT_OT_delete_walk(_Confirmed, bpy.types.Operator):
    """Delete the server's copy of the walk this scene baked last; the frames downloaded into Blender stay"""

    bl_idname = "latent.delete_walk"
    bl_label = "Delete Server Copy"

    @classmethod
    def unavailable(cls, context):
        return None if context.scene.latent.walk_id else "Bake a walk first: this deletes the server's copy of it"

    def question(self, context):
        s = context.scene.latent
        return (f"Delete walk {s.walk_id} on the server? Its frames in Blender ({s.walk_image}) stay "
                "and keep playing.")

    def start(self, context, client, plan):
        s = context.scene.latent
        bridge.runner.submit("delete_walk", work.delete_walk, client, s.walk_id, label=f"Delete walk {s.walk_id}",
                             context={"scene": context.scene.name, "image": s.walk_image}, on_result=_walk_deleted)
        return {"FINISHED"}


def _walk_deleted(msg):
    s = scene_from(msg).latent
    walk_id = msg.payload["walk_id"]
    if s.walk_id == walk_id:
        s.walk_id = ""
    done = "Deleted" if msg.payload["existed"] else "The server had already deleted"
    bridge.notify("INFO", f"{done} walk {walk_id} on the server; its frames in Blender ({msg.context['image']}) stay")


class LATENT_OT_delete_dataset(_Confirmed, bpy.types.Operator):
    """Delete the server's copy of this scene's dataset (the upload and its training zip); the images on this disk stay"""

    bl_idname = "latent.delete_dataset"
    bl_label = "Delete Server Copy"

    @classmethod
    def unavailable(cls, context):
        s = context.scene.latent
        if not s.dataset_id:
            return "Upload a dataset first: this deletes the server's copy of it"
        if bridge.runner.running("upload_dataset"):
            return "The dataset is still uploading or being prepared: wait for it, or cancel it"
        return None

    def question(self, context):
        return (f"Delete dataset {context.scene.latent.dataset_id} on the server? The images in "
                f"{context.scene.latent.dataset_dir} stay; jobs already trained on it keep their snapshots, "
                "but cannot be resumed.")

    def start(self, context, client, plan):
        dataset_id = context.scene.latent.dataset_id
        bridge.runner.submit("delete_dataset", work.delete_dataset, client, dataset_id,
                             label=f"Delete dataset {dataset_id}", context={"scene": context.scene.name},
                             on_result=_dataset_deleted)
        return {"FINISHED"}


def _dataset_deleted(msg):
    s = scene_from(msg).latent
    dataset_id = msg.payload["dataset_id"]
    if s.dataset_id == dataset_id:  # the scene still names it: it names nothing now
        s.dataset_id = s.dataset_state = s.dataset_summary = s.dataset_rejected = ""
    done = "Deleted" if msg.payload["existed"] else "The server had already deleted"
    bridge.notify("INFO", f"{done} dataset {dataset_id} on the server; the images on this disk stay")


classes = (LATENT_OT_delete_job, LATENT_OT_delete_model, LATENT_OT_delete_walk, LATENT_OT_delete_dataset)
