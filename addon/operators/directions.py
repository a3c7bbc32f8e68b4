"""Fetch a model's semantic directions (with preview strips) and remove one from the scene.

Fetch resolves the model Generate and Bake Walk use, asks the server for the directions
of the chosen layer range and downloads their previews on a worker; the scene's list is
updated when they have arrived (directions already there keep their amounts and keys).
"""

from __future__ import annotations

import bpy
from bpy.props import IntProperty

from .. import bridge, directions, storage
from ..core import directions as core
from ..core.formatting import model_label
from .base import ServerOperator, grey_out, model_problem, model_ref, scene_from

TASK = "fetch_directions"


class LATENT_OT_fetch_directions(ServerOperator, bpy.types.Operator):
    """Ask the server for the model's strongest directions over the chosen layers (closed form from its weights: no data needed), with a preview strip for each"""

    bl_idname = "latent.fetch_directions"
    bl_label = "Fetch Directions"

    long_timeout = 120.0  # the first listing may load the model on the server

    @classmethod
    def unavailable(cls, context):
        if bridge.runner.running(TASK):
            return "Fetching directions: wait for the ones on their way"
        return model_problem(context.scene.latent)

    def plan(self, context):
        options = context.scene.latent_direction_options
        return model_ref(context.scene.latent), options.layers, options.count, options.preview_amount

    def start(self, context, client, plan):
        model, layers, count, amount = plan
        folder, _temporary = storage.download_dir("directions", context.scene)
        bridge.runner.submit(TASK, core.fetch_directions, client, model, layers, count, folder, amount,
                             label="Fetch directions", context={"scene": context.scene.name},
                             on_result=_fetched)
        return {"FINISHED"}


def _fetched(msg):
    p = msg.payload
    label = model_label(p["model"])
    updated, added = directions.merge(scene_from(msg), p, label)
    bridge.notify("INFO", f"{len(p['directions'])} {p['layers']} directions of {label}: {added} new, "
                          f"{updated} updated (keyframe their amounts; Bake Walk follows them)")


class LATENT_OT_remove_direction(bpy.types.Operator):
    """Remove this direction and its keyframes from the scene"""

    bl_idname = "latent.remove_direction"
    bl_label = "Remove Direction"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(name="Direction", default=-1, description="Which direction (its place in the list)")

    @classmethod
    def poll(cls, context):
        return grey_out(cls, None if len(context.scene.latent_directions) else "There is no direction to remove")

    def execute(self, context):
        scene = context.scene
        if not 0 <= self.index < len(scene.latent_directions):
            self.report({"ERROR"}, "Choose a direction to remove")
            return {"CANCELLED"}
        name = scene.latent_directions[self.index].name
        directions.remove(scene, self.index)
        self.report({"INFO"}, f"Removed direction {name} and its keyframes")
        return {"FINISHED"}


classes = (LATENT_OT_fetch_directions, LATENT_OT_remove_direction)
