"""Benchmark projection quality: the D-feature loss against the pixel-only baseline.

Trains the micro networks on random 32 px discs on the CPU (as tests/unit/test_project.py
does: 800 steps, path length off, short EMA; about a minute on one thread), then projects
held-out discs (sets not used in training) with each loss at the same step budget, in W and
W+, and prints JSON: the sliced Wasserstein patch distance of the reconstructions to the
targets (gan_core.train.metrics, mean of 3 seeds; lower is better), the mean PSNR, and the
seconds per projection step.

    OMP_NUM_THREADS=1 python benchmarks/bench_projection.py --images 10 --steps 200
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def psnr(a, b) -> float:
    import numpy as np

    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255 ** 2 / max(mse, 1e-10)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10, help="held-out images per set (default: 10)")
    parser.add_argument("--steps", type=int, default=200, help="projection steps (default: 200)")
    parser.add_argument("--train-steps", type=int, default=800, help="training steps (default: 800)")
    parser.add_argument("--held-out-seeds", default="1234,4321", help="random_discs seeds of the held-out sets")
    args = parser.parse_args()

    import numpy as np
    import torch

    from gan_core.data.writer import write_images
    from gan_core.models.checkpoint import load_network
    from gan_core.project import project
    from gan_core.train.loop import TrainingConfig, train
    from gan_core.train.metrics import SlicedWassersteinDistance
    from tests.support.training_data import MICRO_NETWORKS, random_discs

    torch.set_num_threads(1)
    out = {"train_steps": args.train_steps, "steps": args.steps, "images": args.images, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        data = write_images(Path(tmp) / "discs.zip", random_discs(256, res=32, seed=0))
        t0 = time.perf_counter()
        train(TrainingConfig(data=str(data), run_dir=str(Path(tmp) / "run"), steps=args.train_steps,
                             snapshot_every=args.train_steps, batch=8, preset="tiny", network_kwargs=MICRO_NETWORKS,
                             aug="off", grid_size=None, device="cpu", report_every=args.train_steps, pl_weight=0.0,
                             ema_kimg=0.5))
        out["train_s"] = round(time.perf_counter() - t0, 1)
        nets = load_network(Path(tmp) / "run" / "snapshots" / f"network-{args.train_steps:06d}.safetensors",
                            parts=("G_ema", "D"))
    G, D = nets["G_ema"], nets["D"]
    for held_out in (int(s) for s in args.held_out_seeds.split(",")):
        targets = np.stack(random_discs(args.images, res=32, seed=held_out))
        for w_plus in (False, True):
            for loss in ("dfeat", "pixel"):
                t0 = time.perf_counter()
                results = [project(G, D, t, steps=args.steps, loss=loss, w_plus=w_plus, seed=0) for t in targets]
                seconds = time.perf_counter() - t0
                recons = np.stack([r.image for r in results])
                swd = np.mean([SlicedWassersteinDistance(targets, seed=s)(recons)["swd"] for s in range(3)])
                out["runs"].append({"held_out_seed": held_out, "space": "W+" if w_plus else "W", "loss": loss,
                                    "swd": round(float(swd), 4),
                                    "psnr_db": round(float(np.mean([psnr(r.image, t) for r, t in zip(results, targets)])), 2),
                                    "s_per_step": round(seconds / (args.steps * args.images), 4)})
                print(json.dumps(out["runs"][-1]), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
