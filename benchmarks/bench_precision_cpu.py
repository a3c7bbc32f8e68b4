"""Why the CPU refuses fp16 and offers bf16 (gan_core.rules.DEVICE_PRECISIONS): the same
networks with their reducible blocks in fp32, bf16 and fp16, timed in alternation on the CPU.

  inference   G(z) without gradients, batch --batch
  train step  G(z) -> D -> backward through both (the work of a main G or D phase), batch --batch

Networks: the "small" preset (top 4 resolutions reducible) at --res, random weights. Each
figure is the median of >= --reps timed runs after one warm-up; ratios are to fp32 in the
same run. bf16 is fast only on CPUs with bf16 instructions (avx512_bf16, amx_bf16): the
result lists which of them this CPU has. Prints one JSON object.

    python benchmarks/bench_precision_cpu.py [--res 32] [--batch 4] [--reps 3] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_core.nn.networks import build_discriminator, build_generator, preset_kwargs, set_precision  # noqa: E402

PRECISIONS = ("fp32", "bf16", "fp16")


def cpu_bf16_flags() -> list[str]:
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return []
    return sorted(f for f in flags if "bf16" in f)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3, help="timed runs per figure (default: 3)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    kw = preset_kwargs(args.res, "small")
    torch.manual_seed(0)
    G0, D0 = build_generator(kw["G"]), build_discriminator(kw["D"])
    nets = {p: (set_precision(copy.deepcopy(G0), p), set_precision(copy.deepcopy(D0), p)) for p in PRECISIONS}
    z = torch.randn([args.batch, G0.z_dim])

    def inference(p):
        with torch.no_grad():
            nets[p][0].eval()(z, None, noise_mode="const")

    def train_step(p):
        G, D = nets[p]
        G.train().requires_grad_(True)
        D.train().requires_grad_(True)
        D(G(z, None), None).float().sum().backward()
        G.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)

    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
              "cpu_bf16_flags": cpu_bf16_flags(), "res": args.res, "batch": args.batch, "net": "small"}
    for name, work in (("inference", inference), ("train_step", train_step)):
        for p in PRECISIONS:  # warm-up: oneDNN picks its kernels per dtype and shape
            work(p)
        times = {p: [] for p in PRECISIONS}
        for _ in range(args.reps):
            for p in PRECISIONS:
                t0 = time.perf_counter()
                work(p)
                times[p].append(time.perf_counter() - t0)
        med = {p: statistics.median(t) for p, t in times.items()}
        result[name] = {p: {"s": round(med[p], 4), "vs_fp32": round(med[p] / med["fp32"], 2)} for p in PRECISIONS}
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
