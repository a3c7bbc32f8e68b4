"""End to end: the installed extension in headless Blender drives the real server over HTTP.

Blender renders an orbit dataset, uploads and prepares it, trains a tiny job to a
snapshot, generates an image onto a material and bakes a short latent walk into an image
sequence, all through the add-on's operators and its queue (pumped with the same
function the timer runs).
"""

from __future__ import annotations

import pytest

from server.addon_build import build_addon
from tests.support.blender import run_blender
from tests.support.server_process import start_server, stop_server

pytestmark = [pytest.mark.blender, pytest.mark.e2e, pytest.mark.slow]

MOD = "bl_ext.user_default.latent_studio"


@pytest.fixture(scope="module")
def real_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("addon-e2e") / "data")
    yield server
    stop_server(server.process)


def test_renders_to_dataset_training_generation_and_walk(real_server, tmp_path):
    addon_zip = build_addon(tmp_path / "dist")
    work = tmp_path / "project"
    work.mkdir()
    results = run_blender(
        f"""
        import importlib, os, time
        install_extension({str(addon_zip)!r})
        bridge = importlib.import_module("{MOD}.bridge")
        prefs = bpy.context.preferences.addons["{MOD}"].preferences
        prefs.server_url = {real_server.base_url!r}
        prefs.token = {real_server.token!r}
        bpy.ops.wm.save_as_mainfile(filepath={str(work / "scene.blend")!r})
        scene = bpy.context.scene
        s = scene.latent
        status = bpy.context.window_manager.latent_status

        def errors():
            return [text for _t, level, text in bridge.log if level == "ERROR"]

        prefs.token = "not-the-token"
        bpy.ops.latent.check_connection()
        bridge.pump_until_idle(30)
        emit({{"wrong_token": [status.connection, errors()]}})
        bridge.log.clear()
        prefs.token = {real_server.token!r}
        bpy.ops.latent.check_connection()
        bridge.pump_until_idle(30)
        emit({{"connection": status.connection, "errors_connect": errors()}})

        # -- render a dataset of the cube and upload it
        scene.render.engine = "CYCLES"
        scene.cycles.samples = 1
        scene.cycles.device = "CPU"
        cube = bpy.data.objects["Cube"]
        bpy.context.view_layer.objects.active = cube
        s.source = "ORBIT"
        s.dataset_dir = "//renders/"
        s.view_count = 12
        s.render_size = 32
        s.spacing = "RANDOM"
        bpy.ops.latent.render_dataset()
        s.resolution = "32"
        s.crop = "center"
        bpy.ops.latent.upload_dataset()
        bridge.pump_until_idle(180)
        preview = bpy.data.images.get(s.preview_image)
        emit({{"dataset": {{"id": s.dataset_id, "state": s.dataset_state, "summary": s.dataset_summary,
                           "preview_size": list(preview.size) if preview else None,
                           "renders": len(os.listdir(bpy.path.abspath("//renders/")))}},
              "errors_dataset": errors()}})

        # -- train a tiny job to its snapshot; the job list, snapshots and sample grid follow
        s.preset = "tiny"
        s.steps = 2
        s.batch = 4
        s.snapshot_every = 2
        s.augmentation = "off"
        s.job_title = "addon e2e"
        bpy.ops.latent.start_training()
        finished = bridge.pump_until_idle(420)
        job = s.jobs[s.job_index] if len(s.jobs) else None
        grid = bpy.data.images.get(s.sample_image)
        emit({{"job": {{"finished_watch": finished, "title": job.title if job else None,
                       "state": job.state if job else None, "step": job.step if job else None,
                       "snapshots": [x.step for x in s.snapshots],
                       "grid_size": list(grid.size) if grid else None}},
              "errors_training": errors()}})

        # -- the base-model list (a dynamic enum) now offers the job's snapshot
        bpy.ops.latent.refresh_models()
        bridge.pump_until_idle(60)
        props = importlib.import_module("{MOD}.properties")
        ids = [item[0] for item in props._model_items]
        snap_id = next((i for i in ids if i.startswith("job:")), None)
        if snap_id:
            s.base_model = snap_id
        emit({{"models": {{"ids": ids, "chosen": s.base_model}}, "errors_models": errors()}})

        # -- generate an image and put it on the cube
        s.model_source = "JOB"
        s.gen_seed = 3
        s.count = 1
        s.storage = "PACK"
        bpy.ops.latent.generate_images()
        bridge.pump_until_idle(120)
        img = bpy.data.images.get(s.last_image)
        bpy.ops.latent.apply_image()
        node = cube.active_material.node_tree.nodes.get("Latent Studio Texture")
        emit({{"generated": {{"name": s.last_image, "size": list(img.size) if img else None,
                             "packed": bool(img and img.packed_file),
                             "on_material": node.image.name if node else None}},
              "errors_generate": errors()}})

        # -- bake a four-frame walk between two waypoints
        scene.frame_start, scene.frame_end = 1, 4
        scene.frame_set(1)
        bpy.ops.latent.add_waypoint(seed=1)
        scene.frame_set(4)
        bpy.ops.latent.add_waypoint(seed=2)
        s.interpolation = "slerp"
        s.easing = "smooth"
        bpy.ops.latent.bake_walk()
        bridge.pump_until_idle(240)
        walk = bpy.data.images.get(s.walk_image)
        node = cube.active_material.node_tree.nodes.get("Latent Studio Walk")
        iu = node.image_user
        folder = os.path.join({str(work)!r}, "latent_studio", "scene", "walks", "Scene_001")
        emit({{"walk": {{"image": s.walk_image, "source": walk.source if walk else None,
                        "on_material": node.image.name, "duration": iu.frame_duration, "start": iu.frame_start,
                        "offset": iu.frame_offset,
                        "files": sorted(os.listdir(folder)) if os.path.isdir(folder) else None,
                        "filepath": bpy.path.abspath(walk.filepath) if walk else None,
                        "frame_sizes": [list(bpy.data.images.load(os.path.join(folder, f)).size)
                                        for f in sorted(os.listdir(folder))] if os.path.isdir(folder) else None}},
              "errors_walk": errors()}})

        # -- continue the finished job for one more step, then continue far and cancel it
        s.steps = 3
        bpy.ops.latent.job_action(action="resume")
        bridge.pump_until_idle(300)
        job = s.jobs[s.job_index]
        emit({{"resumed": {{"state": job.state, "step": job.step, "steps": job.steps,
                           "snapshots": [x.step for x in s.snapshots]}}, "errors_resume": errors()}})
        s.steps = 5000
        bpy.ops.latent.job_action(action="resume")
        t0 = time.monotonic()
        while bridge.runner.running("job_action") and time.monotonic() - t0 < 30:
            bridge.pump()
            time.sleep(0.05)
        bridge.pump()
        bpy.ops.latent.job_action(action="cancel")
        bridge.pump_until_idle(300)
        job = s.jobs[s.job_index]
        emit({{"cancelled": {{"state": job.state, "steps": job.steps}}, "errors_cancel": errors(),
              "ends_announced": [text for _t, level, text in bridge.log if text.startswith("Training 'addon e2e'")]}})
        """,
        home=tmp_path / "home", timeout=900,
    )
    r = {}
    for item in results:
        r.update(item)
    assert r["wrong_token"][0] == "Not connected" and len(r["wrong_token"][1]) == 1
    assert "refused the access token (401)" in r["wrong_token"][1][0]
    assert r["errors_connect"] == [] and r["connection"].startswith("Server ") and r["connection"].lower().endswith(" on cpu")
    assert r["errors_dataset"] == [], r["errors_dataset"]
    ds = r["dataset"]
    assert ds["state"] == "ready" and ds["id"] and ds["renders"] == 12
    assert ds["summary"].startswith("12 accepted, 0 rejected"), ds["summary"]
    assert ds["preview_size"] and ds["preview_size"][0] > 0
    assert r["errors_training"] == [], r["errors_training"]
    job = r["job"]
    assert job["finished_watch"] and job["title"] == "addon e2e"
    assert job["state"] == "completed" and job["step"] == 2 and job["snapshots"][-1] == 2
    assert job["grid_size"] and job["grid_size"][0] >= 32
    assert r["errors_models"] == [], r["errors_models"]
    assert r["models"]["ids"][0] == "scratch" and r["models"]["chosen"].startswith("job:"), r["models"]
    assert r["errors_generate"] == [], r["errors_generate"]
    assert r["generated"] == {"name": "Latent seed 3 (job 1 step 2)", "size": [32, 32], "packed": True,
                              "on_material": "Latent seed 3 (job 1 step 2)"}
    assert r["errors_walk"] == [], r["errors_walk"]
    walk = r["walk"]
    assert walk["source"] == "SEQUENCE" and walk["on_material"] == walk["image"] == "Latent Walk Scene_001"
    assert (walk["duration"], walk["start"], walk["offset"]) == (4, 1, 0)
    assert walk["files"] == ["walk_0001.png", "walk_0002.png", "walk_0003.png", "walk_0004.png"]
    assert walk["frame_sizes"] == [[32, 32]] * 4
    assert walk["filepath"] == str(work / "latent_studio" / "scene" / "walks" / "Scene_001" / "walk_0001.png")
    assert r["errors_resume"] == [], r["errors_resume"]
    assert r["resumed"]["state"] == "completed" and r["resumed"]["step"] == 3 and r["resumed"]["steps"] == 3
    assert r["resumed"]["snapshots"][-1] == 3
    assert r["errors_cancel"] == [], r["errors_cancel"]
    assert r["cancelled"] == {"state": "cancelled", "steps": 5000}
    # each end of the job is announced once: trained, continued to step 3, cancelled
    ends = r["ends_announced"]
    assert [e.split(":")[0] for e in ends] == ["Training 'addon e2e' finished", "Training 'addon e2e' finished",
                                               ends[2].split(":")[0]], ends
    assert ends[2].startswith("Training 'addon e2e' was cancelled at step ") and ends[2].endswith(
        "its snapshots are kept. Its samples are in the Training panel.")
