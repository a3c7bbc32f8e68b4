"""Benchmark the dataset builder: synthetic 1024x768 JPEGs -> 256x256 dataset zip.

Prints JSON: images/s single-process vs parallel, and peak resident memory (ru_maxrss) of
the building process and of its largest worker. Each build runs in a fresh subprocess so the
peaks do not mix.

    python benchmarks/bench_dataset.py --count 1000 --workers 8
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_images(folder: Path, count: int, width: int, height: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        # Smooth random colour fields plus fine noise: realistic JPEG cost, no near duplicates.
        small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
        base = np.asarray(Image.fromarray(small).resize((width, height), Image.BICUBIC), dtype=np.int16)
        noise = rng.integers(-12, 13, (height, width, 1), dtype=np.int16)
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(folder / f"img{i:05d}.jpg", quality=90)


def run_one(src: str, out: str, workers: int, resolution: int) -> dict:
    from gan_core.data import build_dataset

    t0 = time.perf_counter()
    report = build_dataset(src, out, resolution=resolution, workers=workers)
    elapsed = time.perf_counter() - t0
    kb = 1 if sys.platform != "darwin" else 1 / 1024  # ru_maxrss: KiB on Linux, bytes on macOS
    return {
        "workers": workers,
        "accepted": report["counts"]["accepted"],
        "seconds": round(elapsed, 2),
        "images_per_s": round(report["counts"]["found"] / elapsed, 1),
        "peak_rss_parent_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kb / 1024, 1),
        "peak_rss_largest_worker_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kb / 1024, 1),
        "zip_mb": round(os.path.getsize(out) / 1e6, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8))
    ap.add_argument("--size", default="1024x768", help="source image size WxH")
    ap.add_argument("--_run", nargs=3, metavar=("SRC", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._run:
        src, out, workers = args._run
        print(json.dumps(run_one(src, out, int(workers), args.res)))
        return
    w, h = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        t0 = time.perf_counter()
        make_images(src, args.count, w, h)
        make_s = time.perf_counter() - t0
        runs = {}
        for label, workers in (("single_process", 1), ("parallel", args.workers)):
            cmd = [sys.executable, __file__, "--res", str(args.res), "--_run", str(src), str(Path(tmp) / f"{label}.zip"), str(workers)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs[label] = json.loads(proc.stdout.strip().splitlines()[-1])
        result = {
            "count": args.count,
            "source_size": f"{w}x{h}",
            "source_mb": round(sum(p.stat().st_size for p in src.iterdir()) / 1e6, 1),
            "resolution": args.res,
            "cpu_count": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            "make_images_s": round(make_s, 1),
            **runs,
            "speedup": round(runs["parallel"]["images_per_s"] / runs["single_process"]["images_per_s"], 2),
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
