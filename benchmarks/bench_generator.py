"""Generator inference speed: images/s per batch size, per device and precision, optionally
side by side with the NVlabs StyleGAN2-ADA reference generator.

Configs (random weights; speed does not depend on the values):
  tiny32   the test fixture: 32x32, z=w=64, 2 mapping layers, channel_base 2048, channel_max 128
  sg2_64   64x64, z=w=512, 8 mapping layers, channel_base 16384, channel_max 512 (~24M params)
  sg2_128  the same widths at 128x128
  sg2_256  the same widths at 256x256 (~25M params, the StyleGAN2-ADA "paper256" generator)
All are built with the top 4 resolutions reducible (num_fp16_res=4, conv_clamp 256); a row's
precision says what they ran in (fp32: none reduced; rows on the CPU default to fp32).

The precisions of one config are copies of the same weights timed in alternation (so their
ratios, speedup_vs_fp32, are side by side). --reference DIR adds the reference's Generator
from the same kwargs with the same weights (loaded strict) to the alternation, on the same z.
It runs its own fp16 on CUDA unless our row is fp32, and fp32 on the CPU (its fp16 has no
fast CPU kernels).

Usage: python benchmarks/bench_generator.py [--device cpu|cuda|all] [--configs tiny32,sg2_64] [--min-time 2]
       [--batches 1,16] [--precisions fp32,fp16,bf16] [--threads N] [--reference DIR]
Prints one JSON object; each figure is the median of >= 3 timed runs after 2 warm-ups.
Timings on a shared machine are only indicative.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_core import rules  # noqa: E402
from gan_core.nn.networks import Generator, set_precision  # noqa: E402

CONFIGS = {
    "tiny32": dict(z_dim=64, w_dim=64, img_resolution=32, mapping_kwargs={"num_layers": 2},
                   synthesis_kwargs={"channel_base": 2048, "channel_max": 128, "conv_clamp": 256}),
    "sg2_64": dict(z_dim=512, w_dim=512, img_resolution=64, mapping_kwargs={"num_layers": 8},
                   synthesis_kwargs={"channel_base": 16384, "channel_max": 512, "conv_clamp": 256}),
    "sg2_128": dict(z_dim=512, w_dim=512, img_resolution=128, mapping_kwargs={"num_layers": 8},
                    synthesis_kwargs={"channel_base": 16384, "channel_max": 512, "conv_clamp": 256}),
    "sg2_256": dict(z_dim=512, w_dim=512, img_resolution=256, mapping_kwargs={"num_layers": 8},
                    synthesis_kwargs={"channel_base": 16384, "channel_max": 512, "conv_clamp": 256}),
}
DEFAULT_BATCHES = {"cpu": (1, 16), "cuda": (1, 16, 64)}
DEFAULT_PRECISIONS = {"cpu": ("fp32",), "cuda": ("fp32", "fp16", "bf16")}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def time_alternating(runs: dict, device: torch.device, min_time: float, min_reps: int = 3,
                     max_reps: int = 50) -> dict:
    """Median seconds per call of each callable in `runs`, calls alternating between them (so
    a busy neighbour slows all alike), at least `min_reps` each and until each has had
    `min_time` seconds; 2 untimed calls each first (allocator, cuDNN and oneDNN choices)."""
    for fn in runs.values():
        for _ in range(2):
            fn()
    _sync(device)
    times = {name: [] for name in runs}

    def more(t):
        return len(t) < min_reps or (sum(t) < min_time and len(t) < max_reps)

    while any(more(t) for t in times.values()):
        for name, fn in runs.items():
            if not more(times[name]):
                continue
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(t), len(t)) for name, t in times.items()}


def build(name: str) -> Generator:
    kw = json.loads(json.dumps(CONFIGS[name]))
    kw["synthesis_kwargs"]["num_fp16_res"] = 4
    torch.manual_seed(0)
    return Generator(c_dim=0, img_channels=3, **kw).eval()


def _reference_module():
    """benchmarks/reference_trainer.py, whether this runs as a script or is imported."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import reference_trainer

    return reference_trainer


def _csv(kind):
    return lambda text: tuple(kind(v) for v in text.split(",") if v.strip())


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="all", choices=("cpu", "cuda", "all"))
    parser.add_argument("--configs", type=_csv(str), default=tuple(CONFIGS))
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds of timed runs per measurement")
    parser.add_argument("--batches", type=_csv(int), default=None, help="default: 1,16 on the CPU, 1,16,64 on CUDA")
    parser.add_argument("--precisions", type=_csv(str), default=None,
                        help="default: fp32 on the CPU, fp32,fp16,bf16 on CUDA")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--reference", metavar="DIR", default=None,
                        help="also time the reference generator (unpacked stylegan2-ada-pytorch in DIR)")
    args = parser.parse_args(argv)
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown config(s) {unknown}: use {', '.join(CONFIGS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = []
    if args.device in ("cpu", "all"):
        devices.append(torch.device("cpu"))
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda:0"))
    if args.device == "cuda" and not devices:
        parser.error("--device cuda: CUDA is not available on this machine")
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
              "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "results": []}
    for name in args.configs:
        for device in devices:
            precisions = args.precisions or DEFAULT_PRECISIONS[device.type]
            for precision in precisions:
                try:
                    rules.check_precision(precision, device.type)
                except rules.RuleError as exc:
                    parser.error(str(exc))
            # one copy of the same weights per precision, timed in alternation with each other
            nets = {p: set_precision(build(name).to(device), p) for p in precisions}
            G0 = nets[precisions[0]]
            params = sum(p.numel() for p in G0.parameters())
            ref_G = None
            if args.reference:
                rt = _reference_module()
                ref = rt.load(args.reference)
                ref_G = rt.build_generator(ref, G0.init_kwargs, G0.state_dict()).eval().to(device)
            for batch in args.batches or DEFAULT_BATCHES[device.type]:
                z = torch.randn([batch, G0.z_dim], device=device)
                runs = {p: (lambda G=G: G(z, None, noise_mode="const")) for p, G in nets.items()}
                # The reference at each of our precisions: its fp16 on CUDA (fp32 rows: fp32); on the
                # CPU always fp32, since its fp16 has no fast kernels there.
                ref_fp32 = {p: device.type == "cpu" or p == "fp32" for p in precisions}
                if ref_G is not None:
                    for mode in sorted(set(ref_fp32.values())):
                        runs[f"reference_fp32={mode}"] = (lambda m=mode: ref_G(z, None, noise_mode="const",
                                                                               force_fp32=m))
                timed = time_alternating(runs, device, args.min_time)
                for precision in precisions:
                    per_batch, reps = timed[precision]
                    row = {"config": name, "device": device.type, "precision": precision,
                           "params_M": round(params / 1e6, 2), "batch": batch, "reps": reps,
                           "images_per_s": round(batch / per_batch, 2), "s_per_image": round(per_batch / batch, 5)}
                    if "fp32" in timed and precision != "fp32":
                        row["speedup_vs_fp32"] = round(timed["fp32"][0] / per_batch, 3)
                    if ref_G is not None:
                        ref_per_batch, ref_reps = timed[f"reference_fp32={ref_fp32[precision]}"]
                        row.update(reference_images_per_s=round(batch / ref_per_batch, 2), reference_reps=ref_reps,
                                   reference_precision="fp32" if ref_fp32[precision] else "fp16",
                                   speedup_vs_reference=round(ref_per_batch / per_batch, 3))
                    result["results"].append(row)
            if ref_G is not None and device.type == "cuda":
                result["reference_cuda_kernels"] = rt.plugin_status(ref)
            del nets, G0, ref_G
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
