"""A job trained by several processes: torchrun runs `server.jobs.worker` once per GPU.

`TorchrunJob` looks like the multiprocessing.Process the scheduler starts for a one-process
job (start, pid, is_alive, join, exitcode, terminate), so the scheduler reaps, records and
stops both the same way. What differs:

- the worker's payload travels in a file (`jobs/<id>/launch-<attempt>.json`): torchrun
  passes a command line, not Python objects;
- the outcome travels in a file too (`jobs/<id>/outcome-<attempt>.json`, written by rank
  0): torchrun turns any non-zero worker exit into its own exit code 1, which would lose
  the difference between cancelled, stopped with the server and failed;
- on CUDA the job's GPUs are given by CUDA_VISIBLE_DEVICES, so rank r trains on the r-th
  of them (`cuda:<local rank>` inside the worker);
- the launcher runs in its own session: a Ctrl-C meant for the server reaches the workers
  only through the server's own shutdown (stop.flag, a final snapshot), never half-way.
  `terminate()` sends SIGTERM to the launcher, which passes it on to every rank (and
  kills them if they do not stop within its shutdown timeout).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from gan_core.fileio import atomic_write_text
from server import torchrun

WORKER_MODULE = "server.jobs.worker"


def payload_path(job_dir: Path, attempt: int) -> Path:
    return Path(job_dir) / f"launch-{attempt}.json"


def outcome_path(job_dir: Path, attempt: int) -> Path:
    return Path(job_dir) / f"outcome-{attempt}.json"


def write_outcome(job_dir: Path, attempt: int, code: int) -> None:
    atomic_write_text(outcome_path(job_dir, attempt), json.dumps({"attempt": attempt, "code": code}))


def read_outcome(job_dir: Path, attempt: int) -> int | None:
    try:
        data = json.loads(outcome_path(job_dir, attempt).read_text(encoding="utf-8"))
        return int(data["code"]) if data.get("attempt") == attempt else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def visible_devices(devices: list[str], environ=None) -> str:
    """CUDA_VISIBLE_DEVICES for `devices` ("cuda:i" as the server numbers them). When the
    server itself was limited to some GPUs, its index i is the i-th of those."""
    environ = os.environ if environ is None else environ
    inherited = [d.strip() for d in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    out = []
    for device in devices:
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        out.append(inherited[index] if index < len(inherited) else str(index))
    return ",".join(out)


class TorchrunJob:
    """One job's torchrun launcher and its `processes` workers."""

    def __init__(self, payload: dict, processes: int, devices: list[str]):
        self.payload, self.processes, self.devices = payload, int(processes), list(devices)
        self.job_dir = Path(payload["job_dir"])
        self.attempt = int(payload["attempt"])
        self._popen: subprocess.Popen | None = None

    def start(self) -> None:
        self.job_dir.mkdir(parents=True, exist_ok=True)
        outcome_path(self.job_dir, self.attempt).unlink(missing_ok=True)
        payload_file = payload_path(self.job_dir, self.attempt)
        atomic_write_text(payload_file, json.dumps(self.payload))
        env = torchrun.environment()
        if any(d.startswith("cuda") for d in self.devices):
            env["CUDA_VISIBLE_DEVICES"] = visible_devices(self.devices)
        else:  # CPU processes share the cores: one thread each unless the server was told otherwise
            env.setdefault("OMP_NUM_THREADS", "1")
        cmd = torchrun.command([WORKER_MODULE, str(payload_file)], nproc_per_node=self.processes)
        self._popen = subprocess.Popen(cmd, env=env, start_new_session=True, stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def is_alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        if self._popen is None:
            return
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    @property
    def exitcode(self) -> int | None:
        """The worker protocol's exit code (server.jobs.worker.EXIT_*): rank 0's outcome when it
        recorded one, else the launcher's own status (negative: killed by that signal)."""
        if self._popen is None or self._popen.poll() is None:
            return None
        recorded = read_outcome(self.job_dir, self.attempt)
        return recorded if recorded is not None else self._popen.returncode

    def terminate(self) -> None:
        if self.is_alive():
            try:
                os.kill(self._popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
