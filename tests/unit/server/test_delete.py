"""Deleting jobs (with their runs), walks and models frees their disk, and is refused (409)
while the thing is in use, leaving everything in place."""

from __future__ import annotations

import pytest

from server.jobs import states
from server.jobs import store as job_store
from server.projections import store as projection_store
from server.walks import store as walk_store
from tests.support.jobs import write_tiny_base_model
from tests.support.legacy_fixture import PKL


def _job(api, ready_dataset, **fields) -> dict:
    r = api.post("/jobs", json={"dataset_id": ready_dataset(api), "resolution": 32, **fields})
    assert r.status_code == 201, r.text
    return r.get_json()


def _run_files(api, job: dict):
    """What a worker leaves in jobs/<id>/: a run with a snapshot, and its lock file."""
    run = job_store.run_dir_for(api.state.config.data_dir, job["id"])
    (run / "snapshots").mkdir(parents=True)
    (run / "snapshots" / "network-000000.safetensors").write_bytes(b"x" * 1000)
    (run.parent / "worker.lock").write_text("")
    return run.parent


def _walk(api, checkpoint, state=walk_store.COMPLETED) -> dict:
    walk = walk_store.insert_walk(api.state.db, {"model_id": "m"}, str(checkpoint),
                                  {"frame_start": 0, "frame_end": 1}, 2)
    walk_store.update_walk(api.state.db, walk["id"], state=state)
    folder = walk_store.walk_dir(api.state.config.walks_dir, walk["id"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / walk_store.frame_name(0)).write_bytes(b"png")
    return {**walk, "folder": folder}


def test_a_finished_job_is_deleted_with_its_run(api, ready_dataset):
    job = _job(api, ready_dataset)
    folder = _run_files(api, job)
    assert api.post(f"/jobs/{job['id']}/cancel").status_code == 200  # queued -> cancelled
    r = api.delete(f"/jobs/{job['id']}")
    assert r.status_code == 204 and r.data == b"" and "Content-Type" not in r.headers
    assert not folder.exists()
    assert api.get(f"/jobs/{job['id']}").status_code == 404
    assert job["id"] not in [j["id"] for j in api.get("/jobs").get_json()["jobs"]]
    assert job_store.transitions(api.state.db, job["id"]) == []


@pytest.mark.parametrize("state", [states.QUEUED, states.RUNNING, states.CANCELLING, states.INTERRUPTED])
def test_an_active_job_is_not_deleted(api, ready_dataset, state):
    job = _job(api, ready_dataset)
    folder = _run_files(api, job)
    with job_store.connect(api.state.db) as conn:  # as the scheduler and workers would leave it
        conn.execute("UPDATE jobs SET state=? WHERE id=?", (state, job["id"]))
    r = api.delete(f"/jobs/{job['id']}")
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "job_active"
    assert "cancel it" in r.get_json()["error"]["message"]
    assert folder.is_dir() and api.get(f"/jobs/{job['id']}").status_code == 200


def test_a_job_whose_snapshot_an_active_walk_renders_is_not_deleted(api, ready_dataset):
    job = _job(api, ready_dataset)
    folder = _run_files(api, job)
    api.post(f"/jobs/{job['id']}/cancel")
    walk = _walk(api, folder / "run" / "snapshots" / "network-000000.safetensors", walk_store.RENDERING)
    r = api.delete(f"/jobs/{job['id']}")
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "model_in_use"
    assert folder.is_dir()
    walk_store.update_walk(api.state.db, walk["id"], state=walk_store.COMPLETED)
    assert api.delete(f"/jobs/{job['id']}").status_code == 204 and not folder.exists()


def test_missing_and_huge_ids_are_404(api):
    for path in ("/jobs/999999", "/jobs/99999999999999999999", "/walks/999999", "/walks/99999999999999999999",
                 "/models/nope"):
        r = api.delete(path)
        assert r.status_code == 404 and r.get_json()["error"]["code"].endswith("_not_found"), path


def test_walks_are_deleted_once_finished(api):
    done = _walk(api, "/nowhere.safetensors", walk_store.COMPLETED)
    assert api.delete(f"/walks/{done['id']}").status_code == 204
    assert not done["folder"].exists() and api.get(f"/walks/{done['id']}").status_code == 404
    for state in (walk_store.QUEUED, walk_store.RENDERING):
        busy = _walk(api, "/nowhere.safetensors", state)
        r = api.delete(f"/walks/{busy['id']}")
        assert r.status_code == 409 and r.get_json()["error"]["code"] == "walk_active"
        assert busy["folder"].is_dir()


def test_a_model_is_deleted_with_its_files_and_stays_deleted(api, ready_dataset):
    models = api.state.config.models_dir
    checkpoint = write_tiny_base_model(models / "mine.safetensors")
    (models / "mine.thumb.png").write_bytes(b"png")
    assert "mine" in [m["id"] for m in api.get("/models").get_json()["models"]]
    job = _job(api, ready_dataset, base_model="mine")  # queued: it will start from the model
    r = api.delete("/models/mine")
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "model_in_use" and checkpoint.is_file()
    api.post(f"/jobs/{job['id']}/cancel")
    assert api.delete("/models/mine").status_code == 204
    assert not any(models.glob("mine*"))
    assert "mine" not in [m["id"] for m in api.post("/models/rescan").get_json()["models"]]


def test_an_imported_model_takes_its_pickle_along(api):
    models = api.state.config.models_dir
    (models / "dropped.pkl").write_bytes(PKL.read_bytes())
    imported = [m for m in api.post("/models/rescan").get_json()["models"] if m["kind"] == "imported"]
    assert [m["id"] for m in imported] == ["dropped"]
    assert api.delete("/models/dropped").status_code == 204
    assert not (models / "dropped.pkl").exists()  # else the next scan would import it again
    assert "dropped" not in [m["id"] for m in api.post("/models/rescan").get_json()["models"]]


def test_scratch_and_job_snapshots_are_not_models_to_delete(api):
    r = api.delete("/models/scratch")
    assert r.status_code == 422 and "not a file" in r.get_json()["error"]["message"]


def test_a_model_or_job_snapshot_an_unfinished_projection_uses_is_not_deleted(api, ready_dataset):
    """A queued or running projection holds its checkpoint as a walk does: deleting the model
    (or the job whose snapshot it is) waits until the projection is done or failed."""
    db = api.state.db
    checkpoint = write_tiny_base_model(api.state.config.models_dir / "held.safetensors")
    job = _job(api, ready_dataset)
    folder = _run_files(api, job)
    api.post(f"/jobs/{job['id']}/cancel")
    snapshot = folder / "run" / "snapshots" / "network-000000.safetensors"
    held = [projection_store.insert_projection(db, {"id": "held"}, str(checkpoint), {"steps": 10}, None),
            projection_store.insert_projection(db, {"id": "job"}, str(snapshot), {"steps": 10}, None)]
    for state in (projection_store.QUEUED, projection_store.RUNNING):
        for projection in held:
            projection_store.update_projection(db, projection["id"], state=state)
        r = api.delete("/models/held")
        assert r.status_code == 409 and r.get_json()["error"]["code"] == "model_in_use"
        assert "projection" in r.get_json()["error"]["message"] and checkpoint.is_file()
        r = api.delete(f"/jobs/{job['id']}")
        assert r.status_code == 409 and r.get_json()["error"]["code"] == "model_in_use" and folder.is_dir()
    for projection, end in zip(held, (projection_store.DONE, projection_store.FAILED)):
        projection_store.update_projection(db, projection["id"], state=end)
    assert api.delete("/models/held").status_code == 204 and not checkpoint.exists()
    assert api.delete(f"/jobs/{job['id']}").status_code == 204 and not folder.exists()
