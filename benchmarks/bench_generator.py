"""Generator inference speed: images/s at batch 1 and 16, CPU (fp32) and CUDA when present.

Configs (random weights; speed does not depend on the values):
  tiny32   the test fixture: 32x32, z=w=64, 2 mapping layers, channel_base 2048, channel_max 128
  sg2_64   64x64, z=w=512, 8 mapping layers, channel_base 16384, channel_max 512 (~24M params)
  sg2_256  256x256, z=w=512, 8 mapping layers, channel_base 16384, channel_max 512 (~25M params,
           the StyleGAN2-ADA "paper256" generator)
On CUDA each config also runs with num_fp16_res=4 (fp16 for the top 4 resolutions, conv_clamp 256).

Usage: python benchmarks/bench_generator.py [--device cpu|cuda|all] [--configs tiny32,sg2_64] [--min-time 2]
       [--threads N]
Prints one JSON object; each figure is the median of >= 3 timed runs after 2 warm-ups.
Timings on a shared machine are only indicative.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from gan_core.nn.networks import Generator

CONFIGS = {
    "tiny32": dict(z_dim=64, w_dim=64, img_resolution=32, mapping_kwargs={"num_layers": 2},
                   synthesis_kwargs={"channel_base": 2048, "channel_max": 128, "conv_clamp": 256}),
    "sg2_64": dict(z_dim=512, w_dim=512, img_resolution=64, mapping_kwargs={"num_layers": 8},
                   synthesis_kwargs={"channel_base": 16384, "channel_max": 512, "conv_clamp": 256}),
    "sg2_256": dict(z_dim=512, w_dim=512, img_resolution=256, mapping_kwargs={"num_layers": 8},
                    synthesis_kwargs={"channel_base": 16384, "channel_max": 512, "conv_clamp": 256}),
}
BATCHES = (1, 16)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def time_generator(G: Generator, device: torch.device, batch: int, min_time: float, min_reps: int = 3,
                   max_reps: int = 50) -> dict:
    """Median time per batch over at least `min_reps` runs (median: robust to a busy machine)."""
    z = torch.randn([batch, G.z_dim], device=device)
    for _ in range(2):  # warm-up: allocator, oneDNN/cuDNN kernel selection, weight caches
        G(z, None, noise_mode="const")
    _sync(device)
    times: list[float] = []
    while len(times) < min_reps or (sum(times) < min_time and len(times) < max_reps):
        start = time.perf_counter()
        G(z, None, noise_mode="const")
        _sync(device)
        times.append(time.perf_counter() - start)
    per_batch = statistics.median(times)
    return {"batch": batch, "reps": len(times), "images_per_s": round(batch / per_batch, 2),
            "s_per_image": round(per_batch / batch, 5)}


def build(name: str, fp16: bool) -> Generator:
    kw = json.loads(json.dumps(CONFIGS[name]))
    if fp16:
        kw["synthesis_kwargs"]["num_fp16_res"] = 4
    torch.manual_seed(0)
    return Generator(c_dim=0, img_channels=3, **kw).eval()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="all", choices=("cpu", "cuda", "all"))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds of timed runs per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = []
    if args.device in ("cpu", "all"):
        devices.append(torch.device("cpu"))
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda:0"))
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
              "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "results": []}
    for name in args.configs.split(","):
        for device in devices:
            for fp16 in ((False, True) if device.type == "cuda" else (False,)):
                G = build(name, fp16).to(device)
                params = sum(p.numel() for p in G.parameters())
                for batch in BATCHES:
                    row = {"config": name, "device": device.type, "precision": "fp16-top4" if fp16 else "fp32",
                           "params_M": round(params / 1e6, 2)}
                    row.update(time_generator(G, device, batch, args.min_time))
                    result["results"].append(row)
                del G
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
