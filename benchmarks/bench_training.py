"""Training throughput: images/s and sec/kimg of full training steps (D + R1 + G + PL + EMA).

CPU: 32x32 "tiny" networks (batch 16, channel_base 2048, channel_max 128, 2 mapping layers)
with augmentation off, ADA at its start (p = 0: every transform skipped) and a fixed p = 0.5
(what ADA costs once it has kicked in). CUDA (when present): 64, 128 and 256 px.
Steps are timed after warm-up, snapshots excluded. Prints one JSON document.

    python benchmarks/bench_training.py [--steps 10] [--threads N] [--skip-cuda]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gan_core.train.loop import TrainingConfig, _Run  # noqa: E402


def _dataset(path: Path, res: int, count: int = 64) -> Path:
    from gan_core.data.writer import write_images

    rng = np.random.RandomState(0)
    return write_images(path, [rng.randint(0, 256, (res, res, 3)) for _ in range(count)])


def measure(res: int, preset: str, batch: int, aug: str, aug_p: float, device: str, steps: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data = _dataset(Path(tmp) / "d.zip", res)
        cfg = TrainingConfig(data=str(data), run_dir=str(Path(tmp) / "run"), steps=10 ** 6, batch=batch,
                             preset=preset, aug=aug, aug_p=aug_p, device=device, grid_size=None)
        run = _Run(cfg, None, None)
        run.setup()
        for _ in range(warmup):
            run.train_step()
        sync = torch.cuda.synchronize if run.device.type == "cuda" else (lambda: None)
        sync()
        t0 = time.perf_counter()
        # Cover a whole lazy-regularisation cycle pattern proportionally: steps are consecutive.
        for _ in range(steps):
            run.train_step()
        sync()
        elapsed = time.perf_counter() - t0
        run.dataset.close()
    images = steps * batch
    return {"resolution": res, "preset": preset, "batch": batch, "aug": aug, "aug_p": aug_p,
            "device": str(run.device), "steps": steps, "images_per_s": round(images / elapsed, 3),
            "sec_per_kimg": round(elapsed / images * 1000, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=16, help="timed steps per case (16 = one R1 cycle)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--skip-cuda", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {"torch": torch.__version__, "machine": platform.processor() or platform.machine(),
               "threads": torch.get_num_threads(), "cpu": []}
    for aug, p in (("off", 0.0), ("ada", 0.0), ("fixed", 0.5)):
        results["cpu"].append(measure(32, "tiny", 16, aug, p, "cpu", args.steps, args.warmup))
    off = results["cpu"][0]["sec_per_kimg"]
    results["cpu_ratio_ada_start_vs_off"] = round(results["cpu"][1]["sec_per_kimg"] / off, 3)
    results["cpu_ratio_aug_p05_vs_off"] = round(results["cpu"][2]["sec_per_kimg"] / off, 3)
    if torch.cuda.is_available() and not args.skip_cuda:
        results["cuda_device"] = torch.cuda.get_device_name(0)
        results["cuda"] = []
        for res in (64, 128, 256):
            for aug, p in (("off", 0.0), ("fixed", 0.5)):
                results["cuda"].append(measure(res, "stylegan2", 32, aug, p, "cuda", args.steps, args.warmup))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
