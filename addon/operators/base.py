"""What the operators share: the server-operator mixin, greying out, the model to use."""

from __future__ import annotations

import bpy

from .. import bridge, storage
from ..core.api import SCRATCH_MODEL
from ..core.client import ClientError
from ..watch import selected_job, selected_job_id

NOT_CONNECTED = "Not connected to the server: start it, then press Check Connection (Latent panel)"


class Refused(Exception):
    """The operator's input cannot work: the message is reported and nothing is sent."""


def grey_out(cls, reason):
    """poll() helper: False with `reason` as the button's tooltip, True without a reason."""
    if reason:
        cls.poll_message_set(reason)
        return False
    return True


class ServerOperator:
    """Mixin for operators that hand work to the server: check, connect, submit.

    `plan(context)` checks the input on the main thread (raise Refused to stop) and returns
    plain data for `start(context, client, plan)`, which submits the work. Getting a client
    from the preferences, and reporting why there is none, happens here once for all.
    `unavailable(context)` says why the button is greyed out (None: it can work); without
    a connection to the server every one is."""

    client_timeout = 10.0  # seconds for a plain request
    long_timeout = 120.0  # seconds for a download
    needs_server = True

    @classmethod
    def unavailable(cls, context):
        return None

    @classmethod
    def poll(cls, context):
        if cls.needs_server and not bridge.connection["ok"]:
            return grey_out(cls, NOT_CONNECTED)
        return grey_out(cls, cls.unavailable(context))

    def plan(self, context):
        return None

    def start(self, context, client, plan):
        raise NotImplementedError

    def execute(self, context):
        try:
            plan = self.plan(context)
        except (Refused, storage.NoFolder) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        try:
            client = bridge.make_client(context, timeout=self.client_timeout, long_timeout=self.long_timeout)
        except ClientError as exc:
            self.report({"ERROR"}, exc.message)
            return {"CANCELLED"}
        return self.start(context, client, plan)


def scene_from(msg):
    """The scene a task was started from (by name), or the current one if it is gone."""
    return bpy.data.scenes.get(msg.context.get("scene", "")) or bpy.context.scene


def model_problem(settings):
    """Why Generate / Bake Walk have no model to use, or None."""
    if settings.model_source == "BASE":
        if not settings.base_model or settings.base_model == SCRATCH_MODEL:
            return "Choose a base model (Refresh Models), or generate from a training job"
        return None
    job = selected_job(settings)
    if job is None:
        return "Select a training job (Refresh Jobs) to generate from"
    steps = [x.step for x in settings.snapshots] if settings.snapshots_job == job.job_id else []
    if not steps:
        return f"Job '{job.title}' has no snapshot yet: wait for training to write one (the list fills by itself)"
    if not settings.use_latest and settings.pinned_step not in steps:
        return f"Job '{job.title}' has no snapshot at step {settings.pinned_step}: pick one in its list"
    return None


def model_ref(settings):
    """The `model` of a generate / walk request; Refused when nothing usable is chosen.

    A job without a step means "its latest snapshot": the worker looks it up when the
    request is made (core.work.resolve_model), so it is the newest at that moment."""
    problem = model_problem(settings)
    if problem:
        raise Refused(problem)
    if settings.model_source == "BASE":
        return {"model_id": settings.base_model}
    job_id = selected_job_id(settings)
    ref = {"job_id": int(job_id) if job_id.isdigit() else job_id}
    if not settings.use_latest:
        ref["step"] = settings.pinned_step
    return ref
