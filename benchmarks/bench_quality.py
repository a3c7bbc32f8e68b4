"""Quality on renders: SWD against the dataset while our trainer (and, with --reference DIR, the
NVlabs StyleGAN2-ADA reference) trains on orbit renders of small procedural scenes.

1. The dataset, the way users make one: the add-on's own Render Dataset operator, installed in
   a headless Blender (benchmarks/render_scene.py in a subprocess), renders orbit views of
   random scenes; gan_core.data.build_dataset turns the folder into a training zip at --res.
   (--dataset ZIP reuses a zip; --render-only stops here.)
2. Per seed, our trainer (gan_core.train.loop.train) runs --kimg thousand images, snapshotting
   every --every-kimg; each snapshot's G_ema is scored with SWD (gan_core.train.metrics)
   against the dataset's images.
3. With --reference DIR, the reference's own training loop (benchmarks/reference_trainer.py)
   runs on the same zip with the same config for the same kimg, starting from the same
   initial weights (our step-0 snapshot loaded into its classes, strict), and its G_ema is
   scored at the same steps with the same SWD code, the same real images and the same z.

Writes quality.json (per side and seed: [kimg, swd] pairs, sec/kimg; the config, torch
version, date, command line) and quality_swd.png (SWD vs kimg, per seed and the mean) into
--out, and prints the JSON.

    python benchmarks/bench_quality.py --kimg 20 --seeds 0,1 --threads 2 --reference reference
    python benchmarks/bench_quality.py --render-only --out build/quality     # the dataset only
    python benchmarks/bench_quality.py --dataset build/quality/dataset.zip --kimg 20
    python benchmarks/bench_quality.py --combine a/quality.json b/quality.json --out both  # seeds run apart
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _path in (str(REPO), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from bench_training import NETS  # noqa: E402  (the same network choices as the speed benchmark)

from gan_core.data import ZipDataset, build_dataset  # noqa: E402
from gan_core.models.checkpoint import load_network  # noqa: E402
from gan_core.train.loop import TrainingConfig, train  # noqa: E402
from gan_core.train.metrics import SlicedWassersteinDistance  # noqa: E402
from gan_core.train.snapshots import snapshot_dir  # noqa: E402

FORMAT = "latent-studio-bench-quality"
JSON_NAME, CHART_NAME = "quality.json", "quality_swd.png"
SWD_SEED = 0  # the metric's patch and projection draws
Z_SEED = 12345  # the z of the fake images: the same for every side, seed and snapshot
COLOURS = {"ours": "tab:blue", "reference": "tab:orange"}


# ------------------------------------------------------------------ the dataset

def render_images(args, out: Path) -> tuple[Path, dict]:
    """Orbit renders by the installed add-on in a headless Blender; (folder, its summary)."""
    from server.addon_build import build_addon

    frames, home, info_path = out / "renders", out / "blender-home", out / "render_info.json"
    for stale in (frames, home):
        shutil.rmtree(stale, ignore_errors=True)
    addon_zip = build_addon(out / "dist")
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "PYTHONUNBUFFERED": "1"}
    home.mkdir(parents=True)
    cmd = [sys.executable, str(HERE / "render_scene.py"), "--out", str(frames), "--info", str(info_path),
           "--addon-zip", str(addon_zip), "--images", str(args.images), "--size", str(max(args.render_size, args.res)),
           "--views-per-scene", str(args.views_per_scene), "--samples", str(args.samples), "--engine", args.engine,
           "--seed", str(args.render_seed), "--threads", str(args.threads or 0)]
    print(f"bench_quality: rendering {args.images} views in Blender ...", file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=home, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench_quality: the Blender render failed (exit {done.returncode}):\n"
                         f"{(done.stdout + done.stderr)[-6000:]}")
    return frames, json.loads(info_path.read_text())


def make_dataset(args, out: Path) -> tuple[Path, dict]:
    """(dataset zip, what is known of it): rendered and built here, or --dataset as given."""
    if args.dataset:
        path = Path(args.dataset).resolve()
        ds = ZipDataset(path)
        info = path.parent / "render_info.json"  # a zip this script rendered: keep what it knew of it
        rendered = json.loads(info.read_text()) if info.is_file() else None
        facts = {"path": str(path), "images": len(ds), "resolution": ds.resolution, "rendered": rendered}
        ds.close()
        return path, facts
    frames, rendered = render_images(args, out)
    zip_path = out / "dataset.zip"
    report = build_dataset(frames, zip_path, resolution=args.res, crop="center", workers=1)
    counts = report["counts"]
    facts = {"path": str(zip_path), "images": counts["images"], "resolution": report["resolution"],
             "rendered": rendered, "build": {"accepted": counts["accepted"], "rejected": counts["rejected"],
                                             "rejected_by_reason": report["rejected_by_reason"],
                                             "elapsed_s": report["elapsed_s"]}}
    return zip_path, facts


# ------------------------------------------------------------------ the metric

class SwdProbe:
    """SWD of a generator's G_ema against the dataset: the same reals, the same z and the same
    metric draws for every side, seed and snapshot."""

    def __init__(self, data: Path, count: int, device: torch.device):
        ds = ZipDataset(data)
        n = min(count, len(ds))
        idx = np.random.default_rng([SWD_SEED, 7]).choice(len(ds), n, replace=False) if n < len(ds) else range(n)
        reals = torch.stack([ds[int(i)][0] for i in idx]).permute(0, 2, 3, 1).numpy()  # uint8 NHWC
        ds.close()
        self.count, self.device = n, device
        self.swd = SlicedWassersteinDistance(reals, seed=SWD_SEED)

    @torch.no_grad()
    def __call__(self, G) -> float:
        z = torch.randn([self.count, G.z_dim], generator=torch.Generator().manual_seed(Z_SEED)).to(self.device)
        c = torch.zeros([self.count, G.c_dim], device=self.device)
        images = []
        for i in range(0, self.count, 32):
            img = G(z[i:i + 32], c[i:i + 32], noise_mode="const")
            images.append((img.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu())
        return float(self.swd(torch.cat(images).numpy())["swd"])


# ------------------------------------------------------------------ the schedule

def schedule(kimg: float, every_kimg: float, batch: int) -> tuple[int, int, list[int]]:
    """(total steps, steps between scores, the steps scored: 0, every, 2 * every, ..., total)."""
    total = max(1, math.ceil(kimg * 1000 / batch))
    every = max(1, round(every_kimg * 1000 / batch))
    return total, every, sorted(set(range(0, total, every)) | {total})


def kimg_at(step: int, batch: int) -> float:
    return round(step * batch / 1000, 4)


# ------------------------------------------------------------------ our side

def train_ours(args, data: Path, seed: int, probe: SwdProbe, run_dir: Path) -> tuple[dict, dict, dict]:
    """(result, the config our trainer resolved, the initial G and D state dicts)."""
    preset, override = NETS[args.net]
    total, every, _ = schedule(args.kimg, args.every_kimg, args.batch)
    shutil.rmtree(run_dir, ignore_errors=True)  # an old run there would be resumed, not restarted
    cfg = TrainingConfig(data=str(data), run_dir=str(run_dir), steps=total, snapshot_every=every, batch=args.batch,
                         preset=preset, network_kwargs=copy.deepcopy(override), aug=args.aug, aug_p=0.0, seed=seed,
                         device=args.device, grid_size=None, metrics=(), keep_snapshots=1,
                         report_every=min(10, every), workers=workers_for(args.device))
    curve, trained_s, resolved, init, eval_s = [], 0.0, {}, {}, 0.0
    last_step = [0]

    def on_progress(event: dict) -> None:
        nonlocal trained_s, eval_s
        kind = event["event"]
        if kind == "start":
            resolved.update({k: event[k] for k in ("gamma", "lr", "ema_kimg", "precision", "G_params", "D_params")})
        elif kind == "progress":  # its sec/kimg leaves out snapshot time (and so our scoring)
            images = (event["step"] - last_step[0]) * args.batch
            trained_s += event["sec_per_kimg"] * images / 1000
            last_step[0] = event["step"]
        elif kind == "snapshot":
            t0 = time.perf_counter()
            parts = ("G_ema", "G", "D") if event["step"] == 0 else ("G_ema",)
            nets = load_network(event["network"], device=args.device, parts=parts)
            if event["step"] == 0:  # the reference starts from these very weights
                init.update({"G": nets["G"].state_dict(), "D": nets["D"].state_dict(),
                             "G_kwargs": nets["G"].init_kwargs, "D_kwargs": nets["D"].init_kwargs})
            curve.append([kimg_at(event["step"], args.batch), probe(nets["G_ema"])])
            eval_s += time.perf_counter() - t0

    summary = train(cfg, on_progress=on_progress)
    trained_kimg = summary["step"] * args.batch / 1000
    result = {"curve": curve, "sec_per_kimg": round(trained_s / trained_kimg, 3), "train_s": round(trained_s, 2),
              "score_s": round(eval_s, 2), "ada_p_end": summary["ada_p"], "steps": summary["step"]}
    resolved.update(ema_rampup=cfg.ema_rampup, style_mixing=cfg.style_mixing, pl_weight=cfg.pl_weight,
                    r1_interval=cfg.r1_interval, pl_interval=cfg.pl_interval, ada_target=cfg.ada_target,
                    ada_kimg=cfg.ada_kimg, augment_preset=cfg.augment_preset, mirror=cfg.mirror)
    shutil.rmtree(snapshot_dir(run_dir), ignore_errors=True)  # progress.jsonl and config.json stay
    return result, resolved, init


def workers_for(device: str) -> int:
    return 3 if torch.device(device).type == "cuda" else 0  # both trainers' own default per device


# ------------------------------------------------------------------ the reference

def _reference_module():
    import reference_trainer

    return reference_trainer


def train_reference(args, ref, data: Path, seed: int, probe: SwdProbe, resolved: dict, init: dict) -> dict:
    rt = _reference_module()
    total, _, scored = schedule(args.kimg, args.every_kimg, args.batch)
    G_kwargs, D_kwargs = copy.deepcopy(init["G_kwargs"]), copy.deepcopy(init["D_kwargs"])
    if torch.device(args.device).type == "cpu":  # its fp16 blocks would run fp16 on the CPU (ours: fp32)
        G_kwargs.setdefault("synthesis_kwargs", {})["num_fp16_res"] = 0
        D_kwargs["num_fp16_res"] = 0
    # Its loop draws from the global RNGs: seed them as our trainer seeds them.
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    theirs = rt.ReferenceTrainer(
        ref, data=str(data), G_kwargs=G_kwargs, D_kwargs=D_kwargs, batch=args.batch, device=args.device,
        gamma=resolved["gamma"], lr=resolved["lr"], ema_kimg=resolved["ema_kimg"], ema_rampup=resolved["ema_rampup"],
        aug_p=None if args.aug == "off" else 0.0, ada_target=resolved["ada_target"], ada_kimg=resolved["ada_kimg"],
        style_mixing=resolved["style_mixing"], pl_weight=resolved["pl_weight"], r1_interval=resolved["r1_interval"],
        pl_interval=resolved["pl_interval"], workers=workers_for(args.device),
        state_dicts={"G": init["G"], "D": init["D"]}, seed=seed)
    curve, trained_s, eval_s = [], 0.0, 0.0
    wanted = set(scored)

    def score(step: int) -> None:
        nonlocal eval_s
        t0 = time.perf_counter()
        curve.append([kimg_at(step, args.batch), probe(theirs.G_ema)])
        eval_s += time.perf_counter() - t0

    score(0)
    for step in range(1, total + 1):
        t0 = time.perf_counter()
        theirs.step()
        if theirs.device.type == "cuda":
            torch.cuda.synchronize(theirs.device)
        trained_s += time.perf_counter() - t0
        if step in wanted:
            score(step)
    return {"curve": curve, "sec_per_kimg": round(trained_s / (total * args.batch / 1000), 3),
            "train_s": round(trained_s, 2), "score_s": round(eval_s, 2), "ada_p_end": theirs.augment_p,
            "steps": total}


# ------------------------------------------------------------------ summary and chart

def mean_curve(per_seed: dict) -> list[list[float]]:
    curves = [run["curve"] for run in per_seed.values()]
    return [[curves[0][i][0], float(np.mean([c[i][1] for c in curves]))] for i in range(len(curves[0]))]


def summarise(sides: dict) -> dict:
    out = {side: {"final_kimg": data["mean"][-1][0], "final_swd_mean": data["mean"][-1][1],
                  "sec_per_kimg_mean": round(float(np.mean([r["sec_per_kimg"] for r in data["seeds"].values()])), 3)}
           for side, data in sides.items()}
    if "reference" in sides:
        ours, theirs = sides["ours"]["mean"], sides["reference"]["mean"]
        later = [(o[1], r[1]) for o, r in zip(ours, theirs) if o[0] > 0]
        seeds = len(sides["ours"]["seeds"])
        out["comparison"] = {
            "at_each_kimg": [[o[0], o[1], r[1]] for o, r in zip(ours, theirs)],  # [kimg, ours, reference]
            "ours_le_reference_share": round(sum(o <= r for o, r in later) / max(len(later), 1), 3),
            "final_ours_minus_reference": ours[-1][1] - theirs[-1][1],
            # the same G_ema at step 0 on both sides: any gap there is the two networks' numerics
            "start_gap": abs(ours[0][1] - theirs[0][1]),
            "seeds": seeds,
            "goal_met": bool(ours[-1][1] <= theirs[-1][1]) if seeds >= 2 else None,
            "goal": "ours <= reference at the final kimg, mean over >= 2 seeds",
        }
    return out


def draw_chart(result: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 5.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for side, data in result["sides"].items():
        colour = COLOURS.get(side)
        for seed, run in data["seeds"].items():
            k, s = zip(*run["curve"])
            ax.plot(k, s, color=colour, alpha=0.35, linewidth=1, marker=".", label=f"{side}, seed {seed}")
        k, s = zip(*data["mean"])
        ax.plot(k, s, color=colour, linewidth=2.5, label=f"{side}, mean of {len(data['seeds'])}")
    cfg, ds = result["config"], result["dataset"]
    ax.set_xlabel("kimg (thousands of real images shown)")
    ax.set_ylabel("SWD against the dataset (lower is better)")
    what = "orbit renders" if ds["rendered"] else "images"
    ax.set_title(f"{ds['images']} {what} at {ds['resolution']} px, net {cfg['net']}, batch {cfg['batch']}, "
                 f"aug {cfg['aug']}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path))


# ------------------------------------------------------------------ the command

def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be whole numbers separated by commas, got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct whole numbers >= 0, got {text!r}")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="Quality on renders: SWD over training, ours and (--reference) "
                                             "the NVlabs StyleGAN2-ADA reference, on Blender orbit renders.",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", default="build/bench_quality", help="folder for the renders, dataset, runs, JSON, chart")
    ap.add_argument("--images", type=int, default=300, help="orbit views to render")
    ap.add_argument("--res", type=int, default=32, help="dataset (training) resolution in px")
    ap.add_argument("--render-size", type=int, default=64, help="render size in px (downscaled to --res)")
    ap.add_argument("--views-per-scene", type=int, default=12, help="orbit views of each random scene")
    ap.add_argument("--samples", type=int, default=16, help="render samples per view")
    ap.add_argument("--engine", default="CYCLES", choices=("CYCLES", "BLENDER_EEVEE", "BLENDER_WORKBENCH"),
                    help="Blender render engine")
    ap.add_argument("--render-seed", type=int, default=0, help="seed of the random scenes and views")
    ap.add_argument("--dataset", metavar="ZIP", default=None,
                    help="use this dataset zip instead of rendering (its resolution wins over --res)")
    ap.add_argument("--render-only", action="store_true", help="render and build the dataset, then stop")
    ap.add_argument("--kimg", type=float, default=20.0, help="thousands of real images each side trains on")
    ap.add_argument("--every-kimg", type=float, default=2.0, help="score SWD every this many kimg (and at 0)")
    ap.add_argument("--seeds", type=_seeds, default="0,1", help="training seeds, comma-separated")
    ap.add_argument("--reference", metavar="DIR", default=None,
                    help="also train the unpacked NVlabs stylegan2-ada-pytorch in DIR (docs/BENCHMARKS.md)")
    ap.add_argument("--net", choices=tuple(NETS), default="tiny", help="network size (as bench_training.py)")
    ap.add_argument("--batch", type=int, default=16, help="minibatch size")
    ap.add_argument("--aug", choices=("ada", "off"), default="ada", help="augmentation: ADA from p = 0, or none")
    ap.add_argument("--metric-images", type=int, default=1024,
                    help="real and fake images per SWD score (at most the dataset's size)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="training device")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads and Blender render threads (None: their own choice)")
    ap.add_argument("--combine", nargs="+", metavar="JSON", default=None,
                    help="merge the quality.json of runs with other seeds into one report in --out (runs nothing)")
    return ap


def check_args(ap: argparse.ArgumentParser, args) -> None:
    """Refuse what cannot work before minutes of rendering are spent."""
    positive = {"--images": args.images, "--batch": args.batch, "--metric-images": args.metric_images,
                "--views-per-scene": args.views_per_scene, "--render-size": args.render_size}
    for name, value in positive.items():
        if value < 1:
            ap.error(f"{name} must be at least 1, got {value}")
    if args.images < 2 and not args.dataset:
        ap.error("--images must be at least 2 (SWD compares sets of images)")
    if args.res < 8 or args.res & (args.res - 1):
        ap.error(f"--res must be a power of two >= 8, got {args.res}")
    if not (args.kimg > 0 and args.every_kimg > 0):
        ap.error("--kimg and --every-kimg must be > 0")
    if args.threads is not None and args.threads < 1:
        ap.error(f"--threads must be at least 1, got {args.threads}")
    if args.dataset and args.render_only:
        ap.error("--render-only renders a new dataset; it cannot be used with --dataset")
    if args.dataset and not Path(args.dataset).is_file():
        ap.error(f"--dataset {args.dataset}: no such file")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: CUDA is not available on this machine")


def combine(paths: list[str], out: Path) -> dict:
    """One report from several runs of this script on the same dataset and config with other
    seeds (run side by side, one process per seed, to use every core without thread contention):
    their per-seed curves merged, the mean, summary and chart computed afresh."""
    reports = [json.loads(Path(p).read_text()) for p in paths]
    first = reports[0]
    for path, other in zip(paths[1:], reports[1:]):
        for key in ("format", "dataset"):
            if other.get(key) != first.get(key):
                raise SystemExit(f"bench_quality: {path} has another {key} than {paths[0]}: cannot combine")
        same = {k: v for k, v in other["config"].items() if k not in ("seeds", "trainer")}
        if same != {k: v for k, v in first["config"].items() if k not in ("seeds", "trainer")}:
            raise SystemExit(f"bench_quality: {path} ran another config than {paths[0]}: cannot combine")
        if set(other["sides"]) != set(first["sides"]):
            raise SystemExit(f"bench_quality: {path} ran other sides than {paths[0]}: cannot combine")
    result = copy.deepcopy(first)
    result["combined_from"] = [{"path": str(p), "date": r["date"], "command": r["command"],
                                "load_avg_start": r.get("load_avg_start"), "load_avg_end": r.get("load_avg_end"),
                                "elapsed_s": r.get("elapsed_s")} for p, r in zip(paths, reports)]
    seeds: list[int] = []
    for side, data in result["sides"].items():
        data["seeds"] = {}
        for path, report in zip(paths, reports):
            for seed, run in report["sides"][side]["seeds"].items():
                if seed in data["seeds"]:
                    raise SystemExit(f"bench_quality: seed {seed} is in more than one report ({path})")
                data["seeds"][seed] = run
        data["seeds"] = {k: data["seeds"][k] for k in sorted(data["seeds"], key=int)}
        data["mean"] = mean_curve(data["seeds"])
        seeds = [int(s) for s in data["seeds"]]
    result["config"]["seeds"] = seeds
    result["summary"] = summarise(result["sides"])
    out.mkdir(parents=True, exist_ok=True)
    draw_chart(result, out / CHART_NAME)
    result["chart"] = str(out / CHART_NAME)
    _write(out, result)
    return result


def main(argv=None) -> dict:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.combine:
        return combine(args.combine, Path(args.out).resolve())
    check_args(ap, args)
    if args.threads:
        torch.set_num_threads(args.threads)
    ref = None
    if args.reference and not args.render_only:  # a bad folder is refused before any rendering
        rt = _reference_module()
        try:
            ref = rt.load(args.reference)
        except rt.ReferenceError as exc:
            raise SystemExit(f"bench_quality: {exc}") from None
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = {"format": FORMAT, "format_version": 1,
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])],
              "torch": torch.__version__, "python": platform.python_version(),
              "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "load_avg_start": [round(x, 2) for x in os.getloadavg()]}
    data, result["dataset"] = make_dataset(args, out)
    if args.render_only:
        result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        _write(out, result)
        return result

    total, every, scored = schedule(args.kimg, args.every_kimg, args.batch)
    probe = SwdProbe(data, args.metric_images, torch.device(args.device))
    result["config"] = {"net": args.net, "preset": NETS[args.net][0], "network_kwargs": NETS[args.net][1],
                        "batch": args.batch, "aug": args.aug, "kimg": args.kimg, "every_kimg": args.every_kimg,
                        "steps": total, "every_steps": every, "scored_steps": scored,
                        "seeds": list(args.seeds), "device": args.device,
                        "swd": {"images": probe.count, "patch_size": probe.swd.patch_size,
                                "patches_per_image": probe.swd.patches_per_image,
                                "projections": probe.swd.num_projections, "repeats": probe.swd.repeats,
                                "seed": SWD_SEED, "z_seed": Z_SEED, "noise_mode": "const"},
                        "same_initial_weights": True}
    sides = {"ours": {"seeds": {}}}
    if ref is not None:
        sides["reference"] = {"seeds": {}, "dir": ref.path}
    for seed in args.seeds:
        print(f"bench_quality: ours, seed {seed}, {total} steps ...", file=sys.stderr, flush=True)
        mine, resolved, init = train_ours(args, data, seed, probe, out / "runs" / f"ours-seed{seed}")
        sides["ours"]["seeds"][str(seed)] = mine
        result["config"]["trainer"] = resolved
        if ref is not None:
            print(f"bench_quality: reference, seed {seed}, {total} steps ...", file=sys.stderr, flush=True)
            sides["reference"]["seeds"][str(seed)] = train_reference(args, ref, data, seed, probe, resolved, init)
    for data_side in sides.values():
        data_side["mean"] = mean_curve(data_side["seeds"])
    result["sides"] = sides
    result["summary"] = summarise(sides)
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    draw_chart(result, out / CHART_NAME)
    result["chart"] = str(out / CHART_NAME)
    _write(out, result)
    return result


def _write(out: Path, result: dict) -> None:
    text = json.dumps(result, indent=1)
    (out / JSON_NAME).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
