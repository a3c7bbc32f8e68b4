"""Use Render as Waypoint: the last render (or an image file) is projected into the model on
the server, and a waypoint at the current frame gets the latent that reproduces it.

The Render Result holds no pixels Python can read in background mode, so it is saved with
Image.save_render (as an 8-bit PNG, the scene's own output settings restored after) on the
main thread; the upload and the polling run on a worker (core/projection.py); the handler
stores the latent on the waypoint on the main thread.
"""

from __future__ import annotations

import os
import tempfile

import bpy

from .. import bridge, walks
from ..core import projection
from ..core.walks import WalkError
from .base import Refused, ServerOperator, model_problem, model_ref, scene_from

RENDER_RESULT = "Render Result"


def _save_render(scene):
    """The Render Result as a PNG in a temporary file (its path), or Refused."""
    img = bpy.data.images.get(RENDER_RESULT)
    if img is None:
        raise Refused("There is no render yet: render an image (F12) first, or choose an image file")
    fd, path = tempfile.mkstemp(prefix="latent-render-", suffix=".png")
    os.close(fd)
    settings = scene.render.image_settings
    saved = (settings.file_format, settings.color_mode, settings.color_depth)
    try:
        settings.file_format, settings.color_mode, settings.color_depth = "PNG", "RGB", "8"
        img.save_render(filepath=path, scene=scene)
    except RuntimeError as exc:
        os.remove(path)
        raise Refused("There is no render to use yet: render an image (F12) first, or choose an image file "
                      f"({str(exc).strip()})") from None
    finally:
        settings.file_format, settings.color_mode, settings.color_depth = saved
    return path


class LATENT_OT_use_render_as_waypoint(ServerOperator, bpy.types.Operator):
    """Find the latent that reproduces the render (or the chosen image file) and put it on a waypoint at the current frame"""

    bl_idname = "latent.use_render_as_waypoint"
    bl_label = "Use Render as Waypoint"

    long_timeout = 300.0  # the upload of a large render

    @classmethod
    def unavailable(cls, context):
        s = context.scene.latent
        if s.projection_source == "FILE":
            if not s.projection_file:
                return "Choose the image file to project"
            if not os.path.isfile(bpy.path.abspath(s.projection_file)):
                return f"There is no file at {s.projection_file}"
        # The Render Result always exists (empty before the first render, and never readable in
        # background mode): whether it holds a render shows only when it is saved, in plan().
        return model_problem(s)

    def plan(self, context):
        scene = context.scene
        s = scene.latent
        model = model_ref(s)
        if s.projection_source == "FILE":
            path = bpy.path.abspath(s.projection_file)
            if not os.path.isfile(path):
                raise Refused(f"There is no file at {s.projection_file}")
            return model, path, False, scene.frame_current
        return model, _save_render(scene), True, scene.frame_current

    def start(self, context, client, plan):
        model, path, temporary, frame = plan
        s = context.scene.latent
        bridge.runner.submit("project_image", projection.project_file, client, model, path, s.projection_steps,
                             s.projection_w_plus, s.projection_loss, temporary, label="Use render as waypoint",
                             context={"scene": context.scene.name, "frame": frame},
                             on_result=_projected)
        return {"FINISHED"}


def _projected(msg):
    """Put the latent on the waypoint at the frame the user was on (a new one if none is there)."""
    scene = scene_from(msg)
    frame = msg.context["frame"]
    p = msg.payload
    wp = next((w for w in scene.latent.waypoints if w.frame == frame), None)
    if wp is None:
        try:
            wp = walks.add_waypoint(scene, frame, 0)
        except WalkError as exc:
            bridge.notify("ERROR", str(exc))
            return
    wp.use_vector, wp.vector_space, wp.vector = True, "W", p["vector"]
    scene.latent.waypoint_index = list(scene.latent.waypoints).index(wp)
    kind = "W+ latent" if p["w_plus"] else "w latent"
    note = f" ({p['note']})" if p.get("note") else ""
    bridge.notify("INFO", f"Waypoint at frame {frame}: the {kind} of projection {p['projection_id']} "
                          f"(loss {p['final_loss']:.3f}){note}")


classes = (LATENT_OT_use_render_as_waypoint,)
