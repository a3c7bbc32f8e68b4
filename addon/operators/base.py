"""What the operators share: the server-operator mixin and lookups of the scene's selections."""

from __future__ import annotations

import bpy

from .. import bridge
from ..core.api import SCRATCH_MODEL
from ..core.client import ClientError


class Refused(Exception):
    """The operator's input cannot work: the message is reported and nothing is sent."""


class ServerOperator:
    """Mixin for operators that hand work to the server: check, connect, submit.

    `plan(context)` checks the input on the main thread (raise Refused to stop) and returns
    plain data for `start(context, client, plan)`, which submits the work. Getting a client
    from the preferences, and reporting why there is none, happens here once for all."""

    client_timeout = 10.0  # seconds for a plain request
    long_timeout = 120.0  # seconds for a download

    def plan(self, context):
        return None

    def start(self, context, client, plan):
        raise NotImplementedError

    def no_client(self, context):
        """Called after reporting that the preferences give no usable server."""

    def execute(self, context):
        try:
            plan = self.plan(context)
        except Refused as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        try:
            client = bridge.make_client(context, timeout=self.client_timeout, long_timeout=self.long_timeout)
        except ClientError as exc:
            self.report({"ERROR"}, exc.message)
            self.no_client(context)
            return {"CANCELLED"}
        return self.start(context, client, plan)


def scene_from(msg):
    """The scene a task was started from (by name), or the current one if it is gone."""
    return bpy.data.scenes.get(msg.context.get("scene", "")) or bpy.context.scene


def selected_job_id(settings):
    if 0 <= settings.job_index < len(settings.jobs):
        return settings.jobs[settings.job_index].job_id
    return ""


def model_ref(settings):
    """The `model` of a generate / walk request; Refused when nothing is chosen."""
    if settings.model_source == "BASE":
        if not settings.base_model or settings.base_model == SCRATCH_MODEL:
            raise Refused("Choose a base model (Refresh Models) or use a training job")
        return {"model_id": settings.base_model}
    job_id = selected_job_id(settings)
    if not job_id:
        raise Refused("Select a training job (Refresh Jobs) to generate from")
    ref = {"job_id": int(job_id) if job_id.isdigit() else job_id}
    if 0 <= settings.snapshot_index < len(settings.snapshots):
        ref["step"] = settings.snapshots[settings.snapshot_index].step
    return ref
