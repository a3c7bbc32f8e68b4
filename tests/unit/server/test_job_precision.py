"""POST /jobs "precision": accepted choices reach the training config; fp16 on a CPU
server and unknown values are refused with 422 and the reason."""

from __future__ import annotations

import pytest

from gan_core import rules
from server.jobs import scheduler, store
from tests.support.http import assert_json_error

TINY_JOB = {"resolution": 32, "preset": "tiny", "batch": 4, "augmentation": "off"}


@pytest.fixture(scope="module")
def dataset_id(api, ready_dataset):
    return ready_dataset(api)


@pytest.mark.parametrize("fields, expected", [({}, "auto"), ({"precision": "bf16"}, "bf16"),
                                              ({"precision": "fp32"}, "fp32")])
def test_precision_reaches_the_training_config(api, dataset_id, fields, expected):
    r = api.post("jobs", json={"dataset_id": dataset_id, **TINY_JOB, **fields})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["precision"] == expected
    job = store.get_job(api.state.db, r.get_json()["id"])
    assert scheduler.training_config(job, "cpu")["precision"] == expected


def test_jobs_without_precision_train_on_the_default(api):
    """Rows written before the option existed carry no precision: the config's default applies."""
    config = scheduler.training_config({"params": {"batch": 4}, "run_dir": "r", "steps": 3}, "cpu")
    assert "precision" not in config


@pytest.mark.parametrize("precision, words", [
    ("fp16", "precision fp16 is not offered on the CPU: without fast fp16 kernels it runs many times slower "
             "than fp32 there; use fp32 or bf16 (or auto)"),
    ("half", "precision must be one of auto, fp32, fp16, bf16"),
    (16, "precision must be one of"),
])
def test_bad_precision_is_refused(api, dataset_id, precision, words):
    assert api.state.device == "cpu"
    before = len(store.list_jobs(api.state.db))
    r = api.post("jobs", json={"dataset_id": dataset_id, **TINY_JOB, "precision": precision})
    assert_json_error(r, 422, "invalid_input", words)
    assert len(store.list_jobs(api.state.db)) == before


def test_openapi_documents_the_choices(api):
    doc = api.get("openapi.json").get_json()
    schema = doc["components"]["schemas"]["JobCreate"]["properties"]["precision"]
    assert schema["enum"] == list(rules.PRECISION_CHOICES) and schema["default"] == "auto"
