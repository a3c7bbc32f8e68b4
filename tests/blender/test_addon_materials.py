"""Materials ready to render (issue 15): Apply to Material's options in headless Blender, and
the Seamless / Size multiplier / Tileable fields the add-on sends to the real server.

Each test runs one fresh Blender and batches its checks; a material's node graph is emitted
as JSON (node names and types, links socket to socket, the values that matter) and asserted
here, so a failure names the exact node or link.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
import requests

from tests.support.addon_session import addon_script
from tests.support.blender import merged, run_blender
from tests.support.jobs import prepared_dataset, write_tiny_base_model
from tests.support.server_process import start_server, stop_server

pytestmark = pytest.mark.blender

# Inside Blender: a material's node graph as plain data.
GRAPH = r'''
mats = importlib.import_module(MOD + ".materials")
TEX, WALK = mats.NODE_NAME, mats.WALK_NODE_NAME

def graph(mat):
    tree = mat.node_tree
    nodes = {n.name: n.type for n in tree.nodes}
    links = sorted(f"{l.from_node.name}.{l.from_socket.identifier} -> {l.to_node.name}.{l.to_socket.identifier}"
                   for l in tree.links)
    values = {}
    for n in tree.nodes:
        if n.type == "TEX_IMAGE":
            values[n.name] = {"image": n.image.name if n.image else None, "projection": n.projection,
                              "blend": round(n.projection_blend, 4)}
        elif n.type == "BUMP":
            values[n.name] = {"strength": round(n.inputs["Strength"].default_value, 4)}
        elif n.type == "MAPPING":
            values[n.name] = {"scale": [round(v, 4) for v in n.inputs["Scale"].default_value],
                              "vector_type": n.vector_type}
    return {"nodes": nodes, "links": links, "values": values}

def options(**kw):
    m = bpy.context.scene.latent.material
    defaults = dict(use_bump=False, bump_strength=0.3, scale=1.0, projection="UV", box_coordinates="OBJECT",
                    box_blend=0.2, all_selected=False)
    for key, value in {**defaults, **kw}.items():
        setattr(m, key, value)

def select(*names, active=None):
    for o in bpy.context.view_layer.objects:
        o.select_set(o.name in names)
    bpy.context.view_layer.objects.active = bpy.data.objects[active or names[0]]
'''

TEX, WALK = "Latent Studio Texture", "Latent Studio Walk"
BSDF = "Principled BSDF"


def link(a, b):
    return f"{a} -> {b}"


def test_apply_builds_bump_scale_and_box_nodes_and_applying_again_updates_them(addon_zip, tmp_path):
    seq = tmp_path / "seq"
    r = merged(run_blender(addon_script(addon_zip, f"SEQ = {str(seq)!r}", GRAPH, r'''
        cube = bpy.data.objects["Cube"]
        select("Cube")
        bpy.data.images.new("tex", 8, 8)
        bpy.data.images.new("tex2", 8, 8)
        mat = cube.active_material
        n_materials = len(bpy.data.materials)

        # -- every option on
        options(use_bump=True, bump_strength=0.45, scale=3.0, projection="BOX", box_coordinates="GENERATED",
                box_blend=0.35)
        result = sorted(bpy.ops.latent.apply_image(image="tex"))
        emit({"all_on": graph(mat), "result": result})

        # -- again, other values and another image: the same nodes, updated
        options(use_bump=True, bump_strength=0.8, scale=2.0, projection="BOX", box_coordinates="OBJECT",
                box_blend=0.1)
        bpy.ops.latent.apply_image(image="tex2")
        emit({"again": graph(mat), "materials_again": len(bpy.data.materials) - n_materials})

        # -- a normal map of the user's feeds the bump while the bump is on, and comes back after
        tree = mat.node_tree
        bsdf = tree.nodes["Principled BSDF"]
        user_normal = tree.nodes.new("ShaderNodeNormalMap")
        user_normal.name = "User Normal"
        tree.links.new(user_normal.outputs["Normal"], bsdf.inputs["Normal"])
        bpy.ops.latent.apply_image(image="tex2")
        emit({"user_normal_on": graph(mat)})

        # -- scale only, on the UV map
        options(scale=4.0)
        bpy.ops.latent.apply_image(image="tex2")
        emit({"scale_only": graph(mat)})

        # -- nothing but Base Color: every node the options made goes
        options()
        bpy.ops.latent.apply_image(image="tex2")
        emit({"plain": graph(mat), "materials_plain": len(bpy.data.materials) - n_materials})

        # -- every selected object that can carry a material (a light among them cannot)
        bpy.ops.mesh.primitive_plane_add(location=(3, 0, 0))
        bpy.ops.mesh.primitive_uv_sphere_add(location=(-3, 0, 0))
        bpy.ops.mesh.primitive_cube_add(location=(0, 3, 0))
        shared = bpy.context.active_object
        shared.name = "Shares Material"
        shared.data.materials.append(mat)  # the cube's material: changed once, listed once
        select("Cube", "Plane", "Sphere", "Shares Material", "Light", active="Plane")
        options(use_bump=True, bump_strength=0.6, projection="BOX", all_selected=True)
        bpy.ops.latent.apply_image(image="tex")
        first = {o: graph(bpy.data.objects[o].active_material) for o in ("Cube", "Plane", "Sphere")}
        names_first = sorted(m.name for m in bpy.data.materials)
        bpy.ops.latent.apply_image(image="tex")
        emit({"selected": first,
              "selected_mats": {o: bpy.data.objects[o].active_material.name
                                for o in ("Cube", "Plane", "Sphere", "Shares Material")},
              "light_slots": len(bpy.data.objects["Light"].material_slots),
              "twice_same": {o: graph(bpy.data.objects[o].active_material) == first[o]
                             for o in ("Cube", "Plane", "Sphere")},
              "names_first": names_first, "names_twice": sorted(m.name for m in bpy.data.materials)})

        # only the active object while "All selected objects" is off
        options(all_selected=False)
        bpy.data.images.new("tex3", 8, 8)
        bpy.ops.latent.apply_image(image="tex3")
        emit({"active_only": {o: bpy.data.objects[o].active_material.node_tree.nodes[TEX].image.name
                              for o in ("Plane", "Sphere")}})

        # the material made for an object is found again when its slot was emptied
        plane = bpy.data.objects["Plane"]
        plane.data.materials.clear()
        bpy.ops.latent.apply_image(image="tex3")
        emit({"plane_again": [plane.active_material.name, sorted(m.name for m in bpy.data.materials)]})

        # nothing to apply it to: the reason, and nothing changed
        select("Light")
        options(all_selected=True)
        emit({"no_target": poll_reason("apply_image")})

        # -- a walk's image sequence gets the same options, on every selected object
        os.makedirs(SEQ, exist_ok=True)
        for f in (5, 6, 7):
            im = bpy.data.images.new(f"f{f}", 4, 4)
            im.pixels = [f / 10.0, 0.0, 0.0, 1.0] * 16
            im.filepath_raw = os.path.join(SEQ, f"walk_{f:04d}.png")
            im.file_format = "PNG"
            im.save()
            bpy.data.images.remove(im)
        walk_img = bridge.load_image(os.path.join(SEQ, "walk_0005.png"), "Latent Walk")
        scene = bpy.context.scene
        scene.frame_start, scene.frame_end = 5, 7
        select("Cube", "Sphere")
        options(use_bump=True, bump_strength=0.25, scale=2.0, projection="BOX", all_selected=True)
        applied, note = mats.apply_to_objects(mats.target_objects(bpy.context, True), mats.setup_sequence,
                                              "Latent Walk", 5, 3, 5, options=mats.options_from(scene.latent.material))
        shown = {}
        for o in ("Cube", "Sphere"):
            m = bpy.data.objects[o].active_material
            iu = m.node_tree.nodes[WALK].image_user
            frames = []
            for f in (5, 6, 7):
                scene.frame_set(f)
                ev = m.evaluated_get(bpy.context.evaluated_depsgraph_get())
                frames.append(ev.node_tree.nodes[WALK].image_user.frame_current)
            shown[o] = {"user": [iu.frame_duration, iu.frame_start, iu.frame_offset, iu.use_auto_refresh,
                                 iu.use_cyclic], "frames": frames}
        emit({"walk": {"applied": applied, "source": walk_img.source, "shown": shown,
                       "graph": graph(bpy.data.objects["Sphere"].active_material),
                       "cube_graph": graph(bpy.data.objects["Cube"].active_material)}})
        # the sequence applied again: the same nodes, the same links
        before = graph(bpy.data.objects["Sphere"].active_material)
        mats.apply_to_objects(["Sphere"], mats.setup_sequence, "Latent Walk", 5, 3, 5,
                              options=mats.options_from(scene.latent.material))
        emit({"walk_again_same": graph(bpy.data.objects["Sphere"].active_material) == before})
        '''), home=tmp_path / "home", timeout=240))

    lum, bump, coords = "Latent Studio Luminance", "Latent Studio Bump", "Latent Studio Coordinates"
    mapping = TEX + " Mapping"
    on = r["all_on"]
    assert r["result"] == ["FINISHED"]
    assert on["nodes"][TEX] == "TEX_IMAGE" and on["nodes"][lum] == "RGBTOBW" and on["nodes"][bump] == "BUMP"
    assert on["nodes"][coords] == "TEX_COORD" and on["nodes"][mapping] == "MAPPING"
    for expected in (link(f"{TEX}.Color", f"{BSDF}.Base Color"),  # the image on Base Color
                     link(f"{TEX}.Color", f"{lum}.Color"),  # its luminance is the bump's height
                     link(f"{lum}.Val", f"{bump}.Height"),
                     link(f"{bump}.Normal", f"{BSDF}.Normal"),
                     link(f"{coords}.Generated", f"{mapping}.Vector"),  # box: generated coordinates, scaled
                     link(f"{mapping}.Vector", f"{TEX}.Vector")):
        assert expected in on["links"], (expected, on["links"])
    assert on["values"][bump] == {"strength": 0.45}
    assert on["values"][mapping] == {"scale": [3.0, 3.0, 3.0], "vector_type": "POINT"}
    assert on["values"][TEX] == {"image": "tex", "projection": "BOX", "blend": 0.35}

    again = r["again"]
    assert again["nodes"] == on["nodes"], "applying again makes no new node"
    assert len(again["links"]) == len(on["links"])
    assert link(f"{coords}.Object", f"{mapping}.Vector") in again["links"]  # box coordinates switched
    assert link(f"{coords}.Generated", f"{mapping}.Vector") not in again["links"]
    assert again["values"][bump] == {"strength": 0.8}
    assert again["values"][mapping]["scale"] == [2.0, 2.0, 2.0]
    assert again["values"][TEX] == {"image": "tex2", "projection": "BOX", "blend": 0.1}
    assert r["materials_again"] == 0

    user = r["user_normal_on"]
    assert link("User Normal.Normal", f"{bump}.Normal") in user["links"]
    assert link(f"{bump}.Normal", f"{BSDF}.Normal") in user["links"]

    scale_only = r["scale_only"]
    assert lum not in scale_only["nodes"] and bump not in scale_only["nodes"]
    assert link("User Normal.Normal", f"{BSDF}.Normal") in scale_only["links"]  # the user's normal is back
    assert link(f"{coords}.UV", f"{mapping}.Vector") in scale_only["links"]
    assert scale_only["values"][mapping]["scale"] == [4.0, 4.0, 4.0]
    assert scale_only["values"][TEX]["projection"] == "FLAT"

    plain = r["plain"]
    assert set(plain["nodes"]) == {"Material Output", BSDF, TEX, "User Normal"}
    assert sorted(plain["links"]) == sorted([link(f"{BSDF}.BSDF", "Material Output.Surface"),
                                             link(f"{TEX}.Color", f"{BSDF}.Base Color"),
                                             link("User Normal.Normal", f"{BSDF}.Normal")])
    assert r["materials_plain"] == 0

    sel = r["selected"]
    assert r["selected_mats"] == {"Cube": "Material", "Plane": "Plane Latent", "Sphere": "Sphere Latent",
                                  "Shares Material": "Material"}
    for obj, g in sel.items():
        assert link(f"{TEX}.Color", f"{BSDF}.Base Color") in g["links"], obj
        assert link(f"{bump}.Normal", f"{BSDF}.Normal") in g["links"], obj
        assert g["values"][bump] == {"strength": 0.6} and g["values"][TEX]["projection"] == "BOX", obj
        assert g["values"][TEX]["image"] == "tex", obj
    assert r["light_slots"] == 0
    assert r["twice_same"] == {"Cube": True, "Plane": True, "Sphere": True}
    # (the startup file's grease-pencil material is there too)
    assert r["names_twice"] == r["names_first"] and {"Material", "Plane Latent", "Sphere Latent"} <= set(
        r["names_first"]) and not any("." in name for name in r["names_first"])
    assert r["active_only"] == {"Plane": "tex3", "Sphere": "tex"}
    assert r["plane_again"] == ["Plane Latent", r["names_first"]]
    assert r["no_target"] == "Select the object whose material should show the image"

    w = r["walk"]
    assert w["applied"] == ["Material", "Sphere Latent"] and w["source"] == "SEQUENCE"
    for obj in ("Cube", "Sphere"):
        # 3 frames from scene frame 5, file numbers from 5, following the scene's frame
        assert w["shown"][obj] == {"user": [3, 5, 4, True, False], "frames": [5, 6, 7]}, obj
    wmap = WALK + " Mapping"
    for g in (w["graph"], w["cube_graph"]):
        assert link(f"{WALK}.Color", f"{BSDF}.Base Color") in g["links"]  # the sequence drives Base Color
        assert link(f"{WALK}.Color", f"{lum}.Color") in g["links"]  # and the bump
        assert link(f"{TEX}.Color", f"{lum}.Color") not in g["links"]
        assert link(f"{wmap}.Vector", f"{WALK}.Vector") in g["links"]
        assert g["values"][WALK]["projection"] == "BOX" and g["values"][wmap]["scale"] == [2.0, 2.0, 2.0]
        assert g["values"][bump] == {"strength": 0.25}
        assert g["nodes"][TEX] == "TEX_IMAGE"  # the still keeps its node
    assert w["cube_graph"]["values"][TEX]["image"] == "tex"  # applied to the selection before
    assert r["walk_again_same"] is True


@pytest.mark.e2e
@pytest.mark.slow
def test_generate_walk_and_training_send_seamless_size_and_tileable(addon_zip, tmp_path):
    """Against the real server: what the panels' Seamless, Size and Tileable ask for is what
    the server made (image sizes, seamless pixels) and stored (the walk's and jobs' options)."""
    data, project = tmp_path / "data", tmp_path / "project"
    (data / "models").mkdir(parents=True)
    project.mkdir()
    write_tiny_base_model(data / "models" / "tiny.safetensors")  # 32 px, not trained tileable
    server = start_server(data)
    try:
        dataset = prepared_dataset(server)
        r = merged(run_blender(addon_script(addon_zip, f"""
            URL, TOKEN, PROJECT, DATASET = {server.base_url!r}, {server.token!r}, {str(project)!r}, {dataset["id"]!r}
            """, GRAPH, r'''
            bpy.ops.wm.save_as_mainfile(filepath=os.path.join(PROJECT, "scene.blend"))
            connect(URL, TOKEN)
            bpy.ops.latent.refresh_models()
            bridge.pump_until_idle(60)
            s.model_source, s.base_model = "BASE", "tiny"

            def generate(seamless, size, seed=3):
                s.gen_seamless, s.gen_size_multiplier, s.gen_seed, s.count, s.storage = seamless, size, seed, 1, "PACK"
                bpy.ops.latent.generate_images()
                bridge.pump_until_idle(120)
                img = bpy.data.images[s.last_image]
                return {"size": list(img.size), "pixels": pixels_hash(img.name)}

            stills = {"default": generate("MODEL", 1), "on": generate("ON", 1), "off": generate("OFF", 1),
                      "bigger": generate("MODEL", 2), "bigger_on": generate("ON", 3)}
            try:
                generate("OFF", 2)
                refused = None
            except RuntimeError as exc:
                refused = str(exc).strip()
            s.gen_seamless, s.gen_size_multiplier, s.count = "ON", 8, 2
            try:
                bpy.ops.latent.generate_images()
                too_many = None
            except RuntimeError as exc:
                too_many = str(exc).strip()
            emit({"stills": stills, "refused": refused, "too_many": too_many, "errors": messages("ERROR")})

            # -- a seamless walk at twice the size, onto two selected objects with the material options
            scene = bpy.context.scene
            scene.frame_start, scene.frame_end = 1, 3
            for frame, seed in ((1, 1), (3, 2)):
                scene.frame_set(frame)
                bpy.ops.latent.add_waypoint(seed=seed)
            bpy.ops.mesh.primitive_plane_add(location=(3, 0, 0))
            select("Cube", "Plane")
            options(use_bump=True, bump_strength=0.5, projection="BOX", all_selected=True)
            s.walk_seamless, s.walk_size_multiplier = "ON", 2
            bpy.ops.latent.bake_walk()
            bridge.pump_until_idle(240)
            walk = bpy.data.images[s.walk_image]
            first_frame = bpy.data.images.load(bpy.path.abspath(walk.filepath), check_existing=False)
            frame_size = list(first_frame.size)  # (a sequence's own size reads 0 until it is drawn)
            bpy.data.images.remove(first_frame)
            users = {}
            for o in ("Cube", "Plane"):
                iu = bpy.data.objects[o].active_material.node_tree.nodes[WALK].image_user
                users[o] = [iu.frame_duration, iu.frame_start, iu.frame_offset, iu.use_auto_refresh]
            emit({"walk": {"id": s.walk_id, "size": frame_size, "source": walk.source, "users": users,
                           "graph": graph(bpy.data.objects["Plane"].active_material)},
                  "walk_errors": messages("ERROR")})

            # -- training: Tileable ticked, then not
            s.dataset_id, s.dataset_state, s.resolution = DATASET, "ready", "32"
            jobs = {}
            for title, tileable in (("tiles", True), ("plain", False)):
                s.job_title, s.tileable = title, tileable
                s.preset, s.steps, s.batch, s.snapshot_every, s.augmentation = "tiny", 2, 4, 2, "off"
                bpy.ops.latent.start_training()
                pump_until(lambda: title in [j.title for j in s.jobs], 60)
                jobs[title] = [j.job_id for j in s.jobs if j.title == title][0]
            watch.schedule.stop()  # no need to follow the training: the test cancels it
            bridge.pump_until_idle(30)
            emit({"jobs": jobs, "job_errors": messages("ERROR")})
            '''), home=tmp_path / "home", timeout=600, env={"OMP_NUM_THREADS": "1"}))
        job_json = {title: requests.get(server.api(f"/jobs/{job_id}"), headers=server.headers, timeout=30).json()
                    for title, job_id in r["jobs"].items()}
        for job_id in r["jobs"].values():
            requests.post(server.api(f"/jobs/{job_id}/cancel"), headers=server.headers, timeout=30)
        with sqlite3.connect(f"file:{data / 'latent-studio.sqlite3'}?mode=ro", uri=True) as db:
            walk_params = json.loads(db.execute("SELECT params FROM walks WHERE id = ?", (int(r["walk"]["id"]),))
                                     .fetchone()[0])
            job_params = {title: json.loads(db.execute("SELECT params FROM jobs WHERE id = ?", (int(job_id),))
                                            .fetchone()[0]) for title, job_id in r["jobs"].items()}
    finally:
        stop_server(server.process)

    assert r["errors"] == [] and r["walk_errors"] == [] and r["job_errors"] == []
    st = r["stills"]
    assert st["default"]["size"] == st["on"]["size"] == st["off"]["size"] == [32, 32]
    assert st["on"]["pixels"] != st["off"]["pixels"]  # seamless was sent: the image changed
    assert st["default"]["pixels"] == st["off"]["pixels"]  # this model is not tileable: its default is off
    assert st["bigger"]["size"] == [64, 64] and st["bigger_on"]["size"] == [96, 96]
    assert "Size multiplier 2 makes seamless images only" in r["refused"]
    assert "At Size 8 one Generate makes at most 1 image(s)" in r["too_many"]  # refused before sending

    w = r["walk"]
    assert w["size"] == [64, 64] and w["source"] == "SEQUENCE"
    assert w["users"] == {"Cube": [3, 1, 0, True], "Plane": [3, 1, 0, True]}
    assert link(f"{WALK}.Color", f"{BSDF}.Base Color") in w["graph"]["links"]
    assert link("Latent Studio Bump.Normal", f"{BSDF}.Normal") in w["graph"]["links"]
    assert w["graph"]["values"][WALK]["projection"] == "BOX"
    assert walk_params["seamless"] is True and walk_params["size_multiplier"] == 2

    assert job_params["tiles"]["tileable"] is True
    assert job_params["plain"].get("tileable", False) is False  # not ticked: not sent, the server's default
    assert job_json["tiles"]["tileable"] is True and job_json["plain"]["tileable"] is False
