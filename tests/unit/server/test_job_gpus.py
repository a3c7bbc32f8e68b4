"""POST /jobs "gpus": training processes per job. Accepted values reach the job; more than the
server has, a batch they cannot share, or a bad value is refused with 422 and nothing is
queued. The scheduler's device accounting (which job may start on which GPUs) is checked
on its own, without GPUs: it only counts device names."""

from __future__ import annotations

import pytest

from gan_core import rules
from server.jobs import launch, scheduler, store
from tests.support.http import assert_json_error

TINY_JOB = {"resolution": 32, "preset": "tiny", "batch": 4, "augmentation": "off"}


@pytest.fixture(scope="module")
def dataset_id(api, ready_dataset):
    return ready_dataset(api)


@pytest.mark.parametrize("fields, expected", [({}, 1), ({"gpus": 2}, 2), ({"gpus": "all"}, "all")])
def test_gpus_reaches_the_job(api, dataset_id, fields, expected):
    r = api.post("jobs", json={"dataset_id": dataset_id, **TINY_JOB, **fields})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["gpus"] == expected
    assert store.get_job(api.state.db, r.get_json()["id"])["params"]["gpus"] == expected
    assert api.get(f"jobs/{r.get_json()['id']}").get_json()["gpus"] == expected


@pytest.mark.parametrize("fields, words", [
    ({"gpus": 0}, "gpus must be a whole number from 1 to 64 or 'all', got 0"),
    ({"gpus": "two"}, "gpus must be a whole number from 1 to 64 or 'all'"),
    ({"gpus": True}, "gpus must be a whole number"),
    ({"gpus": 2, "batch": 12}, "batch per GPU (6) must be a multiple of 4"),
    ({"gpus": 2, "batch": 5}, "batch 5 cannot be split evenly over 2 GPUs (training processes)"),
    ({"gpus": 64, "batch": 64}, "this server trains on the CPU, where gpus is the number of training processes"),
])
def test_bad_gpus_are_refused_and_nothing_is_queued(api, dataset_id, fields, words):
    before = len(store.list_jobs(api.state.db))
    r = api.post("jobs", json={"dataset_id": dataset_id, **TINY_JOB, **fields})
    assert_json_error(r, 422, "invalid_input", words)
    assert len(store.list_jobs(api.state.db)) == before


def test_openapi_documents_gpus(api):
    doc = api.get("openapi.json").get_json()
    schema = doc["components"]["schemas"]["JobCreate"]["properties"]["gpus"]
    assert {"type": "string", "enum": ["all"]} in schema["anyOf"]
    assert {"type": "integer", "minimum": 1, "maximum": rules.MAX_TRAIN_PROCESSES} in schema["anyOf"]


def test_processes_against_a_cuda_server():
    pool = scheduler.gpu_pool("cuda:0", "auto", gpu_count=4)
    assert pool == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert scheduler.gpu_pool("cuda:1", "cuda:1", gpu_count=4) == ["cuda:1"]
    assert scheduler.gpu_pool("cpu", "auto", gpu_count=0) == []
    assert scheduler.check_job_processes("all", 16, pool) == 4
    assert scheduler.check_job_processes(2, 16, pool) == 2
    with pytest.raises(ValueError, match=r"this server was given 4 GPUs \(cuda:0, cuda:1, cuda:2, cuda:3\); ask for at most 4"):
        scheduler.check_job_processes(5, 20, pool)
    assert scheduler.check_job_processes("all", 4, [], cores=8) == 1  # a CPU server: one process
    assert scheduler.check_job_processes(8, 32, [], cores=8) == 8


def _job(job_id: int, gpus) -> dict:
    return {"id": job_id, "params": {"gpus": gpus}}


def _occupy(sched: scheduler.Scheduler, job_id: int, placement) -> None:
    """Record a placement as _launch does once the process has started."""
    slot, devices = placement
    sched._slot_of[job_id] = slot
    if len(devices) > 1 and sched.gpus:
        sched._held[job_id] = tuple(devices)


def test_multi_gpu_jobs_never_share_a_gpu(tmp_path):
    sched = scheduler.Scheduler(None, tmp_path, devices=["cuda:0", "cuda:1", "cuda:2"],
                                gpus=["cuda:0", "cuda:1", "cuda:2", "cuda:3"])
    single = sched._place(_job(1, 1))
    assert single == (0, ["cuda:0"])
    _occupy(sched, 1, single)
    pair = sched._place(_job(2, 2))
    assert pair == (1, ["cuda:1", "cuda:2"])  # not cuda:0: the single job trains there
    _occupy(sched, 2, pair)
    assert sched._place(_job(3, 2)) is None  # only cuda:3 is free: the job waits
    assert sched._place(_job(3, "all")) is None
    # a one-GPU job may not start on a GPU the pair holds (slots 1 and 2 are cuda:1, cuda:2)
    assert sched._place(_job(4, 1)) is None
    del sched._slot_of[2], sched._held[2]  # the pair finished
    assert sched._place(_job(3, 2)) == (1, ["cuda:1", "cuda:2"])
    assert sched._place(_job(5, "all")) is None  # cuda:0 is still taken by the single job


def test_cpu_jobs_count_processes_not_devices(tmp_path):
    sched = scheduler.Scheduler(None, tmp_path, devices=["cpu", "cpu"], gpus=[])
    first = sched._place(_job(1, 2))
    assert first == (0, ["cpu", "cpu"])
    _occupy(sched, 1, first)
    assert sched._place(_job(2, 1)) == (1, ["cpu"])


def test_a_multi_gpu_job_sees_only_its_own_gpus():
    assert launch.visible_devices(["cuda:1", "cuda:3"], environ={}) == "1,3"
    # a server limited to some GPUs numbers them from 0: its cuda:1 is the second of those
    assert launch.visible_devices(["cuda:0", "cuda:1"], environ={"CUDA_VISIBLE_DEVICES": "4,6"}) == "4,6"
    assert launch.visible_devices(["cuda:1"], environ={"CUDA_VISIBLE_DEVICES": "4,6"}) == "6"


def test_the_outcome_of_a_multi_process_job_belongs_to_its_attempt(tmp_path):
    assert launch.read_outcome(tmp_path, 2) is None
    launch.write_outcome(tmp_path, 2, 3)
    assert launch.read_outcome(tmp_path, 2) == 3
    launch.outcome_path(tmp_path, 2).rename(launch.outcome_path(tmp_path, 4))
    assert launch.read_outcome(tmp_path, 4) is None  # written for attempt 2: not this attempt's
