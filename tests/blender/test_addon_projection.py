"""Use Render as Waypoint and style mixing in the installed extension, against the real server.

One headless Blender: render the default cube, project the Render Result (and then an image
file, in W+) through the add-on's operator and its queue; the waypoints get the stored w
latents; one waypoint is style-mixed with another seed; Bake Walk renders the walk, whose
request carries the w keys and the mix. Greyed-out reasons and a bad file are checked too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.support.addon_session import addon_script
from tests.support.blender import merged, run_blender
from tests.support.projection import write_tiny_model_with_d
from tests.support.server_process import start_server, stop_server
from tests.support.training_data import colour_pattern

pytestmark = [pytest.mark.blender, pytest.mark.e2e, pytest.mark.slow]


def test_render_and_file_become_waypoints_and_a_mixed_walk_bakes(addon_zip, tmp_path):
    data, project = tmp_path / "data", tmp_path / "project"
    (data / "models").mkdir(parents=True)
    project.mkdir()
    write_tiny_model_with_d(data / "models" / "tinyd.safetensors")
    image = tmp_path / "pattern.png"
    Image.fromarray(colour_pattern(40)).save(image)
    server = start_server(data)
    try:
        r = merged(run_blender(addon_script(addon_zip, f"""
            URL, TOKEN, PROJECT, IMAGE = {server.base_url!r}, {server.token!r}, {str(project)!r}, {str(image)!r}
            """, r'''
            import glob, json, tempfile
            walks = importlib.import_module(MOD + ".walks")
            scene = bpy.context.scene
            bpy.ops.wm.save_as_mainfile(filepath=os.path.join(PROJECT, "scene.blend"))
            emit({"offline": poll_reason("use_render_as_waypoint")})
            connect(URL, TOKEN)
            bpy.ops.latent.refresh_models()
            bridge.pump_until_idle(60)
            s.model_source, s.base_model = "BASE", "tinyd"
            try:  # the Render Result is empty until something is rendered
                bpy.ops.latent.use_render_as_waypoint()
                no_render = None
            except RuntimeError as exc:
                no_render = str(exc)

            # -- 1. the Render Result (a real Cycles render, saved on the main thread)
            scene.render.engine = "CYCLES"
            scene.cycles.device, scene.cycles.samples = "CPU", 2
            scene.render.resolution_x = scene.render.resolution_y = 48
            scene.render.resolution_percentage = 100
            scene.render.image_settings.file_format = "JPEG"  # the user's own output settings
            bpy.ops.render.render()
            temp_before = set(glob.glob(os.path.join(tempfile.gettempdir(), "latent-render-*")))
            s.projection_steps = 6
            scene.frame_set(3)
            bpy.ops.latent.use_render_as_waypoint()
            scene.frame_set(20)  # the user moves on while it runs: the waypoint goes where they were
            idle = bridge.pump_until_idle(180)
            temp_after = set(glob.glob(os.path.join(tempfile.gettempdir(), "latent-render-*")))
            wp = [w for w in s.waypoints if w.frame == 3]
            emit({"render": {"no_render": no_render, "idle": idle, "count": len(s.waypoints),
                             "use_vector": wp and wp[0].use_vector, "space": wp and wp[0].vector_space,
                             "vector": wp and json.loads(wp[0].vector), "format": scene.render.image_settings.file_format,
                             "temp_left": sorted(temp_after - temp_before),
                             "said": [t for lv, t in messages("INFO") if t.startswith("Waypoint at frame")],
                             "errors": [t for lv, t in messages("ERROR")]}})

            # -- 2. an image file, in W+, onto an existing seed waypoint at frame 7
            scene.frame_set(7)
            bpy.ops.latent.add_waypoint(seed=4)
            s.projection_source, s.projection_w_plus = "FILE", True
            s.projection_file = "//missing.png"
            missing = poll_reason("use_render_as_waypoint")
            s.projection_file = IMAGE
            bpy.ops.latent.use_render_as_waypoint()
            bridge.pump_until_idle(180)
            wp7 = [w for w in s.waypoints if w.frame == 7][0]
            emit({"file": {"missing": missing, "count": len(s.waypoints), "use_vector": wp7.use_vector,
                           "space": wp7.vector_space, "vector": json.loads(wp7.vector),
                           "said": [t for lv, t in messages("INFO") if t.startswith("Waypoint at frame 7")]}})

            # -- 3. a file that is no image: the server's words, nothing changed
            bad = os.path.join(PROJECT, "notes.png")
            open(bad, "w").write("not an image")
            s.projection_file = bad
            scene.frame_set(12)
            bpy.ops.latent.use_render_as_waypoint()
            bridge.pump_until_idle(60)
            emit({"bad": {"count": len(s.waypoints), "errors": [t for lv, t in messages("ERROR")]}})

            # -- 4. style mixing on a seed waypoint, then the walk
            scene.frame_set(10)
            bpy.ops.latent.add_waypoint(seed=5)
            wp10 = [w for w in s.waypoints if w.frame == 10][0]
            wp10.mix, wp10.mix_seed, wp10.mix_from_layer = True, 9, 3
            scene.frame_start, scene.frame_end = 3, 10
            body = walks.walk_request(scene, {"model_id": "tinyd"})
            bpy.context.view_layer.objects.active = bpy.data.objects["Cube"]
            bpy.ops.latent.bake_walk()
            bridge.pump_until_idle(300)
            img = bpy.data.images.get(s.walk_image)
            emit({"walk": {"keys": [{k: (len(v) if k in ("w", "z") else v) for k, v in key.items()}
                                    for key in body["waypoints"]],
                           "image": img.source if img else None, "walk_id": s.walk_id,
                           "errors": [t for lv, t in messages("ERROR")]}})
            '''), home=tmp_path / "home", timeout=600))
    finally:
        stop_server(server.process)

    assert "Not connected" in r["offline"]
    render = r["render"]
    assert "There is no render to use yet: render an image (F12) first" in render["no_render"]
    assert render["idle"] and render["errors"] == [], render
    assert render["count"] == 1 and render["use_vector"] and render["space"] == "W"
    assert len(render["vector"]) == 64 and all(isinstance(v, float) for v in render["vector"])  # one w: [w_dim]
    assert render["format"] == "JPEG"  # the user's output settings came back
    assert render["temp_left"] == []  # the saved render was removed once read
    assert render["said"] and "the w latent of projection 1" in render["said"][0]

    f = r["file"]
    assert "There is no file at //missing.png" in f["missing"]
    assert f["count"] == 2 and f["use_vector"] and f["space"] == "W"  # the seed waypoint got the latent
    assert np.array(f["vector"]).shape == (8, 64)  # W+: one w per layer of the 32 px model
    assert "W+ latent of projection 2" in f["said"][0]

    bad = r["bad"]
    assert bad["count"] == 2
    assert any("could not" in e.lower() or "not an image" in e for e in bad["errors"]), bad

    walk = r["walk"]
    assert walk["keys"] == [{"frame": 3, "w": 64}, {"frame": 7, "w": 8},
                            {"frame": 10, "seed": 5, "mix": {"seed": 9, "from_layer": 3}}]
    assert walk["image"] == "SEQUENCE" and walk["walk_id"], walk
    assert [e for e in walk["errors"] if "not an image" not in e and "could not" not in e.lower()] == []
    assert json.dumps(walk)  # plain data all the way
