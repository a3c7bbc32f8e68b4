"""A new user's first hour in the add-on, against the real server: the address pasted as the
server prints it, a model copied into the models folder (rescanned without a restart, then
deleted), a walk's server copy deleted, snapshot retention, the estimate and its warning,
and deleting jobs (a running one is refused in words, a finished one leaves no folder) and
the dataset (refused while a job trains on it, then gone).

One headless Blender runs the whole flow through the add-on's operators (called with
EXEC_DEFAULT, which skips their confirmation) and its queue; checks are emitted as JSON.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.addon_session import addon_script
from tests.support.blender import merged, run_blender
from tests.support.jobs import prepared_dataset
from tests.support.server_process import start_server, stop_server

pytestmark = [pytest.mark.blender, pytest.mark.e2e, pytest.mark.slow]

PKL = Path(__file__).resolve().parents[1] / "data" / "sg2ada_tiny32" / "network-snapshot.pkl"
MODEL = "network-snapshot"  # the id of the checkpoint the server imports from it


def test_rescan_delete_keep_snapshots_and_the_estimate(addon_zip, tmp_path):
    data, project = tmp_path / "data", tmp_path / "project"
    (data / "models").mkdir(parents=True)
    project.mkdir()
    shutil.copy(PKL, data / "models" / PKL.name)
    # steps up to a million: a run long enough for the CPU warning
    server = start_server(data, max_steps=1_000_000)
    try:
        dataset = prepared_dataset(server)
        r = merged(run_blender(addon_script(addon_zip, f"""
            URL, TOKEN, DATA, PROJECT = {server.base_url!r}, {server.token!r}, {str(data)!r}, {str(project)!r}
            PKL, MODEL, DATASET = {str(PKL)!r}, {MODEL!r}, {dataset["id"]!r}
            """, r'''
            import shutil
            properties = importlib.import_module(MOD + ".properties")

            def model_ids():
                return [item[0] for item in properties._model_items]

            def last(level, start):
                return [t for lv, t in messages(level) if t.startswith(start)][-1:]

            def row():
                return s.jobs[s.job_index]

            bpy.ops.wm.save_as_mainfile(filepath=os.path.join(PROJECT, "scene.blend"))
            # -- 1. the address as `latent-studio serve` prints it
            emit({"connection": connect(URL + "/api/v1/", TOKEN)})

            # -- 2. the model copied in before the server started; only library models can be deleted
            bpy.ops.latent.refresh_models(rescan=True)
            bridge.pump_until_idle(120)
            listed = MODEL in model_ids()
            s.base_model = "scratch"
            scratch_reason = poll_reason("delete_model")
            s.base_model = MODEL
            model_reason = poll_reason("delete_model")

            # -- 3. a walk from it, then its server copy goes and the frames in Blender stay
            scene = bpy.context.scene
            s.model_source = "BASE"
            scene.frame_start, scene.frame_end = 1, 2
            for frame, seed in ((1, 1), (2, 2)):
                scene.frame_set(frame)
                bpy.ops.latent.add_waypoint(seed=seed)
            bpy.context.view_layer.objects.active = bpy.data.objects["Cube"]
            no_walk = poll_reason("delete_walk")
            bpy.ops.latent.bake_walk()
            bridge.pump_until_idle(240)
            walk_id = s.walk_id
            server_copy = os.path.join(DATA, "walks", walk_id)
            frames = os.path.dirname(bpy.path.abspath(bpy.data.images[s.walk_image].filepath))
            copy_before = os.path.isdir(server_copy)
            bpy.ops.latent.delete_walk()
            bridge.pump_until_idle(60)
            emit({"walk": {"no_walk": no_walk, "id": walk_id, "copy_before": copy_before,
                           "copy_after": os.path.isdir(server_copy), "frames": sorted(os.listdir(frames)),
                           "id_after": s.walk_id, "report": last("INFO", "Deleted walk")}})

            # -- 4. delete the model: gone from the list, the choice falls back to scratch
            bpy.ops.latent.delete_model()
            bridge.pump_until_idle(60)
            emit({"model": {"listed": listed, "scratch_reason": scratch_reason, "reason": model_reason,
                            "after": MODEL in model_ids(), "choice": s.base_model,
                            "files": sorted(os.listdir(os.path.join(DATA, "models"))),
                            "report": last("INFO", "Deleted base model")}})

            # -- 5. copied in again: a plain refresh lists it only after a rescan imported it
            shutil.copy(PKL, os.path.join(DATA, "models"))
            bpy.ops.latent.refresh_models()
            bridge.pump_until_idle(60)
            plain = MODEL in model_ids()
            bpy.ops.latent.refresh_models(rescan=True)
            bridge.pump_until_idle(120)
            emit({"rescan": {"plain": plain, "rescanned": MODEL in model_ids(),
                             "report": last("INFO", "Models folder scanned")}})

            # -- 6. keep the newest 2 snapshots
            no_dataset = poll_reason("delete_dataset")
            s.dataset_id, s.dataset_state, s.resolution, s.base_model, s.model_source = \
                DATASET, "ready", "32", "scratch", "JOB"
            s.preset, s.batch, s.augmentation = "tiny", 4, "off"
            s.job_title, s.steps, s.snapshot_every, s.keep_snapshots = "kept", 20, 5, 2
            bpy.ops.latent.start_training()
            bridge.pump_until_idle(400)
            job_a = row().job_id
            kept = {"state": row().state, "snapshots": [x.step for x in s.snapshots], "estimate": row().estimate,
                    "warning": row().warning}

            # -- 7. a run far too long for a CPU: the estimate warns, once
            s.job_title, s.steps, s.snapshot_every, s.keep_snapshots = "slow", 1000000, 100000, 0
            bpy.ops.latent.start_training()
            warned = pump_until(lambda: row().title == "slow" and row().warning, 300)
            job_b = row().job_id
            pump_until(lambda: False, 6)  # a few more polls: nothing new to announce
            client = bridge.make_client()
            retention = {str(j["id"]): j["keep_snapshots"] for j in client.list_jobs()["jobs"]}
            slow = {"warned": warned, "estimate": row().estimate, "warning": row().warning,
                    "announced": last("WARNING", "Training 'slow'"),
                    "announcements": len([t for lv, t in messages("WARNING") if t.startswith("Training 'slow'")]),
                    "delete_reason": poll_reason("delete_job")}

            # -- 8. the list is stale (it says finished, the server knows better): refused in words
            row().state = "completed"
            bpy.ops.latent.delete_job()
            refused = pump_until(lambda: last("ERROR", "Delete job 'slow'"), 60)
            pump_until(lambda: row().state == "running", 60)  # the refusal refreshed the list
            slow.update(refused=last("ERROR", "Delete job 'slow'"), state_after=row().state,
                        folder_kept=os.path.isdir(os.path.join(DATA, "jobs", job_b)))
            # the dataset a running job trains on: refused in words as well
            bpy.ops.latent.delete_dataset()
            pump_until(lambda: last("ERROR", "Delete dataset"), 60)
            dataset = {"none": no_dataset, "refused": last("ERROR", "Delete dataset"), "id_kept": s.dataset_id}
            bpy.ops.latent.job_action(action="cancel")
            pump_until(lambda: row().state == "cancelled", 300)

            # -- 9. the finished job goes, with its snapshots in the base-model list
            select_job(job_a)
            a_reason = poll_reason("delete_job")
            bpy.ops.latent.refresh_models()
            bridge.pump_until_idle(60)
            a_models_before = [m for m in model_ids() if m.startswith(f"job:{job_a}:")]
            bpy.ops.latent.delete_job()
            pump_until(lambda: job_a not in [x.job_id for x in s.jobs], 60)
            bridge.pump_until_idle(60)
            # -- 10. no job runs on the dataset now: its server copy goes, the scene forgets it
            bpy.ops.latent.delete_dataset()
            bridge.pump_until_idle(60)
            dataset.update(id_after=s.dataset_id, state_after=s.dataset_state,
                           folder_after=os.path.isdir(os.path.join(DATA, "datasets", DATASET)),
                           report=last("INFO", "Deleted dataset"))
            emit({"dataset": dataset})
            emit({"kept": kept, "slow": slow, "retention": retention, "job_a": job_a, "job_b": job_b,
                  "deleted": {"reason": a_reason, "jobs": [x.job_id for x in s.jobs],
                              "models_before": a_models_before,
                              "models_after": [m for m in model_ids() if m.startswith(f"job:{job_a}:")],
                              "selected": row().job_id, "report": last("INFO", "Deleted job")},
                  "errors": [t for lv, t in messages("ERROR")
                             if not t.startswith(("Delete job 'slow'", "Delete dataset"))]})
            '''), home=tmp_path / "home", timeout=900, env={"OMP_NUM_THREADS": "1"}))
    finally:
        stop_server(server.process)

    assert not r["connection"].startswith("Not connected"), r["connection"]
    assert r["connection"].startswith("Server ")
    m = r["model"]
    assert m["listed"] and not m["after"] and m["choice"] == "scratch"
    assert m["scratch_reason"] == "Choose a base model from the server's models folder to delete (Refresh Models)"
    assert m["reason"] is None
    assert m["files"] == [".library-cache.json"]  # the checkpoint, its thumbnail and the .pkl it came from
    assert m["report"] == ["Deleted base model 'network-snapshot' from the server's models folder"]
    w = r["walk"]
    assert w["no_walk"] == "Bake a walk first: this deletes the server's copy of it"
    assert w["id"] and w["copy_before"] and not w["copy_after"] and w["id_after"] == ""
    assert w["frames"] == ["walk_0001.png", "walk_0002.png"]
    assert w["report"] == [f"Deleted walk {w['id']} on the server; its frames in Blender (Latent Walk Scene_001) stay"]
    assert r["rescan"]["plain"] is False and r["rescan"]["rescanned"] is True
    assert r["rescan"]["report"] and r["rescan"]["report"][0].startswith("Models folder scanned: ")
    k = r["kept"]
    assert k["state"] == "completed" and k["snapshots"] == [15, 20]  # the newest 2 of 0, 5, 10, 15, 20
    assert k["estimate"].startswith("about ") and " for " in k["estimate"] and " per snapshot, " in k["estimate"]
    assert k["warning"] == ""
    assert r["retention"] == {r["job_a"]: 2, r["job_b"]: None}
    sl = r["slow"]
    assert sl["warned"] and sl["estimate"].startswith("about ") and sl["estimate"].endswith(" at the end")
    assert sl["warning"].startswith("On this CPU the run needs about ") and sl["warning"].endswith("train on a GPU")
    assert sl["announced"] == [f"Training 'slow': {sl['warning']}"] and sl["announcements"] == 1
    assert sl["delete_reason"] == "Job 'slow' is running: cancel it and wait until it has stopped, then delete it"
    assert sl["refused"] == [f"Delete job 'slow': The server refused: job {r['job_b']} is running: cancel it and wait "
                             "until it has stopped, then delete it. Nothing was deleted."]
    assert sl["state_after"] == "running" and sl["folder_kept"]
    d = r["deleted"]
    assert d["reason"] is None and d["jobs"] == [r["job_b"]] and d["selected"] == r["job_b"]
    assert d["models_before"] and d["models_after"] == []
    assert d["report"] == ["Deleted job 'kept' and its snapshots on the server"]
    assert not (data / "jobs" / r["job_a"]).exists() and (data / "jobs" / r["job_b"]).is_dir()
    ds = r["dataset"]
    assert ds["none"] == "Upload a dataset first: this deletes the server's copy of it"
    assert ds["refused"] == [f"Delete dataset {ds['id_kept']}: The server refused: a training job uses this dataset; "
                             "cannot delete it now. Nothing was deleted; Refresh Jobs to see which jobs are still going."]
    assert ds["id_after"] == "" and ds["state_after"] == "" and not ds["folder_after"]
    assert ds["report"] == [f"Deleted dataset {ds['id_kept']} on the server; the images on this disk stay"]
    assert r["errors"] == []
