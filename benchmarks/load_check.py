"""Load check of the companion server while a job trains (127.0.0.1 only, bounded).

Starts a real server on a free loopback port with a fresh data dir, prepares a tiny
dataset, starts a tiny 32x32 training job, then measures:
  - status-poll latency (GET /jobs/{id}) with N concurrent clients: p50 / p99 / max;
  - generate throughput (POST /generate, one seed, the tiny model): requests per second.
Prints one JSON object. Every phase has a request cap and a time cap.

    .venv/bin/python benchmarks/load_check.py [--clients 50] [--polls 20] [--gen-seconds 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.jobs import create_job, prepared_dataset, wait_job  # noqa: E402
from tests.support.server_process import start_server, stop_server  # noqa: E402  (the launcher the tests use)


def _run_clients(threads: list[threading.Thread]) -> float:
    """Start every client thread, wait for all; the wall time in seconds."""
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[idx]


def poll_latency(server, job_id: int, clients: int, polls: int, time_cap: float) -> dict:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + time_cap
    start = threading.Barrier(clients)

    def client():
        session = requests.Session()
        start.wait()
        mine = []
        for _ in range(polls):
            if time.monotonic() > deadline:
                break
            t0 = time.perf_counter()
            try:
                r = session.get(server.api(f"/jobs/{job_id}"), headers=server.headers, timeout=30)
                ok = r.status_code == 200
            except requests.RequestException:
                ok = False
            mine.append(time.perf_counter() - t0)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    wall = _run_clients([threading.Thread(target=client) for _ in range(clients)])
    return {
        "clients": clients, "requests": len(latencies), "errors": errors[0], "wall_s": round(wall, 2),
        "p50_ms": round(_percentile(latencies, 50) * 1000, 1), "p99_ms": round(_percentile(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1), "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
    }


def generate_rate(server, job_id: int, clients: int, seconds: float, cap: int) -> dict:
    done, errors = [0], [0]
    lock = threading.Lock()
    body = {"model": {"job_id": job_id}, "seeds": [0], "psi": 0.7}
    # Warm the model cache first so the rate measures generation, not the first load.
    requests.post(server.api("/generate"), json=body, headers=server.headers, timeout=120).raise_for_status()
    deadline = time.monotonic() + seconds

    issued = [0]

    def client(i):
        session = requests.Session()
        while time.monotonic() < deadline:
            with lock:  # reserve a request slot so the total never passes the cap
                if issued[0] >= cap:
                    return
                issued[0] += 1
            r = session.post(server.api("/generate"), json={**body, "seeds": [i]}, headers=server.headers, timeout=120)
            with lock:
                if r.status_code == 200 and r.headers.get("Content-Type") == "image/png":
                    done[0] += 1
                else:
                    errors[0] += 1

    wall = _run_clients([threading.Thread(target=client, args=(i,)) for i in range(clients)])
    return {"clients": clients, "images": done[0], "errors": errors[0], "wall_s": round(wall, 2),
            "requests_per_s": round(done[0] / wall, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--polls", type=int, default=20, help="status requests per client (cap)")
    ap.add_argument("--poll-seconds", type=float, default=60.0, help="time cap for the polling phase")
    ap.add_argument("--gen-clients", type=int, default=2)
    ap.add_argument("--gen-seconds", type=float, default=10.0)
    ap.add_argument("--gen-cap", type=int, default=200)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="latent-load-") as tmp:
        server = start_server(Path(tmp) / "data")  # binds 127.0.0.1 on a free port
        try:
            dataset = prepared_dataset(server)
            r = create_job(server, dataset["id"], title="load check", steps=10000, snapshot_every=1)
            r.raise_for_status()
            job_id = r.json()["id"]
            # Wait for a finished training step, so the measurement runs during steady training.
            before = wait_job(server, job_id, lambda j: j["state"] == "running" and j["step"] >= 1, 300)
            polls = poll_latency(server, job_id, args.clients, args.polls, args.poll_seconds)
            gen = generate_rate(server, job_id, args.gen_clients, args.gen_seconds, args.gen_cap)
            after = requests.get(server.api(f"/jobs/{job_id}"), headers=server.headers, timeout=30).json()
            requests.post(server.api(f"/jobs/{job_id}/cancel"), headers=server.headers, timeout=30)
            result = {"status_poll": polls, "generate": gen,
                      "training_during_check": {"state": after["state"], "step_before": before["step"],
                                                "step_after": after["step"], "heartbeat_age_s":
                                                round(time.time() - after["heartbeat"], 2)}}
        finally:
            stop_server(server.process, timeout=60)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
