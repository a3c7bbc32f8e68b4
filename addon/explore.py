"""The explorer's Blender side: its scene settings, the grid on screen and its previews.

Saved with the .blend (`scene.latent_explore`): the settings, the centre and history
(`state`, JSON from core.explore) and the stored latents. Not saved: the grid on screen,
whose cell images are previews in a temporary folder of their own, replaced (and the old
folder removed) when the next grid arrives.
"""

from __future__ import annotations

import os
import shutil

import bpy
from bpy.props import CollectionProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import bridge
from .core import limits
from .core.explore import load_state

_grids = {}  # scene name -> the fetch_grid result on screen
_previews = {"collection": None}  # one bpy.utils.previews collection for every cell image


class LATENT_PG_stored_latent(bpy.types.PropertyGroup):
    # `name` (every PropertyGroup has one) is what the list shows
    z: StringProperty(name="z", description="The latent's z as JSON numbers")
    w: StringProperty(name="w", description="Its w (truncated with the psi it was explored at) as JSON numbers")
    psi: FloatProperty(name="Psi", description="The truncation psi its image was made with")
    model: StringProperty(name="Model", description="The model it was explored in")


class LATENT_PG_explore(bpy.types.PropertyGroup):
    start_seed: IntProperty(name="Start seed", default=0, min=0, max=limits.MAX_SEED,
                            description="Explore starts around the image of this seed")
    grid: IntProperty(name="Grid", default=3, min=limits.EXPLORE_MIN_GRID, max=limits.EXPLORE_MAX_GRID,
                      description="N x N images; the centre sits in the middle (odd N) or just above left of it")
    distance: FloatProperty(name="Distance", default=0.3, min=0.0, max=limits.EXPLORE_MAX_DISTANCE,
                            subtype="FACTOR", description="How different the neighbours are: 0 = the centre "
                                                          "itself, 1 = as unrelated as two random seeds")
    psi: FloatProperty(name="Truncation psi", default=0.7, min=limits.PSI_MIN, max=limits.PSI_MAX)
    seed: IntProperty(name="Neighbourhood", default=0, min=0, max=limits.MAX_SEED,
                      description="Which random directions the neighbours lie in: change it for other neighbours")
    selected: IntProperty(name="Selected cell", default=-1, description="The cell the actions below apply to")
    state: StringProperty(name="Centre and history", default="",
                          description="The centre on screen and the centres Back returns to (JSON)")
    stored: CollectionProperty(type=LATENT_PG_stored_latent)
    stored_index: IntProperty(name="Stored latent", default=0)


def settings(scene):
    return scene.latent_explore


def state(scene):
    return load_state(scene.latent_explore.state)


# -- the grid on screen ------------------------------------------------------------------

def current_grid(scene):
    """The grid shown for `scene` (the fetch_grid result), or None."""
    return _grids.get(scene.name)


def selected_cell(scene):
    grid = current_grid(scene)
    index = scene.latent_explore.selected
    if grid is None or not 0 <= index < len(grid["cells"]):
        return None
    return grid["cells"][index]


def preview(scene, index):
    """The preview (bpy.types.ImagePreview) of cell `index` of the grid on screen, or None."""
    grid, pcoll = current_grid(scene), _previews["collection"]
    if grid is None or pcoll is None or not 0 <= index < len(grid["cells"]):
        return None
    return pcoll.get(grid["cells"][index]["path"])


def icon_id(scene, index):
    """The icon of cell `index` for the panel (0: none; also 0 without a UI, in background mode)."""
    found = preview(scene, index)
    return found.icon_id if found is not None else 0


def show_grid(scene, result):
    """Put a new grid on screen for `scene`; the folder of the grid it replaces goes."""
    old = _grids.pop(scene.name, None)
    pcoll = _previews["collection"]
    if old is not None:
        _forget(old)
    if pcoll is not None:
        for cell in result["cells"]:
            pcoll.load(cell["path"], cell["path"], "IMAGE")
    _grids[scene.name] = result
    scene.latent_explore.selected = result["center_index"]


def discard_folder(folder):
    """A grid folder that no grid on screen uses (a request that failed or was cancelled)."""
    if folder and os.path.isdir(folder) and all(g["folder"] != folder for g in _grids.values()):
        shutil.rmtree(folder, ignore_errors=True)


def _forget(grid):
    pcoll = _previews["collection"]
    if pcoll is not None:
        for cell in grid["cells"]:
            if cell["path"] in pcoll:
                del pcoll[cell["path"]]
    shutil.rmtree(grid["folder"], ignore_errors=True)


def clear_grids():
    """Every grid off screen and its folder removed (another file opened, add-on disabled)."""
    for grid in list(_grids.values()):
        _forget(grid)
    _grids.clear()


_classes = (LATENT_PG_stored_latent, LATENT_PG_explore)


def register():
    import bpy.utils.previews

    for cls in _classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.latent_explore = PointerProperty(type=LATENT_PG_explore)
    _previews["collection"] = bpy.utils.previews.new()
    if clear_grids not in bridge.after_load:
        bridge.after_load.append(clear_grids)


def unregister():
    import bpy.utils.previews

    clear_grids()
    if clear_grids in bridge.after_load:
        bridge.after_load.remove(clear_grids)
    if _previews["collection"] is not None:
        bpy.utils.previews.remove(_previews["collection"])
        _previews["collection"] = None
    del bpy.types.Scene.latent_explore
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
