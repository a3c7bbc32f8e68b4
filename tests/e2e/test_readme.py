"""Every command in the README runs, in order, as a new user would type it.

The README's shell blocks are extracted and run with bash in a fresh folder (HOME there
too), with sizes made tiny by the substitutions below, so an example can never rot: a
renamed flag, a path that does not exist or a command that fails breaks this test. Every
substitution must still match something, so a README edit cannot silently skip one.
Long-running commands (the server) are started, waited for and stopped. `make test` is
the one command not run: it is what runs this test.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from tests.support.jobs import create_job, finished, prepared_dataset, wait_for, wait_job
from tests.support.server_process import start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
FIXTURE_PKL = REPO / "tests" / "data" / "sg2ada_tiny32" / "network-snapshot.pkl"
SERVER_READY = "Press Ctrl+C to stop."

# (pattern, replacement): tiny sizes for a 2-core CPU, and a folder of our own for /mnt/big.
SUBSTITUTIONS = [
    (r"--res 128\b", "--res 32"),
    (r"--steps 5000\b", "--steps 4 --preset tiny"),
    (r"--steps 2000\b", "--steps 2"),
    (r"--freeze-d 4\b", "--freeze-d 2"),  # a 32 px D has 3 blocks
    (r"--batch 16\b", "--batch 4"),
    (r"network-005000\b", "network-000004"),
    (r"--seeds 0-9\b", "--seeds 0-3"),
    (r"0:seed=1,48:seed=7,96:seed=1", "0:seed=1,4:seed=7,8:seed=1"),
    (r"--device cuda:1\b", "--device cpu"),
    (r"/mnt/big/", "{tmp}/big/"),
    (r"--port (7860|9000)\b", "--port 0"),
]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()  # trailing comments
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def make_renders(folder: Path, count: int = 12) -> None:
    """Stand-ins for Blender renders: distinct smooth colour fields, 48 px."""
    folder.mkdir(parents=True)
    for i in range(count):
        small = np.random.default_rng(i).integers(0, 255, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((48, 48), Image.BICUBIC).save(folder / f"render_{i:03d}.png")


class Session:
    """A user's shell: a fresh folder, HOME in it, the venv's commands on PATH once activated."""

    def __init__(self, root: Path):
        self.root = root
        self.work = root / "work"
        self.home = root / "home"
        self.work.mkdir()
        self.home.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LATENT_STUDIO")}
        self.env.update(HOME=str(self.home), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        self.used = set()
        self.server_url = None

    def substitute(self, command: str) -> str:
        for i, (pattern, replacement) in enumerate(SUBSTITUTIONS):
            new = re.sub(pattern, replacement.format(tmp=self.root), command)
            if new != command:
                self.used.add(i)
                command = new
        return command

    def run(self, command: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        proc = subprocess.run(["bash", "-c", command], cwd=cwd or self.work, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        assert proc.returncode == 0, f"README command failed: {command}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def start_and_stop(self, command: str, cwd: Path | None = None) -> str:
        """A server command: wait until it says it is ready, then stop it as Ctrl+C would."""
        proc = subprocess.Popen(["bash", "-c", command], cwd=cwd or self.work, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        lines = []
        deadline = time.monotonic() + 180
        try:
            for line in proc.stdout:
                lines.append(line)
                if SERVER_READY in line or time.monotonic() > deadline:
                    break
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
        output = "".join(lines)
        assert SERVER_READY in output, f"README server command did not start: {command}\n{output}"
        return output


def test_every_readme_command_runs(tmp_path):
    commands = readme_commands()
    session = Session(tmp_path)
    make_renders(session.work / "renders")
    shutil.copy(FIXTURE_PKL, session.work / "network-snapshot-ffhq.pkl")
    ran = []
    for raw in commands:
        command = session.substitute(raw)
        if command == "make test":
            continue  # this test is part of it
        if command.startswith("source .venv/bin/activate"):
            # what activation does for the rest of the session: the commands are on PATH
            out = session.run(f"{command} && command -v latent-studio", cwd=REPO).stdout
            assert Path(out.strip()).parent == VENV_BIN
            session.env["PATH"] = f"{VENV_BIN}{os.pathsep}{session.env['PATH']}"
        elif re.search(r"\bmake run\b", command):
            if "ARGS=" not in command:
                command += ' ARGS="--port 0 --no-addon-build"'
            output = session.start_and_stop(command, cwd=REPO)
            assert "token:" in output and "Blender server address" in output
        elif re.search(r"\blatent-studio serve\b", command):
            command = re.sub(r"(latent-studio serve)", r"\1 --no-addon-build", command)
            if "--port" not in command:
                command += " --port 0"
            session.start_and_stop(command)
        elif command.startswith("latent-studio delete"):
            continue  # needs things to delete on a running server: run below, after the rest
        else:
            session.run(command)
        ran.append(command)
    unused = [SUBSTITUTIONS[i][0] for i in range(len(SUBSTITUTIONS)) if i not in session.used]
    assert not unused, f"README no longer has what these substitutions expect: {unused}"

    # What the commands promised is there.
    work = session.work
    assert (work / "data" / "chairs.zip").is_file() and (work / "dist").is_dir()
    assert sorted(p.name for p in (work / "out").iterdir()) == [f"seed{i:04d}.png" for i in range(4)]
    assert sorted(p.name for p in (work / "walk").iterdir()) == [f"frame_{i:04d}.png" for i in range(8)]
    assert (session.home / ".latent-studio" / "models" / "ffhq.safetensors").is_file()
    assert (session.home / ".latent-studio" / "models" / "chairs.safetensors").is_file()

    _run_cleanup_commands(session, [c for c in commands if c.startswith("latent-studio delete")])


def _run_cleanup_commands(session: Session, deletes: list[str]) -> None:
    """The README's delete commands against a real server holding a job, a walk and the
    imported model, with the README's ids replaced by the ones this server gave out."""
    assert {c.split()[2] for c in deletes} >= {"job", "walk", "model"}
    data_dir = session.home / ".latent-studio"
    server = start_server(data_dir)
    try:
        dataset = prepared_dataset(server)
        job = create_job(server, dataset["id"], steps=1).json()
        wait_job(server, job["id"], finished)
        walk = requests.post(server.api("/walks"), headers=server.headers, timeout=30, json={
            "model": {"model_id": "ffhq"}, "waypoints": [{"frame": 0, "seed": 1}, {"frame": 2, "seed": 2}],
            "frame_start": 0, "frame_end": 2})
        assert walk.status_code == 202, walk.text
        walk = wait_for(server, f"/walks/{walk.json()['id']}", lambda w: w["state"] in ("completed", "failed"),
                        120, expect_state="completed")
        ids = {"job": str(job["id"]), "walk": str(walk["id"]), "model": "ffhq"}
        for command in deletes:
            words = command.split()
            words[3] = ids.get(words[2], words[3])
            session.run(" ".join(words) + f" --url {server.base_url}")
        assert not (data_dir / "models" / "ffhq.safetensors").exists()
        assert not (data_dir / "jobs" / str(job["id"])).exists()
        assert not (data_dir / "walks" / str(walk["id"])).exists()
    finally:
        stop_server(server.process)
