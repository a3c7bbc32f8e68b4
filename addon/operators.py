"""Operators (one per user action) and the main-thread handlers for their results.

Operators check their input on the main thread, collect plain data (names, paths,
numbers), and hand the network/file work to a worker (`bridge.runner`). Results come
back through `bridge.pump()` into the handlers below, which look Blender data up by name.
"""

from __future__ import annotations

import os
import random

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from . import bridge, materials, properties, walks, work
from .client import ClientError
from .render_dataset import list_images

PREVIEW_IMAGE = "Latent Dataset Preview"
SAMPLE_IMAGE = "Latent Training Samples"
WALK_IMAGE = "Latent Walk"


def _client_or_report(op, context):
    try:
        return bridge.make_client(context)
    except ClientError as exc:
        op.report({"ERROR"}, exc.message)
        return None


def _scene_from(msg):
    return bpy.data.scenes.get(msg.context.get("scene", "")) or bpy.context.scene


def _selected_job_id(settings):
    if 0 <= settings.job_index < len(settings.jobs):
        return settings.jobs[settings.job_index].job_id
    return ""


def _model_ref(op, settings):
    """The model for generate / walks, or None (after reporting) when nothing is chosen."""
    if settings.model_source == "BASE":
        if not settings.base_model or settings.base_model == "scratch":
            op.report({"ERROR"}, "Choose a base model (Refresh Models) or use a training job")
            return None
        return {"model_id": settings.base_model}
    job_id = _selected_job_id(settings)
    if not job_id:
        op.report({"ERROR"}, "Select a training job (Refresh Jobs) to generate from")
        return None
    ref = {"job_id": int(job_id) if job_id.isdigit() else job_id}
    if 0 <= settings.snapshot_index < len(settings.snapshots):
        ref["step"] = settings.snapshots[settings.snapshot_index].step
    return ref


# -- plumbing operators -----------------------------------------------------------------

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


# -- connection -------------------------------------------------------------------------

class LATENT_OT_check_connection(bpy.types.Operator):
    """Ask the server for its version and device"""

    bl_idname = "latent.check_connection"
    bl_label = "Check Connection"

    def execute(self, context):
        client = _client_or_report(self, context)
        if client is None:
            context.window_manager.latent_status.connection = "Not connected"
            return {"CANCELLED"}
        context.window_manager.latent_status.connection = "Checking..."
        bridge.runner.submit("check_connection", work.check_connection, client, label="Check connection")
        return {"FINISHED"}


@bridge.handler("check_connection")
def _connection_ok(msg):
    bpy.context.window_manager.latent_status.connection = msg.payload["text"]
    bridge.notify("INFO", f"Connected: {msg.payload['text']}")


@bridge.handler("check_connection", "error")
def _connection_failed(msg):
    bpy.context.window_manager.latent_status.connection = "Not connected"
    bridge.notify("ERROR", msg.payload["message"])


# -- dataset ----------------------------------------------------------------------------

class LATENT_OT_upload_dataset(bpy.types.Operator):
    """Zip the dataset folder, upload it and let the server prepare it"""

    bl_idname = "latent.upload_dataset"
    bl_label = "Upload & Prepare"

    def execute(self, context):
        s = context.scene.latent
        folder = bpy.path.abspath(s.dataset_dir)
        if not folder.strip() or folder.startswith("//"):
            self.report({"ERROR"}, "Choose a dataset folder (or save the .blend for a relative folder)")
            return {"CANCELLED"}
        if not os.path.isdir(folder):
            self.report({"ERROR"}, f"The dataset folder {folder} does not exist: render the dataset first")
            return {"CANCELLED"}
        if not list_images(folder) and not any(list_images(os.path.join(folder, d)) for d in os.listdir(folder)):
            self.report({"ERROR"}, f"There are no images in {folder}")
            return {"CANCELLED"}
        if bridge.runner.running("upload_dataset"):
            self.report({"ERROR"}, "An upload is already running")
            return {"CANCELLED"}
        client = _client_or_report(self, context)
        if client is None:
            return {"CANCELLED"}
        client.timeout = 30.0
        preview_dir, _tmp = bridge.output_dir("previews")
        options = {"resolution": int(s.resolution), "crop": s.crop}
        name = os.path.basename(os.path.normpath(folder)) or "dataset"
        s.dataset_state = "uploading"
        bridge.runner.submit("upload_dataset", work.upload_and_prepare, client, folder, name, options, preview_dir,
                             label="Upload dataset", context={"scene": context.scene.name})
        self.report({"INFO"}, f"Uploading {folder}")
        return {"FINISHED"}


@bridge.handler("upload_dataset")
def _dataset_ready(msg):
    scene = _scene_from(msg)
    s = scene.latent
    p = msg.payload
    s.dataset_id = str(p["dataset"].get("id"))
    s.dataset_state = p["dataset"].get("state", "ready")
    summary, rejected = work.summarize_report(p["report"])
    s.dataset_summary = summary
    s.dataset_rejected = rejected
    img = bridge.load_image(p["preview"], PREVIEW_IMAGE)
    s.preview_image = img.name
    bridge.notify("INFO", f"Dataset {s.dataset_id} ready: {summary}")


@bridge.handler("upload_dataset", "error")
def _dataset_failed(msg):
    _scene_from(msg).latent.dataset_state = "failed"
    bridge.notify("ERROR", msg.payload["message"])


@bridge.handler("upload_dataset", "cancelled")
def _dataset_cancelled(msg):
    _scene_from(msg).latent.dataset_state = "cancelled"
    bridge.notify("WARNING", msg.payload["message"])


# -- models and training ----------------------------------------------------------------

class LATENT_OT_refresh_models(bpy.types.Operator):
    """Fetch the list of base models from the server"""

    bl_idname = "latent.refresh_models"
    bl_label = "Refresh Models"

    def execute(self, context):
        client = _client_or_report(self, context)
        if client is None:
            return {"CANCELLED"}
        bridge.runner.submit("refresh_models", work.fetch_models, client, label="Refresh models",
                             context={"scene": context.scene.name})
        return {"FINISHED"}


@bridge.handler("refresh_models")
def _models_loaded(msg):
    properties.set_model_items(msg.payload["models"])
    refused = msg.payload.get("refused") or []
    text = f"{len(msg.payload['models'])} models"
    if refused:
        text += f", {len(refused)} refused: " + "; ".join(f"{r.get('file')}: {r.get('reason')}" for r in refused[:3])
    bridge.notify("WARNING" if refused else "INFO", text)


class LATENT_OT_start_training(bpy.types.Operator):
    """Start a training job on the prepared dataset"""

    bl_idname = "latent.start_training"
    bl_label = "Start Training"

    def execute(self, context):
        s = context.scene.latent
        if not s.dataset_id or s.dataset_state != "ready":
            self.report({"ERROR"}, "Upload and prepare a dataset first")
            return {"CANCELLED"}
        client = _client_or_report(self, context)
        if client is None:
            return {"CANCELLED"}
        body = {
            "title": s.job_title or f"{context.scene.name} {s.dataset_id}",
            "dataset_id": s.dataset_id,
            "base_model": s.base_model or "scratch",
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
                             context={"scene": context.scene.name})
        self.report({"INFO"}, "Starting training")
        return {"FINISHED"}


def _apply_jobs(scene, jobs, select_id=None):
    s = scene.latent
    keep = select_id or _selected_job_id(s)
    s.jobs.clear()
    for j in jobs:
        item = s.jobs.add()
        item.job_id = str(j.get("id", ""))
        item.title = str(j.get("title") or item.job_id)
        item.state = str(j.get("state", ""))
        item.step = int(j.get("step") or 0)
        item.steps = int(j.get("steps") or 0)
        item.kimg = float(j.get("kimg") or 0.0)
        item.progress = min(1.0, item.step / item.steps) if item.steps else 0.0
        eta = j.get("eta_s")
        item.eta_s = float(eta) if isinstance(eta, (int, float)) else -1.0
    for i, item in enumerate(s.jobs):
        if item.job_id == keep:
            s.job_index = i
            break
    else:
        s.job_index = 0 if len(s.jobs) else 0


def _apply_snapshots(scene, snaps):
    s = scene.latent
    keep = s.snapshots[s.snapshot_index].step if 0 <= s.snapshot_index < len(s.snapshots) else None
    s.snapshots.clear()
    for snap in sorted(snaps, key=lambda x: int(x.get("step", 0))):
        item = s.snapshots.add()
        item.step = int(snap.get("step", 0))
        item.kimg = float(snap.get("kimg") or 0.0)
    steps = [x.step for x in s.snapshots]
    s.snapshot_index = steps.index(keep) if keep in steps else max(0, len(steps) - 1)


def _start_watch(context_scene_name, client, job_id):
    grid_dir, _tmp = bridge.output_dir("samples")
    for t in bridge.runner.active():
        if t.name == "watch_jobs":
            t.cancel()
    bridge.runner.submit("watch_jobs", work.watch_jobs, client, job_id, grid_dir, label="Watch training",
                         context={"scene": context_scene_name})


@bridge.handler("start_job")
def _job_started(msg):
    scene = _scene_from(msg)
    job = msg.payload["job"]
    _apply_jobs(scene, msg.payload["jobs"], select_id=str(job.get("id")))
    bridge.notify("INFO", f"Training job {job.get('id')} {job.get('state', 'queued')}")
    try:
        _start_watch(scene.name, bridge.make_client(), str(job.get("id")))
    except ClientError as exc:
        bridge.notify("ERROR", exc.message)


def _apply_poll(scene, poll):
    _apply_jobs(scene, poll["jobs"])
    if poll.get("snapshots") is not None and poll.get("job_id") == _selected_job_id(scene.latent):
        _apply_snapshots(scene, poll["snapshots"])
    if poll.get("grid"):
        img = bridge.load_image(poll["grid"], SAMPLE_IMAGE)
        scene.latent.sample_image = img.name


@bridge.handler("watch_jobs", "progress")
def _watch_progress(msg):
    poll = msg.payload.get("poll")
    if poll:
        _apply_poll(_scene_from(msg), poll)


@bridge.handler("watch_jobs")
def _watch_done(msg):
    _apply_poll(_scene_from(msg), msg.payload)


@bridge.handler("watch_jobs", "cancelled")
def _watch_cancelled(msg):
    pass  # replaced by a newer watch, or the add-on is shutting down


class LATENT_OT_refresh_jobs(bpy.types.Operator):
    """Fetch the job list, the selected job's snapshots and its latest sample grid"""

    bl_idname = "latent.refresh_jobs"
    bl_label = "Refresh Jobs"

    def execute(self, context):
        client = _client_or_report(self, context)
        if client is None:
            return {"CANCELLED"}
        _start_watch(context.scene.name, client, _selected_job_id(context.scene.latent))
        return {"FINISHED"}


class LATENT_OT_job_action(bpy.types.Operator):
    """Cancel or continue the selected training job"""

    bl_idname = "latent.job_action"
    bl_label = "Job Action"

    action: EnumProperty(items=[("cancel", "Cancel", "Stop gracefully, keeping the last snapshot"),
                                ("resume", "Continue", "Continue training up to the Steps total")])

    def execute(self, context):
        s = context.scene.latent
        job_id = _selected_job_id(s)
        if not job_id:
            self.report({"ERROR"}, "Select a training job first")
            return {"CANCELLED"}
        client = _client_or_report(self, context)
        if client is None:
            return {"CANCELLED"}
        job = s.jobs[s.job_index]
        steps = max(s.steps, job.steps + 1) if self.action == "resume" else None
        bridge.runner.submit("job_action", work.job_action, client, job_id, self.action, steps,
                             label=f"{self.action.title()} job {job_id}", context={"scene": context.scene.name})
        return {"FINISHED"}


@bridge.handler("job_action")
def _job_action_done(msg):
    scene = _scene_from(msg)
    job = msg.payload["job"]
    _apply_jobs(scene, msg.payload["jobs"])
    bridge.notify("INFO", f"Job {job.get('id')}: {job.get('state')}")
    try:
        _start_watch(scene.name, bridge.make_client(), str(job.get("id")))
    except ClientError as exc:
        bridge.notify("ERROR", exc.message)


# -- generation -------------------------------------------------------------------------

class LATENT_OT_random_seed(bpy.types.Operator):
    """Pick a random seed"""

    bl_idname = "latent.random_seed"
    bl_label = "Random Seed"

    target: StringProperty(default="gen_seed")

    def execute(self, context):
        s = context.scene.latent
        if self.target == "waypoint":
            if not 0 <= s.waypoint_index < len(s.waypoints):
                self.report({"ERROR"}, "Select a waypoint first")
                return {"CANCELLED"}
            s.waypoints[s.waypoint_index].seed = random.randrange(0, 2 ** 31 - 1)
        else:
            s.gen_seed = random.randrange(0, 2 ** 31 - 1)
        return {"FINISHED"}


class LATENT_OT_generate_images(bpy.types.Operator):
    """Generate images from the chosen model; they arrive as Blender images"""

    bl_idname = "latent.generate_images"
    bl_label = "Generate"

    def execute(self, context):
        s = context.scene.latent
        model = _model_ref(self, s)
        if model is None:
            return {"CANCELLED"}
        client = _client_or_report(self, context)
        if client is None:
            return {"CANCELLED"}
        client.long_timeout = 300.0
        out_dir, temporary = bridge.output_dir("generated")
        if s.storage == "SAVE" and temporary:
            self.report({"WARNING"}, f"The .blend is not saved: images go to the temporary folder {out_dir}")
        seeds = [s.gen_seed + i for i in range(s.count)]
        body = {"model": model, "seeds": seeds, "psi": s.psi, "noise_mode": "const"}
        bridge.runner.submit("generate", work.generate, client, body, out_dir, "latent", label="Generate",
                             context={"scene": context.scene.name, "storage": s.storage})
        return {"FINISHED"}


@bridge.handler("generate")
def _generated(msg):
    scene = _scene_from(msg)
    names = []
    for seed, path in msg.payload["images"]:
        name = f"Latent seed {seed}"
        img = bridge.load_image(path, name)
        if msg.context.get("storage") == "PACK":
            img.pack()
        names.append(img.name)
    scene.latent.last_image = names[-1]
    bridge.notify("INFO", f"Generated {len(names)} image(s): {', '.join(names)}")


class LATENT_OT_apply_image(bpy.types.Operator):
    """Use an image as the Base Color of the active object's material"""

    bl_idname = "latent.apply_image"
    bl_label = "Apply to Material"
    bl_options = {"REGISTER", "UNDO"}

    image: StringProperty(name="Image", description="Image name; empty uses the last generated image")

    def execute(self, context):
        name = self.image or context.scene.latent.last_image
        obj = context.active_object
        try:
            mat, _node = materials.apply_image(obj.name if obj else "", name)
        except materials.MaterialError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"{name} is now the base color of {mat}")
        return {"FINISHED"}


# -- latent walks -----------------------------------------------------------------------

class LATENT_OT_add_waypoint(bpy.types.Operator):
    """Add a waypoint at the current frame (keyframed: move its key to re-time the walk)"""

    bl_idname = "latent.add_waypoint"
    bl_label = "Add Waypoint"
    bl_options = {"REGISTER", "UNDO"}

    seed: IntProperty(name="Seed", default=-1, description="-1 uses the Generate seed")

    def execute(self, context):
        scene = context.scene
        seed = self.seed if self.seed >= 0 else scene.latent.gen_seed
        try:
            walks.add_waypoint(scene, scene.frame_current, seed)
        except walks.WalkError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class LATENT_OT_remove_waypoint(bpy.types.Operator):
    """Remove the selected waypoint and its keyframe"""

    bl_idname = "latent.remove_waypoint"
    bl_label = "Remove Waypoint"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        try:
            walks.remove_waypoint(context.scene, context.scene.latent.waypoint_index)
        except walks.WalkError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class LATENT_OT_bake_walk(bpy.types.Operator):
    """Render one image per scene frame along the waypoints and load them as an image sequence"""

    bl_idname = "latent.bake_walk"
    bl_label = "Bake Walk"

    def execute(self, context):
        scene = context.scene
        obj = context.active_object
        if obj is None or not hasattr(obj.data, "materials"):
            self.report({"ERROR"}, "Select the object whose material should show the walk")
            return {"CANCELLED"}
        model = _model_ref(self, scene.latent)
        if model is None:
            return {"CANCELLED"}
        try:
            body = walks.walk_request(scene, model)
        except walks.WalkError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        client = _client_or_report(self, context)
        if client is None:
            return {"CANCELLED"}
        client.long_timeout = 300.0
        safe = "".join(c if c.isalnum() else "_" for c in scene.name)
        out_dir, temporary = bridge.output_dir(f"walk_{safe}")
        if temporary:
            self.report({"WARNING"}, f"The .blend is not saved: walk frames go to the temporary folder {out_dir}")
        bridge.runner.submit("bake_walk", work.bake_walk, client, body, out_dir, "walk", label="Bake walk",
                             context={"scene": scene.name, "object": obj.name, "frame_start": body["frame_start"]})
        return {"FINISHED"}


@bridge.handler("bake_walk")
def _walk_baked(msg):
    scene = _scene_from(msg)
    p = msg.payload
    img = bridge.load_image(p["files"][0], WALK_IMAGE)
    materials.setup_sequence(msg.context["object"], img.name, msg.context["frame_start"], p["count"], p["first"])
    scene.latent.walk_image = img.name
    bridge.notify("INFO", f"Walk baked: {p['count']} frames in {p['folder']}")


_classes = (
    LATENT_OT_report_message, LATENT_OT_cancel_task, LATENT_OT_check_connection, LATENT_OT_upload_dataset,
    LATENT_OT_refresh_models, LATENT_OT_start_training, LATENT_OT_refresh_jobs, LATENT_OT_job_action,
    LATENT_OT_random_seed, LATENT_OT_generate_images, LATENT_OT_apply_image, LATENT_OT_add_waypoint,
    LATENT_OT_remove_waypoint, LATENT_OT_bake_walk,
)


register, unregister = bpy.utils.register_classes_factory(_classes)
