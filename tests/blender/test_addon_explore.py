"""The Explore panel's operators in headless Blender against a real server: explore around a
seed, select and pick a cell (its image comes back exactly in the middle), go back, use a
cell as a texture, a walk waypoint (baked) and a stored latent, explore around a stored
latent, a refusal that loses nothing, save and reopen; and the panel's draw() in every
state, against a recording layout.

One Blender process runs the whole flow through the add-on's operators and its queue;
checks are emitted as JSON and asserted here.
"""

from __future__ import annotations

import json

import pytest

from tests.support.addon_session import addon_script
from tests.support.blender import merged, run_blender
from tests.support.jobs import write_tiny_base_model
from tests.support.server_process import start_server, stop_server

pytestmark = [pytest.mark.blender, pytest.mark.e2e]

MODEL = "tinybase"
Z_DIM = 64

FLOW = r'''
import json
explore = importlib.import_module(MOD + ".explore")
panels_explore = importlib.import_module(MOD + ".panels_explore")
scene = bpy.context.scene
ex = scene.latent_explore

def grid():
    return explore.current_grid(bpy.context.scene)

def file_bytes(path):
    with open(path, "rb") as fh:
        return fh.read()

def last(level, start):
    return [t for lv, t in messages(level) if t.startswith(start)][-1:]

def run(op, **kwargs):
    try:
        getattr(bpy.ops.latent, op)(**kwargs)
        return None
    except RuntimeError as exc:
        return str(exc)

# -- a recording layout for the panel's draw(): names must exist, every statement must run
import ast, inspect, sys
UI = bpy.types.UILayout.bl_rna.functions
ICONS = set(UI["label"].parameters["icon"].enum_items.keys())
PANEL_FILE = panels_explore.__file__
problems, ran = [], set()

class Props:
    def __init__(self, idname):
        mod, _, name = idname.partition(".")
        object.__setattr__(self, "rna", getattr(getattr(bpy.ops, mod), name).get_rna_type())
    def __setattr__(self, name, value):
        if name not in self.rna.properties.keys():
            problems.append(f"operator has no property {name!r}")

class Layout:
    def __getattr__(self, name):
        fn = UI.get(name)
        if fn is None:
            problems.append(f"UILayout has no {name!r}")
        def call(*args, **kwargs):
            inputs = [p.identifier for p in fn.parameters if not p.is_output] if fn else []
            params = dict(zip(inputs, args), **kwargs)
            problems.extend(f"{name}() has no keyword {k!r}" for k in kwargs if fn and k not in inputs)
            if "icon" in params and params["icon"] not in ICONS:
                problems.append(f"no icon {params['icon']!r}")
            if name == "prop" and params["property"] not in params["data"].bl_rna.properties.keys():
                problems.append(f"no property {params['property']!r}")
            if name == "template_list" and not isinstance(getattr(bpy.types, params["listtype_name"], None), type):
                problems.append(f"no UIList {params['listtype_name']!r}")
            if name == "operator":
                try:
                    return Props(params["operator"])
                except (AttributeError, KeyError):
                    problems.append(f"operator {params['operator']!r} is not registered")
            return Layout()
        return call
    def __setattr__(self, name, value):
        if name not in bpy.types.UILayout.bl_rna.properties.keys():
            problems.append(f"UILayout has no attribute {name!r}")

def tracer(frame, event, arg):
    if frame.f_code.co_filename != PANEL_FILE:
        return None
    def lines(frame, event, arg):
        if event == "line":
            ran.add(frame.f_lineno)
        return lines
    return lines

def draw_panel():
    panel = type("P", (), {"layout": Layout()})()
    sys.settrace(tracer)
    try:
        bpy.types.LATENT_PT_explore.draw(panel, bpy.context)
    finally:
        sys.settrace(None)

def draw_statements():
    source = open(PANEL_FILE).read()
    out = set()
    for fn in ast.walk(ast.parse(source)):
        if isinstance(fn, ast.FunctionDef) and fn.name in ("draw", "_draw_grid"):
            docstring = {fn.body[0].lineno} if ast.get_docstring(fn) else set()
            out |= {st.lineno for st in ast.walk(fn) if isinstance(st, ast.stmt) and st is not fn} - docstring
    return out

# -- connect, choose the base model, save the file
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(PROJECT, "scene.blend"))
emit({"connection": connect(URL, TOKEN)})
bpy.ops.latent.refresh_models()
bridge.pump_until_idle(60)
s.model_source, s.base_model = "BASE", MODEL
draw_panel()
emit({"before": {"pick": poll_reason("explore_pick"), "back": poll_reason("explore_back"),
                 "texture": poll_reason("explore_use_texture"), "stored": poll_reason("explore_stored")}})

# -- 1. explore around seed 3
ex.start_seed, ex.grid, ex.distance, ex.psi, ex.seed = 3, 3, 0.4, 0.7, 2
bpy.ops.latent.explore()
busy = poll_reason("explore")
bridge.pump_until_idle(120)
g1 = grid()
first_folder = g1["folder"]
emit({"first": {"busy": busy, "cells": len(g1["cells"]), "grid": g1["grid"], "center_index": g1["center_index"],
                "selected": ex.selected, "state": json.loads(ex.state),
                "previews": [list(explore.preview(scene, i).image_size) for i in range(9)],
                "files": sorted(os.listdir(first_folder)), "z_len": len(g1["cells"][0]["z"]),
                "report": last("INFO", "Explored around")}})
draw_panel()

# -- 2. select a cell, pick it: it is the exact middle of the next grid; the old folder goes
err_select = run("explore_select", index=20)
bpy.ops.latent.explore_select(index=7)
selected = ex.selected
cell7 = dict(g1["cells"][7])
cell7_png = file_bytes(cell7["path"])
bpy.ops.latent.explore_pick()
bridge.pump_until_idle(120)
g2 = grid()
middle = g2["cells"][g2["center_index"]]
emit({"pick": {"selected": selected, "err_select": err_select, "state": json.loads(ex.state),
               "same_z": middle["z"] == cell7["z"], "same_w": middle["w"] == cell7["w"],
               "same_png": file_bytes(middle["path"]) == cell7_png, "old_folder_gone": not os.path.exists(first_folder),
               "selected_after": ex.selected, "back": poll_reason("explore_back")}})

# -- 3. back: the grid around seed 3 again, cell for cell
bpy.ops.latent.explore_back()
bridge.pump_until_idle(120)
g3 = grid()
emit({"back": {"state": json.loads(ex.state), "same_cells": [c["z"] for c in g3["cells"]] == [c["z"] for c in g1["cells"]],
               "center_png": file_bytes(g3["cells"][4]["path"]) != b"", "poll": poll_reason("explore_back")}})

# -- 4. the selected cell as a texture on the cube
cube = bpy.data.objects["Cube"]
bpy.context.view_layer.objects.active = cube
bpy.ops.latent.explore_select(index=1)
cell1 = g3["cells"][1]
bpy.ops.latent.explore_use_texture()
img = bpy.data.images.get(s.last_image)
tree = cube.active_material.node_tree
node = tree.nodes.get("Latent Studio Texture")
bsdf = next(n for n in tree.nodes if n.type == "BSDF_PRINCIPLED")
check = bpy.data.images.load(cell1["path"])
same_pixels = list(check.pixels[:]) == list(img.pixels[:])
bpy.data.images.remove(check)
img_name = img.name
emit({"texture": {"name": img.name, "packed": img.packed_file is not None, "size": list(img.size),
                  "on_node": node is not None and node.image == img,
                  "linked": bsdf.inputs["Base Color"].links[0].from_node == node, "same_pixels": same_pixels}})

# -- 5. as a walk waypoint at frame 5 (twice: the second is refused), then bake a short walk
scene.frame_set(5)
bpy.ops.latent.explore_add_waypoint()
second = run("explore_add_waypoint")
wp = s.waypoints[len(s.waypoints) - 1]
emit({"waypoint": {"frame": wp.frame, "use_vector": wp.use_vector, "same_z": json.loads(wp.vector) == cell1["z"],
                   "second": second, "count": len(s.waypoints)}})
scene.frame_set(6)
bpy.ops.latent.add_waypoint(seed=1)
scene.frame_start, scene.frame_end = 5, 6
bpy.ops.latent.bake_walk()
bridge.pump_until_idle(240)
emit({"walk": {"image": s.walk_image, "errors": [t for lv, t in messages("ERROR")]}})

# -- 6. store it, explore around the stored latent, remove a stored latent
bpy.ops.latent.explore_store_latent(name="mossy")
bpy.ops.latent.explore_select(index=2)
bpy.ops.latent.explore_store_latent()
stored = [(x.name, json.loads(x.z) == g3["cells"][i]["z"], json.loads(x.w) == g3["cells"][i]["w"], round(x.psi, 3),
           x.model) for x, i in zip(ex.stored, (1, 2))]
ex.stored_index = 0
s.gen_seamless = "ON"  # the Generate panel's Seamless choice goes with the request
bpy.ops.latent.explore_stored()
bridge.pump_until_idle(120)
s.gen_seamless = "MODEL"
g4 = grid()
emit({"stored": {"items": stored, "center": g4["cells"][g4["center_index"]]["z"] == cell1["z"],
                 "history": len(json.loads(ex.state)["history"]), "seamless": [g3["seamless"], g4["seamless"]]}})
ex.stored_index = 1
bpy.ops.latent.explore_remove_stored()
emit({"removed": [x.name for x in ex.stored]})
draw_panel()

# -- 7. a latent of the wrong length: the server refuses it, nothing changes, no folder is left behind
bad = ex.stored.add()
bad.name, bad.z, bad.w = "short", "[1.0, 2.0]", "[]"
ex.stored_index = len(ex.stored) - 1
state_before, folder_before = ex.state, grid()["folder"]
temp_root = os.path.dirname(folder_before)
folders_before = sorted(f for f in os.listdir(temp_root) if f.startswith("latent-explore-"))
bpy.ops.latent.explore_stored()
bridge.pump_until_idle(60)
emit({"refused": {"error": last("ERROR", "Explore"), "state_kept": ex.state == state_before,
                  "grid_kept": grid()["folder"] == folder_before,
                  "folders": sorted(f for f in os.listdir(temp_root) if f.startswith("latent-explore-")) == folders_before}})
bad_broken = ex.stored.add()
bad_broken.name, bad_broken.z = "broken", "not json"
ex.stored_index = len(ex.stored) - 1
emit({"broken": run("explore_stored")})

# -- 8. save, reopen: centre, history and stored latents stay; the grid and its folder go
ex.distance = 0.55
bpy.ops.wm.save_mainfile()
folder = grid()["folder"]
bpy.ops.wm.open_mainfile(filepath=os.path.join(PROJECT, "scene.blend"))
ex = bpy.context.scene.latent_explore
draw_panel()
emit({"reopened": {"state": json.loads(ex.state)["center"] == {"z": cell1["z"]},
                   "history": len(json.loads(ex.state)["history"]), "grid": grid() is None,
                   "folder_gone": not os.path.exists(folder), "stored": [x.name for x in ex.stored],
                   "distance": round(ex.distance, 3), "texture_packed": bpy.data.images[img_name].packed_file is not None}})
missing = sorted(draw_statements() - ran)
emit({"draw": {"problems": problems, "missing": missing}})
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("explore") / "data"
    write_tiny_base_model(data / "models" / f"{MODEL}.safetensors")
    live = start_server(data)
    yield live
    stop_server(live.process)


def test_explore_pick_back_and_the_three_actions(addon_zip, server, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    r = merged(run_blender(addon_script(addon_zip, f"""
        URL, TOKEN, PROJECT, MODEL = {server.base_url!r}, {server.token!r}, {str(project)!r}, {MODEL!r}
        """, FLOW), home=tmp_path / "home", timeout=480))
    assert r["connection"].startswith("Server ")
    assert r["before"] == {"pick": "Press Explore first: there is no grid yet",
                           "back": "Nothing to go back to: explore around a cell first",
                           "texture": "Press Explore first: there is no grid yet",
                           "stored": "Select a stored latent first"}

    first = r["first"]
    assert first["busy"] == "Exploring: wait for the grid that is on its way"
    assert (first["cells"], first["grid"], first["center_index"], first["selected"]) == (9, 3, 4, 4)
    assert first["state"] == {"center": {"seed": 3}, "history": []}
    assert first["previews"] == [[32, 32]] * 9  # each cell's file read as its preview (no icons without a UI)
    assert first["files"] == [f"cell_{i:02d}.png" for i in range(9)] and first["z_len"] == Z_DIM
    assert first["report"] == [f"Explored around seed 3 in {MODEL}: 3 x 3 images"]

    pick = r["pick"]
    assert pick["selected"] == 7 and "Pick one of the 9 cells" in pick["err_select"]
    assert pick["state"]["history"] == [{"seed": 3}] and list(pick["state"]["center"]) == ["z"]
    assert pick["same_z"] and pick["same_w"] and pick["same_png"], pick
    assert pick["old_folder_gone"] and pick["selected_after"] == 4 and pick["back"] is None

    back = r["back"]
    assert back["state"] == {"center": {"seed": 3}, "history": []} and back["same_cells"]
    assert back["poll"] == "Nothing to go back to: explore around a cell first"

    tex = r["texture"]
    assert tex["name"].startswith("Latent explore ") and tex["name"].endswith(f"({MODEL})")
    assert tex["packed"] and tex["size"] == [32, 32] and tex["on_node"] and tex["linked"] and tex["same_pixels"]

    wp = r["waypoint"]
    assert (wp["frame"], wp["use_vector"], wp["same_z"], wp["count"]) == (5, True, True, 1)
    assert "There is already a waypoint at frame 5" in wp["second"]
    assert r["walk"]["errors"] == [] and r["walk"]["image"].startswith("Latent Walk")

    stored = r["stored"]
    name1 = tex["name"]
    assert stored["items"][0] == ["mossy", True, True, 0.7, MODEL]
    assert stored["items"][1][1:] == [True, True, 0.7, MODEL] and stored["items"][1][0].startswith("Latent explore ")
    assert stored["items"][1][0] != name1
    assert stored["center"] and stored["history"] == 1 and stored["seamless"] == [False, True]
    assert r["removed"] == ["mossy"]

    refused = r["refused"]
    assert refused["error"] and f"center.z must have {Z_DIM} numbers for this model" in refused["error"][0]
    assert refused["state_kept"] and refused["grid_kept"] and refused["folders"]
    assert "The stored latent 'broken' is not a list of numbers" in r["broken"]

    reopened = r["reopened"]
    assert reopened == {"state": True, "history": 1, "grid": True, "folder_gone": True,
                        "stored": ["mossy", "short", "broken"], "distance": 0.55, "texture_packed": True}
    assert r["draw"] == {"problems": [], "missing": []}, json.dumps(r["draw"])
