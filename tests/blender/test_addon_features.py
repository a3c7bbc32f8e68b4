"""The installed extension inside headless Blender: dataset renders, materials, image
sequences, waypoints, network errors and clean unregistering.

Each test runs one fresh Blender process and batches several checks into it; the checks
are emitted as JSON and asserted here, so a failure names the exact value.
"""

from __future__ import annotations

import pytest

from tests.support.blender import merged, run_blender

pytestmark = pytest.mark.blender

MOD = "bl_ext.user_default.latent_studio"


def test_render_dataset_restores_the_users_scene(addon_zip, tmp_path):
    ds = tmp_path / "ds"
    tl = tmp_path / "timeline"
    r = merged(run_blender(
        f"""
        import importlib, os
        install_extension({str(addon_zip)!r})
        scene = bpy.context.scene
        scene.render.engine = "CYCLES"
        scene.cycles.samples = 2
        scene.cycles.device = "CPU"
        scene.render.resolution_x, scene.render.resolution_y = 640, 480
        scene.render.resolution_percentage = 50
        scene.render.filepath = "/tmp/user_output_"
        scene.render.image_settings.file_format = "JPEG"
        scene.frame_current = 7
        cube = bpy.data.objects["Cube"]
        light = bpy.data.objects["Light"]
        bpy.context.view_layer.objects.active = cube
        light_state = lambda: [tuple(light.location), tuple(light.rotation_euler), tuple(light.scale)]
        light_before = light_state()
        n_objects = len(bpy.data.objects)
        s = scene.latent
        s.source = "ORBIT"
        s.dataset_dir = {str(ds)!r}
        s.view_count = 3
        s.render_size = 32
        s.random_light_rotation = True
        s.distance_jitter = 0.1
        s.elevation_min, s.elevation_max = 0.1, 0.6
        # a world with a Mapping node gets a random Z rotation per view, restored afterwards
        wtree = scene.world.node_tree
        mapping = wtree.nodes.new("ShaderNodeMapping")
        mapping.inputs["Rotation"].default_value = (0.1, 0.2, 0.3)
        s.random_world_rotation = True
        moved, world_z, cam_dist, samples, texts = [], [], [], [], []
        s.render_samples = 3  # few samples for the dataset; the scene's own come back after
        render_mod = importlib.import_module("{MOD}.render_dataset")
        orig_step = render_mod.DatasetRender.step
        def spy(self):
            moved.append(light_state() != light_before)
            world_z.append(round(mapping.inputs["Rotation"].default_value[2], 6))
            samples.append([scene.cycles.samples, scene.eevee.taa_render_samples])
            done = orig_step(self)
            cam = bpy.data.objects.get(render_mod.CAMERA_NAME)
            cam_dist.append(cam.location.length if cam else None)
            texts.append(self.progress_text())
            return done
        render_mod.DatasetRender.step = spy
        bpy.ops.latent.render_dataset()
        render_mod.DatasetRender.step = orig_step
        emit({{"light_moved_during_render": any(moved), "world_z_during": world_z[1:],
              "world_after": [round(v, 6) for v in mapping.inputs["Rotation"].default_value],
              "cam_dist": cam_dist, "samples_during": samples, "progress_texts": texts}})

        files = sorted(os.listdir({str(ds)!r}))
        sizes = []
        for f in files:
            img = bpy.data.images.load(os.path.join({str(ds)!r}, f))
            sizes.append(list(img.size))
            bpy.data.images.remove(img)
        emit({{"files": files, "sizes": sizes}})
        def user_state():
            r = scene.render
            return {{"camera": scene.camera.name, "frame": scene.frame_current,
                    "res": [r.resolution_x, r.resolution_y, r.resolution_percentage],
                    "filepath": r.filepath, "format": r.image_settings.file_format, "engine": r.engine,
                    "objects": len(bpy.data.objects),
                    "light_restored": light_state() == light_before,
                    "samples": [scene.cycles.samples, scene.eevee.taa_render_samples],
                    "cameras": sorted(c.name for c in bpy.data.cameras)}}
        emit({{"after_orbit": user_state()}})

        # the timeline: the scene camera over the frame range
        s.source = "TIMELINE"
        s.dataset_dir = {str(tl)!r}
        scene.frame_start, scene.frame_end = 3, 4
        bpy.ops.latent.render_dataset()
        emit({{"timeline_files": sorted(os.listdir({str(tl)!r})), "after_timeline": user_state()}})

        # bad input: clear errors, nothing lost
        s.source = "FOLDER"
        try:
            bpy.ops.latent.render_dataset()
            emit({{"folder_error": None}})
        except RuntimeError as exc:
            emit({{"folder_error": str(exc)}})
        s.source = "ORBIT"
        bpy.context.view_layer.objects.active = None
        scene.camera = None
        try:
            bpy.ops.latent.render_dataset()
            emit({{"no_target_error": None}})
        except RuntimeError as exc:
            emit({{"no_target_error": str(exc)}})
        emit({{"camera_after_error": scene.camera, "frame_after_error": scene.frame_current}})
        """,
        home=tmp_path / "home", timeout=240,
    ))
    assert r["files"] == ["view_00000.png", "view_00001.png", "view_00002.png"]
    assert r["sizes"] == [[32, 32]] * 3
    assert r["light_moved_during_render"] is True
    assert len(r["world_z_during"]) == 2 and all(z != 0.3 for z in r["world_z_during"])
    assert r["world_after"] == [0.1, 0.2, 0.3]
    # the cube's bounding sphere (radius sqrt(3)) fits the view; jitter stays within +-10 %
    fit = 3 ** 0.5 / __import__("math").sin(0.5 * 0.6911112070083618) * 1.05
    assert all(0.9 * fit - 1e-3 <= d <= 1.1 * fit + 1e-3 for d in r["cam_dist"]), (r["cam_dist"], fit)
    assert r["samples_during"] == [[3, 3]] * 3
    # time per view and time left, from the second view on
    assert r["progress_texts"][0].startswith("1/3 views, ") and r["progress_texts"][0].endswith(" left")
    assert " s per view, about " in r["progress_texts"][1] and r["progress_texts"][2].startswith("3/3 views")
    expected = {"camera": "Camera", "frame": 7, "res": [640, 480, 50], "filepath": "/tmp/user_output_",
                "format": "JPEG", "engine": "CYCLES", "objects": 3, "light_restored": True, "samples": [2, 64],
                "cameras": ["Camera"]}
    assert r["after_orbit"] == expected
    assert r["timeline_files"] == ["frame_00003.png", "frame_00004.png"]
    assert r["after_timeline"] == expected
    assert "existing image folder" in r["folder_error"]
    assert "Select the object to render" in r["no_target_error"]
    assert r["camera_after_error"] is None and r["frame_after_error"] == 7


def test_materials_sequences_and_waypoints(addon_zip, tmp_path):
    seq = tmp_path / "seq"
    r = merged(run_blender(
        f"""
        import importlib, os
        install_extension({str(addon_zip)!r})
        mats = importlib.import_module("{MOD}.materials")
        walks = importlib.import_module("{MOD}.walks")
        scene = bpy.context.scene
        cube = bpy.data.objects["Cube"]
        bpy.context.view_layer.objects.active = cube

        # -- apply an image to the active object's existing material
        img = bpy.data.images.new("tex", 8, 8)
        bpy.ops.latent.apply_image(image="tex")
        tree = cube.active_material.node_tree
        tex = [n for n in tree.nodes if n.type == "TEX_IMAGE"]
        bsdf = [n for n in tree.nodes if n.type == "BSDF_PRINCIPLED"][0]
        link = bsdf.inputs["Base Color"].links[0]
        emit({{"material": cube.active_material.name, "tex_nodes": len(tex), "tex_image": tex[0].image.name,
              "link_from": [link.from_node.name, link.from_socket.name]}})
        # applying again reuses the node
        bpy.data.images.new("tex2", 8, 8)
        bpy.ops.latent.apply_image(image="tex2")
        emit({{"tex_nodes_again": len([n for n in tree.nodes if n.type == "TEX_IMAGE"]),
              "tex_image_again": tree.nodes["Latent Studio Texture"].image.name,
              "replaced_kept": bpy.data.images["tex"].use_fake_user}})

        # -- an object without material gets one
        bpy.ops.mesh.primitive_plane_add()
        plane = bpy.context.active_object
        bpy.ops.latent.apply_image(image="tex")
        pm = plane.active_material
        emit({{"plane_mat": pm.name if pm else None,
              "plane_linked": pm.node_tree.nodes["Latent Studio Texture"].outputs["Color"].links[0].to_socket.name}})

        # -- errors: unknown image, a camera
        errors = {{}}
        try:
            bpy.ops.latent.apply_image(image="missing")
        except RuntimeError as exc:
            errors["missing"] = str(exc)
        bpy.context.view_layer.objects.active = bpy.data.objects["Camera"]
        try:
            bpy.ops.latent.apply_image(image="tex")
        except RuntimeError as exc:
            errors["camera"] = str(exc)
        emit({{"errors": errors, "camera_mats": len(bpy.data.objects["Camera"].material_slots)}})

        # -- image sequence: files numbered by scene frame 5..7
        os.makedirs({str(seq)!r}, exist_ok=True)
        for f in (5, 6, 7):
            im = bpy.data.images.new(f"f{{f}}", 4, 4)
            im.pixels = [f / 10.0, 0.0, 0.0, 1.0] * 16
            im.filepath_raw = os.path.join({str(seq)!r}, f"walk_{{f:04d}}.png")
            im.file_format = "PNG"
            im.save()
            bpy.data.images.remove(im)
        bridge = importlib.import_module("{MOD}.bridge")
        walk_img = bridge.load_image(os.path.join({str(seq)!r}, "walk_0005.png"), "Latent Walk")
        # reloading a name: a packed image is replaced everywhere it is used, no stale copies
        gen = bridge.load_image(os.path.join({str(seq)!r}, "walk_0005.png"), "Gen")
        gen.pack()
        bpy.context.view_layer.objects.active = cube
        bpy.ops.latent.apply_image(image="Gen")
        bridge.load_image(os.path.join({str(seq)!r}, "walk_0006.png"), "Gen")
        gnode = cube.active_material.node_tree.nodes["Latent Studio Texture"]
        emit({{"reload": {{"names": sorted(i.name for i in bpy.data.images if i.name.startswith("Gen")),
                          "node_image": gnode.image.name, "packed": gnode.image.packed_file is not None,
                          "file": os.path.basename(gnode.image.filepath)}}}})
        scene.frame_start, scene.frame_end = 5, 7
        mat_name, node_name, seq_note = mats.setup_sequence("Cube", "Latent Walk", 5, 3, 5)
        node = bpy.data.materials[mat_name].node_tree.nodes[node_name]
        iu = node.image_user
        emit({{"seq": {{"source": walk_img.source, "duration": iu.frame_duration, "start": iu.frame_start,
                       "offset": iu.frame_offset, "auto": iu.use_auto_refresh, "image": node.image.name,
                       "node": node_name, "path": bpy.path.abspath(walk_img.filepath), "note": seq_note,
                       "still_node_keeps": gnode.image.name}}}})
        # Blender's own frame mapping (evaluated material): scene frame N shows file N
        shown = []
        for f in (5, 6, 7):
            scene.frame_set(f)
            dg = bpy.context.evaluated_depsgraph_get()
            ev = bpy.data.materials[mat_name].evaluated_get(dg)
            shown.append(ev.node_tree.nodes[node_name].image_user.frame_current)
        emit({{"seq_frames_shown": shown}})

        # -- waypoints: keyframed, re-timed by moving keys
        scene.frame_start, scene.frame_end = 1, 24
        for frame, seed in ((1, 11), (10, 22), (20, 33)):
            scene.frame_set(frame)
            bpy.ops.latent.add_waypoint(seed=seed)
        fc = walks.key_curve(scene)
        emit({{"keys": sorted([round(k.co[0]), round(k.co[1])] for k in fc.keyframe_points),
              "wps": [[w.uid, w.frame, w.seed] for w in scene.latent.waypoints]}})
        # move the second waypoint's key in the "Dope Sheet" from 10 to 15
        key = [k for k in fc.keyframe_points if round(k.co[1]) == 2][0]
        key.co[0] = 15
        fc.update()
        req = walks.walk_request(scene, {{"job_id": "j1"}})
        emit({{"request": req}})
        # editing a waypoint's frame in the panel moves its key
        scene.latent.waypoints[2].frame = 4
        emit({{"keys_after_edit": sorted([round(k.co[0]), round(k.co[1])] for k in walks.key_curve(scene).keyframe_points),
              "order_after_edit": [w["frame"] for w in walks.walk_request(scene, {{"job_id": "j1"}})["waypoints"]]}})
        # a waypoint with a stored latent vector is sent as z; a broken vector is a clear error
        wp = scene.latent.waypoints[0]
        wp.use_vector = True
        wp.vector = "[0.5, -1.25]"
        z_first = walks.walk_request(scene, {{"job_id": "j1"}})["waypoints"][0]
        wp.vector = "[0.5, oops]"
        try:
            walks.walk_request(scene, {{"job_id": "j1"}})
            bad_vector = None
        except walks.WalkError as exc:
            bad_vector = str(exc)
        wp.use_vector = False
        emit({{"z_first": z_first, "bad_vector": bad_vector}})
        # duplicate frame refused, nothing added
        scene.frame_set(15)
        try:
            bpy.ops.latent.add_waypoint(seed=5)
            dup = None
        except RuntimeError as exc:
            dup = str(exc)
        scene.latent.waypoint_index = 0
        bpy.ops.latent.remove_waypoint()
        emit({{"dup": dup, "after_remove": [[w.uid, w.frame] for w in scene.latent.waypoints],
              "keys_after_remove": sorted(round(k.co[1]) for k in walks.key_curve(scene).keyframe_points)}})
        """,
        home=tmp_path / "home", timeout=240,
    ))
    assert r["material"] == "Material" and r["tex_nodes"] == 1 and r["tex_image"] == "tex"
    assert r["link_from"] == ["Latent Studio Texture", "Color"]
    assert r["tex_nodes_again"] == 1 and r["tex_image_again"] == "tex2"
    assert r["replaced_kept"] is True  # the image the node showed before keeps a (fake) user
    assert r["plane_mat"] == "Plane Latent" and r["plane_linked"] == "Base Color"
    assert "no image named 'missing'" in r["errors"]["missing"]
    assert "Select the object whose material should show the image" in r["errors"]["camera"]
    assert r["camera_mats"] == 0
    assert r["seq"] == {"source": "SEQUENCE", "duration": 3, "start": 5, "offset": 4, "auto": True,
                        "image": "Latent Walk", "node": "Latent Studio Walk", "path": str(seq / "walk_0005.png"),
                        "note": "'Latent Studio' was unlinked from Base Color and kept in the material",
                        "still_node_keeps": "Gen"}
    assert r["seq_frames_shown"] == [5, 6, 7]
    assert r["reload"] == {"names": ["Gen"], "node_image": "Gen", "packed": False, "file": "walk_0006.png"}
    assert r["keys"] == [[1, 1], [10, 2], [20, 3]]
    assert r["wps"] == [[1, 1, 11], [2, 10, 22], [3, 20, 33]]
    assert r["request"]["waypoints"] == [{"frame": 1, "seed": 11}, {"frame": 15, "seed": 22},
                                         {"frame": 20, "seed": 33}]
    assert r["request"]["frame_start"] == 1 and r["request"]["frame_end"] == 24
    assert r["request"]["model"] == {"job_id": "j1"} and r["request"]["interpolation"] == "slerp"
    assert r["keys_after_edit"] == [[1, 1], [4, 3], [15, 2]]
    assert r["order_after_edit"] == [1, 4, 15]
    assert r["z_first"] == {"frame": 1, "z": [0.5, -1.25]}
    assert r["bad_vector"] == "The stored vector of the waypoint at frame 1 is not a list of numbers"
    assert "already a waypoint at frame 15" in r["dup"]
    assert r["after_remove"] == [[2, 15], [3, 4]]
    assert r["keys_after_remove"] == [2, 3]


def test_network_errors_are_reports_and_unregister_is_clean(addon_zip, tmp_path):
    r = merged(run_blender(
        f"""
        import importlib, json, socket, threading, time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        install_extension({str(addon_zip)!r})
        bridge = importlib.import_module("{MOD}.bridge")
        prefs = bpy.context.preferences.addons["{MOD}"].preferences
        status = bpy.context.window_manager.latent_status

        def last_log():
            return list(bridge.log)[-1][1:] if bridge.log else None

        # -- a stopped server
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        prefs.server_url = f"http://127.0.0.1:{{port}}"
        t0 = time.monotonic()
        bpy.ops.latent.check_connection()
        returned_in = time.monotonic() - t0
        idle = bridge.pump_until_idle(20)
        emit({{"stopped": {{"returned_fast": returned_in < 0.5, "idle": idle, "connection": status.connection,
                          "log": last_log()}}}})

        # -- a server that refuses the token
        class H(BaseHTTPRequestHandler):
            def log_message(self, *a): pass
            def do_GET(self):
                if self.path.endswith("/health"):
                    code, body = 200, {{"status": "ok", "version": "9.9", "device": "cpu", "device_name": None}}
                elif self.headers.get("Authorization") == "Bearer right":
                    code, body = 200, []
                else:
                    code, body = 401, {{"error": {{"code": "unauthorized", "message": "invalid token"}}}}
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        prefs.server_url = f"http://localhost:{{httpd.server_address[1]}}"
        prefs.token = "wrong"
        bpy.ops.latent.check_connection()
        bridge.pump_until_idle(20)
        emit({{"wrong_token": {{"connection": status.connection, "log": last_log()}}}})
        prefs.token = "right"
        bpy.ops.latent.check_connection()
        bridge.pump_until_idle(20)
        emit({{"right_token": {{"connection": status.connection, "log": last_log()}}}})

        # -- operators refuse bad state with a report, nothing sent
        try:
            bpy.ops.latent.start_training()
            no_ds = None
        except RuntimeError as exc:
            no_ds = str(exc)
        bpy.context.scene.latent.dataset_dir = "/nonexistent/latent/folder"
        try:
            bpy.ops.latent.upload_dataset()
            no_dir = None
        except RuntimeError as exc:
            no_dir = str(exc)
        emit({{"no_dataset": no_ds, "no_dir": no_dir}})

        # -- a non-local server while online access is off
        prefs.server_url = "http://example.com:7860"
        try:
            bpy.ops.latent.check_connection()
            online = None
        except RuntimeError as exc:
            online = str(exc)
        emit({{"online_access": bpy.app.online_access, "online_error": online,
              "tasks_started": len(bridge.runner.active())}})

        prefs.server_url = f"http://localhost:{{httpd.server_address[1]}}"  # nothing leaves this machine below
        # -- opening another file cancels running tasks (their results belong to the old file)
        def wait_forever(task):
            while True:
                task.sleep(0.05)
        pending = bridge.runner.submit("wait", wait_forever)
        bpy.ops.wm.read_homefile(use_empty=True)
        pending.thread.join(2)
        bridge.pump()
        emit({{"load_cancels": {{"alive": pending.thread.is_alive(), "log": list(bridge.log)[-1][1:]}}}})

        # -- unregister with a worker running: timer gone, worker told to stop
        seen = {{}}
        def loop(task):
            while True:
                task.sleep(0.05)
        task = bridge.runner.submit("loop", loop)
        import addon_utils
        addon_utils.disable("{MOD}", default_set=True)
        task.thread.join(2)
        seen["timer"] = bpy.app.timers.is_registered(bridge._timer)
        seen["worker_alive"] = task.thread.is_alive()
        seen["scene_prop"] = hasattr(bpy.types.Scene, "latent")
        seen["op"] = hasattr(bpy.types, "LATENT_OT_check_connection")
        addon_utils.enable("{MOD}", default_set=True)
        bridge2 = importlib.import_module("{MOD}.bridge")
        seen["timer_again"] = bpy.app.timers.is_registered(bridge2._timer)
        seen["scene_prop_again"] = hasattr(bpy.types, "Scene") and hasattr(bpy.context.scene, "latent")
        emit({{"unregister": seen}})
        httpd.shutdown()
        """,
        home=tmp_path / "home", timeout=240,
    ))
    stopped = r["stopped"]
    assert stopped["returned_fast"] and stopped["idle"]
    assert stopped["connection"] == "Not connected"
    assert stopped["log"][0] == "ERROR" and "Cannot connect to the server at http://127.0.0.1" in stopped["log"][1]
    assert r["wrong_token"]["connection"] == "Not connected"
    assert r["wrong_token"]["log"][0] == "ERROR" and "refused the access token (401)" in r["wrong_token"]["log"][1]
    assert r["right_token"] == {"connection": "Server 9.9 on cpu", "log": ["INFO", "Connected: Server 9.9 on cpu"]}
    if r["online_access"]:
        assert r["online_error"] is None
    else:
        assert "Online access is disabled" in r["online_error"]
        assert r["tasks_started"] == 0
    assert "Upload and prepare a dataset first" in r["no_dataset"]
    assert "does not exist" in r["no_dir"]
    assert r["unregister"] == {"timer": False, "worker_alive": False, "scene_prop": False, "op": False,
                               "timer_again": True, "scene_prop_again": True}
    assert r["load_cancels"] == {"alive": False, "log": ["WARNING", "wait: cancelled"]}
