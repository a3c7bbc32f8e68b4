"""The extension as an artist lives with it, against the real server (issue 14).

One headless Blender per test runs the artist's whole flow through the add-on's operators
and its queue: render, upload, train, pick, generate, apply, bake, save, quit, reopen, move
the project, a second .blend beside the first, an unsaved file, the server going away and
coming back mid-job. Every check is emitted as JSON and asserted here.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tests.support.addon_session import addon_script
from tests.support.blender import merged, run_blender
from tests.support.server_process import start_server, stop_server

pytestmark = [pytest.mark.blender, pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

# A small orbit dataset the server accepts at 32 px (random views: no near duplicates),
# and a tiny network that writes snapshots quickly on a CPU.
DATASET_STEPS = textwrap.dedent(
    """
    def render_and_upload(folder="//renders/"):
        scene = bpy.context.scene
        scene.render.engine = "CYCLES"
        scene.cycles.device = "CPU"
        bpy.context.view_layer.objects.active = bpy.data.objects["Cube"]
        s.source, s.dataset_dir, s.view_count, s.render_size, s.render_samples = "ORBIT", folder, 12, 32, 2
        s.spacing, s.resolution, s.crop = "RANDOM", "32", "center"
        bpy.ops.latent.render_dataset()
        bpy.ops.latent.upload_dataset()
        bridge.pump_until_idle(180)

    def train(title, steps, every):
        s.job_title, s.preset, s.steps, s.batch, s.snapshot_every, s.augmentation = title, "tiny", steps, 4, every, "off"
        bpy.ops.latent.start_training()
    """
)


def test_follow_pick_generate_save_reopen_move_and_a_second_blend(addon_zip, tmp_path):
    server = start_server(tmp_path / "data")
    project, moved = tmp_path / "project", tmp_path / "moved"
    project.mkdir()
    try:
        r = merged(run_blender(addon_script(addon_zip, f"""
            URL, TOKEN = {server.base_url!r}, {server.token!r}
            PROJECT, MOVED = {str(project)!r}, {str(moved)!r}
            """, DATASET_STEPS, r'''
            bpy.ops.wm.save_as_mainfile(filepath=os.path.join(PROJECT, "scene.blend"))
            connect(URL, TOKEN)
            render_and_upload()
            emit({"dataset": [s.dataset_state, s.dataset_summary, bool(bpy.data.images.get(s.preview_image))]})

            # -- 1. train from the add-on: the model follows the snapshots as they come
            train("cube A", 60, 20)
            idle = bridge.pump_until_idle(400)
            job_a = s.jobs[s.job_index].job_id
            emit({"job_a": {"idle": idle, "state": s.jobs[s.job_index].state,
                            "snapshots": [x.step for x in s.snapshots], "snapshots_job": s.snapshots_job == job_a,
                            "selected_row": s.snapshot_index, "latest": s.use_latest,
                            "sample": [s.sample_image, s.sample_step], "notice": s.training_notice,
                            "announced": [t for lv, t in messages("INFO") if t.startswith("Training 'cube A'")]}})
            s.gen_seed, s.count, s.storage = 13, 1, "PACK"
            bpy.ops.latent.generate_images()
            bridge.pump_until_idle(120)
            latest_name = s.last_image
            s.snapshot_index = 0  # the artist clicks the first snapshot: step 0 is pinned
            pinned = [s.use_latest, s.pinned_step]
            bpy.ops.latent.generate_images()
            bridge.pump_until_idle(120)
            step0_name = s.last_image
            s.use_latest = True
            emit({"generated": {"latest": latest_name, "step0": step0_name, "pinned": pinned,
                                "differ": pixels_hash(latest_name) != pixels_hash(step0_name),
                                "back_to_latest_row": s.snapshot_index}})
            bpy.context.view_layer.objects.active = bpy.data.objects["Cube"]
            bpy.ops.latent.apply_image(image=latest_name)

            # -- 2. a second job: the snapshot list belongs to whichever job is selected
            train("cube B", 30, 10)
            bridge.pump_until_idle(400)
            job_b = s.jobs[s.job_index].job_id
            b_list = [x.step for x in s.snapshots]
            select_job(job_a)
            right_after = [len(s.snapshots), s.snapshots_job == job_a, poll_reason("generate_images")]
            bridge.pump_until_idle(60)
            a_list = [x.step for x in s.snapshots]
            s.snapshot_index = a_list.index(40)
            select_job(job_b)
            b_again = [[x.step for x in s.snapshots], s.use_latest, s.pinned_step]
            bridge.pump_until_idle(60)
            bpy.ops.latent.generate_images()
            bridge.pump_until_idle(120)
            emit({"selection": {"b_list": b_list, "right_after_select_a": right_after, "a_list": a_list,
                                "b_again": b_again, "b_generated": s.last_image,
                                "b_sample": s.sample_image}})

            # -- 3. a still saved as a file, a walk baked beside the applied still
            s.storage, s.gen_seed = "SAVE", 5
            bpy.ops.latent.generate_images()
            bridge.pump_until_idle(120)
            saved_still = s.last_image
            scene = bpy.context.scene
            scene.frame_start, scene.frame_end = 1, 4
            for frame, seed in ((1, 1), (4, 2)):
                scene.frame_set(frame)
                bpy.ops.latent.add_waypoint(seed=seed)
            bpy.ops.latent.bake_walk()
            bridge.pump_until_idle(240)
            tree = bpy.data.objects["Cube"].active_material.node_tree
            bsdf = [n for n in tree.nodes if n.type == "BSDF_PRINCIPLED"][0]
            walk_img = bpy.data.images[s.walk_image]
            emit({"walk": {"image": s.walk_image, "path": walk_img.filepath, "source": walk_img.source,
                           "still_node": tree.nodes["Latent Studio Texture"].image.name,
                           "walk_node": tree.nodes["Latent Studio Walk"].image.name,
                           "base_color_from": bsdf.inputs["Base Color"].links[0].from_node.name,
                           "report": [t for lv, t in messages("INFO") if t.startswith("Walk baked")][-1:]},
                  "saved_still": [saved_still, bpy.data.images[saved_still].filepath]})

            # -- 4. pick job A at step 40, save, quit, reopen
            select_job(job_a)
            bridge.pump_until_idle(60)
            s.snapshot_index = [x.step for x in s.snapshots].index(40)
            kept = {name: pixels_hash(name) for name in (latest_name, step0_name, s.preview_image, s.sample_image)}
            emit({"errors_before_save": messages("ERROR")})
            bpy.ops.wm.save_mainfile()
            bpy.ops.wm.read_homefile(use_empty=True)
            bpy.ops.wm.open_mainfile(filepath=os.path.join(PROJECT, "scene.blend"))
            reopened = {name: pixels_hash(name) for name in kept}
            walk_img = bpy.data.images[s.walk_image]
            bpy.context.view_layer.objects.active = bpy.data.objects["Cube"]
            apply_after = bpy.ops.latent.apply_image(image=step0_name)
            emit({"reopen": {"same_pixels": reopened == kept, "missing": [n for n, h in reopened.items() if h is None],
                             "fake_users": all(getattr(bpy.data.images.get(n), "use_fake_user", False) for n in kept),
                             "packed": [bool(getattr(bpy.data.images.get(n), "packed_file", None))
                                        for n in (latest_name, step0_name)],
                             "apply": sorted(apply_after),
                             "selected": [s.jobs[s.job_index].job_id == job_a, s.use_latest, s.pinned_step,
                                          s.snapshots[s.snapshot_index].step],
                             "walk_exists": os.path.isfile(bpy.path.abspath(walk_img.filepath))}})

            # -- 5. the project folder moves
            bpy.ops.wm.read_homefile(use_empty=True)
            os.rename(PROJECT, MOVED)
            bpy.ops.wm.open_mainfile(filepath=os.path.join(MOVED, "scene.blend"))
            walk_img = bpy.data.images[s.walk_image]
            frames = os.path.dirname(bpy.path.abspath(walk_img.filepath))
            emit({"moved": {"walk_frames": sorted(os.listdir(frames)) if os.path.isdir(frames) else None,
                            "walk_under_moved": frames.startswith(MOVED),
                            "saved_still": os.path.isfile(bpy.path.abspath(bpy.data.images[saved_still].filepath)),
                            "dataset": os.path.isdir(bpy.path.abspath(s.dataset_dir))}})

            # -- 6. a second .blend in the same folder bakes its own walk
            def digest(folder):
                return {f: hashlib.sha256(open(os.path.join(folder, f), "rb").read()).hexdigest()
                        for f in sorted(os.listdir(folder))}
            first_frames = digest(frames)
            bpy.ops.wm.save_as_mainfile(filepath=os.path.join(MOVED, "scene_v2.blend"))
            connect(URL, TOKEN)
            bridge.pump_until_idle(60)
            bpy.context.view_layer.objects.active = bpy.data.objects["Cube"]
            scene = bpy.context.scene
            scene.latent.waypoints[1].seed = 7
            bpy.ops.latent.bake_walk()
            bridge.pump_until_idle(240)
            v2_frames = os.path.dirname(bpy.path.abspath(bpy.data.images[s.walk_image].filepath))
            emit({"second_blend": {"first_untouched": digest(frames) == first_frames,
                                   "v2_folder": os.path.relpath(v2_frames, MOVED),
                                   "v2_frames": sorted(os.listdir(v2_frames))}})

            # -- 7. a new file: the first Refresh Jobs also lists the selected job's snapshots
            bpy.ops.wm.read_homefile(use_empty=True)
            connect(URL, TOKEN)
            bpy.ops.latent.refresh_jobs()
            bridge.pump_until_idle(60)
            emit({"fresh": {"jobs": len(s.jobs), "selected": s.jobs[s.job_index].job_id == job_b,
                            "snapshots": [x.step for x in s.snapshots]},
                  "errors": messages("ERROR")})
            '''), home=tmp_path / "home", timeout=900, env={"OMP_NUM_THREADS": "1"}))
    finally:
        stop_server(server.process)

    assert r["dataset"][0] == "ready" and r["dataset"][2], r["dataset"]
    a = r["job_a"]
    assert a["idle"] and a["state"] == "completed"
    assert a["snapshots"] == [0, 20, 40, 60] and a["snapshots_job"]
    assert a["selected_row"] == 3 and a["latest"] is True  # "latest" follows the list as it grows
    assert a["sample"] == ["Latent Samples job 1", 60]
    assert a["notice"] == "Training 'cube A' finished: step 60 of 60"
    assert a["announced"] == ["Training 'cube A' finished: step 60 of 60. Its samples are in the Training panel."]
    g = r["generated"]
    assert g["latest"] == "Latent seed 13 (job 1 step 60)" and g["step0"] == "Latent seed 13 (job 1 step 0)"
    assert g["pinned"] == [False, 0] and g["differ"] and g["back_to_latest_row"] == 3
    sel = r["selection"]
    assert sel["b_list"] == [0, 10, 20, 30]
    assert sel["right_after_select_a"][:2] == [0, True]  # job B's steps never show under job A
    assert "has no snapshot yet" in sel["right_after_select_a"][2]
    assert sel["a_list"] == [0, 20, 40, 60]
    assert sel["b_again"] == [[], True, -1]  # a step pinned on job A does not carry over to job B
    assert sel["b_generated"] == "Latent seed 13 (job 2 step 30)" and sel["b_sample"] == "Latent Samples job 2"
    w = r["walk"]
    assert w["image"] == "Latent Walk Scene_001" and w["source"] == "SEQUENCE"
    assert w["path"] == "//latent_studio/scene/walks/Scene_001/walk_0001.png"
    assert w["still_node"] == "Latent seed 13 (job 1 step 60)" and w["walk_node"] == "Latent Walk Scene_001"
    assert w["base_color_from"] == "Latent Studio Walk"
    assert w["report"][0].startswith("Walk baked from job 2 step 30: 4 frames in ")
    assert "'Latent Studio' was unlinked from Base Color and kept in the material" in w["report"][0]
    assert r["saved_still"] == ["Latent seed 5 (job 2 step 30)",
                                "//latent_studio/scene/generated/latent_job_2_step_30_seed000005.png"]
    assert r["errors_before_save"] == []
    ro = r["reopen"]
    assert ro["missing"] == [] and ro["same_pixels"] and ro["fake_users"] and ro["packed"] == [True, True]
    assert ro["apply"] == ["FINISHED"]
    assert ro["selected"] == [True, False, 40, 40] and ro["walk_exists"]
    mv = r["moved"]
    assert mv["walk_frames"] == ["walk_0001.png", "walk_0002.png", "walk_0003.png", "walk_0004.png"]
    assert mv["walk_under_moved"] and mv["saved_still"] and mv["dataset"]
    second = r["second_blend"]
    assert second["first_untouched"]
    assert second["v2_folder"] == os.path.join("latent_studio", "scene_v2", "walks", "Scene_001")
    assert second["v2_frames"] == mv["walk_frames"]
    assert r["fresh"] == {"jobs": 2, "selected": True, "snapshots": [0, 10, 20, 30]}
    assert r["errors"] == []


def test_an_unsaved_file_and_a_server_that_goes_away_mid_job(addon_zip, tmp_path):
    """The Blender script stops and restarts the server itself (same port, same data)."""
    data, project = tmp_path / "data", tmp_path / "project"
    project.mkdir()
    r = merged(run_blender(addon_script(addon_zip, f"""
        DATA, PROJECT = {str(data)!r}, {str(project)!r}
        """, DATASET_STEPS, r'''
        from pathlib import Path
        from tests.support.server_process import start_server, stop_server
        server = start_server(Path(DATA))
        port = int(server.base_url.rsplit(":", 1)[1])
        try:
            connect(server.base_url, server.token)
            cwd_before = sorted(os.listdir(os.getcwd()))

            # -- 1. an unsaved file: "//renders/" has no folder until the artist chooses one
            s.dataset_dir = "//renders/"
            unsaved = {op: poll_reason(op) for op in ("render_dataset", "upload_dataset")}
            bpy.ops.latent.use_temp_folder()
            render_and_upload()
            temp = s.temp_dir
            emit({"unsaved": {"reasons": unsaved, "temp_renders": len(os.listdir(os.path.join(temp, "renders"))),
                              "cwd_unchanged": sorted(os.listdir(os.getcwd())) == cwd_before,
                              "temp_is_temp": temp.startswith(__import__("tempfile").gettempdir()),
                              "dataset": s.dataset_state}})

            # -- 2. the server stops while the job trains, and comes back
            train("long", 120, 60)
            running = pump_until(lambda: len(s.jobs) and s.jobs[s.job_index].state == "running"
                                 and s.jobs[s.job_index].step > 0, 180)
            stop_server(server.process)
            pump_until(lambda: watch.schedule.failures >= 2, 90)
            outage = {"running_before": running, "connection": status.connection, "message_key": status.message_key,
                      "warnings": [t for lv, t in messages("WARNING")], "greyed": poll_reason("refresh_jobs")}
            server = start_server(Path(DATA), port=port)
            states = []
            def settled():
                states.append(s.jobs[s.job_index].state)
                return not bridge.runner.active() and not watch.schedule.active
            settled_in_time = pump_until(settled, 400)
            row = s.jobs[s.job_index]
            emit({"outage": outage,
                  "after": {"settled": settled_in_time, "state": row.state, "step": row.step,
                            "states_seen": sorted(set(states)), "connection": status.connection,
                            "message_key": status.message_key, "greyed": poll_reason("refresh_jobs"),
                            "back": [t for lv, t in messages("INFO") if t.startswith("The server answers again")],
                            "announced": [t for lv, t in messages() if t.startswith("Training 'long'")],
                            "notice": s.training_notice, "notice_image": s.notice_image,
                            "samples": [s.sample_image, s.sample_step]}})

            # -- 3. a walk baked in the temporary folder, then the first save brings everything along
            scene = bpy.context.scene
            scene.frame_start, scene.frame_end = 1, 2
            for frame, seed in ((1, 1), (2, 2)):
                scene.frame_set(frame)
                bpy.ops.latent.add_waypoint(seed=seed)
            bpy.context.view_layer.objects.active = bpy.data.objects["Cube"]
            bpy.ops.latent.bake_walk()
            bridge.pump_until_idle(240)
            walk_before = bpy.path.abspath(bpy.data.images[s.walk_image].filepath)
            bpy.ops.wm.save_as_mainfile(filepath=os.path.join(PROJECT, "scene.blend"))
            bpy.ops.wm.open_mainfile(filepath=os.path.join(PROJECT, "scene.blend"))
            walk = bpy.data.images[s.walk_image]
            emit({"adopted": {"walk_was_in_temp": walk_before.startswith(temp), "walk_path": walk.filepath,
                              "walk_exists": os.path.isfile(bpy.path.abspath(walk.filepath)),
                              "renders": len(os.listdir(os.path.join(PROJECT, "renders"))),
                              "temp_dir": s.temp_dir, "temp_kept": os.path.isdir(temp)},
                  "errors": messages("ERROR")})
        finally:
            stop_server(server.process)
        '''), home=tmp_path / "home", timeout=900, env={"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}))

    needs = "save the .blend first, or choose a temporary folder (Latent panel)"
    assert all(needs in reason for reason in r["unsaved"]["reasons"].values()), r["unsaved"]["reasons"]
    assert r["unsaved"]["temp_renders"] == 12 and r["unsaved"]["cwd_unchanged"] and r["unsaved"]["temp_is_temp"]
    assert r["unsaved"]["dataset"] == "ready"
    out = r["outage"]
    assert out["running_before"]
    assert out["connection"].startswith("No answer from the server: trying again every")
    assert out["message_key"] == "connection" and len(out["warnings"]) == 1, out["warnings"]
    assert "Cannot connect to the server" in out["warnings"][0] and "resumes by itself" in out["warnings"][0]
    assert out["greyed"].startswith("Not connected to the server")
    after = r["after"]
    assert after["settled"] and after["state"] == "completed" and after["step"] == 120
    assert "running" in after["states_seen"]
    assert not after["connection"].startswith("No answer") and after["message_key"] != "connection"
    assert after["greyed"] is None
    assert after["back"] == ["The server answers again: the job list is current"]
    assert after["announced"] == ["Training 'long' finished: step 120 of 120. Its samples are in the Training panel."]
    assert after["notice"] == "Training 'long' finished: step 120 of 120"
    assert after["notice_image"] == "Latent Samples job 1" and after["samples"] == ["Latent Samples job 1", 120]
    ad = r["adopted"]
    assert ad["walk_was_in_temp"] and ad["walk_exists"] and ad["temp_kept"] and ad["temp_dir"] == ""
    assert ad["walk_path"] == "//latent_studio/scene/walks/Scene_001/walk_0001.png"
    assert ad["renders"] == 12
    assert r["errors"] == []


def test_buttons_say_why_they_cannot_work_and_failures_say_what_to_do(addon_zip, tmp_path):
    server = start_server(tmp_path / "data")
    project = tmp_path / "project"
    project.mkdir()
    ops = ("refresh_jobs", "refresh_models", "upload_dataset", "start_training", "job_action", "generate_images",
           "bake_walk", "remove_waypoint")
    try:
        r = merged(run_blender(addon_script(addon_zip, f"""
            URL, TOKEN, PROJECT, OPS = {server.base_url!r}, {server.token!r}, {str(project)!r}, {ops!r}
            """, r'''
            bpy.ops.wm.save_as_mainfile(filepath=os.path.join(PROJECT, "scene.blend"))
            not_connected = {op: poll_reason(op) for op in OPS}
            connect(URL, TOKEN)
            bpy.context.view_layer.objects.active = bpy.data.objects["Cube"]
            bpy.ops.latent.add_waypoint(seed=3)  # one waypoint: a walk would be one image N times
            connected = {op: poll_reason(op) for op in OPS}
            try:
                bpy.ops.latent.apply_image()
                nothing_to_apply = None
            except RuntimeError as exc:
                nothing_to_apply = str(exc).strip()

            # a folder of flat images: the server refuses every one of them
            folder = os.path.join(PROJECT, "flat")
            os.makedirs(folder)
            for i in range(6):
                img = bpy.data.images.new(f"flat{i}", 48, 48)
                img.pixels = [i / 6, 0.5, 0.2, 1.0] * (48 * 48)
                img.filepath_raw = os.path.join(folder, f"flat{i}.png")
                img.file_format = "PNG"
                img.save()
            s.source, s.dataset_dir, s.resolution = "FOLDER", "//flat/", "32"
            bpy.ops.latent.upload_dataset()
            bridge.pump_until_idle(180)
            emit({"not_connected": not_connected, "connected": connected, "nothing_to_apply": nothing_to_apply,
                  "prepare": {"state": s.dataset_state, "errors": [t for lv, t in messages("ERROR")],
                              "files_left": sorted(os.listdir(folder))}})
            '''), home=tmp_path / "home", timeout=600, env={"OMP_NUM_THREADS": "1"}))
    finally:
        stop_server(server.process)

    not_connected = "Not connected to the server: start it, then press Check Connection (Latent panel)"
    assert {op: reason for op, reason in r["not_connected"].items() if op != "remove_waypoint"} == {
        op: not_connected for op in ops if op != "remove_waypoint"}
    assert r["not_connected"]["remove_waypoint"] == "Select a waypoint to remove"
    c = r["connected"]
    assert c["refresh_jobs"] is None and c["refresh_models"] is None and c["upload_dataset"] is None
    assert c["remove_waypoint"] is None
    assert c["start_training"] == "Upload and prepare a dataset first (Dataset > Upload & Prepare)"
    assert c["job_action"] == "Select a training job first (Refresh Jobs)"
    assert c["generate_images"] == "Select a training job (Refresh Jobs) to generate from"
    assert c["bake_walk"] == "A walk needs at least 2 waypoints at different frames (Latent Walk > +)"
    assert r["nothing_to_apply"] == "Error: There is no image to apply: generate one first (Latent > Generate)"
    p = r["prepare"]
    assert p["state"] == "failed"
    assert p["errors"] == ["Upload dataset: None of the uploaded images could be used: 6 are one flat colour. "
                           "Change the renders or the dataset settings, then Upload & Prepare again."]
    assert p["files_left"] == [f"flat{i}.png" for i in range(6)]  # the artist's images are untouched
