"""Latent-space explorer latency: one POST /explore's work, timed in the library.

What the server's render thread does for one request: `gan_core.explore.explore` (the
neighbour latents, one mapping pass, synthesis in batches of the server's BATCH) and then
the answer's encoding (the grid PNG, one PNG per cell, the JSON with every z and w). The
network is a preset at a resolution with random weights (speed does not depend on the
values); the default is what `auto` trains at 256 px, the stylegan2 preset.

Usage: python benchmarks/bench_explorer.py [--device cpu] [--resolution 256] [--preset stylegan2]
       [--grid 4] [--runs 2] [--threads N]
Prints one JSON object; render_s, encode_s and total_s are medians of --runs timed requests
after one warm-up. Timings on a shared machine are only indicative.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_core import rules  # noqa: E402
from gan_core.explore import explore  # noqa: E402
from gan_core.generate import ModelRunner, encode_png  # noqa: E402
from gan_core.nn.networks import build_generator, preset_kwargs  # noqa: E402

SERVER_BATCH = 8  # server.generation.gpu.BATCH (the benchmark imports no server code)


def _encode(grid) -> int:
    """The answer's encoding, as the server builds it; returns its size in bytes."""
    cells = grid.cells()
    for cell, image in zip(cells, grid.images):
        cell["png"] = base64.b64encode(encode_png(image)).decode("ascii")
    answer = {"grid_png": base64.b64encode(encode_png(grid.grid_image())).decode("ascii"), "cells": cells}
    return len(json.dumps(answer))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--resolution", type=int, default=256, help="image side in pixels (default: 256)")
    parser.add_argument("--preset", default="stylegan2", choices=rules.PRESETS, help="network size (default: stylegan2)")
    parser.add_argument("--grid", type=int, default=4, help="N for an N x N grid (default: 4)")
    parser.add_argument("--runs", type=int, default=2, help="timed requests after one warm-up (default: 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    G = build_generator(preset_kwargs(args.resolution, args.preset)["G"]).eval()
    runner = ModelRunner(G, device=args.device)
    device = runner.device

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def one(seed: int) -> tuple[float, float, int]:
        sync()
        t0 = time.perf_counter()
        grid = explore(runner, seed=seed, grid=args.grid, distance=0.3, neighbourhood_seed=seed, psi=0.7,
                       batch_size=SERVER_BATCH)
        sync()
        t1 = time.perf_counter()
        size = _encode(grid)
        return t1 - t0, time.perf_counter() - t1, size

    one(0)  # warm-up: allocations, kernel choices
    runs = [one(seed) for seed in range(1, args.runs + 1)]
    render = statistics.median(r[0] for r in runs)
    encode = statistics.median(r[1] for r in runs)
    result = {
        "benchmark": "explorer", "device": str(device), "precision": runner.precision,
        "threads": torch.get_num_threads(), "machine": platform.machine(), "torch": torch.__version__,
        "preset": args.preset, "resolution": args.resolution, "grid": f"{args.grid}x{args.grid}",
        "cells": args.grid ** 2, "batch": SERVER_BATCH, "runs": args.runs,
        "render_s": round(render, 3), "encode_s": round(encode, 3), "total_s": round(render + encode, 3),
        "ms_per_cell": round(1000 * (render + encode) / args.grid ** 2, 1),
        "answer_bytes": runs[-1][2],
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
