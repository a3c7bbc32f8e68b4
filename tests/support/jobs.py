"""Helpers for tests and benchmarks that train on a live server: a tiny dataset, a tiny job,
and polling until something happens (real HTTP only)."""

from __future__ import annotations

import io
import time
import zipfile

import numpy as np
import requests
from PIL import Image

TINY_JOB = {"resolution": 32, "preset": "tiny", "batch": 4, "augmentation": "off"}


def tiny_image_zip(count: int = 12, size: int = 32, seed: int = 0) -> bytes:
    """A zip of small coloured blob images: enough for a 32x32 tiny-preset run."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(count):
            yy, xx = np.mgrid[0:size, 0:size]
            cy, cx = rng.uniform(8, size - 8, 2)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(3, 7) ** 2))
            colour = rng.uniform(0.2, 1.0, 3)
            img = (blob[..., None] * colour * 255).astype(np.uint8)
            png = io.BytesIO()
            Image.fromarray(img).save(png, format="PNG")
            zf.writestr(f"img{i:03d}.png", png.getvalue())
    return buf.getvalue()


def upload_dataset(server, name: str = "tiny") -> dict:
    r = requests.post(server.api(f"/datasets?name={name}"), data=tiny_image_zip(),
                      headers={**server.headers, "Content-Type": "application/zip"}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def prepared_dataset(server, name: str = "tiny", timeout: float = 120) -> dict:
    ds = upload_dataset(server, name)
    r = requests.post(server.api(f"/datasets/{ds['id']}/prepare"), json={"resolution": 32},
                      headers=server.headers, timeout=30)
    assert r.status_code == 202, r.text
    return wait_for(server, f"/datasets/{ds['id']}", lambda d: d["state"] in ("ready", "failed"),
                    timeout, expect_state="ready")


def wait_for(server, path: str, predicate, timeout: float, expect_state: str | None = None) -> dict:
    """Poll GET path until predicate(body) holds; fail with the last body on timeout."""
    deadline = time.monotonic() + timeout
    body = None
    while time.monotonic() < deadline:
        r = requests.get(server.api(path), headers=server.headers, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        if predicate(body):
            if expect_state is not None:
                assert body["state"] == expect_state, body
            return body
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting on {path}; last: {body}\n{server.log()[-3000:]}")


def create_job(server, dataset_id: str, **fields) -> requests.Response:
    return requests.post(server.api("/jobs"), json={"dataset_id": dataset_id, **TINY_JOB, **fields},
                         headers=server.headers, timeout=30)


def wait_job(server, job_id: int, predicate, timeout: float = 180) -> dict:
    return wait_for(server, f"/jobs/{job_id}", predicate, timeout)


def finished(job: dict) -> bool:
    return job["state"] in ("completed", "cancelled", "failed", "interrupted")


def write_tiny_base_model(path):
    """A real checkpoint of an untrained 32x32 tiny generator (fine for plumbing checks:
    determinism, psi, zip layout, walk frames); returns `path`."""
    import torch

    from gan_core.models.checkpoint import save_network
    from gan_core.nn.networks import build_generator, preset_kwargs

    torch.manual_seed(0)
    G = build_generator(preset_kwargs(32, "tiny")["G"])
    save_network(path, G.eval(), meta={"name": "tiny base"})
    return path


def run_worker_with_file_limit(payload: dict, max_file_bytes: int | None) -> None:
    """A training worker process (server.jobs.worker.run_worker) that may not write any file
    larger than `max_file_bytes` (RLIMIT_FSIZE): to the worker, a full disk. Python ignores
    SIGXFSZ, so an over-long write fails with EFBIG like a write to a full disk fails."""
    import resource

    from server.jobs.worker import run_worker

    if max_file_bytes is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
    run_worker(payload)
