"""Command lines for torch.distributed.run (torchrun), the launcher of multi-process training.

Used by `latent-studio train` (several GPUs, or several machines) and by the job scheduler
(a job with `gpus` > 1). torchrun starts one process per GPU with RANK / WORLD_SIZE /
LOCAL_RANK / MASTER_ADDR / MASTER_PORT set; gan_core.train.distributed reads them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

LAUNCHER = ("-m", "torch.distributed.run")
# Seconds torchrun gives the ranks to stop after passing them a Ctrl-C or SIGTERM (then SIGKILL):
# time for a final snapshot of a large model (torchrun's own default is 30).
SHUTDOWN_TIMEOUT_S = 300


def environment(base=None) -> dict:
    """The launcher's environment: `-m server...` importable from any folder, and the ranks'
    grace period for a final snapshot."""
    env = dict(os.environ if base is None else base)
    root = str(Path(__file__).resolve().parents[1])  # the folder holding the server package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", str(SHUTDOWN_TIMEOUT_S))
    return env


def under_torchrun(environ=None) -> bool:
    """True inside a process torchrun started (so it must not launch torchrun again)."""
    environ = os.environ if environ is None else environ
    return "TORCHELASTIC_RUN_ID" in environ or "LOCAL_RANK" in environ


def check_rendezvous(nnodes: int, node_rank: int, nproc_per_node: int, endpoint: str | None) -> None:
    """The launch options of `train`, checked before anything starts (ValueError names the option)."""
    for name, value, low in (("--nnodes", nnodes, 1), ("--nproc-per-node", nproc_per_node, 1), ("--node-rank", node_rank, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    if node_rank >= nnodes:
        raise ValueError(f"--node-rank {node_rank} must be below --nnodes {nnodes} (machines are numbered from 0)")
    if nnodes > 1:
        host, sep, port = (endpoint or "").rpartition(":")
        if not endpoint or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--nnodes {nnodes} needs --rdzv-endpoint HOST:PORT: the address of the machine started "
                             f"with --node-rank 0 and a free port on it, the same on every machine (got {endpoint!r})")


def command(module_args: list[str], *, nproc_per_node: int, nnodes: int = 1, node_rank: int = 0,
            endpoint: str | None = None) -> list[str]:
    """The torchrun command that runs `python -m <module_args...>` once per process.

    One machine: `--standalone` (a private rendezvous on a free local port). Several: the
    static rendezvous, hosted by the machine with node rank 0 at `endpoint`, so that machine
    holds global rank 0 (the process that writes snapshots and reports progress). torchrun's
    c10d rendezvous would ignore the node rank and pick rank 0's machine by arrival.
    """
    cmd = [sys.executable, *LAUNCHER, "--nproc-per-node", str(nproc_per_node), "--max-restarts", "0"]
    if nnodes > 1:
        cmd += ["--nnodes", str(nnodes), "--node-rank", str(node_rank), "--rdzv-backend", "static",
                "--rdzv-endpoint", str(endpoint)]
    else:
        cmd += ["--standalone"]
    return cmd + ["-m", *module_args]
