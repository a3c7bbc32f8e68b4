"""Seamless texture speed on the CPU: how long a 1024 px tileable texture takes from a 256 px
model (size multiplier 4), next to the plain and seamless 256 px image it is made from.

Random weights (speed does not depend on them) of the `stylegan2` preset at 256 px (the
paper config, ~30M parameters), rendered through gan_core.generate.ModelRunner as the CLI
and the server do: seamless wrap-around padding, the 4x4 const tiled, fresh const noise
and the per-tile layout field (gan_core.texture_field).

Usage: python benchmarks/bench_texture.py [--res 256] [--preset stylegan2] [--size-multiplier 4]
       [--reps 1] [--threads N] [--device cpu]
Prints one JSON object: seconds per image (plain and seamless alternating, median of
max(3, --reps) runs; the enlarged texture, median of --reps; each after one warm-up) for
plain, seamless and enlarged renders, the enlarged/seamless time ratio against the
pixel ratio, and the process's peak resident memory after each (ru_maxrss: what bounds
an enlarged render is one image's activations; see docs/BENCHMARKS.md).

The explorer's grid latency is measured by benchmarks/bench_explorer.py (the explorer's
own benchmark); a seamless grid there costs what `seamless_s` costs here per cell.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_core import rules  # noqa: E402
from gan_core.generate import ModelRunner  # noqa: E402
from gan_core.nn.networks import build_generator, preset_kwargs  # noqa: E402


def _peak_rss_mb() -> float:
    # Linux reports KiB, macOS bytes
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _time(runs: dict, reps: int) -> dict:
    """Median seconds per call of each callable, calls alternating between them (a busy
    neighbour slows all alike), after one untimed call each (allocator, oneDNN kernel
    choices, the cached layout offsets)."""
    for fn in runs.values():
        fn()
    times = {name: [] for name in runs}
    for _ in range(reps):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: round(statistics.median(t), 3) for name, t in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", type=int, default=256, help="the model's resolution")
    ap.add_argument("--preset", default="stylegan2", choices=rules.PRESETS, help="network size")
    ap.add_argument("--size-multiplier", type=int, default=4, help="enlargement (4: 256 px -> 1024 px)")
    ap.add_argument("--reps", type=int, default=1, help="timed runs per figure (after one warm-up)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    args = ap.parse_args(argv)
    rules.check_size_multiplier(args.size_multiplier)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    G = build_generator(preset_kwargs(args.res, args.preset)["G"]).eval()
    runner = ModelRunner(G, device=args.device)
    mult = args.size_multiplier
    result = {"benchmark": "texture", "device": str(runner.device), "precision": runner.precision,
              "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
              "torch": torch.__version__, "model": f"{args.preset} {args.res} px (random weights)",
              "size_multiplier": mult, "texture_px": args.res * mult}
    result.update(_time({"plain_s": lambda: runner.generate(seeds=[0], seamless=False),
                         "seamless_s": lambda: runner.generate(seeds=[0], seamless=True)}, max(3, args.reps)))
    result["peak_rss_mb_after_plain"] = _peak_rss_mb()
    image = runner.generate(seeds=[0], size_multiplier=mult)
    assert image.shape == (1, args.res * mult, args.res * mult, 3)
    result.update(_time({"texture_s": lambda: runner.generate(seeds=[0], size_multiplier=mult)}, args.reps))
    result["peak_rss_mb_after_texture"] = _peak_rss_mb()
    result["seamless_overhead"] = round(result["seamless_s"] / result["plain_s"], 3)
    result["texture_vs_seamless"] = round(result["texture_s"] / result["seamless_s"], 2)
    result["pixel_ratio"] = mult * mult
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
