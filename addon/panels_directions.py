"""The Directions panel (sidebar tab "Latent"): fetch a model's semantic directions, see each
one's preview strip, and set (and keyframe) how far Bake Walk moves along it."""

from __future__ import annotations

import bpy

from . import directions
from .panels import _LatentPanel, _model_in_use


class LATENT_PT_directions(_LatentPanel, bpy.types.Panel):
    bl_label = "Directions"
    bl_parent_id = "LATENT_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        scene = context.scene
        options = scene.latent_direction_options
        _model_in_use(layout, scene.latent)
        row = layout.row(align=True)
        row.prop(options, "layers", text="")
        row.prop(options, "count")
        layout.prop(options, "preview_amount")
        layout.operator("latent.fetch_directions", icon="ORIENTATION_GIMBAL")
        items = scene.latent_directions
        if not len(items):
            layout.label(text="Fetch directions to move the walk along them", icon="INFO")
            return
        layout.label(text="Amounts are keyframable (I over a slider); Bake Walk follows the keys", icon="KEYFRAME")
        for i, item in enumerate(items):
            box = layout.box()
            row = box.row(align=True)
            row.prop(item, "amount", text=item.name, slider=True)
            row.operator("latent.remove_direction", text="", icon="X").index = i
            icon = directions.preview_icon(item)
            if icon:
                box.template_icon(icon_value=icon, scale=4.0)
            else:
                box.label(text="No preview on this computer: Fetch Directions again", icon="IMAGE_DATA")
            box.label(text=f"layers {item.layer_start}-{item.layer_end - 1} of {item.model}")


_classes = (LATENT_PT_directions,)

register, unregister = bpy.utils.register_classes_factory(_classes)
