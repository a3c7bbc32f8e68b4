"""The server in-process: `create_app` on a temp data dir, driven with Flask's test client.

    def test_x(api):                  # one app per test module (settings: SERVER_SETTINGS there)
        r = api.post("/jobs", json={...})
    def test_y(make_api):             # your own app with other settings
        api = make_api(max_upload_bytes=1000)

The test process holds the data directory's lock, so the app serves requests but never runs
the job queue (no worker processes): rows a test writes stay as written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from server.app import create_app
from server.config import ServerConfig
from server.datasets import store as dataset_store
from server.filelock import FileLock
from server.state import EXTENSION_KEY


class Api:
    """A test client that sends the app's token; paths are relative to /api/v1."""

    def __init__(self, app):
        self.app = app
        self.state = app.extensions[EXTENSION_KEY]
        self.client = app.test_client()
        self.client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {self.state.token}"

    def url(self, path: str) -> str:
        return path if path.startswith("/api/") else "/api/v1/" + path.lstrip("/")

    def get(self, path, **kw):
        return self.client.get(self.url(path), **kw)

    def post(self, path, **kw):
        return self.client.post(self.url(path), **kw)

    def delete(self, path, **kw):
        return self.client.delete(self.url(path), **kw)


def _start(data_dir: Path, **settings) -> tuple[Api, FileLock]:
    data_dir.mkdir(parents=True, exist_ok=True)
    queue_lock = FileLock(data_dir / "server.lock")  # "another server runs the queue"
    assert queue_lock.try_acquire()
    app = create_app(ServerConfig(data_dir=data_dir, device="cpu", **settings))
    return Api(app), queue_lock


def _stop(api: Api, queue_lock: FileLock) -> None:
    api.state.shutdown()
    queue_lock.release()


@pytest.fixture(scope="module")
def api(request, tmp_path_factory):
    """One app per test module, with the module's SERVER_SETTINGS (ServerConfig fields) if
    any; a module's `prepare_data_dir(data_dir)` runs before the app starts."""
    data_dir = tmp_path_factory.mktemp("server") / "data"
    prepare = getattr(request.module, "prepare_data_dir", None)
    if prepare is not None:
        prepare(data_dir)
    started = _start(data_dir, **getattr(request.module, "SERVER_SETTINGS", {}))
    yield started[0]
    _stop(*started)


@pytest.fixture
def make_api(tmp_path):
    started = []

    def make(**settings) -> Api:
        started.append(_start(tmp_path / f"data{len(started)}", **settings))
        return started[-1][0]

    yield make
    for one in started:
        _stop(*one)


@pytest.fixture(scope="session")
def ready_dataset():
    """`ready_dataset(api, resolution=32)`: a dataset row in state 'ready' with a (dummy)
    dataset.zip, as a finished preparation leaves it; returns its id."""
    def make(api: Api, resolution: int = 32) -> str:
        dataset_id = dataset_store.new_dataset_id()
        db = api.state.db
        dataset_store.insert_dataset(db, dataset_id, "ready", 1, 1)
        dataset_store.begin_preparation(db, dataset_id, {"resolution": resolution})
        dataset_store.mark_ready(db, dataset_id, {"resolution": resolution, "count": 12})
        folder = dataset_store.dataset_dir(api.state, dataset_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / dataset_store.DATASET_ZIP).write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
        return dataset_id

    return make


def _dataset_files_and_rows(api: Api):
    datasets_dir = api.state.config.datasets_dir
    files = sorted(str(p.relative_to(datasets_dir)) for p in datasets_dir.rglob("*") if p.is_file())
    return files, sorted(d["id"] for d in api.get("datasets").get_json())


@pytest.fixture
def nothing_added(api):
    """Asserts at the end of the test that no dataset row and no file appeared."""
    before = _dataset_files_and_rows(api)
    yield
    assert _dataset_files_and_rows(api) == before
