"""Generation and latent walks over real HTTP, from a base model in the models folder.

The base model is a real checkpoint of a tiny 32x32 generator (untrained weights are fine
for checking the plumbing: determinism, psi, zip layout, walk frames). Generation from a
job snapshot is covered in test_jobs_api.py.
"""

from __future__ import annotations

import io
import os
import time
import zipfile

import numpy as np
import pytest
import requests
import torch
from PIL import Image

from gan_core.models.checkpoint import save_network
from gan_core.nn.networks import build_generator, preset_kwargs
from server.generation.model_cache import ModelCache

from .jobs_support import api_get, api_post

pytestmark = [pytest.mark.e2e]
MODEL = {"model_id": "tinybase"}


def _write_base_model(path):
    torch.manual_seed(0)
    G = build_generator(preset_kwargs(32, "tiny")["G"])
    save_network(path, G.eval(), meta={"name": "tiny base"})
    return path


@pytest.fixture(scope="module")
def server(live_server):
    _write_base_model(live_server.data_dir / "models" / "tinybase.safetensors")
    r = api_post(live_server, "/models/rescan")
    assert r.status_code == 200 and "tinybase" in {m["id"] for m in r.json()["models"]}, r.text
    return live_server


def _img(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def _error(r, status, code=None):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")
    err = r.json()["error"]
    assert err["message"]
    if code:
        assert err["code"] == code, err


def test_generate_one_seed_is_a_deterministic_png(server):
    a = api_post(server, "/generate", json={"model": MODEL, "seeds": [3], "psi": 0.7})
    assert a.status_code == 200 and a.headers["Content-Type"] == "image/png", a.text
    assert _img(a.content).shape == (32, 32, 3)
    b = api_post(server, "/generate", json={"model": MODEL, "seeds": [3], "psi": 0.7, "noise_mode": "const"})
    assert a.content == b.content
    other = api_post(server, "/generate", json={"model": MODEL, "seeds": [4], "psi": 0.7})
    assert other.content != a.content


def test_generate_several_seeds_is_a_zip_and_psi_matters(server):
    r = api_post(server, "/generate", json={"model": MODEL, "seeds": "0-2", "psi": 1.0})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip", r.text
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    assert zf.namelist() == ["seed0000.png", "seed0001.png", "seed0002.png"]
    single = _img(api_post(server, "/generate", json={"model": MODEL, "seeds": [1]}).content)
    # Batched and single runs may differ in the last float bit, not more.
    assert np.abs(_img(zf.read("seed0001.png")) - single).max() <= 2
    # psi=0 collapses every seed to the average latent: the images match; psi=1 keeps them apart.
    zero = zipfile.ZipFile(io.BytesIO(api_post(server, "/generate", json={"model": MODEL, "seeds": [1, 2], "psi": 0}).content))
    assert np.abs(_img(zero.read("seed0001.png")) - _img(zero.read("seed0002.png"))).max() <= 2
    assert np.abs(_img(zf.read("seed0001.png")) - _img(zf.read("seed0002.png"))).max() > 10


def test_generate_bad_input_is_json_error(server):
    h = {**server.headers, "Content-Type": "application/json"}
    _error(requests.post(server.api("/generate"), data="nope", headers=h, timeout=10), 400)
    _error(api_post(server, "/generate", json={"model": MODEL}), 422)
    _error(api_post(server, "/generate", json={"model": MODEL, "seeds": list(range(65))}), 422)
    _error(api_post(server, "/generate", json={"model": MODEL, "seeds": [-1]}), 422)
    _error(api_post(server, "/generate", json={"model": MODEL, "seeds": "a-b"}), 422)
    _error(api_post(server, "/generate", json={"model": MODEL, "seeds": [1], "psi": "high"}), 422)
    _error(api_post(server, "/generate", json={"model": MODEL, "seeds": [1], "psi": 5}), 422)
    _error(api_post(server, "/generate", json={"model": MODEL, "seeds": [1], "noise_mode": "loud"}), 422)
    _error(api_post(server, "/generate", json={"seeds": [1]}), 422, "invalid_model")
    _error(api_post(server, "/generate", json={"model": {"model_id": "scratch"}, "seeds": [1]}), 422, "invalid_model")
    _error(api_post(server, "/generate", json={"model": {"model_id": "nope"}, "seeds": [1]}), 404, "model_not_found")
    _error(api_post(server, "/generate", json={"model": {"job_id": 4242}, "seeds": [1]}), 404, "job_not_found")
    _error(api_post(server, "/generate", json={"model": {"model_id": "job:x:1"}, "seeds": [1]}), 422, "invalid_model")


def _wait_walk(server, walk_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        walk = api_get(server, f"/walks/{walk_id}").json()
        if walk["state"] in ("completed", "failed"):
            return walk
        time.sleep(0.2)
    raise AssertionError(f"walk {walk_id} not done: {walk}")


def test_walk_renders_frames_in_the_background(server):
    r = api_post(server, "/walks", json={
        "model": MODEL, "waypoints": [{"frame": 0, "seed": 1}, {"frame": 5, "seed": 2}],
        "frame_start": 0, "frame_end": 5, "interpolation": "slerp", "easing": "smooth", "psi": 1.0})
    assert r.status_code == 202, r.text
    walk = r.json()
    assert walk["frames_total"] == 6 and walk["state"] in ("queued", "rendering", "completed")
    walk = _wait_walk(server, walk["id"])
    assert walk["state"] == "completed" and walk["frames_done"] == 6, walk
    zf = zipfile.ZipFile(io.BytesIO(api_get(server, f"/walks/{walk['id']}/frames.zip").content))
    assert zf.namelist() == [f"frame_{i:05d}.png" for i in range(6)]
    f3 = api_get(server, f"/walks/{walk['id']}/frames/3.png")
    assert f3.status_code == 200 and f3.headers["Content-Type"] == "image/png"
    assert f3.content == zf.read("frame_00003.png")
    # A key frame shows exactly its seed; frames between differ from both keys.
    seed1 = _img(api_post(server, "/generate", json={"model": MODEL, "seeds": [1]}).content)
    assert np.abs(_img(zf.read("frame_00000.png")) - seed1).max() <= 2
    assert np.abs(_img(zf.read("frame_00003.png")) - seed1).max() > 10
    _error(api_get(server, f"/walks/{walk['id']}/frames/6.png"), 404, "frame_not_found")
    _error(api_get(server, "/walks/9999"), 404, "walk_not_found")


def test_walk_zip_waits_for_completion(server):
    r = api_post(server, "/walks", json={"model": MODEL, "waypoints": [{"frame": 0, "seed": 1}, {"frame": 119, "seed": 9}],
                                         "interpolation": "lerp", "loop": True})
    assert r.status_code == 202, r.text
    walk_id = r.json()["id"]
    _error(api_get(server, f"/walks/{walk_id}/frames.zip"), 409, "walk_not_ready")
    progress = api_get(server, f"/walks/{walk_id}").json()
    assert progress["frames_total"] == 120 and 0 <= progress["frames_done"] < 120


def test_walk_bad_input(server):
    ok = [{"frame": 0, "seed": 1}, {"frame": 4, "seed": 2}]
    cases = [
        {"waypoints": []}, {"waypoints": [{"frame": 0}]}, {"waypoints": [{"frame": 0, "seed": 1, "z": [0.0] * 64}]},
        {"waypoints": [{"frame": 0, "z": [0.0] * 3}]}, {"waypoints": [{"frame": 0, "seed": 1}, {"frame": 0, "seed": 2}]},
        {"waypoints": ok, "frame_start": 4, "frame_end": 1}, {"waypoints": ok, "easing": "bouncy"},
        {"waypoints": ok, "interpolation": "cubic"}, {"waypoints": ok, "frame_end": 20000},
        {"waypoints": ok, "loop": "yes"}, {"waypoints": [{"frame": -1, "seed": 1}]},
    ]
    for case in cases:
        _error(api_post(server, "/walks", json={"model": MODEL, **case}), 422)
    _error(api_post(server, "/walks", json={"model": {"model_id": "nope"}, "waypoints": ok}), 404)
    # z waypoints of the right length are accepted.
    z = np.random.RandomState(0).randn(64).tolist()
    r = api_post(server, "/walks", json={"model": MODEL, "waypoints": [{"frame": 0, "z": z}, {"frame": 2, "seed": 5}]})
    assert r.status_code == 202, r.text
    assert _wait_walk(server, r.json()["id"])["state"] == "completed"


def test_model_cache_loads_once_and_reloads_a_changed_file(tmp_path):
    a = _write_base_model(tmp_path / "a.safetensors")
    b = _write_base_model(tmp_path / "b.safetensors")
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
