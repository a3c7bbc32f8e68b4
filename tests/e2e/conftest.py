"""Fixtures that start a real `latent-studio serve` subprocess (tests.support.server_process).

    def test_x(live_server):                      # one server per test module
        r = requests.get(live_server.api("/datasets"), headers=live_server.headers)

    def test_y(server_factory, tmp_path):         # your own server with options
        srv = server_factory(tmp_path, max_upload_bytes=1000, workers=2)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.server_process import LiveServer, start_server, stop_server


@pytest.fixture
def server_factory():
    """Call `server_factory(tmp_path, **options)`; every server started is stopped at teardown."""
    started: list[LiveServer] = []

    def factory(tmp_path: Path, *, data_dir: Path | None = None, **options) -> LiveServer:
        server = start_server(data_dir or (Path(tmp_path) / f"data{len(started)}"), **options)
        started.append(server)
        return server

    yield factory
    for server in started:
        stop_server(server.process)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """One default server per test module (fresh data dir)."""
    server = start_server(tmp_path_factory.mktemp("live") / "data")
    yield server
    stop_server(server.process)
