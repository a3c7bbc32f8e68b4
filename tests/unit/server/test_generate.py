"""POST /generate in-process, from a real tiny checkpoint in the models folder: every refusal
(status, code and message), determinism, psi, the zip layout; and the model cache.
Generation from a job snapshot is covered over real HTTP in tests/e2e/test_jobs_api.py."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from gan_core import rules
from server.generation.model_cache import ModelCache
from tests.support.http import assert_json_error
from tests.support.inprocess import add_tiny_model
from tests.support.jobs import write_tiny_base_model

MODEL = {"model_id": "tinybase"}


@pytest.fixture(scope="module")
def server(api):
    return add_tiny_model(api)


def _img(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


@pytest.mark.parametrize("body, status, code, words", [
    ({"model": MODEL}, 422, "invalid_input", "seeds is required"),
    ({"model": MODEL, "seeds": []}, 422, "invalid_input", "seeds: no seeds given"),
    ({"model": MODEL, "seeds": list(range(rules.SEEDS_PER_REQUEST + 1))}, 422, "invalid_input",
     f"at most {rules.SEEDS_PER_REQUEST} per request"),
    ({"model": MODEL, "seeds": f"0-{rules.SEEDS_PER_REQUEST}"}, 422, "invalid_input", f"at most {rules.SEEDS_PER_REQUEST} per request"),
    ({"model": MODEL, "seeds": [-1]}, 422, "invalid_input", "seeds: seed -1 is out of range"),
    ({"model": MODEL, "seeds": [2 ** 32]}, 422, "invalid_input", "seeds go from 0 to 4294967295"),
    ({"model": MODEL, "seeds": [True]}, 422, "invalid_input", "seeds: a seed must be a whole number"),
    ({"model": MODEL, "seeds": "a-b"}, 422, "invalid_input", "seeds: not a seed number"),
    ({"model": MODEL, "seeds": 1.5}, 422, "invalid_input", "seeds: seeds must be text"),
    ({"model": MODEL, "seeds": [1], "psi": "high"}, 422, "invalid_input", "psi must be a number"),
    ({"model": MODEL, "seeds": [1], "psi": 5}, 422, "invalid_input", "psi 5 is out of range: use -2.0 to 2.0"),
    ({"model": MODEL, "seeds": [1], "noise_mode": "loud"}, 422, "invalid_input", "noise_mode must be one of const, random, none"),
    ({"model": MODEL, "seeds": [1], "colour": "red"}, 422, "invalid_input", "unknown field(s): colour"),
    ({"seeds": [1]}, 422, "invalid_input", "model is required"),
    ({"model": "tinybase", "seeds": [1]}, 422, "invalid_input", "model must be an object"),
    ({"model": {}, "seeds": [1]}, 422, "invalid_input", "model needs either job_id"),
    ({"model": {"job_id": 1, "model_id": "x"}, "seeds": [1]}, 422, "invalid_input", "model needs either job_id"),
    ({"model": {"model_id": "x", "step": 1}, "seeds": [1]}, 422, "invalid_input", "model.step goes with job_id"),
    ({"model": {"job_id": "3"}, "seeds": [1]}, 422, "invalid_input", "model: job_id must be a whole number"),
    ({"model": {"job_id": 3, "step": -1}, "seeds": [1]}, 422, "invalid_input", "model: step must be a whole number"),
    ({"model": {"model_id": "x", "path": "/etc"}, "seeds": [1]}, 422, "invalid_input", "unknown field(s) in model: path"),
    ({"model": {"model_id": "scratch"}, "seeds": [1]}, 422, "invalid_input", "untrained network"),
    ({"model": {"model_id": "job:x:1"}, "seeds": [1]}, 422, "invalid_input", "not a job model id"),
    ({"model": {"model_id": "nope"}, "seeds": [1]}, 404, "model_not_found", "no model with id 'nope'"),
    ({"model": {"job_id": 4242}, "seeds": [1]}, 404, "job_not_found", "no job with id 4242"),
    ({"model": {"model_id": "job:4242:1"}, "seeds": [1]}, 404, "job_not_found", "no job with id 4242"),
])
def test_generate_refusals(server, body, status, code, words):
    assert_json_error(server.post("generate", json=body), status, code, words)


@pytest.mark.parametrize("data, words", [(b"nope", "must be JSON"), (b"", "must be JSON"), (b"[1]", "must be an object")])
def test_generate_body_that_is_not_a_json_object_is_400(server, data, words):
    assert_json_error(server.post("generate", data=data, content_type="application/json"), 400, "bad_request", words)


def test_generate_one_seed_is_a_deterministic_png(server):
    a = server.post("generate", json={"model": MODEL, "seeds": [3], "psi": 0.7})
    assert a.status_code == 200 and a.headers["Content-Type"] == "image/png"
    assert _img(a.data).shape == (32, 32, 3)
    b = server.post("generate", json={"model": MODEL, "seeds": 3, "psi": 0.7, "noise_mode": "const"})
    assert a.data == b.data
    assert server.post("generate", json={"model": MODEL, "seeds": [4], "psi": 0.7}).data != a.data


def test_generate_several_seeds_is_a_zip_and_psi_matters(server):
    r = server.post("generate", json={"model": MODEL, "seeds": "0-2", "psi": 1.0})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(r.data))
    assert zf.namelist() == ["seed0000.png", "seed0001.png", "seed0002.png"]
    single = _img(server.post("generate", json={"model": MODEL, "seeds": [1]}).data)
    # Batched and single runs may differ in the last float bit, not more.
    assert np.abs(_img(zf.read("seed0001.png")) - single).max() <= 2
    # psi=0 collapses every seed to the average latent: the images match; psi=1 keeps them apart.
    zero = zipfile.ZipFile(io.BytesIO(server.post("generate", json={"model": MODEL, "seeds": [1, 2], "psi": 0}).data))
    assert np.abs(_img(zero.read("seed0001.png")) - _img(zero.read("seed0002.png"))).max() <= 2
    assert np.abs(_img(zf.read("seed0001.png")) - _img(zf.read("seed0002.png"))).max() > 10


def test_model_cache_loads_once_and_reloads_a_changed_file(tmp_path):
    a = write_tiny_base_model(tmp_path / "a.safetensors")
    b = write_tiny_base_model(tmp_path / "b.safetensors")
    cache = ModelCache(capacity=1, device="cpu")
    first = cache.get(a)
    assert cache.get(a) is first and cache.loads == 1
    assert first.generate(seeds=[0]).shape == (1, 32, 32, 3)
    st = os.stat(a)
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the snapshot was rewritten
    assert cache.get(a) is not first and cache.loads == 2
    cache.get(b)  # capacity 1: evicts a
    assert len(cache) == 1
    cache.get(a)
    assert cache.loads == 4
