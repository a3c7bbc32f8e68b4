"""Load check of the companion server (issue 12's responsiveness goals), 127.0.0.1 only, bounded.

Starts a real server on a free loopback port with a fresh data dir, prepares a tiny dataset,
starts a tiny 32x32 training job and measures, on this machine:

  training        images/s unpolled, then while 50 clients poll its status (paced and flood)
  status_poll     GET /jobs/{id} latency with --clients clients: "paced" (each polls every
                  --poll-interval s; the add-on polls every 2 s) and "flood" (back to back)
  generate        POST /generate latency (1 and 16 seeds) while a long walk renders
  busy_generate   --gen-clients clients sending 64-seed requests back to back: how many are
                  served or refused (503), and GET /health latency meanwhile

Goals on a 2-core CPU: status p99 < 50 ms (paced) and training during polling >= 90% of
unpolled. Figures only mean something on an otherwise idle machine: the JSON carries the
load average before the run. Prints one JSON object.

    .venv/bin/python benchmarks/load_check.py [--clients 50] [--window 20]
"""

from __future__ import annotations

import argparse
import json
import os
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

STATUS_P99_GOAL_MS = 50.0
TRAINING_RATIO_GOAL = 0.90


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[idx]


def _latency(values: list[float]) -> dict:
    if not values:
        return {"requests": 0}
    ms = [v * 1000 for v in values]
    return {"requests": len(ms), "p50_ms": round(_percentile(ms, 50), 1), "p99_ms": round(_percentile(ms, 99), 1),
            "max_ms": round(max(ms), 1), "mean_ms": round(statistics.fmean(ms), 1)}


def _run_for(seconds: float, clients: int, request, interval: float = 0.0) -> tuple[list[float], dict]:
    """`clients` threads each call request(session) until `seconds` pass, pausing `interval`
    between calls; returns (latencies, counts of the results request() returned)."""
    latencies, counts, lock = [], {}, threading.Lock()
    start, deadline = threading.Barrier(clients), time.monotonic() + seconds

    def client(i: int):
        session = requests.Session()
        start.wait()
        if interval:
            time.sleep(interval * i / clients)  # spread the clients over one interval
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                outcome = request(session)
            except requests.RequestException as exc:
                outcome = type(exc).__name__
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                counts[outcome] = counts.get(outcome, 0) + 1
            if interval:
                time.sleep(max(0.0, interval - elapsed))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, counts


def _training_rate(server, job_id: int, seconds: float, load=None) -> tuple[float, object]:
    """Training images per second over `seconds`, while `load()` runs (if given): the mean
    of the rates the training loop itself reported meanwhile (progress.jsonl, one line every
    few steps; the job's `step` in the API moves in coarser jumps)."""
    progress = server.data_dir / "jobs" / str(job_id) / "run" / "progress.jsonl"
    start = progress.stat().st_size
    result = load() if load else time.sleep(seconds)
    with open(progress, "rb") as fh:
        fh.seek(start)
        lines = fh.read().decode("utf-8", "replace").splitlines()
    rates = []
    for line in lines[1:]:  # the first report partly covers the time before the window
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "progress" and event.get("images_per_s"):
            rates.append(float(event["images_per_s"]))
    return (statistics.fmean(rates) if rates else 0.0), result


def status_polls(server, job_id: int, args) -> dict:
    url = server.api(f"/jobs/{job_id}")

    def poll(session):
        return session.get(url, headers=server.headers, timeout=30).status_code

    out = {}
    unpolled, _ = _training_rate(server, job_id, args.window)
    for mode, interval in (("paced", args.poll_interval), ("flood", 0.0)):
        rate, (latencies, counts) = _training_rate(
            server, job_id, args.window, lambda: _run_for(args.window, args.clients, poll, interval))
        out[mode] = {"clients": args.clients, "interval_s": interval, **_latency(latencies), "answers": counts,
                     "training_images_per_s": round(rate, 2),
                     "training_vs_unpolled": round(rate / unpolled, 3) if unpolled else None}
    out["training_images_per_s_unpolled"] = round(unpolled, 2)
    return out


def generate_during_walk(server, job_id: int, args) -> dict:
    model = {"job_id": job_id}
    r = requests.post(server.api("/walks"), json={"model": model, "waypoints": [{"frame": 0, "seed": 1}, {"frame": 9999, "seed": 2}]},
                      headers=server.headers, timeout=60)
    r.raise_for_status()
    requests.post(server.api("/generate"), json={"model": model, "seeds": [0]}, headers=server.headers, timeout=120)  # warm
    out = {"walk_state": None}
    for seeds in (1, 16):
        body = {"model": model, "seeds": list(range(seeds))}
        latencies, counts = _run_for(args.window / 2, 1, lambda s: s.post(server.api("/generate"), json=body,
                                                                          headers=server.headers, timeout=120).status_code)
        out[f"seeds_{seeds}"] = {**_latency(latencies), "answers": counts}
    walk = requests.get(server.api(f"/walks/{r.json()['id']}"), headers=server.headers, timeout=30).json()
    out["walk_state"] = {"state": walk["state"], "frames_done": walk["frames_done"]}
    return out


def busy_generate(server, job_id: int, args) -> dict:
    body = {"model": {"job_id": job_id}, "seeds": list(range(64))}
    health: list[float] = []
    stop = threading.Event()

    def watch_health():
        session = requests.Session()
        while not stop.is_set():
            t0 = time.perf_counter()
            session.get(server.api("/health"), timeout=30)
            health.append(time.perf_counter() - t0)
            time.sleep(0.1)

    watcher = threading.Thread(target=watch_health)
    watcher.start()
    latencies, counts = _run_for(args.window, args.gen_clients, lambda s: s.post(
        server.api("/generate"), json=body, headers=server.headers, timeout=300).status_code)
    stop.set()
    watcher.join()
    return {"clients": args.gen_clients, "seeds_per_request": 64, "generate": {**_latency(latencies), "answers": counts},
            "health_during": _latency(health)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50, help="status pollers")
    ap.add_argument("--poll-interval", type=float, default=0.5, help="seconds between one paced client's polls")
    ap.add_argument("--window", type=float, default=30.0, help="seconds each measurement runs")
    ap.add_argument("--gen-clients", type=int, default=10, help="clients of the busy-generate phase")
    ap.add_argument("--threads", type=int, default=8, help="the server's HTTP threads")
    args = ap.parse_args(argv)

    load_before = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="latent-load-") as tmp:
        server = start_server(Path(tmp) / "data", threads=args.threads)  # binds 127.0.0.1 on a free port
        try:
            dataset = prepared_dataset(server)
            r = create_job(server, dataset["id"], title="load check", steps=25000, snapshot_every=1000)
            r.raise_for_status()
            job_id = r.json()["id"]
            # Steady training first: past the first snapshot and a few progress reports.
            wait_job(server, job_id, lambda j: j["state"] == "running" and j["step"] >= 20, 600)
            result = {
                "machine": {"cpus": os.cpu_count(), "load_average_before": load_before, "server_threads": args.threads},
                "status_poll": status_polls(server, job_id, args),
                "generate_during_walk": generate_during_walk(server, job_id, args),
                "busy_generate": busy_generate(server, job_id, args),
            }
            paced = result["status_poll"]["paced"]
            result["goals"] = {
                "status_p99_ms_below": STATUS_P99_GOAL_MS, "status_p99_met": paced.get("p99_ms", 1e9) < STATUS_P99_GOAL_MS,
                "training_ratio_at_least": TRAINING_RATIO_GOAL,
                "training_ratio_met": (paced.get("training_vs_unpolled") or 0) >= TRAINING_RATIO_GOAL,
            }
            requests.post(server.api(f"/jobs/{job_id}/cancel"), headers=server.headers, timeout=30)
        finally:
            stop_server(server.process, timeout=60)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
