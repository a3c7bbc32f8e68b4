"""The latent-space explorer's actions: explore, select and pick a cell, go back, and use a
cell as a texture, a walk waypoint or a stored latent.

Explore, Pick and Back ask the server for a grid (on a worker); the centre and history
change only when the grid has arrived, so a failed request loses nothing. The other
actions work on the grid on screen without the server.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import bpy
from bpy.props import IntProperty, StringProperty

from .. import bridge, explore, materials, storage, walks
from ..core import explore as core
from ..core import seamless
from ..core.formatting import model_label
from ..core.walks import WalkError
from .base import Refused, ServerOperator, grey_out, model_problem, model_ref, scene_from

TASK = "explore"


def _no_grid(context):
    if explore.current_grid(context.scene) is None:
        return "Press Explore first: there is no grid yet"
    if explore.selected_cell(context.scene) is None:
        return "Click a cell of the grid first"
    return None


class _Exploring(ServerOperator):
    """Ask the server for a grid around a new centre; applied when it arrives."""

    long_timeout = 300.0  # the answer comes once every cell is rendered

    @classmethod
    def unavailable(cls, context):
        if bridge.runner.running(TASK):
            return "Exploring: wait for the grid that is on its way"
        return model_problem(context.scene.latent) or cls.why_not(context)

    @classmethod
    def why_not(cls, context):
        return None

    def new_state(self, context):
        """The explorer's state once the grid arrived (Refused when there is nothing to do)."""
        raise NotImplementedError

    def plan(self, context):
        ex = explore.settings(context.scene)
        new = self.new_state(context)
        try:
            body = core.explore_body(model_ref(context.scene.latent), new["center"], ex.grid, ex.distance, ex.psi,
                                     ex.seed)
        except core.ExploreError as exc:
            raise Refused(str(exc)) from None
        # the Generate panel's Seamless choice: cells used as textures tile like generated ones
        tiling = seamless.seamless_value(context.scene.latent.gen_seamless)
        if tiling is not None:
            body["seamless"] = tiling
        return body, new

    def start(self, context, client, plan):
        body, new = plan
        folder = tempfile.mkdtemp(prefix="latent-explore-")
        bridge.runner.submit(TASK, core.fetch_grid, client, body, folder, label="Explore",
                             context={"scene": context.scene.name, "state": core.dump_state(new), "folder": folder},
                             on_result=_grid_arrived, on_error=_no_grid_arrived, on_cancelled=_no_grid_arrived)
        return {"FINISHED"}


def _grid_arrived(msg):
    scene = scene_from(msg)
    scene.latent_explore.state = msg.context["state"]
    explore.show_grid(scene, msg.payload)
    p = msg.payload
    bridge.notify("INFO", f"Explored around {core.center_label(p['center'])} in {model_label(p['model'])}: "
                          f"{p['grid']} x {p['grid']} images")


def _no_grid_arrived(msg):
    explore.discard_folder(msg.context["folder"])
    bridge.notify("ERROR" if msg.kind == "error" else "WARNING", msg.payload["message"])


class LATENT_OT_explore(_Exploring, bpy.types.Operator):
    """Show a grid of images around the start seed's image: the further the distance, the more they differ"""

    bl_idname = "latent.explore"
    bl_label = "Explore"

    def new_state(self, context):
        ex = explore.settings(context.scene)
        return core.recentre(explore.state(context.scene), core.seed_center(ex.start_seed))


class LATENT_OT_explore_pick(_Exploring, bpy.types.Operator):
    """Explore around this cell: it becomes the centre of a new grid (Back returns)"""

    bl_idname = "latent.explore_pick"
    bl_label = "Explore Around Cell"

    index: IntProperty(name="Cell", default=-1, description="-1: the selected cell")

    @classmethod
    def why_not(cls, context):
        return _no_grid(context)

    def new_state(self, context):
        grid = explore.current_grid(context.scene)
        index = self.index if self.index >= 0 else explore.settings(context.scene).selected
        try:
            cell = core.pick(grid["cells"] if grid else [], index)
        except core.ExploreError as exc:
            raise Refused(str(exc)) from None
        return core.recentre(explore.state(context.scene), core.cell_center(cell))


class LATENT_OT_explore_back(_Exploring, bpy.types.Operator):
    """Go back to the grid around the previous centre"""

    bl_idname = "latent.explore_back"
    bl_label = "Back"

    @classmethod
    def why_not(cls, context):
        return None if explore.state(context.scene)["history"] else "Nothing to go back to: explore around a cell first"

    def new_state(self, context):
        try:
            return core.go_back(explore.state(context.scene))
        except core.ExploreError as exc:
            raise Refused(str(exc)) from None


class LATENT_OT_explore_select(bpy.types.Operator):
    """Select this cell: the actions below apply to it"""

    bl_idname = "latent.explore_select"
    bl_label = "Select Cell"

    index: IntProperty(name="Cell", default=0, min=0)

    def execute(self, context):
        grid = explore.current_grid(context.scene)
        try:
            core.pick(grid["cells"] if grid else [], self.index)
        except core.ExploreError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        explore.settings(context.scene).selected = self.index
        return {"FINISHED"}


class _CellAction:
    """An action on the selected cell of the grid on screen (no server needed)."""

    @classmethod
    def poll(cls, context):
        return grey_out(cls, _no_grid(context))

    def cell(self, context):
        return explore.selected_cell(context.scene), explore.current_grid(context.scene)


class LATENT_OT_explore_use_texture(_CellAction, bpy.types.Operator):
    """Load the selected cell's image into Blender and show it on the selected object's material, as Apply to Material does"""

    bl_idname = "latent.explore_use_texture"
    bl_label = "Use as Texture"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        cell, grid = self.cell(context)
        s = context.scene.latent
        try:
            out_dir, pack = storage.images_dir("generated", context.scene)
        except storage.NoFolder as exc:
            self.report({"ERROR"}, f"{exc}, or store the images packed (\"Pack into .blend\")")
            return {"CANCELLED"}
        # The preview's folder goes with the next grid: the texture gets a file of its own.
        dest = os.path.join(out_dir, core.cell_file(cell, grid["model"]))
        shutil.copyfile(cell["path"], dest + ".part")
        os.replace(dest + ".part", dest)
        img = storage.keep_image(bridge.load_image(dest, core.cell_name(cell, grid["model"])), pack)
        s.last_image = img.name
        # on the material the way Apply to Material does it (its targets and options)
        targets = materials.target_objects(context, s.material.all_selected)
        if not targets:
            self.report({"INFO"}, f"Loaded {img.name}: select an object and press Apply to Material to use it")
            return {"FINISHED"}
        try:
            self.report({"INFO"}, materials.apply_still(context, img.name))
        except materials.MaterialError as exc:
            self.report({"WARNING"}, f"Loaded {img.name}, but: {exc}")
        return {"FINISHED"}


class LATENT_OT_explore_add_waypoint(_CellAction, bpy.types.Operator):
    """Add the selected cell's latent as a walk waypoint at the current frame"""

    bl_idname = "latent.explore_add_waypoint"
    bl_label = "Add as Waypoint"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        cell, grid = self.cell(context)
        scene = context.scene
        try:
            wp = walks.add_waypoint(scene, scene.frame_current, 0)
        except WalkError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        wp.vector = core.vector_text(cell["z"])
        wp.use_vector = True
        note = ""
        if abs(scene.latent.walk_psi - grid["psi"]) > 1e-6:
            note = f" (the walk renders it at walk psi {scene.latent.walk_psi:g}; it was explored at {grid['psi']:g})"
        self.report({"INFO"}, f"Waypoint at frame {scene.frame_current} from the explorer{note}")
        return {"FINISHED"}


class LATENT_OT_explore_store_latent(_CellAction, bpy.types.Operator):
    """Keep the selected cell's latent (z and w) in the .blend under a name"""

    bl_idname = "latent.explore_store_latent"
    bl_label = "Store Latent"
    bl_options = {"REGISTER", "UNDO"}

    name: StringProperty(name="Name", default="", description="Empty: a name made from the cell")

    def execute(self, context):
        cell, grid = self.cell(context)
        ex = explore.settings(context.scene)
        item = ex.stored.add()
        item.name = self.name.strip() or core.cell_name(cell, grid["model"])
        item.z = core.vector_text(cell["z"])
        item.w = core.vector_text(cell["w"])
        item.psi = grid["psi"]
        item.model = model_label(grid["model"])
        ex.stored_index = len(ex.stored) - 1
        self.report({"INFO"}, f"Stored latent '{item.name}'")
        return {"FINISHED"}


def _stored(context):
    ex = explore.settings(context.scene)
    return ex.stored[ex.stored_index] if 0 <= ex.stored_index < len(ex.stored) else None


class LATENT_OT_explore_stored(_Exploring, bpy.types.Operator):
    """Explore around the selected stored latent"""

    bl_idname = "latent.explore_stored"
    bl_label = "Explore Around Stored"

    @classmethod
    def why_not(cls, context):
        return None if _stored(context) is not None else "Select a stored latent first"

    def new_state(self, context):
        item = _stored(context)
        try:
            center = core.check_center({"z": core.parse_vector(item.z)})
        except core.ExploreError:
            raise Refused(f"The stored latent '{item.name}' is not a list of numbers") from None
        return core.recentre(explore.state(context.scene), center)


class LATENT_OT_explore_remove_stored(bpy.types.Operator):
    """Remove the selected stored latent"""

    bl_idname = "latent.explore_remove_stored"
    bl_label = "Remove Stored Latent"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return grey_out(cls, None if _stored(context) is not None else "Select a stored latent first")

    def execute(self, context):
        ex = explore.settings(context.scene)
        ex.stored.remove(ex.stored_index)
        ex.stored_index = max(0, min(ex.stored_index, len(ex.stored) - 1))
        return {"FINISHED"}


classes = (LATENT_OT_explore, LATENT_OT_explore_pick, LATENT_OT_explore_back, LATENT_OT_explore_select,
           LATENT_OT_explore_use_texture, LATENT_OT_explore_add_waypoint, LATENT_OT_explore_store_latent,
           LATENT_OT_explore_stored, LATENT_OT_explore_remove_stored)
