"""Load Time-lapse: the selected job's snapshot grids in order, as a movie clip, as an image
sequence on the active object's material, or as a strip in the Video Sequencer.

Each load gets a folder of its own beside the .blend (`timelapse/job<id>_NNN/`), so loading
again later (the job has more snapshots by then) never replaces a file Blender is playing.
"""

from __future__ import annotations

import os

import bpy
from bpy.props import EnumProperty

from .. import bridge, materials, storage
from ..core import media
from .base import ServerOperator, scene_from, selected_job

TIMELAPSE_NAME = "Latent Time-lapse job {}"
NODE_NAME = "Latent Studio Time-lapse"  # its own image node: a still or a walk on the material stays


class LATENT_OT_load_timelapse(ServerOperator, bpy.types.Operator):
    """Load the selected job's time-lapse (a frame per snapshot, its step written on it)"""

    bl_idname = "latent.load_timelapse"
    bl_label = "Load Time-lapse"

    long_timeout = 300.0  # a long run's time-lapse is large

    mode: EnumProperty(name="As", items=media.TIMELAPSE_MODES, default="MOVIECLIP")

    @classmethod
    def description(cls, context, properties):
        return {mode: text for mode, _label, text in media.TIMELAPSE_MODES}.get(properties.mode, cls.__doc__)

    @classmethod
    def unavailable(cls, context):
        s = context.scene.latent
        job = selected_job(s)
        if job is None:
            return "Select a training job (Training panel)"
        if s.snapshots_job == job.job_id and not len(s.snapshots):
            return f"Job '{job.title}' has no snapshot yet: its time-lapse starts with the first one"
        if storage.base_folder(context.scene) is None:
            return storage.NEEDS_FOLDER
        return None

    def plan(self, context):
        job = selected_job(context.scene.latent)
        obj = context.active_object
        takes_material = self.mode == "SEQUENCE" and obj is not None and hasattr(obj.data, "materials")
        return job.job_id, job.title, obj.name if takes_material else ""

    def start(self, context, client, plan):
        job_id, title, obj_name = plan
        scene = context.scene
        try:
            folder = storage.new_folder("timelapse", f"job{job_id}", scene)
        except storage.NoFolder as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        bridge.runner.submit("load_timelapse", media.fetch_timelapse, client, job_id, self.mode, folder,
                             label="Load time-lapse",
                             context={"scene": scene.name, "object": obj_name, "title": title, "folder": folder},
                             on_result=_loaded, on_error=_not_loaded, on_cancelled=_not_loaded)
        return {"FINISHED"}


def _movie_clip(path, name):
    clip = bpy.data.movieclips.load(path)
    clip.name = name
    clip.filepath = storage.file_reference(path)
    clip.use_fake_user = True  # kept in the .blend until the user removes it
    return f"as movie clip '{clip.name}' ({clip.frame_duration} frames)"


def _sequencer_strip(scene, path, name):
    editor = scene.sequence_editor or scene.sequence_editor_create()
    channel = max((strip.channel for strip in editor.strips_all), default=0) + 1  # above everything there
    strip = editor.strips.new_movie(name=name, filepath=path, channel=channel, frame_start=scene.frame_start)
    strip.filepath = storage.file_reference(path)
    return (f"in the Video Sequencer as strip '{strip.name}' (channel {channel}, frames {strip.frame_final_start}"
            f"-{strip.frame_final_end - 1})")


def _image_sequence(scene, files, name, obj_name):
    img = storage.keep_image(bridge.load_image(files[0], name), pack=False)
    img.source = "SEQUENCE"
    text = f"as image sequence '{img.name}' ({len(files)} frames)"
    if not obj_name:
        return text + ": use it in any Image Texture node"
    mat_name, node_name, note = materials.apply_image(obj_name, img.name, NODE_NAME, "Latent Studio time-lapse")
    user = bpy.data.materials[mat_name].node_tree.nodes[node_name].image_user
    user.frame_duration = len(files)
    user.frame_start = scene.frame_start  # file 1 at the scene's first frame, one file per frame
    user.frame_offset = 0
    user.use_auto_refresh = True
    user.use_cyclic = False
    return text + f" on '{obj_name}' (material '{mat_name}')" + (f"; {note}" if note else "")


def _loaded(msg):
    p = msg.payload
    scene = scene_from(msg)
    name = TIMELAPSE_NAME.format(p["job_id"])
    if p["mode"] == "MOVIECLIP":
        where = _movie_clip(p["path"], name)
    elif p["mode"] == "VSE":
        where = _sequencer_strip(scene, p["path"], name)
    else:
        where = _image_sequence(scene, p["files"], name, msg.context["object"])
    bridge.notify("INFO", f"Time-lapse of '{msg.context['title']}' loaded {where}, from {p['folder']}")


def _not_loaded(msg):
    """The load's own folder, made for it a moment ago, goes if nothing landed in it."""
    folder = msg.context["folder"]
    if os.path.isdir(folder) and not os.listdir(folder):
        os.rmdir(folder)
    bridge.notify("ERROR" if msg.kind == "error" else "WARNING", msg.payload["message"])


classes = (LATENT_OT_load_timelapse,)
