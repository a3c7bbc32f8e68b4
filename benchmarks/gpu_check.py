"""Issue 18's check on a machine with a GPU, as one command (scripts/gpu_check.sh runs it).

Sections, most important first, each in its own process with a time limit (a crash or hang
costs that section only) and all within --budget seconds:
  env             torch, CUDA, the GPU, nvcc/ninja, package versions
  pytest_gpu      pytest -m gpu tests/gpu
  side_by_side    training at 256 px against the NVlabs reference (bench_training.py --reference),
                  aug off and ADA at p = 0.5, interleaved; our profile and GPU utilisation
  e2e             the real server on the GPU: upload -> prepare -> train 200 steps -> generate -> walk
                  (walk frames/s end to end, PNG files on disk)
  stability_fp16  2,000 steps at 64 px in fp16: no NaN/inf in losses or weights; images vs fp32
  generator       images/s at 64/128/256 px, batch 1/16/64, fp32/fp16/bf16, ours vs reference at 256
  training        sec/kimg at 64/128/256 px in fp32/fp16/bf16
  stability_bf16  as stability_fp16, in bf16 (only if the budget still allows it)
Results go to OUT/gpu_check.json (rewritten after every section, so a cut-short run keeps what
it had) and every line of output to OUT/gpu_check.log.

    python benchmarks/gpu_check.py --out DIR [--reference reference] [--budget 460] [--only a,b]
    python benchmarks/gpu_check.py --out DIR --device cpu --tiny   # the same sections in seconds on a CPU
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent

# name -> seconds it may take on the H200 (the full check), in the order they run
SECTIONS = {"env": 30, "pytest_gpu": 110, "side_by_side": 170, "e2e": 120, "stability_fp16": 110, "generator": 60,
            "training": 90, "stability_bf16": 110}
# Mixed-precision images vs fp32 (values in [-1, 1]): fp16 and bf16 keep 11 and 8 bits of
# mantissa; after the top 4 blocks a pixel may move a few hundredths, the mean far less.
IMAGE_TOLERANCE = {"fp16": {"max": 0.1, "mean": 0.015}, "bf16": {"max": 0.25, "mean": 0.03}}


def _sizes(tiny: bool) -> dict:
    """Every size the sections use: the issue's figures, or a smoke run of seconds."""
    if tiny:
        return dict(res=16, net="micro", batch=4, steps=2, warmup=1, rounds=2, profile=1, train_res="16",
                    gen_configs="tiny32", gen_batches="1,4", min_time="0.05", stab_steps=30, stab_res=16,
                    stab_preset="tiny", stab_kwargs=MICRO, e2e_res=32, e2e_steps=4, e2e_batch=4, e2e_preset="tiny",
                    e2e_images=12, walk_frames=8)
    return dict(res=256, net="sg2", batch=32, steps=16, warmup=3, rounds=3, profile=8, train_res="64,128,256",
                gen_configs="sg2_64,sg2_128,sg2_256", gen_batches="1,16,64", min_time="0.3", stab_steps=2000,
                stab_res=64, stab_preset="small", stab_kwargs=None, e2e_res=256, e2e_steps=200, e2e_batch=16,
                e2e_preset="auto", e2e_images=64, walk_frames=600)


MICRO = {"G": {"z_dim": 16, "w_dim": 16, "synthesis_kwargs": {"channel_base": 256, "channel_max": 16,
                                                               "num_fp16_res": 2}},
         "D": {"channel_base": 256, "channel_max": 16, "num_fp16_res": 2}}


# ------------------------------------------------------------------ sections (each runs in a child)


def section_env(args, sizes) -> dict:
    import numpy
    import torch

    def version(name):
        try:
            from importlib.metadata import version as v
            return v(name)
        except Exception:
            return None

    def command(*cmd):
        if not shutil.which(cmd[0]):
            return None
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (done.stdout + done.stderr).strip()[-2000:]

    cuda = torch.cuda.is_available()
    return {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "python": sys.version.split()[0],
            "torch": torch.__version__, "torch_cuda": torch.version.cuda, "numpy": numpy.__version__,
            "cuda_available": cuda, "gpu": torch.cuda.get_device_name(0) if cuda else None,
            "gpu_capability": list(torch.cuda.get_device_capability(0)) if cuda else None,
            "packages": {n: version(n) for n in ("flask", "waitress", "pydantic", "pydantic-core", "safetensors",
                                                 "pillow", "scipy", "requests", "nvidia-ml-py")},
            "nvidia_smi": command("nvidia-smi"), "nvcc": command("nvcc", "--version"),
            "ninja": command("ninja", "--version"), "cpu_count": os.cpu_count()}


def _left(args) -> float:
    """Seconds this section has left of its limit."""
    return args.limit - (time.monotonic() - args.started)


def section_pytest_gpu(args, sizes) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "tests/gpu", "-q", "-rA", "-p", "no:cacheprovider",
           "--timeout", "120"]
    try:
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=max(5.0, _left(args) - 10))
        code, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:  # keep what it printed: which tests had passed
        code, stdout, stderr = "timeout", _text(exc.stdout), _text(exc.stderr)
    print(stdout[-20000:], stderr[-5000:], sep="\n")
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    return {"exit_code": code, "passed": code == 0, "summary": lines[-1] if lines else "",
            "failed": [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]}


def _text(output) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else (output or "")


def _bench(module: str, argv: list[str]) -> dict:
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return __import__(module).main(argv)


def section_side_by_side(args, sizes) -> dict:
    if not args.reference:
        return {"skipped": "no --reference folder (see docs/BENCHMARKS.md)"}
    return _bench("bench_training", [
        "--reference", args.reference, "--device", args.device, "--res", str(sizes["res"]), "--net", sizes["net"],
        "--batch", str(sizes["batch"]), "--steps", str(sizes["steps"]), "--rounds", str(sizes["rounds"]),
        "--warmup", str(sizes["warmup"]), "--profile-steps", str(sizes["profile"]), *args.ours])


def section_generator(args, sizes) -> dict:
    precisions = "fp32,fp16,bf16" if args.device == "cuda" else "fp32,bf16"
    common = ["--device", args.device, "--batches", sizes["gen_batches"], "--precisions", precisions,
              "--min-time", sizes["min_time"]]
    configs = sizes["gen_configs"].split(",")
    out = {}
    # the largest first, against the reference: the figure the issue asks for
    last = [*common, "--configs", configs[-1]] + (["--reference", args.reference] if args.reference else [])
    out["largest_with_reference" if args.reference else "largest"] = _bench("bench_generator", last)
    for config in configs[:-1]:
        if _left(args) < 20:
            out.setdefault("skipped_for_time", []).append(config)
            continue
        out[config] = _bench("bench_generator", [*common, "--configs", config])
    return out


def section_training(args, sizes) -> dict:
    precisions = "fp32,fp16,bf16" if args.device == "cuda" else "fp32,bf16"
    out = {"rows": [], "skipped_for_time": []}
    for res in reversed(sizes["train_res"].split(",")):  # 256 px first: the figure that matters most
        if _left(args) < 30:
            out["skipped_for_time"].append(f"{res} px")
            continue
        result = _bench("bench_training", [
            "--device", args.device, "--resolutions", res, "--net", sizes["net"], "--batch", str(sizes["batch"]),
            "--precisions", precisions, "--cases", "off", "--steps", str(sizes["steps"]),
            "--warmup", str(sizes["warmup"])])
        out["rows"] += result[args.device]
    return out


def _stability(args, sizes, precision: str) -> dict:
    """A long run in reduced precision: every loss report finite (a mean over 10 steps, so one
    NaN or inf step shows), every weight finite at the end, and G_ema's images in that
    precision close to its fp32 images."""
    import numpy as np
    import torch

    from gan_core.models.checkpoint import load_network
    from gan_core.nn.networks import set_precision
    from gan_core.train.loop import TrainingConfig, train

    sys.path.insert(0, str(HERE))
    from bench_training import make_dataset

    if precision == "fp16" and args.device == "cpu":
        return {"skipped": "fp16 is not offered on the CPU"}
    losses, bad = {}, []

    def on_progress(event):
        if event.get("event") == "progress":
            for name, value in event["losses"].items():
                losses.setdefault(name, []).append(value)
                if not math.isfinite(value):
                    bad.append((event["step"], name, value))

    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "d.zip", sizes["stab_res"], count=256 if not args.tiny else 16)
        cfg = TrainingConfig(data=str(data), run_dir=str(Path(tmp) / "run"), steps=sizes["stab_steps"],
                             snapshot_every=sizes["stab_steps"], batch=16 if not args.tiny else 4,
                             preset=sizes["stab_preset"], network_kwargs=sizes["stab_kwargs"], aug="ada",
                             device=args.device, grid_size=None, report_every=10, precision=precision)
        t0 = time.perf_counter()
        # stop early (with a final snapshot) rather than lose the whole result to the time limit
        summary = train(cfg, on_progress=on_progress, should_stop=lambda: _left(args) < 25)
        wall = time.perf_counter() - t0
        nets = load_network(summary["snapshot"]["network"], device=args.device, parts=("G_ema", "G", "D"))
        nonfinite = [f"{part}.{name}" for part in ("G_ema", "G", "D")
                     for name, t in nets[part].state_dict().items() if t.is_floating_point() and not t.isfinite().all()]
        G = nets["G_ema"]
        z = torch.from_numpy(np.random.RandomState(0).randn(16, G.z_dim).astype(np.float32)).to(args.device)
        with torch.no_grad():
            set_precision(G, precision)
            reduced = G(z, None, noise_mode="const").float()
            set_precision(G, "fp32")
            full = G(z, None, noise_mode="const")
        err = (reduced - full).abs()
        tol = IMAGE_TOLERANCE[precision]
        image = {"max_abs": round(float(err.max()), 5), "mean_abs": round(float(err.mean()), 6),
                 "finite": bool(torch.isfinite(reduced).all()), "tolerance": tol}
        image["within_tolerance"] = image["finite"] and image["max_abs"] <= tol["max"] and image["mean_abs"] <= tol["mean"]
    return {"precision": precision, "steps": summary["step"], "steps_asked": sizes["stab_steps"],
            "resolution": sizes["stab_res"], "wall_s": round(wall, 1),
            "nonfinite_losses": bad[:20], "nonfinite_weights": nonfinite[:20],
            "loss_last": {k: v[-1] for k, v in losses.items()}, "loss_reports": len(losses.get("G", [])),
            "ada_p": summary["ada_p"], "images_vs_fp32": image,
            "passed": not bad and not nonfinite and image["within_tolerance"]}


def section_stability_fp16(args, sizes) -> dict:
    return _stability(args, sizes, "fp16")


def section_stability_bf16(args, sizes) -> dict:
    return _stability(args, sizes, "bf16")


def _image_zip(count: int, res: int) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.RandomState(1)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(count):
            small = Image.fromarray(rng.randint(0, 256, (8, 8, 3), dtype=np.uint8))
            png = io.BytesIO()
            small.resize((res, res), Image.BILINEAR).save(png, format="PNG")
            zf.writestr(f"img{i:04d}.png", png.getvalue())
    return buf.getvalue()


def section_e2e(args, sizes) -> dict:
    """The product path on this device: a real server process, over HTTP."""
    import requests

    sys.path.insert(0, str(REPO))
    from tests.support.server_process import start_server, stop_server

    out, marks = {}, {}
    with tempfile.TemporaryDirectory(prefix="latent-gpu-check-") as tmp:
        server = start_server(Path(tmp) / "data", device=args.device)
        s = requests.Session()
        s.headers.update(server.headers)

        def wait(path, done, timeout):
            deadline, body = time.monotonic() + timeout, None
            while time.monotonic() < deadline:
                body = s.get(server.api(path), timeout=30).json()
                if done(body):
                    return body
                time.sleep(0.05)
            raise RuntimeError(f"timed out waiting on {path}: {body}")

        try:
            t0 = time.perf_counter()
            r = s.post(server.api("/datasets?name=gpu-check"), data=_image_zip(sizes["e2e_images"], sizes["e2e_res"]),
                       headers={"Content-Type": "application/zip"}, timeout=60)
            r.raise_for_status()
            ds = r.json()
            s.post(server.api(f"/datasets/{ds['id']}/prepare"), json={"resolution": sizes["e2e_res"]},
                   timeout=30).raise_for_status()
            ds = wait(f"/datasets/{ds['id']}", lambda d: d["state"] in ("ready", "failed"), 120)
            marks["prepared_s"] = time.perf_counter() - t0
            out["dataset_state"] = ds["state"]
            job = {"dataset_id": ds["id"], "resolution": sizes["e2e_res"], "steps": sizes["e2e_steps"],
                   "snapshot_every": sizes["e2e_steps"], "batch": sizes["e2e_batch"], "preset": sizes["e2e_preset"],
                   "title": "gpu check"}
            r = s.post(server.api("/jobs"), json=job, timeout=30)
            r.raise_for_status()
            job_id = r.json()["id"]
            t_job = time.perf_counter()
            job = wait(f"/jobs/{job_id}", lambda j: j["state"] in ("completed", "failed", "cancelled"),
                       _left(args) - 45)
            marks["train_s"] = time.perf_counter() - t_job
            out.update(job_state=job["state"], job_error=job["error"], job_step=job["step"],
                       job_sec_per_kimg=job["sec_per_kimg"], job_precision=job.get("precision"),
                       job_losses=job["losses"])
            if job["state"] != "completed":
                raise RuntimeError(f"training job ended {job['state']}: {job['error']}")
            t_gen = time.perf_counter()
            r = s.post(server.api("/generate"), json={"model": {"job_id": job_id}, "seeds": [0, 1, 2, 3],
                                                      "psi": 0.7}, timeout=120)
            r.raise_for_status()
            marks["generate_s"] = time.perf_counter() - t_gen
            out["generate"] = {"status": r.status_code, "content_type": r.headers.get("Content-Type"),
                               "bytes": len(r.content)}
            frames = sizes["walk_frames"]
            body = {"model": {"job_id": job_id}, "waypoints": [{"frame": 0, "seed": 1}, {"frame": frames - 1, "seed": 2}]}
            t_walk = time.perf_counter()
            r = s.post(server.api("/walks"), json=body, timeout=30)
            r.raise_for_status()
            walk = wait(f"/walks/{r.json()['id']}", lambda w: w["state"] in ("completed", "failed"), _left(args) - 15)
            walk_s = time.perf_counter() - t_walk
            on_disk = sorted((server.data_dir / "walks").glob("*/frame_*.png"))
            out["walk"] = {"state": walk["state"], "error": walk["error"], "frames": walk["frames_total"],
                           "pngs_on_disk": len(on_disk), "resolution": sizes["e2e_res"], "wall_s": round(walk_s, 2),
                           "frames_per_s_end_to_end": round(walk["frames_total"] / walk_s, 1)}
            out["passed"] = (walk["state"] == "completed" and len(on_disk) == frames
                             and out["generate"]["content_type"] in ("image/png", "application/zip"))
        except Exception as exc:  # keep what was learnt before the failure
            out.update(passed=False, error=f"{type(exc).__name__}: {exc}")
        finally:
            stop_server(server.process, timeout=60)
            log = server.log()
            print("---- server log (tail) ----\n" + log[-6000:])
    out["timings_s"] = {k: round(v, 2) for k, v in marks.items()}
    return out


# ------------------------------------------------------------------ the driver


def _run_child(name: str, args, timeout: float, log) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        result_path = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--section", name, "--result", str(result_path),
               "--limit", str(timeout), "--device", args.device, *(["--tiny"] if args.tiny else []),
               *(["--reference", args.reference] if args.reference else []),
               *[f"--ours={o}" for o in args.ours]]
        t0 = time.perf_counter()
        try:
            done = subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
            status = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
        except subprocess.TimeoutExpired:
            status = f"timeout after {timeout:.0f}s"
        wall = time.perf_counter() - t0
        result = json.loads(result_path.read_text()) if result_path.exists() else {}
    return {"status": status, "wall_s": round(wall, 1), "result": result}


def _child(args) -> int:
    """Run one section in this process and write its result (or its error) as JSON."""
    import traceback

    sizes = _sizes(args.tiny)
    args.started = time.monotonic()
    try:
        result = globals()[f"section_{args.section}"](args, sizes)
        code = 1 if result.get("passed") is False or "error" in result else 0
    except Exception as exc:
        traceback.print_exc()
        result, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
    Path(args.result).write_text(json.dumps(result, indent=1, default=str))
    return code


def _headlines(report: dict) -> list[str]:
    """The figures that matter, for the console (the JSON has everything)."""
    lines, sec = [], report["sections"]

    def result(name):
        return sec.get(name, {}).get("result") or {}

    for case in result("side_by_side").get("cases", []):
        lines.append(f"side by side {case['case']}: ours {case['ours_sec_per_kimg']} vs reference "
                     f"{case['reference_sec_per_kimg']} sec/kimg, ratio {case['ratio_ours_vs_reference']}")
    if "reference_cuda_kernels" in result("side_by_side"):
        lines.append(f"reference CUDA kernels: {result('side_by_side')['reference_cuda_kernels']}")
    if result("pytest_gpu"):
        lines.append(f"pytest -m gpu: {result('pytest_gpu').get('summary')}")
    walk = result("e2e").get("walk")
    if walk:
        lines.append(f"e2e: job {result('e2e').get('job_state')}, walk {walk['frames']} frames at "
                     f"{walk['resolution']} px: {walk['frames_per_s_end_to_end']} frames/s")
    for name in ("stability_fp16", "stability_bf16"):
        if "passed" in result(name):
            r = result(name)
            lines.append(f"{name}: passed={r['passed']} ({r['steps']} steps, images vs fp32 {r['images_vs_fp32']})")
    return lines


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="folder for gpu_check.json and gpu_check.log")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--tiny", action="store_true", help="every section at smoke-test size (seconds on a CPU)")
    ap.add_argument("--reference", metavar="DIR", help="unpacked NVlabs stylegan2-ada-pytorch (side by side)")
    ap.add_argument("--budget", type=float, default=460.0, help="seconds for all sections together (default: 460)")
    ap.add_argument("--only", default=None, help="comma-separated sections to run (default: all)")
    ap.add_argument("--ours", action="append", default=[],
                    help="an option for our side of the side by side, e.g. --ours=--channels-last (repeatable)")
    ap.add_argument("--section", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=float, default=600.0, help=argparse.SUPPRESS)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.section:
        return _child(args)
    if not args.out:
        raise SystemExit("--out DIR is required")
    chosen = list(SECTIONS) if not args.only else [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section(s) {unknown}: use {', '.join(SECTIONS)}")
    if args.reference and not (Path(args.reference) / "training" / "networks.py").is_file():
        raise SystemExit(f"--reference {args.reference}: not an unpacked stylegan2-ada-pytorch (no training/networks.py)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"sizes": "tiny" if args.tiny else "full", "device": args.device, "budget_s": args.budget,
              "reference": args.reference, "ours_options": args.ours, "sections": {}}
    start = time.monotonic()
    with open(out / "gpu_check.log", "a", buffering=1) as log:
        for name in chosen:
            left = args.budget - (time.monotonic() - start)
            limit = min(SECTIONS[name] if not args.tiny else args.budget, left)
            if limit < 15:
                report["sections"][name] = {"status": f"skipped: {left:.0f}s of the budget left"}
            else:
                log.write(f"\n===== {name} (limit {limit:.0f}s) {time.strftime('%H:%M:%S')}\n")
                log.flush()
                report["sections"][name] = _run_child(name, args, limit, log)
            print(f"{name}: {report['sections'][name]['status']}", flush=True)
            report["wall_s"] = round(time.monotonic() - start, 1)
            (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    for line in _headlines(report):
        print(line, flush=True)
    failed = [n for n, s in report["sections"].items() if s["status"] not in ("ok",) and "skipped" not in s["status"]]
    print(f"wrote {out / 'gpu_check.json'} and gpu_check.log; {len(failed)} section(s) not ok: {failed}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
