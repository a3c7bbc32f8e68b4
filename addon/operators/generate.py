"""Generate images from a model and put an image on the active object's material."""

from __future__ import annotations

import random

import bpy
from bpy.props import StringProperty

from .. import bridge, materials, storage
from ..core import limits, seamless, work
from ..core.formatting import model_label, still_name
from .base import Refused, ServerOperator, grey_out, model_problem, model_ref, scene_from


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
    """Generate images from the chosen model (the selected job's latest snapshot unless a step is pinned); they arrive as Blender images kept in the .blend"""

    bl_idname = "latent.generate_images"
    bl_label = "Generate"

    long_timeout = 300.0  # the answer comes once every image is made

    @classmethod
    def unavailable(cls, context):
        s = context.scene.latent
        if s.storage == "SAVE" and storage.base_folder(context.scene) is None:
            return storage.NEEDS_FOLDER + ', or store the images packed ("Pack into .blend")'
        return model_problem(s)

    def plan(self, context):
        s = context.scene.latent
        try:
            output = seamless.output_fields(s.gen_seamless, s.gen_size_multiplier)
        except ValueError as exc:
            raise Refused(str(exc)) from None
        allowed = seamless.images_allowed(limits.SEEDS_PER_REQUEST, s.gen_size_multiplier)
        if s.count > allowed:
            raise Refused(f"At Size {s.gen_size_multiplier} one Generate makes at most {allowed} image(s) (each has "
                          f"{s.gen_size_multiplier ** 2}x the pixels): lower Count")
        return model_ref(s), output

    def start(self, context, client, plan):
        model, output = plan
        s = context.scene.latent
        out_dir, pack = storage.images_dir("generated", context.scene)
        seeds = [s.gen_seed + i for i in range(s.count)]
        body = {"model": model, "seeds": seeds, "psi": s.psi, "noise_mode": limits.NOISE_MODE, **output}
        bridge.runner.submit("generate", work.generate, client, body, out_dir, label="Generate",
                             context={"scene": context.scene.name, "pack": pack},
                             on_result=_generated)
        return {"FINISHED"}


def _generated(msg):
    names = []
    model = msg.payload["model"]
    for seed, path in msg.payload["images"]:
        img = storage.keep_image(bridge.load_image(path, still_name(seed, model)), msg.context["pack"])
        names.append(img.name)
    s = scene_from(msg).latent
    s.last_image = names[-1]
    bridge.notify("INFO", f"Generated {len(names)} image(s) from {model_label(model)}: {', '.join(names)}")


class LATENT_OT_apply_image(bpy.types.Operator):
    """Use an image as the Base Color of the active object's material (or every selected object's), with the Material options: bump, scale, box projection (undo brings back what was there)"""

    bl_idname = "latent.apply_image"
    bl_label = "Apply to Material"
    bl_options = {"REGISTER", "UNDO"}

    image: StringProperty(name="Image", description="Image name; empty uses the last generated image")

    @classmethod
    def poll(cls, context):
        # (which image is the operator's own property, which poll cannot see: an empty or
        # unknown name is refused in execute, and the panel shows Apply only with an image)
        if not materials.target_objects(context, context.scene.latent.material.all_selected):
            return grey_out(cls, "Select the object whose material should show the image")
        return True

    def execute(self, context):
        name = self.image or context.scene.latent.last_image
        try:
            self.report({"INFO"}, materials.apply_still(context, name))
        except materials.MaterialError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


classes = (LATENT_OT_random_seed, LATENT_OT_generate_images, LATENT_OT_apply_image)
