"""The server as a real process: restarts keep the token and recover cut-short work, and
`latent-studio serve`'s own rules (binding, token, port, device). Everything a test client
can check in-process is in tests/unit/server/test_platform.py."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys

import pytest
import requests

from tests.support.server_process import stop_server

pytestmark = pytest.mark.e2e


def test_restart_keeps_the_token_and_recovers_interrupted_dataset_work(server_factory, tmp_path):
    data = tmp_path / "persist"
    first = server_factory(tmp_path, data_dir=data)
    token_file = data / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert len(first.token) >= 32
    assert stop_server(first.process) == 0  # SIGTERM is a clean stop
    log = first.log()
    assert first.token in log and str(data) in log and f"{first.base_url}/api/v1" in log and "Blender extension" in log
    # While stopped: a preparation the stop cut short, its half-extracted sources, a day-old upload temp file.
    with sqlite3.connect(data / "latent-studio.sqlite3") as conn:
        conn.execute("INSERT INTO datasets (id, name, state, progress, source_bytes, source_images, created_at, updated_at)"
                     " VALUES ('0123456789ab', 'cut', 'preparing', 0.4, 1, 1, 'x', 'x')")
    work = data / "datasets" / "0123456789ab" / "work" / "source"
    work.mkdir(parents=True)
    (work / "a.png").write_bytes(b"x")
    stale = data / "datasets" / ".uploads" / "upload-old.part"
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"x")
    os.utime(stale, (0, 0))

    second = server_factory(tmp_path, data_dir=data, addon_build=True)
    assert second.token == first.token
    ds = requests.get(second.api("datasets/0123456789ab"), headers=second.headers, timeout=10).json()
    assert ds["state"] == "failed" and "interrupted" in ds["error"]
    assert not work.parent.exists() and not stale.exists()
    assert requests.get(second.api("datasets"), headers=first.headers, timeout=10).status_code == 200
    # With bpy installed, serve builds the Blender extension into the data dir and says where.
    built = sorted((data / "addon").glob("latent_studio-*.zip"))
    assert len(built) == 1 and f"Blender extension: {built[0]}" in second.log()


def serve_cli(*args, env=None, timeout=60):
    full_env = {k: v for k, v in os.environ.items() if k != "LATENT_STUDIO_TOKEN"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "server.cli", "serve", *args], capture_output=True, text=True, timeout=timeout, env=full_env)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.com"])
def test_non_loopback_without_explicit_token_is_refused(tmp_path, host):
    data = tmp_path / "data"
    data.mkdir()
    (data / "token").write_text("a-saved-token-that-is-long-enough\n")  # a saved token is not enough
    proc = serve_cli("--host", host, "--port", "0", "--data-dir", str(data), "--no-addon-build")
    assert proc.returncode == 1
    assert "refusing to listen" in proc.stderr and "--token" in proc.stderr


def test_short_explicit_token_is_refused(tmp_path):
    proc = serve_cli("--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path / "d"), "--token", "short", "--no-addon-build")
    assert proc.returncode == 1 and "at least 16 characters" in proc.stderr


def test_non_loopback_with_env_token_serves_with_that_token(server_factory, tmp_path):
    chosen = "chosen-token-for-the-lan-0123456789"
    srv = server_factory(tmp_path, host="0.0.0.0", env={"LATENT_STUDIO_TOKEN": chosen})
    assert srv.token == chosen  # the token file holds the active token
    assert stat.S_IMODE((srv.data_dir / "token").stat().st_mode) == 0o600
    assert requests.get(srv.api("datasets"), headers={"Authorization": f"Bearer {chosen}"}, timeout=10).status_code == 200
    assert requests.get(srv.api("datasets"), headers={"Authorization": "Bearer " + chosen[:-1]}, timeout=10).status_code == 401


def test_port_in_use_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = serve_cli("--port", str(port), "--data-dir", str(tmp_path / "d"), "--device", "cpu", "--no-addon-build")
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "Traceback" not in proc.stderr


def test_unavailable_device_is_a_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = serve_cli("--port", "0", "--data-dir", str(tmp_path / "d"), "--device", "cuda:0", "--no-addon-build")
    assert proc.returncode == 1 and "CUDA is not available" in proc.stderr and "Traceback" not in proc.stderr


def test_a_second_server_on_the_same_data_dir_serves_but_runs_no_queue(server_factory, tmp_path):
    data = tmp_path / "shared"
    first = server_factory(tmp_path, data_dir=data)
    second = server_factory(tmp_path, data_dir=data)
    assert "another server runs the job queue" in second.log()
    assert "another server runs the job queue" not in first.log()
    assert requests.get(second.api("jobs"), headers=second.headers, timeout=10).json() == {"jobs": []}
