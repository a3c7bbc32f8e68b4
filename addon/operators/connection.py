"""Plumbing operators: messages, cancelling tasks, the connection check, a temporary folder."""

from __future__ import annotations

import tempfile

import bpy
from bpy.props import IntProperty, StringProperty

from .. import bridge, watch
from ..core.client import ClientError
from .base import grey_out


class LATENT_OT_report_message(bpy.types.Operator):
    """Show a message from a background task in the info log"""

    bl_idname = "latent.report_message"
    bl_label = "Latent Studio Message"
    bl_options = {"INTERNAL"}

    level: StringProperty(default="INFO")
    message: StringProperty(default="")

    def execute(self, context):
        level = self.level if self.level in {"INFO", "WARNING", "ERROR"} else "INFO"
        self.report({level}, self.message)
        return {"FINISHED"}


class LATENT_OT_cancel_task(bpy.types.Operator):
    """Stop a background task"""

    bl_idname = "latent.cancel_task"
    bl_label = "Cancel Task"

    task_id: IntProperty(default=0)

    def execute(self, context):
        bridge.runner.cancel(self.task_id or None)
        self.report({"INFO"}, "Cancelling")
        return {"FINISHED"}


class LATENT_OT_check_connection(bpy.types.Operator):
    """Ask the server for its version and device (also resumes following training)"""

    bl_idname = "latent.check_connection"
    bl_label = "Check Connection"

    def execute(self, context):
        try:
            client = bridge.make_client(context)
        except ClientError as exc:
            bridge.set_connected(False, "Not connected")
            self.report({"ERROR"}, exc.message)
            return {"CANCELLED"}
        watch.check_connection(context, client)
        return {"FINISHED"}


class LATENT_OT_use_temp_folder(bpy.types.Operator):
    """Keep this unsaved file's renders, walks and images in a new temporary folder; when you save the .blend they are copied beside it"""

    bl_idname = "latent.use_temp_folder"
    bl_label = "Use a Temporary Folder"

    @classmethod
    def poll(cls, context):
        return grey_out(cls, "The .blend is saved: files go beside it" if bpy.data.filepath else None)

    def execute(self, context):
        folder = tempfile.mkdtemp(prefix="latent-studio-")
        context.scene.latent.temp_dir = folder
        self.report({"INFO"}, f"Until you save the .blend, the add-on's files go to {folder}")
        return {"FINISHED"}


class LATENT_OT_dismiss_notice(bpy.types.Operator):
    """Hide the news about the last training that ended"""

    bl_idname = "latent.dismiss_notice"
    bl_label = "Dismiss"

    def execute(self, context):
        s = context.scene.latent
        s.training_notice = s.notice_job = s.notice_image = ""
        return {"FINISHED"}


classes = (LATENT_OT_report_message, LATENT_OT_cancel_task, LATENT_OT_check_connection, LATENT_OT_use_temp_folder,
           LATENT_OT_dismiss_notice)
