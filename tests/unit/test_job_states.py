"""The job state machine, the SQLite job store and the scheduler's bookkeeping."""

from __future__ import annotations

import itertools
import time

import pytest

from server.db import Database
from server.jobs import scheduler, states, store, worker

# Written out by hand (not derived from states.TRANSITIONS) so a change to the table
# that nobody meant shows up here.
LEGAL = {
    ("queued", "running"), ("queued", "cancelled"),
    ("running", "completed"), ("running", "cancelling"), ("running", "cancelled"),
    ("running", "failed"), ("running", "interrupted"),
    ("cancelling", "cancelled"), ("cancelling", "completed"), ("cancelling", "failed"),
    ("cancelling", "interrupted"),
    ("interrupted", "queued"),
    ("completed", "queued"), ("cancelled", "queued"), ("failed", "queued"),
}


@pytest.mark.parametrize("current,target", list(itertools.product(states.ALL_STATES, repeat=2)))
def test_every_edge_is_legal_exactly_when_listed(current, target):
    if (current, target) in LEGAL:
        states.check_transition(current, target)
    else:
        with pytest.raises(states.IllegalTransition, match=f"'{current}' cannot become '{target}'"):
            states.check_transition(current, target)


def test_unknown_states_are_rejected():
    with pytest.raises(ValueError, match="unknown job state"):
        states.check_transition("running", "exploded")
    with pytest.raises(ValueError, match="unknown job state"):
        states.check_transition("paused", "running")


def test_illegal_transition_becomes_http_409():
    err = states.to_api_error(states.IllegalTransition("completed", "cancelling"))
    assert err.status == 409 and err.code == "illegal_state_transition"
    assert "completed" in err.message


@pytest.fixture()
def db(tmp_path):
    database = Database(tmp_path / "test.sqlite3")
    store.create_tables(database)
    return database


def _job(db, tmp_path, dataset_id="abc123abc123", steps=10):
    return store.insert_job(db, title="t", dataset_id=dataset_id, base_model="scratch",
                            params={"batch": 2, "data": str(tmp_path / "missing.zip")}, steps=steps,
                            run_dir_for=lambda i: store.run_dir_for(tmp_path, i))


def test_insert_and_transitions_are_recorded(db, tmp_path):
    job = _job(db, tmp_path)
    assert job["state"] == "queued" and job["run_dir"].endswith(f"jobs/{job['id']}/run")
    job = store.claim_queued(db, job["id"], 1)
    assert (job["state"], job["attempt"]) == ("running", 1)
    store.transition(db, job["id"], "cancelling", "user")
    store.transition(db, job["id"], "cancelled", "worker exited")
    trail = [(t["from_state"], t["to_state"]) for t in store.transitions(db, job["id"])]
    assert trail == [(None, "queued"), ("queued", "running"), ("running", "cancelling"), ("cancelling", "cancelled")]


def test_illegal_transition_changes_nothing(db, tmp_path):
    job = _job(db, tmp_path)
    with pytest.raises(states.IllegalTransition):
        store.transition(db, job["id"], "completed", "nope", step=99)
    again = store.get_job(db, job["id"])
    assert again["state"] == "queued" and again["step"] == 0
    assert len(store.transitions(db, job["id"])) == 1


def test_transition_of_missing_job_is_keyerror(db):
    with pytest.raises(KeyError):
        store.transition(db, 12345, "running", "x")


def test_claim_only_from_queued(db, tmp_path):
    job = _job(db, tmp_path)
    store.transition(db, job["id"], "cancelled", "user")
    with pytest.raises(states.IllegalTransition):
        store.claim_queued(db, job["id"], 1)


def test_stale_attempt_cannot_write(db, tmp_path):
    job = _job(db, tmp_path)
    store.claim_queued(db, job["id"], 1)
    assert store.update_progress(db, job["id"], 1, {"step": 3, "losses": {"G": 1.5}})
    # The server restarts: attempt 1 is recovered and attempt 2 takes over.
    scheduler.recover(db)
    store.claim_queued(db, job["id"], 2)
    assert not store.update_progress(db, job["id"], 1, {"step": 999})
    assert store.beat(db, job["id"], 1) is None
    with pytest.raises(states.IllegalTransition):
        store.transition(db, job["id"], "completed", "old worker", for_attempt=1)
    row = store.get_job(db, job["id"])
    assert (row["state"], row["step"], row["losses"]) == ("running", 3, {"G": 1.5})


def test_update_progress_rejects_other_columns(db, tmp_path):
    job = _job(db, tmp_path)
    with pytest.raises(ValueError, match="not progress columns"):
        store.update_progress(db, job["id"], 0, {"state": "completed"})


def test_recover_requeues_running_and_interrupted_jobs(db, tmp_path):
    a, b, c, d, e = (_job(db, tmp_path) for _ in range(5))
    for job in (a, b, c, e):
        store.claim_queued(db, job["id"], 1)
    store.transition(db, b["id"], "cancelling", "user")
    store.transition(db, c["id"], "completed", "done")
    store.transition(db, e["id"], "interrupted", "clean server stop")
    assert sorted(scheduler.recover(db)) == [a["id"], e["id"]]
    # A job being cancelled when the server died is not restarted: the cancel is finished.
    assert [store.get_job(db, j["id"])["state"] for j in (a, b, c, d, e)] == [
        "queued", "cancelled", "completed", "queued", "queued"]
    trail = [(t["from_state"], t["to_state"]) for t in store.transitions(db, a["id"])]
    assert trail[-2:] == [("running", "interrupted"), ("interrupted", "queued")]


def test_fifo_order_uses_queue_time(db, tmp_path):
    first, second = _job(db, tmp_path), _job(db, tmp_path)
    assert store.next_queued(db)["id"] == first["id"]
    store.claim_queued(db, first["id"], 1)
    store.transition(db, first["id"], "completed", "done")
    time.sleep(0.01)
    store.transition(db, first["id"], "queued", "resume")  # back of the queue
    assert store.next_queued(db)["id"] == second["id"]


def test_dataset_in_use_only_for_active_jobs(db, tmp_path):
    job = _job(db, tmp_path, dataset_id="d1d1d1d1d1d1")
    assert store.dataset_in_use(db, "d1d1d1d1d1d1")
    assert not store.dataset_in_use(db, "other0000000")
    store.transition(db, job["id"], "cancelled", "user")
    assert not store.dataset_in_use(db, "d1d1d1d1d1d1")


def test_dataset_in_use_before_tables_exist(tmp_path):
    assert store.dataset_in_use(Database(tmp_path / "empty.sqlite3"), "x") is False


def test_parse_job_model_id():
    assert store.parse_job_model_id("job:7:120") == (7, 120)
    assert store.parse_job_model_id("job:7") == (7, None)
    for bad in ("job:x:1", "jab:1:2", "job:1:2:3", "job:"):
        with pytest.raises(ValueError):
            store.parse_job_model_id(bad)


def test_exit_codes_map_to_states():
    assert scheduler.exit_outcome(worker.EXIT_COMPLETED)[0] == "completed"
    assert scheduler.exit_outcome(worker.EXIT_CANCELLED)[0] == "cancelled"
    assert scheduler.exit_outcome(worker.EXIT_ORPHANED)[0] == "interrupted"
    assert scheduler.exit_outcome(1) == ("failed", "worker process exited with code 1")
    assert scheduler.exit_outcome(-9) == ("failed", "worker process killed by signal 9")


def test_progress_throttles_but_always_records_snapshots(db, tmp_path):
    job = _job(db, tmp_path)
    store.claim_queued(db, job["id"], 1)
    progress = worker._Progress(str(db.path), job["id"], 1)
    progress({"event": "progress", "step": 1, "kimg": 0.002, "losses": {"G": 1.0}, "r1": 0.1})
    progress({"event": "progress", "step": 2, "kimg": 0.004})  # within the throttle window
    row = store.get_job(db, job["id"])
    assert row["step"] == 1 and row["losses"] == {"G": 1.0, "r1": 0.1}
    progress({"event": "progress", "step": 3, "losses": {"G": 0.5}})  # throttled too...
    progress({"event": "snapshot", "step": 3, "grid": "/x/grid-000003.png"})
    row = store.get_job(db, job["id"])
    # ...but not lost: it went out with the snapshot.
    assert row["step"] == 3 and row["latest_grid"] == "/x/grid-000003.png"
    assert row["losses"] == {"G": 0.5} and row["kimg"] == 0.004


def test_worker_failure_is_recorded_with_its_message(db, tmp_path):
    """A real spawned worker whose training cannot start: the job fails with the reason."""
    job = _job(db, tmp_path, steps=4)
    sched = scheduler.Scheduler(db, tmp_path / "jobs", workers=1, device="cpu")
    sched.tick()
    assert store.get_job(db, job["id"])["state"] == "running"
    deadline = time.monotonic() + 120
    while sched.running_job_ids() and time.monotonic() < deadline:
        time.sleep(0.3)
        sched.tick()
    row = store.get_job(db, job["id"])
    assert row["state"] == "failed", row
    assert "missing.zip" in row["error"], row["error"]
    assert row["pid"] is None


def test_worker_watcher_stop_reasons(db, tmp_path):
    """The worker stops for: a cancel (DB or flag file), a clean server stop, a dead parent."""
    job = _job(db, tmp_path)
    store.claim_queued(db, job["id"], 1)
    flag = tmp_path / "job" / "cancel.flag"
    flag.parent.mkdir()

    def watcher(parent=None):
        return worker._Watcher(str(db.path), job["id"], 1, parent or __import__("os").getppid(), flag)

    w = watcher()
    w.check_once()
    assert not w.stop.is_set() and store.get_job(db, job["id"])["heartbeat"] is not None
    flag.parent.joinpath("stop.flag").touch()
    w.check_once()
    assert w.stop.is_set() and w.reason == "server_stopping"
    flag.parent.joinpath("stop.flag").unlink()

    flag.touch()
    w = watcher()
    w.check_once()
    assert w.reason == "cancel"
    flag.unlink()

    store.transition(db, job["id"], "cancelling", "user")
    w = watcher()
    w.check_once()
    assert w.reason == "cancel"

    # The process that started us is gone (we were re-parented): stop, whatever the DB says.
    w = watcher(parent=999999)
    w.check_once()
    assert w.reason == "orphaned"


def test_worker_slots_get_one_gpu_each():
    assert scheduler.slot_devices("cuda:0", "auto", 2, gpu_count=2) == ["cuda:0", "cuda:1"]
    assert scheduler.slot_devices("cuda:0", "cuda", 3, gpu_count=2) == ["cuda:0", "cuda:1", "cuda:0"]
    assert scheduler.slot_devices("cuda:1", "cuda:1", 2, gpu_count=2) == ["cuda:1", "cuda:1"]
    assert scheduler.slot_devices("cpu", "auto", 2, gpu_count=0) == ["cpu", "cpu"]
    assert scheduler.slot_devices("cuda:0", "auto", 1, gpu_count=1) == ["cuda:0"]
