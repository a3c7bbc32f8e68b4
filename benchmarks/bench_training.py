"""Training throughput: images/s and sec/kimg of full training steps (D + R1 + G + PL + EMA).

Our rows (the default). CPU: 32x32 "tiny" networks (batch 16) with augmentation off, ADA at
its start (p = 0: every transform skipped) and a fixed p = 0.5. CUDA (when present): 64, 128
and 256 px with the "sg2" widths (channel_base 16384, channel_max 512, 8 mapping layers,
fp16-capable top 4 resolutions, conv_clamp 256), batch 32, in each --precisions.

Side by side (--reference DIR): the NVlabs StyleGAN2-ADA reference trainer and ours on the
identical networks (ours' kwargs and initial weights loaded into its classes, strict), the
same dataset zip, batch and regularisation, with augmentation off and ADA at p = 0.5. After
warm-up the two alternate in chunks of --steps steps (ABBA order over --rounds rounds), so
drift on a shared machine hits both; sec/kimg is each side's timed images over its time.
--conv-floor-steps N (CPU) also profiles N steps of each side for the seconds spent inside
convolutions: ours divided by the reference's whole (unprofiled) step is the lowest ratio
ours could reach if nothing but our convolutions took time.

Steps are timed after warm-up, snapshots excluded. Prints one JSON document.

    python benchmarks/bench_training.py [--steps 16] [--warmup 2] [--threads N] [--device cpu|cuda|all]
    python benchmarks/bench_training.py --reference reference --device cpu --res 32 --batch 16 --net tiny
    python benchmarks/bench_training.py --reference reference --device cuda --res 256 --batch 32 --net sg2 \\
        --profile-steps 8
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gan_core.train.loop import TrainingConfig, _Run  # noqa: E402

# name -> (preset, network_kwargs merged over it)
NETS = {
    "tiny": ("tiny", None),  # channel_base 2048, channel_max 128, 2 mapping layers, z = w = 64, all fp32
    "small": ("small", None),  # channel_base 8192, channel_max 256, 4 mapping layers, top 4 resolutions reducible
    # the issue-18 config: the reference's paper256 widths, 8 mapping layers, top 4 resolutions reducible
    "sg2": ("stylegan2", {"G": {"synthesis_kwargs": {"channel_base": 16384}}, "D": {"channel_base": 16384}}),
    # a smoke-test net: seconds on a CPU, with reducible blocks so every precision path runs
    "micro": ("tiny", {"G": {"z_dim": 16, "w_dim": 16, "synthesis_kwargs": {"channel_base": 256, "channel_max": 16,
                                                                            "num_fp16_res": 2}},
                       "D": {"channel_base": 256, "channel_max": 16, "num_fp16_res": 2}}),
}
# name -> (aug mode, p): off; ADA from p = 0 (transforms skipped); ADA from p = 0.5; fixed p = 0.5
CASES = {"off": ("off", 0.0), "ada_start": ("ada", 0.0), "ada_p05": ("ada", 0.5), "fixed_p05": ("fixed", 0.5)}
ROW_DEFAULTS = {
    "cpu": dict(resolutions=(32,), net="tiny", batch=16, cases=("off", "ada_start", "fixed_p05"), precisions=("fp32",)),
    "cuda": dict(resolutions=(64, 128, 256), net="sg2", batch=32, cases=("off",), precisions=("fp32", "fp16", "bf16")),
}
SIDE_BY_SIDE_CASES = ("off", "ada_p05")


def make_dataset(path: Path, res: int, count: int = 64) -> Path:
    """Smooth random images (upsampled 8x8 noise): they compress and decode like real
    pictures, where pure noise would make PNG decoding the bottleneck."""
    from PIL import Image

    from gan_core.data.writer import write_images

    rng = np.random.RandomState(0)
    images = [np.asarray(Image.fromarray(rng.randint(0, 256, (8, 8, 3), dtype=np.uint8)).resize(
        (res, res), Image.BILINEAR)) for _ in range(count)]
    return write_images(path, images)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _backend_flags(device: torch.device, tf32: bool) -> None:
    """TF32 and cuDNN autotuning are process-wide: set each side's own before it runs."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True


def our_run(tmp: Path, data: Path, *, net: str, batch: int, case: str, device: str, precision: str = "auto",
            channels_last: bool = False, compile: bool = False, tf32: bool = True) -> _Run:
    preset, override = NETS[net]
    aug, aug_p = CASES[case]
    cfg = TrainingConfig(data=str(data), run_dir=str(tmp / f"run-{case}-{precision}"), steps=10 ** 6, batch=batch,
                         preset=preset, network_kwargs=override, aug=aug, aug_p=aug_p, device=device, grid_size=None,
                         precision=precision, channels_last=channels_last, compile=compile, tf32=tf32)
    run = _Run(cfg, None, None)
    run.setup()
    return run


class UtilSampler:
    """GPU utilisation (nvidia-smi's %, via NVML) sampled every 50 ms while active."""

    def __init__(self, device: torch.device):
        self.samples: list[int] = []
        self.ok = device.type == "cuda"
        if self.ok:
            try:
                torch.cuda.utilization(device)
            except Exception:  # no NVML binding: report None rather than fail the benchmark
                self.ok = False
        self.device, self._active, self._stop = device, threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True) if self.ok else None
        if self._thread:
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._active.is_set():
                self.samples.append(int(torch.cuda.utilization(self.device)))
            time.sleep(0.05)

    def __enter__(self):
        self._active.set()
        return self

    def __exit__(self, *exc):
        self._active.clear()
        return False

    def summary(self) -> dict | None:
        self._stop.set()
        if not self.ok or not self.samples:
            return None
        return {"mean_pct": round(float(np.mean(self.samples)), 1), "min_pct": int(min(self.samples)),
                "samples": len(self.samples)}


def _timed(step, steps: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return time.perf_counter() - t0


def measure(res: int, net: str, batch: int, case: str, device: str, steps: int, warmup: int,
            precisions=("auto",), **ours) -> list[dict]:
    """Our rows of one config, one per precision: the precisions share one run (the same
    networks, switched with set_precision), each warmed up, then timed in turn for `steps`
    consecutive steps (16: one whole R1 cycle each, so none gets more regularisation)."""
    from gan_core import rules
    from gan_core.nn.networks import set_precision

    chosen = [rules.check_precision(p, torch.device(device).type) for p in precisions]
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "d.zip", res)
        run = our_run(Path(tmp), data, net=net, batch=batch, case=case, device=device, precision=chosen[0], **ours)

        def use(precision):
            for module in (run.G, run.D, run.G_ema):
                set_precision(module, precision)

        elapsed = {}
        try:
            for precision in chosen:
                use(precision)
                for _ in range(warmup):
                    run.train_step()
            for precision in chosen:
                use(precision)
                elapsed[precision] = _timed(run.train_step, steps, run.device)
        finally:
            run.dataset.close()
    images = steps * batch
    aug, aug_p = CASES[case]
    return [{"resolution": res, "net": net, "batch": batch, "case": case, "aug": aug, "aug_p": aug_p,
             "device": str(run.device), "precision": precision, "steps": steps,
             "images_per_s": round(images / elapsed[precision], 3),
             "sec_per_kimg": round(elapsed[precision] / images * 1000, 3)} for precision in chosen]


def profile_ours(run: _Run, steps: int, top: int = 15) -> dict:
    """Where our step's time goes: the torch profiler's top ops by self time on the device
    (CUDA) or the CPU, and the device's busy share of the wall time."""
    from torch.profiler import ProfilerActivity, profile

    cuda = run.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    _sync(run.device)
    with profile(activities=activities) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            run.train_step()
        _sync(run.device)
        wall = time.perf_counter() - t0
    events = prof.key_averages()

    def device_us(e) -> float:
        return float(getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0.0)) or 0.0)

    syncs = _host_syncs(run, steps=min(steps, 4)) if cuda else None
    key = device_us if cuda else (lambda e: float(e.self_cpu_time_total))
    rows = sorted(events, key=key, reverse=True)[:top]
    total_device_ms = sum(device_us(e) for e in events) / 1000
    return {"steps": steps, "wall_ms": round(wall * 1000, 1), "host_syncs": syncs,
            "device_busy_ms": round(total_device_ms, 1) if cuda else None,
            "device_busy_share": round(total_device_ms / (wall * 1000), 3) if cuda else None,
            "top_ops": [{"name": e.key, "calls": int(e.count), "self_cpu_ms": round(e.self_cpu_time_total / 1000, 2),
                         "self_device_ms": round(device_us(e) / 1000, 2) if cuda else None} for e in rows]}


CONV_OPS = ("aten::_convolution", "aten::mkldnn_convolution", "aten::convolution_backward",
            "aten::mkldnn_convolution_transpose", "aten::slow_conv2d_forward", "aten::slow_conv_transpose2d", "aten::_slow_conv2d_forward",
            "aten::_slow_conv2d_backward", "aten::thnn_conv2d", "aten::_nnpack_spatial_convolution")


def conv_seconds_per_step(step, steps: int) -> float:
    """CPU seconds a training step spends inside convolution kernels (forward and backward),
    from the torch profiler's self times. Long kernels are timed faithfully by the profiler
    (its overhead lands on the many small ops), so this is the part of a step that neither
    trainer can shed: both run the same convolutions through the same oneDNN."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    conv_us = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in CONV_OPS)
    return conv_us / 1e6 / steps


def _host_syncs(run: _Run, steps: int) -> dict:
    """Where our step waits for the GPU: torch's sync debug mode warns at every synchronising
    call; the distinct call sites (file:line of the warning) and how often each fired."""
    import warnings

    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(steps):
                run.train_step()
            _sync(run.device)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    sites: dict[str, int] = {}
    for w in caught:
        if "synchroniz" in str(w.message):
            where = f"{Path(w.filename).name}:{w.lineno}"
            sites[where] = sites.get(where, 0) + 1
    return {"steps": steps, "per_step": round(sum(sites.values()) / steps, 2), "sites": sites}


# ------------------------------------------------------------------ side by side with the reference


def _import_reference():
    """benchmarks/reference_trainer.py, importable whether this runs as a script or a module."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import reference_trainer

    return reference_trainer


def side_by_side(args) -> dict:
    rt = _import_reference()
    ref = rt.load(args.reference)
    device = torch.device(args.device)
    workers = 3 if device.type == "cuda" else 0  # what both trainers use by default on each device
    result = {"mode": "side_by_side", "reference_dir": ref.path, "resolution": args.res, "batch": args.batch,
              "net": args.net, "steps_per_chunk": args.steps, "rounds": args.rounds, "warmup": args.warmup,
              "data_workers": workers, "cases": []}
    util = UtilSampler(device)
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "d.zip", args.res)
        for case in args.cases:
            aug, aug_p = CASES[case]
            ours = our_run(Path(tmp), data, net=args.net, batch=args.batch, case=case, device=args.device,
                           precision=args.precision, channels_last=args.channels_last, compile=args.compile,
                           tf32=not args.no_tf32)
            G_kwargs, D_kwargs = copy.deepcopy(ours.G.init_kwargs), copy.deepcopy(ours.D.init_kwargs)
            if ours.device.type == "cpu":  # its fp16 blocks would run fp16 on the CPU: no fast kernels there
                G_kwargs.setdefault("synthesis_kwargs", {})["num_fp16_res"] = 0
                D_kwargs["num_fp16_res"] = 0
            reduced = G_kwargs.get("synthesis_kwargs", {}).get("num_fp16_res", 0)
            theirs = rt.ReferenceTrainer(
                ref, data=str(data), G_kwargs=G_kwargs, D_kwargs=D_kwargs, batch=args.batch,
                device=ours.device, gamma=ours.gamma, lr=ours.lr, ema_kimg=ours.ema_kimg,
                ema_rampup=ours.config.ema_rampup, aug_p=None if aug == "off" else aug_p,
                style_mixing=ours.config.style_mixing, pl_weight=ours.config.pl_weight,
                r1_interval=ours.config.r1_interval, pl_interval=ours.config.pl_interval, workers=workers,
                state_dicts={"G": ours.G.state_dict(), "D": ours.D.state_dict()})
            sides = {"reference": (theirs.step, args.reference_tf32), "ours": (ours.train_step, not args.no_tf32)}
            t_warm = time.perf_counter()
            for name, (step, tf32) in sides.items():  # the reference's first steps compile its CUDA kernels
                _backend_flags(ours.device, tf32)
                _timed(step, args.warmup, ours.device)
            warm_s = time.perf_counter() - t_warm
            times = {"reference": [], "ours": []}
            for r in range(args.rounds):
                order = ("reference", "ours") if r % 2 == 0 else ("ours", "reference")
                for name in order:
                    step, tf32 = sides[name]
                    _backend_flags(ours.device, tf32)
                    if name == "ours":
                        with util:
                            times[name].append(_timed(step, args.steps, ours.device))
                    else:
                        times[name].append(_timed(step, args.steps, ours.device))
            images = args.steps * args.batch * args.rounds
            spk = {name: sum(t) / images * 1000 for name, t in times.items()}
            # Rounds side by side in time form pairs; on a shared machine the median of the
            # pairs' ratios shrugs off a burst of load that the totals would absorb.
            paired = [o / r for o, r in zip(times["ours"], times["reference"])]
            row = {"case": case, "aug": aug, "aug_p": aug_p, "warmup_s": round(warm_s, 1),
                   "ours_sec_per_kimg": round(spk["ours"], 3), "reference_sec_per_kimg": round(spk["reference"], 3),
                   "ratio_ours_vs_reference": round(spk["ours"] / spk["reference"], 3),
                   "ratio_median_of_paired_rounds": round(float(np.median(paired)), 3),
                   "rounds_s": {name: [round(x, 3) for x in t] for name, t in times.items()},
                   "ours_precision": ours.precision,
                   "reference_precision": f"fp16 in the top {reduced} resolutions" if reduced else "fp32",
                   "ada_p_end": {"ours": ours.augment.p if ours.augment else 0.0, "reference": theirs.augment_p}}
            if args.conv_floor_steps and ours.device.type == "cpu":
                conv = {"ours": conv_seconds_per_step(ours.train_step, args.conv_floor_steps),
                        "reference": conv_seconds_per_step(theirs.step, args.conv_floor_steps)}
                step_s = {name: spk[name] * args.batch / 1000 for name in spk}
                row["conv_floor"] = {
                    "steps_profiled": args.conv_floor_steps,
                    "conv_s_per_step": {k: round(v, 4) for k, v in conv.items()},
                    "step_s_unprofiled": {k: round(v, 4) for k, v in step_s.items()},
                    "conv_share_of_step": {k: round(conv[k] / step_s[k], 3) for k in conv},
                    # ours / reference if everything but our convolutions took no time at all
                    "ratio_floor": round(conv["ours"] / step_s["reference"], 3)}
            if args.profile_steps and case == args.cases[-1]:
                _backend_flags(ours.device, not args.no_tf32)
                try:  # the profiler needs CUPTI; its failure must not cost the timings above
                    row["ours_profile"] = profile_ours(ours, args.profile_steps)
                except Exception as exc:
                    row["ours_profile"] = {"error": f"{type(exc).__name__}: {exc}"}
            result["cases"].append(row)
            ours.dataset.close()
            del ours, theirs
    result["reference_cuda_kernels"] = rt.plugin_status(ref) if device.type == "cuda" else "not used on the CPU"
    result["ours_options"] = {"precision": args.precision, "channels_last": args.channels_last,
                              "compile": args.compile, "tf32": not args.no_tf32}
    result["reference_options"] = {"tf32": args.reference_tf32, "cudnn_benchmark": True,
                                   "conv2d_gradfix": "its own fallback to torch.nn.functional on this torch"}
    result["ours_gpu_utilisation"] = util.summary()
    return result


# ------------------------------------------------------------------ the command


def _csv(kind):
    return lambda text: tuple(kind(v) for v in text.split(",") if v.strip())


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="all", choices=("all", "cpu", "cuda"),
                    help="which rows: all = CPU, plus CUDA when present (default: all)")
    ap.add_argument("--skip-cuda", action="store_true", help="the same as --device cpu")
    ap.add_argument("--steps", type=int, default=16, help="timed steps per row or chunk (16 = one R1 cycle)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: 2)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--resolutions", type=_csv(int), default=None, help="override the rows' resolutions")
    ap.add_argument("--net", choices=tuple(NETS), default=None, help="override the rows' network")
    ap.add_argument("--batch", type=int, default=None, help="override the rows' batch")
    ap.add_argument("--cases", type=_csv(str), default=None, help=f"override the rows' cases: {', '.join(CASES)}")
    ap.add_argument("--precisions", type=_csv(str), default=None, help="override the rows' precisions")
    ap.add_argument("--reference", metavar="DIR", default=None,
                    help="side by side with the unpacked NVlabs stylegan2-ada-pytorch in DIR")
    ap.add_argument("--res", type=int, default=32, help="side by side: resolution (default: 32)")
    ap.add_argument("--rounds", type=int, default=4, help="side by side: interleaved rounds (default: 4)")
    ap.add_argument("--precision", default="auto", help="side by side: our precision (default: auto)")
    ap.add_argument("--channels-last", action="store_true", help="ours: channels-last layout (CUDA)")
    ap.add_argument("--compile", action="store_true", help="ours: torch.compile D (on the CPU: needs a C++ compiler)")
    ap.add_argument("--no-tf32", action="store_true", help="ours: TF32 off (CUDA)")
    ap.add_argument("--reference-tf32", action="store_true",
                    help="the reference with TF32 on (its train.py default is off)")
    ap.add_argument("--profile-steps", type=int, default=0, help="side by side: profile this many of our steps")
    ap.add_argument("--conv-floor-steps", type=int, default=0,
                    help="side by side on the CPU: profile this many steps of each side for the time spent in "
                         "convolutions, and the ratio that leaves as a floor")
    return ap


def _rows(args, device: str) -> list[dict]:
    spec = dict(ROW_DEFAULTS[device])
    for key in ("resolutions", "net", "batch", "cases", "precisions"):
        if getattr(args, key) is not None:
            spec[key] = getattr(args, key)
    rows = []
    for res in spec["resolutions"]:
        for case in spec["cases"]:
            rows += measure(res, spec["net"], spec["batch"], case, device, args.steps, args.warmup,
                            precisions=spec["precisions"])
    return rows


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in args.cases or ():
        if name not in CASES:
            raise SystemExit(f"unknown case {name!r}: use {', '.join(CASES)}")
    result = {"torch": torch.__version__, "machine": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "load_avg_start": [round(x, 2) for x in os.getloadavg()],
              "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available on this machine")
    if args.reference:
        if args.device == "all":
            args.device = "cuda" if torch.cuda.is_available() else "cpu"
        args.net = args.net or "tiny"
        args.batch = args.batch or 16
        args.cases = args.cases or SIDE_BY_SIDE_CASES
        result.update(side_by_side(args))
    else:
        devices = ["cpu"] if (args.skip_cuda or args.device == "cpu") else (
            ["cuda"] if args.device == "cuda" else ["cpu"])
        if args.device == "all" and not args.skip_cuda and torch.cuda.is_available():
            devices.append("cuda")
        for device in devices:
            try:
                result[device] = _rows(args, device)
            except ValueError as exc:  # a precision the device does not offer, and the like
                raise SystemExit(f"bench_training: {exc}") from None
        cpu = {r["case"]: r["sec_per_kimg"] for r in result.get("cpu", []) if r["resolution"] == 32}
        for case in ("ada_start", "fixed_p05"):
            if "off" in cpu and case in cpu:
                result[f"cpu_ratio_{case}_vs_off"] = round(cpu[case] / cpu["off"], 3)
    result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
