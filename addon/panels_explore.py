"""The Explore panel (sidebar tab "Latent"): a clickable grid of neighbours around a centre
latent, the distance slider, Back, and what to do with the selected cell."""

from __future__ import annotations

import bpy

from . import explore
from .core.explore import center_label
from .panels import _LatentPanel, _model_in_use

PANEL_UNITS = 14.0  # about the width of the sidebar in UI units, shared by the grid's columns


class LATENT_PT_explore(_LatentPanel, bpy.types.Panel):
    bl_label = "Explore"
    bl_parent_id = "LATENT_PT_main"

    def draw(self, context):
        layout = self.layout
        scene = context.scene
        ex = explore.settings(scene)
        _model_in_use(layout, scene.latent)
        row = layout.row(align=True)
        row.prop(ex, "start_seed")
        row.operator("latent.explore", icon="VIEWZOOM")
        col = layout.column(align=True)
        col.prop(ex, "distance", slider=True)
        col.prop(ex, "grid")
        col.prop(ex, "psi")
        col.prop(ex, "seed")
        row = layout.row(align=True)
        row.operator("latent.explore_back", icon="LOOP_BACK")
        center = explore.state(scene)["center"]
        row.label(text=f"Centre: {center_label(center)}" if center else "No centre yet")
        grid = explore.current_grid(scene)
        if grid is None:
            layout.label(text="Press Explore to see images around the start seed", icon="INFO")
        else:
            _draw_grid(layout, scene, grid, ex.selected)
        box = layout.box()
        box.label(text="Selected cell", icon="RESTRICT_SELECT_OFF")
        box.operator("latent.explore_pick", icon="PIVOT_BOUNDBOX")
        box.operator("latent.explore_use_texture", icon="MATERIAL")
        box.operator("latent.explore_add_waypoint", icon="KEYFRAME")
        box.operator("latent.explore_store_latent", icon="BOOKMARKS")
        layout.label(text="Stored latents")
        row = layout.row()
        row.template_list("UI_UL_list", "latent_stored", ex, "stored", ex, "stored_index", rows=3)
        col = row.column(align=True)
        col.operator("latent.explore_stored", text="", icon="VIEWZOOM")
        col.operator("latent.explore_remove_stored", text="", icon="REMOVE")


def _draw_grid(layout, scene, grid, selected):
    """One column per cell: its image, and under it a button that selects it."""
    n = grid["grid"]
    flow = layout.grid_flow(row_major=True, columns=n, even_columns=True, even_rows=True, align=True)
    for cell in grid["cells"]:
        col = flow.column(align=True)
        col.template_icon(icon_value=explore.icon_id(scene, cell["index"]), scale=PANEL_UNITS / n)
        mark = "centre" if cell["index"] == grid["center_index"] else ""
        op = col.operator("latent.explore_select", text=mark, depress=cell["index"] == selected,
                          icon="RADIOBUT_ON" if cell["index"] == selected else "RADIOBUT_OFF")
        op.index = cell["index"]


_classes = (LATENT_PT_explore,)

register, unregister = bpy.utils.register_classes_factory(_classes)
