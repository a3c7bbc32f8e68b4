"""A real `latent-studio serve` subprocess for end-to-end tests (and benchmarks).

    server = start_server(tmp_path / "data", max_upload_bytes=1000, workers=2)
    r = requests.get(server.api("/datasets"), headers=server.headers)
    stop_server(server.process)

Options become CLI flags (`max_upload_bytes=1000` -> `--max-upload-bytes 1000`; True adds
the bare flag). `max_file_bytes` caps every file the server (and its workers) may write
(RLIMIT_FSIZE): a full disk, as the server sees it. The token is read from the server's token file, as a user's tools would.
Servers are stopped with SIGTERM (clean shutdown hooks), then killed if still alive.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import requests

START_TIMEOUT_S = 60.0  # import torch + create the app on a busy 2-core machine


class LiveServer(NamedTuple):
    base_url: str  # http://127.0.0.1:PORT (no /api/v1)
    token: str
    data_dir: Path
    process: subprocess.Popen
    log_path: Path

    def api(self, path: str) -> str:
        return f"{self.base_url}/api/v1/{path.lstrip('/')}"

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def option_flags(options: dict) -> list[str]:
    flags: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value not in (None, False):
            flags += [flag, str(value)]
    return flags


def _file_limit(max_bytes: int):
    def apply() -> None:  # runs in the child between fork and exec
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


def start_server(data_dir: Path, *, env: dict | None = None, addon_build: bool = False,
                 max_file_bytes: int | None = None, **options) -> LiveServer:
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = options.pop("port", None) or free_port()
    args = [sys.executable, "-m", "server.cli", "serve", "--data-dir", str(data_dir), "--port", str(port),
            "--device", options.pop("device", "cpu")]
    if not addon_build:
        args.append("--no-addon-build")
    args += option_flags(options)
    log_path = data_dir.parent / f"{data_dir.name}-server-{port}.log"
    inherited = {k: v for k, v in os.environ.items() if k != "LATENT_STUDIO_TOKEN"}  # only a test's own token
    full_env = {**inherited, "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, env=full_env,
                                   preexec_fn=_file_limit(max_file_bytes) if max_file_bytes else None)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready:\n{log_path.read_text(errors='replace')}")
        try:
            if requests.get(f"{base_url}/api/v1/health", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            stop_server(process)
            raise RuntimeError(f"server not ready after {START_TIMEOUT_S}s:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.2)
    token = (data_dir / "token").read_text().strip()
    return LiveServer(base_url, token, data_dir, process, log_path)


def stop_server(process: subprocess.Popen, timeout: float = 15.0) -> int | None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return process.returncode
