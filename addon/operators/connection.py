"""Plumbing operators (messages, cancelling tasks) and the connection check."""

from __future__ import annotations

import bpy
from bpy.props import IntProperty, StringProperty

from .. import bridge
from ..core import work
from .base import ServerOperator


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


class LATENT_OT_check_connection(ServerOperator, bpy.types.Operator):
    """Ask the server for its version and device"""

    bl_idname = "latent.check_connection"
    bl_label = "Check Connection"

    def no_client(self, context):
        context.window_manager.latent_status.connection = "Not connected"

    def start(self, context, client, plan):
        context.window_manager.latent_status.connection = "Checking..."
        bridge.runner.submit("check_connection", work.check_connection, client, label="Check connection",
                             on_result=_connected, on_error=_not_connected)
        return {"FINISHED"}


def _connected(msg):
    bpy.context.window_manager.latent_status.connection = msg.payload["text"]
    bridge.notify("INFO", f"Connected: {msg.payload['text']}")


def _not_connected(msg):
    bpy.context.window_manager.latent_status.connection = "Not connected"
    bridge.notify("ERROR", msg.payload["message"])


classes = (LATENT_OT_report_message, LATENT_OT_cancel_task, LATENT_OT_check_connection)
