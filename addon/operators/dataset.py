"""Upload a dataset folder and let the server prepare it."""

from __future__ import annotations

import os

import bpy

from .. import bridge, storage
from ..core import api, work
from ..core.files import has_images
from ..core.formatting import summarize_report
from .base import Refused, ServerOperator, scene_from

PREVIEW_IMAGE = "Latent Dataset Preview"


class LATENT_OT_upload_dataset(ServerOperator, bpy.types.Operator):
    """Zip the dataset folder, upload it and let the server prepare it"""

    bl_idname = "latent.upload_dataset"
    bl_label = "Upload & Prepare"

    client_timeout = 30.0  # the server reads the whole upload before it answers

    @classmethod
    def unavailable(cls, context):
        if bridge.runner.running("upload_dataset"):
            return "An upload is already running"
        try:
            storage.resolve_folder(context.scene.latent.dataset_dir, context.scene)
        except storage.NoFolder as exc:
            return str(exc)
        return None

    def plan(self, context):
        folder = storage.resolve_folder(context.scene.latent.dataset_dir, context.scene)
        if not os.path.isdir(folder):
            raise Refused(f"The dataset folder {folder} does not exist: render the dataset first")
        if not has_images(folder):
            raise Refused(f"There are no images in {folder}")
        if bridge.runner.running("upload_dataset"):
            raise Refused("An upload is already running")
        return folder

    def start(self, context, client, folder):
        s = context.scene.latent
        preview_dir, temporary = storage.download_dir("previews", context.scene)
        options = {"resolution": int(s.resolution), "crop": s.crop}
        name = os.path.basename(os.path.normpath(folder)) or "dataset"
        s.dataset_state = "uploading"  # the add-on's own state until the server has the dataset
        bridge.runner.submit("upload_dataset", work.upload_and_prepare, client, folder, name, options, preview_dir,
                             label="Upload dataset",
                             context={"scene": context.scene.name, "pack": temporary or s.storage == "PACK"},
                             on_result=_dataset_ready, on_error=_dataset_failed, on_cancelled=_dataset_cancelled)
        self.report({"INFO"}, f"Uploading {folder}")
        return {"FINISHED"}


def _dataset_ready(msg):
    s = scene_from(msg).latent
    p = msg.payload
    s.dataset_id = str(p["dataset"]["id"])
    s.dataset_state = p["dataset"]["state"]
    summary, rejected = summarize_report(p["report"])
    s.dataset_summary = summary
    s.dataset_rejected = rejected
    s.preview_image = storage.keep_image(bridge.load_image(p["preview"], PREVIEW_IMAGE), msg.context["pack"]).name
    bridge.notify("INFO", f"Dataset {s.dataset_id} ready: {summary}")


def _dataset_failed(msg):
    scene_from(msg).latent.dataset_state = api.DATASET_FAILED
    bridge.notify("ERROR", msg.payload["message"])


def _dataset_cancelled(msg):
    scene_from(msg).latent.dataset_state = "cancelled"  # the add-on's own state: never uploaded
    bridge.notify("WARNING", msg.payload["message"])


classes = (LATENT_OT_upload_dataset,)
