"""Latent-walk waypoints and baking a walk into an image sequence on a material."""

from __future__ import annotations

import bpy
from bpy.props import IntProperty

from .. import bridge, materials, walks
from ..core import work
from ..core.walks import WalkError
from .base import Refused, ServerOperator, model_ref, scene_from

WALK_IMAGE = "Latent Walk"


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
        except WalkError as exc:
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
        except WalkError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class LATENT_OT_bake_walk(ServerOperator, bpy.types.Operator):
    """Render one image per scene frame along the waypoints and load them as an image sequence"""

    bl_idname = "latent.bake_walk"
    bl_label = "Bake Walk"

    long_timeout = 300.0  # the frames zip of a long walk is large

    def plan(self, context):
        obj = context.active_object
        if obj is None or not hasattr(obj.data, "materials"):
            raise Refused("Select the object whose material should show the walk")
        model = model_ref(context.scene.latent)
        try:
            body = walks.walk_request(context.scene, model)
        except WalkError as exc:
            raise Refused(str(exc)) from None
        return obj.name, body

    def start(self, context, client, plan):
        obj_name, body = plan
        scene = context.scene
        safe = "".join(c if c.isalnum() else "_" for c in scene.name)
        out_dir, temporary = bridge.output_dir(f"walk_{safe}")
        if temporary:
            self.report({"WARNING"}, f"The .blend is not saved: walk frames go to the temporary folder {out_dir}")
        bridge.runner.submit("bake_walk", work.bake_walk, client, body, out_dir, "walk", label="Bake walk",
                             context={"scene": scene.name, "object": obj_name, "frame_start": body["frame_start"]},
                             on_result=_walk_baked)
        return {"FINISHED"}


def _walk_baked(msg):
    p = msg.payload
    img = bridge.load_image(p["files"][0], WALK_IMAGE)
    materials.setup_sequence(msg.context["object"], img.name, msg.context["frame_start"], p["count"], p["first"])
    scene_from(msg).latent.walk_image = img.name
    bridge.notify("INFO", f"Walk baked: {p['count']} frames in {p['folder']}")


classes = (LATENT_OT_add_waypoint, LATENT_OT_remove_waypoint, LATENT_OT_bake_walk)
