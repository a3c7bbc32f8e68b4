"""The "Waypoint from Image" panel (under Latent Walk): project the render or an image file
into the model and store the latent on the waypoint at the current frame."""

from __future__ import annotations

import bpy

from .panels import _LatentPanel, _model_in_use


class LATENT_PT_waypoint_from_image(_LatentPanel, bpy.types.Panel):
    bl_label = "Waypoint from Image"
    bl_parent_id = "LATENT_PT_walk"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        s = context.scene.latent
        layout.prop(s, "projection_source", expand=True)
        row = layout.row()
        row.active = s.projection_source == "FILE"
        row.prop(s, "projection_file")
        row = layout.row(align=True)
        row.prop(s, "projection_steps")
        row.prop(s, "projection_w_plus", toggle=True)
        layout.prop(s, "projection_loss")
        _model_in_use(layout, s)
        layout.label(text=f"Stores the latent on a waypoint at frame {context.scene.frame_current}", icon="KEYFRAME")
        layout.operator("latent.use_render_as_waypoint", icon="IMAGE_REFERENCE")


_classes = (LATENT_PT_waypoint_from_image,)
register, unregister = bpy.utils.register_classes_factory(_classes)
