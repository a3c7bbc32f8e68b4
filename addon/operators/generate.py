"""Generate images from a model and put an image on the active object's material."""

from __future__ import annotations

import random

import bpy
from bpy.props import StringProperty

from .. import bridge, materials
from ..core import limits, work
from .base import ServerOperator, model_ref, scene_from


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
            s.waypoints[s.waypoint_index].seed = random.randrange(0, limits.MAX_SEED)
        else:
            s.gen_seed = random.randrange(0, limits.MAX_SEED)
        return {"FINISHED"}


class LATENT_OT_generate_images(ServerOperator, bpy.types.Operator):
    """Generate images from the chosen model; they arrive as Blender images"""

    bl_idname = "latent.generate_images"
    bl_label = "Generate"

    long_timeout = 300.0  # the answer comes once every image is made

    def plan(self, context):
        return model_ref(context.scene.latent)

    def start(self, context, client, model):
        s = context.scene.latent
        out_dir, temporary = bridge.output_dir("generated")
        if s.storage == "SAVE" and temporary:
            self.report({"WARNING"}, f"The .blend is not saved: images go to the temporary folder {out_dir}")
        seeds = [s.gen_seed + i for i in range(s.count)]
        body = {"model": model, "seeds": seeds, "psi": s.psi, "noise_mode": limits.NOISE_MODE}
        bridge.runner.submit("generate", work.generate, client, body, out_dir, "latent", label="Generate",
                             context={"scene": context.scene.name, "storage": s.storage}, on_result=_generated)
        return {"FINISHED"}


def _generated(msg):
    names = []
    for seed, path in msg.payload["images"]:
        img = bridge.load_image(path, f"Latent seed {seed}")
        if msg.context["storage"] == "PACK":
            img.pack()
        names.append(img.name)
    scene_from(msg).latent.last_image = names[-1]
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


classes = (LATENT_OT_random_seed, LATENT_OT_generate_images, LATENT_OT_apply_image)
