"""Jobs against concurrent changes and lost files (issue 12): a job and its dataset cannot be
created and deleted at the same moment (the database decides, not timing); a lost newest
snapshot no longer hides the older ones; resume checks the job's resolution against a
re-prepared dataset; status polls are served from memory yet never stale; messages shown
to clients carry no server paths."""

from __future__ import annotations

import threading

import pytest

from server.datasets import store as dataset_store
from server.jobs import store
from tests.support.http import assert_json_error
from tests.support.run_folders import run_folder

TINY_JOB = {"resolution": 32, "preset": "tiny", "batch": 4, "augmentation": "off"}


def finished_job(api, dataset_id: str, step: int, snapshots=(), resolution: int | None = 32, state="completed") -> dict:
    db = api.state.db
    job = store.insert_job(db, title="done", dataset_id=dataset_id, base_model="scratch",
                           params={**TINY_JOB, "resolution": resolution, "data": "x.zip"}, steps=step,
                           run_dir_for=lambda i: store.run_dir_for(api.state.config.data_dir, i))
    if snapshots:
        run_folder(api.state.config.jobs_dir, job["id"], steps=step, snapshot_steps=list(snapshots))
    store.claim_queued(db, job["id"], 1)
    store.update_progress(db, job["id"], 1, {"step": step})
    return store.transition(db, job["id"], state, "test")


def dataset_exists(api, dataset_id: str) -> bool:
    return dataset_store.get_dataset(api.state.db, dataset_id) is not None


# --- the job/dataset race, each interleaving forced -------------------------------------------

def test_a_delete_between_the_jobs_check_and_its_insert_wins(api, ready_dataset, monkeypatch):
    import server.jobs.routes as routes

    dataset_id = ready_dataset(api)
    real = routes._base_model_path
    deleted = []

    def delete_first(state, base_model):  # runs after the route checked the dataset, before the insert
        deleted.append(api.delete(f"datasets/{dataset_id}").status_code)
        return real(state, base_model)

    monkeypatch.setattr(routes, "_base_model_path", delete_first)
    r = api.post("jobs", json={"dataset_id": dataset_id, **TINY_JOB})
    assert deleted == [204]
    assert_json_error(r, 422, "unknown_dataset")
    assert not any(j["dataset_id"] == dataset_id for j in api.get("jobs").get_json()["jobs"])


def test_a_job_created_between_the_deletes_check_and_the_delete_wins(api, ready_dataset, monkeypatch):
    import server.datasets.routes as routes

    dataset_id = ready_dataset(api)
    created = []

    def stale_check(db, which):  # the check ran before the job existed; the job is created right after
        created.append(api.post("jobs", json={"dataset_id": dataset_id, **TINY_JOB}).status_code)
        return False

    monkeypatch.setattr(routes, "dataset_in_use", stale_check)
    assert_json_error(api.delete(f"datasets/{dataset_id}"), 409, "dataset_in_use")
    assert created == [201] and dataset_exists(api, dataset_id)


def test_a_reprepare_racing_a_new_job_is_refused_by_the_database(api, ready_dataset, monkeypatch):
    import server.datasets.routes as routes

    dataset_id = ready_dataset(api)

    def stale_check(db, which):
        assert api.post("jobs", json={"dataset_id": dataset_id, **TINY_JOB}).status_code == 201
        return False

    monkeypatch.setattr(routes, "dataset_in_use", stale_check)
    assert_json_error(api.post(f"datasets/{dataset_id}/prepare", json={"resolution": 32}), 409, "dataset_in_use")
    assert dataset_store.get_dataset(api.state.db, dataset_id)["state"] == "ready"


def test_a_delete_between_the_resumes_check_and_the_requeue_wins(api, ready_dataset, monkeypatch):
    import server.jobs.routes as routes

    dataset_id = ready_dataset(api)
    job = finished_job(api, dataset_id, step=2)

    def delete_first(state, which):  # the route's file check has passed; then the delete comes in
        assert api.delete(f"datasets/{dataset_id}").status_code == 204  # a finished job does not hold it

    monkeypatch.setattr(routes, "_dataset_zip", delete_first)
    assert_json_error(api.post(f"jobs/{job['id']}/resume", json={"steps": 4}), 409, "dataset_gone")
    assert api.get(f"jobs/{job['id']}").get_json()["state"] == "completed"


def test_creating_a_job_and_deleting_its_dataset_at_once_never_both_succeed(api, ready_dataset):
    outcomes = []
    for _ in range(6):
        dataset_id = ready_dataset(api)
        start = threading.Barrier(2)
        results = {}

        def create():
            client = api.app.test_client()
            start.wait()
            results["create"] = client.post("/api/v1/jobs", json={"dataset_id": dataset_id, **TINY_JOB},
                                            headers={"Authorization": f"Bearer {api.state.token}"}).status_code

        def delete():
            client = api.app.test_client()
            start.wait()
            results["delete"] = client.delete(f"/api/v1/datasets/{dataset_id}",
                                              headers={"Authorization": f"Bearer {api.state.token}"}).status_code

        threads = [threading.Thread(target=create), threading.Thread(target=delete)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        outcomes.append((results["create"], results["delete"]))
        assert not (results["create"] == 201 and results["delete"] == 204), outcomes
        assert (results["create"] == 201) == dataset_exists(api, dataset_id), outcomes
    # Every job that exists has its dataset.
    for job in api.get("jobs").get_json()["jobs"]:
        if job["state"] == "queued":
            assert dataset_exists(api, job["dataset_id"])


# --- snapshots whose files are gone ------------------------------------------------------------

def test_a_lost_newest_snapshot_falls_back_to_the_previous_one(api, ready_dataset):
    job = finished_job(api, ready_dataset(api), step=4, snapshots=(0, 2, 4))
    run_dir = job["run_dir"]
    from gan_core.train.snapshots import snapshot_files

    snapshot_files(run_dir, 4)["network"].unlink()  # e.g. deleted by hand to free space
    snaps = api.get(f"jobs/{job['id']}/snapshots").get_json()["snapshots"]
    assert [s["step"] for s in snaps] == [0, 2]
    r = api.post("generate", json={"model": {"job_id": job["id"]}, "seeds": [1]})
    assert r.status_code == 200 and r.mimetype == "image/png", r.get_data(as_text=True)
    assert api.post("generate", json={"model": {"model_id": f"job:{job['id']}"}, "seeds": [1]}).status_code == 200
    assert_json_error(api.post("generate", json={"model": {"job_id": job["id"], "step": 4}, "seeds": [1]}),
                      404, "snapshot_not_found")
    models = {m["id"] for m in api.get("models").get_json()["models"]}
    assert f"job:{job['id']}:2" in models and f"job:{job['id']}:4" not in models


# --- resume against a re-prepared dataset --------------------------------------------------------

@pytest.mark.parametrize("asked", [32, None], ids=["asked-at-creation", "from-the-snapshot"])
def test_resume_refuses_a_dataset_re_prepared_at_another_resolution(api, ready_dataset, asked):
    dataset_id = ready_dataset(api, resolution=64)  # re-prepared at 64 since the job trained at 32
    job = finished_job(api, dataset_id, step=2, snapshots=(0, 2), resolution=asked)
    r = api.post(f"jobs/{job['id']}/resume", json={"steps": 4})
    assert_json_error(r, 409, "dataset_not_ready", "prepare it at 32 again")
    assert api.get(f"jobs/{job['id']}").get_json()["state"] == "completed"


def test_resume_on_a_dataset_of_the_same_resolution_is_accepted(api, ready_dataset):
    job = finished_job(api, ready_dataset(api, resolution=32), step=2, snapshots=(0, 2), resolution=None)
    assert api.post(f"jobs/{job['id']}/resume", json={"steps": 4}).status_code == 202


# --- status polls from memory --------------------------------------------------------------------

def test_status_polls_read_the_database_only_when_it_changed(api, ready_dataset, monkeypatch):
    import server.jobs.status as status

    job = finished_job(api, ready_dataset(api), step=2, state="failed")
    reads = []
    real = status.read_job
    monkeypatch.setattr(status, "read_job", lambda conn, job_id: reads.append(job_id) or real(conn, job_id))
    bodies = [api.get(f"jobs/{job['id']}").get_json() for _ in range(50)]
    assert len(reads) == 1 and all(b == bodies[0] for b in bodies)
    # Another connection (a worker, the scheduler) commits: the next poll shows it.
    store.transition(api.state.db, job["id"], "queued", "resumed by a test", steps=9)
    fresh = api.get(f"jobs/{job['id']}").get_json()
    assert (fresh["state"], fresh["steps"]) == ("queued", 9) and fresh["history"][-1]["to_state"] == "queued"
    assert len(reads) == 2


# --- no server paths in what clients see ------------------------------------------------------

def test_messages_shown_to_clients_carry_no_server_paths(api, ready_dataset):
    data_dir = str(api.state.config.data_dir)
    job = store.insert_job(api.state.db, title="t", dataset_id=ready_dataset(api), base_model="scratch", params={},
                           steps=5, run_dir_for=lambda i: store.run_dir_for(data_dir, i))
    store.claim_queued(api.state.db, job["id"], 1)
    store.update_progress(api.state.db, job["id"], 1, {
        "error": f"DatasetError: cannot read {data_dir}/datasets/abc/dataset.zip (also /usr/lib/x/y.so)"})
    body = api.get(f"jobs/{job['id']}").get_json()
    assert data_dir not in body["error"] and "/usr/lib" not in body["error"]
    assert "datasets/abc/dataset.zip" in body["error"] and "y.so" in body["error"]
    assert data_dir not in api.get("jobs").get_data(as_text=True)

    dataset_id = dataset_store.new_dataset_id()
    dataset_store.insert_dataset(api.state.db, dataset_id, "bad", 1, 1)
    dataset_store.mark_failed(api.state.db, dataset_id, f"no images found in {data_dir}/datasets/{dataset_id}/work/source")
    shown = api.get(f"datasets/{dataset_id}").get_json()["error"]
    assert data_dir not in shown and "work/source" in shown
