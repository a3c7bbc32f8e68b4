"""How long picking the newest whole snapshot takes: `latest_snapshot` (headers, sizes, shapes
and the state's zip directory) against the old way (loading G_ema from the network file and
the whole training state, as `load_resumable` still does when it resumes), alternated in one run on the same files. Prints one JSON object.

    python benchmarks/bench_snapshot_check.py [--res 256] [--preset stylegan2] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_core.models.checkpoint import load_network, load_training_state, save_network, save_training_state  # noqa: E402
from gan_core.nn.networks import build_discriminator, build_generator, preset_kwargs  # noqa: E402
from gan_core.train.snapshots import STATE_FORMAT, latest_snapshot, record_snapshot, snapshot_files  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", type=int, default=256, help="resolution of the networks (default: 256)")
    ap.add_argument("--preset", default="stylegan2", help="network preset (default: stylegan2)")
    ap.add_argument("--reps", type=int, default=5, help="timed runs of each way (default: 5)")
    args = ap.parse_args()
    kw = preset_kwargs(args.res, args.preset)
    G, D = build_generator(kw["G"]), build_discriminator(kw["D"])
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        files = snapshot_files(run, 1)
        files["network"].parent.mkdir(parents=True)
        save_network(files["network"], G, G=G, D=D)
        save_training_state(files["state"], {"format": STATE_FORMAT, "step": 1, "G": G.state_dict(),
                                             "D": D.state_dict(), "G_ema": G.state_dict()})
        record_snapshot(run, 1, 0.0)
        ways = {"latest_snapshot": lambda: latest_snapshot(run),
                "old_load_network_and_state": lambda: (load_network(files["network"], parts=("G_ema",)),
                                                       load_training_state(files["state"]))}
        times = {k: [] for k in ways}
        for _ in range(args.reps):
            for name, fn in ways.items():  # alternated: both see the same cache state
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(json.dumps({
            "benchmark": "snapshot_check", "res": args.res, "preset": args.preset, "reps": args.reps,
            "network_mb": round(files["network"].stat().st_size / 2**20, 1),
            "state_mb": round(files["state"].stat().st_size / 2**20, 1),
            "median_s": {k: round(v, 4) for k, v in med.items()},
            "ratio_latest_to_load": round(med["latest_snapshot"] / med["old_load_network_and_state"], 4),
            "torch": torch.__version__, "machine": platform.machine(), "cpus": torch.get_num_threads(),
        }, indent=1))


if __name__ == "__main__":
    main()
