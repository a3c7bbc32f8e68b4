"""`latent-studio train`: train a StyleGAN2-ADA model on a prepared dataset.

Ctrl-C asks the loop to stop after the current step; it then writes a final snapshot, so
the run can be resumed by running the same command again, and exits with status 130 so
scripts can tell. A second Ctrl-C aborts at once. Works under torchrun (one process per
GPU); only rank 0 prints and writes files.

Several GPUs or machines: `--nproc-per-node N` (and for several machines `--nnodes`,
`--node-rank`, `--rdzv-endpoint`) runs this same command again under torchrun
(server.torchrun), which starts the processes; a command already started by torchrun
(`torchrun ... -m server.cli train ...`) trains directly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from gan_core import rules

EXIT_INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C
# Under `relaunch`: the file whose appearance asks this machine's ranks to stop (its Ctrl-C).
STOP_FILE_ENV = "LATENT_STUDIO_STOP_FILE"


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model on a prepared dataset zip",
                              description="Train (or resume) a StyleGAN2-ADA model. Running it again on the same "
                                          "--output directory resumes from the newest valid snapshot.")
    p.add_argument("--data", required=True, help="dataset zip (from `latent-studio dataset`)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="run directory (snapshots, progress.jsonl)")
    p.add_argument("--base", help="model to fine-tune from: a .safetensors file, or the name of a model in the "
                                  "server's models folder (e.g. one `import-pkl --name` wrote); same resolution "
                                  "as the dataset")
    p.add_argument("--steps", type=int, default=5000, help="total steps (one minibatch each)")
    p.add_argument("--batch", type=int, default=16, help="global batch size")
    p.add_argument("--res", type=int, default=None, help="expected resolution (default: the dataset's)")
    p.add_argument("--aug", choices=rules.AUG_MODES, default="ada", help="augmentation mode")
    p.add_argument("--aug-p", type=float, default=0.0, help="fixed augmentation probability, or ADA's start")
    p.add_argument("--ada-kimg", type=float, default=500.0, help="ADA speed: kimg for p to go 0->1")
    p.add_argument("--mirror", action="store_true", help="add x-flipped copies of the dataset")
    p.add_argument("--snapshot-every", type=int, default=500, help="steps between snapshots")
    p.add_argument("--keep-snapshots", type=int, default=None, metavar="N",
                   help="keep only the newest N snapshots, and the best by --metrics (default: keep all)")
    p.add_argument("--gamma", type=float, default=None, help="R1 weight (default: 0.0002 * res^2 / batch)")
    p.add_argument("--no-pl", action="store_true", help="turn path-length regularisation off")
    p.add_argument("--freeze-d", type=int, default=0, help="freeze the first N D blocks (transfer learning)")
    p.add_argument("--preset", choices=rules.PRESET_CHOICES, default="auto",
                   help="network size when training from scratch (auto: small up to 128 px, else stylegan2)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same run")
    p.add_argument("--metrics", default="", help="comma-separated metrics at snapshots: swd, fid, kid (default: none)")
    p.add_argument("--report-every", type=int, default=10, help="steps between progress lines")
    p.add_argument("--channels-last", action="store_true", help="CUDA: channels-last memory layout")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the discriminator (on the CPU it needs a C++ compiler; without one it runs "
                        "eagerly and says so)")
    p.add_argument("--precision", choices=rules.PRECISION_CHOICES, default="auto",
                   help="dtype of the networks' reduced-precision blocks (the top 4 resolutions of the small and "
                        "stylegan2 presets): auto = fp16 on a GPU, fp32 on the CPU; the CPU also runs bf16, not fp16")
    p.add_argument("--tileable", action="store_true",
                   help="train for seamless textures: the generator's padding wraps around and the discriminator "
                        "sees randomly rolled images; for datasets of (tileable) textures; generation then "
                        "defaults to seamless")
    p.add_argument("--quiet", action="store_true", help="no progress bar (log lines only)")
    launch = p.add_argument_group("several GPUs or machines (the command runs itself again under torchrun)")
    for flag, kwargs in LAUNCH_OPTIONS.items():
        launch.add_argument(flag, **kwargs)
    p.set_defaults(func=run, parser_actions=p._actions)


LAUNCH_OPTIONS = {
    "--nproc-per-node": dict(type=int, default=1, help="training processes on this machine, one per GPU (on a "
                             "CPU: gloo processes sharing the cores); the batch is split over all processes"),
    "--nnodes": dict(type=int, default=1, help="machines training this one run together; each runs the same "
                     "command with its own --node-rank"),
    "--node-rank": dict(type=int, default=0, help="this machine's number, 0 to --nnodes - 1: machine 0 hosts the "
                        "rendezvous and writes snapshots and progress"),
    "--rdzv-endpoint": dict(metavar="HOST:PORT", default=None, help="machine 0's address and a free port on it, "
                            "the same on every machine; needed when --nnodes is more than 1"),
}
LAUNCH_DESTS = {flag[2:].replace("-", "_") for flag in LAUNCH_OPTIONS}


def resolve_base(base: str | None) -> str | None:
    """A path as given, or a model name looked up in the server's models folder."""
    from server.cli.import_pkl import default_models_dir

    if base is None or Path(base).expanduser().exists() or base.endswith(".safetensors"):
        return base if base is None else str(Path(base).expanduser())
    models = default_models_dir()
    candidate = models / f"{base}.safetensors"
    if candidate.is_file():
        return str(candidate)
    names = sorted(p.stem for p in models.glob("*.safetensors")) if models.is_dir() else []
    known = f"models there: {', '.join(names)}" if names else "it holds no models yet (latent-studio import-pkl)"
    raise ValueError(f"base model {base!r} is neither a file nor a model in {models}; {known}")


def _under_torchrun() -> bool:
    from server.torchrun import under_torchrun

    return under_torchrun()


def config_from_args(args):
    from gan_core.train.loop import TrainingConfig
    return TrainingConfig(
        data=args.data, run_dir=args.output, base=resolve_base(args.base), steps=args.steps, batch=args.batch,
        resolution=args.res, aug=args.aug, aug_p=args.aug_p, ada_kimg=args.ada_kimg, mirror=args.mirror,
        snapshot_every=args.snapshot_every, gamma=args.gamma, pl_weight=0.0 if args.no_pl else 2.0,
        freeze_d=args.freeze_d, preset=args.preset, device=args.device, seed=args.seed,
        metrics=tuple(m.strip() for m in args.metrics.split(",") if m.strip()), report_every=args.report_every,
        keep_snapshots=args.keep_snapshots,
        channels_last=args.channels_last, compile=args.compile, precision=args.precision, tileable=args.tileable)


class _StopOnSigint:
    """First Ctrl-C: request a graceful stop. Second: raise KeyboardInterrupt as usual."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)
        return False

    def __call__(self) -> bool:
        return self.requested


def already_done(run_dir: str, steps: int) -> int | None:
    """The step a finished run reached (its index says so, nothing is loaded), else None."""
    from gan_core.train.snapshots import list_snapshots

    entries = list_snapshots(run_dir) if Path(run_dir).is_dir() else []
    return entries[-1]["step"] if entries and entries[-1]["step"] >= steps else None


def _start_line(event: dict) -> str:
    return (f"training {event['resolution']}px on {event['device']} x{event['world_size']}: batch "
            f"{event['batch']}, gamma {event['gamma']:.4g}, lr {event['lr']:.4g}, aug {event['aug']}, "
            f"G {event['G_params'] / 1e6:.2f}M / D {event['D_params'] / 1e6:.2f}M params")


def _estimate_lines(event: dict) -> list[str]:
    from gan_core.train.estimate import format_duration

    lines = [f"estimate: {event['sec_per_step']:.3g} s/step, {format_duration(event['eta_s'])} for the "
             f"{event['steps'] - event['step']} steps left; {event['snapshot_bytes'] / 1e6:.0f} MB per snapshot, "
             f"{event['disk_bytes'] / 1e9:.2f} GB at the end ({event['snapshots_kept']} snapshots kept"
             + (f", time-lapse {event['timelapse_bytes'] / 1e6:.0f} MB)" if event["timelapse_bytes"] else ")")]
    if event["warning"]:
        lines.append(f"warning: {event['warning']} (--preset tiny, a lower dataset --res, or --device cuda)")
    return lines


def _train_flags(args) -> list[str]:
    """The options of this `train` command, for running it again under torchrun (launch options left out)."""
    flags = []
    for action in args.parser_actions:
        if not action.option_strings or action.dest in LAUNCH_DESTS or action.dest == "help":
            continue
        value = getattr(args, action.dest)
        flag = max(action.option_strings, key=len)
        if action.nargs == 0:  # an on/off flag
            if value:
                flags.append(flag)
        elif value is not None:
            flags += [flag, str(value)]
    return flags


def relaunch(args) -> int:
    """Run this command again under torchrun with the launch options, and wait for it.

    torchrun runs in its own session, so a Ctrl-C reaches only this process. It does not
    signal torchrun (which would then stop its ranks at once and leave the other machines
    waiting for it): it creates the stop file the ranks watch (STOP_FILE_ENV), they stop
    after a final snapshot, each machine's torchrun ends normally, and this exits with 130.
    A second Ctrl-C (or a SIGTERM) ends torchrun at once."""
    import tempfile

    from server import torchrun

    cmd = torchrun.command(["server.cli", "train", *_train_flags(args)], nproc_per_node=args.nproc_per_node,
                           nnodes=args.nnodes, node_rank=args.node_rank, endpoint=args.rdzv_endpoint)
    with tempfile.TemporaryDirectory(prefix="latent-studio-train-") as folder:
        stop_file = Path(folder) / "stop"
        proc = subprocess.Popen(cmd, env={**torchrun.environment(), STOP_FILE_ENV: str(stop_file)},
                                start_new_session=True)
        interrupts = []

        def on_signal(signum, frame):
            interrupts.append(signum)
            if signum == signal.SIGINT and interrupts.count(signal.SIGINT) == 1:
                stop_file.touch()
                print("stopping after a final snapshot (Ctrl-C again to abort)", file=sys.stderr)
                return
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            code = proc.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if interrupts and code == 0:
        print("interrupted: run the same command again to resume", file=sys.stderr)
    return EXIT_INTERRUPTED if interrupts else code


def run(args) -> int:
    if not _under_torchrun():
        from server.torchrun import check_rendezvous

        check_rendezvous(args.nnodes, args.node_rank, args.nproc_per_node, args.rdzv_endpoint)
        if args.nproc_per_node > 1 or args.nnodes > 1:
            return relaunch(args)
    from tqdm import tqdm

    from gan_core.train.distributed import env_dist_info
    from gan_core.train.loop import train

    config = config_from_args(args)
    is_main = env_dist_info().is_main
    done_at = already_done(config.run_dir, config.steps)
    if done_at is not None:
        if is_main:
            print(f"nothing to do: {config.run_dir} is already at step {done_at} of {config.steps} "
                  "(raise --steps to train further)")
        return 0
    show_bar = is_main and not args.quiet
    bar = None  # made on the first progress line, after the header and the step-0 snapshot

    def say(line: str) -> None:
        if is_main:
            (bar.write if bar is not None else print)(line)

    world: list[int] = []  # the run's process count, from its start event

    def on_progress(event: dict) -> None:
        nonlocal bar
        kind = event.get("event")
        if kind == "start":
            world.append(event["world_size"])
            say(_start_line(event))
        elif kind == "resumed":
            say(f"resuming from step {event['step']} ({event['kimg']:.2f} kimg)"
                + (f"; skipped damaged snapshots {event['skipped_snapshots']}" if event["skipped_snapshots"] else ""))
            saved = event.get("saved_world_size")
            if saved and world and saved != world[-1]:
                say(f"note: the snapshot was saved by {saved} process(es), this run has {world[-1]}: it trains on "
                    "correctly, but the random streams of ranks other than 0 start afresh (not bit-exact)")
        elif kind == "estimate":
            for line in _estimate_lines(event):
                say(line)
        elif kind == "snapshot":
            say(f"snapshot step {event['step']}: {event['network']}")
        elif kind == "progress" and show_bar:
            if bar is None:  # starts where the run is, so its speed counts only the steps it saw
                bar = tqdm(total=config.steps, initial=event["step"], unit="step", dynamic_ncols=True)
            bar.update(event["step"] - bar.n)
            bar.set_postfix(kimg=f"{event['kimg']:.1f}", p=f"{event['ada_p']:.3f}",
                            s_kimg=f"{event['sec_per_kimg']:.1f}",
                            **{k: f"{v:.3f}" for k, v in event["losses"].items()})

    stop_file = os.environ.get(STOP_FILE_ENV)  # set by `relaunch` on this machine's ranks
    with _StopOnSigint() as stop:
        try:
            summary = train(config, on_progress=on_progress,
                            should_stop=lambda: stop() or bool(stop_file and os.path.exists(stop_file)))
        finally:
            if bar is not None:
                bar.close()
    if is_main:
        state = "stopped early" if summary["stopped"] else "finished"
        print(f"{state} at step {summary['step']} ({summary['kimg']:.2f} kimg); run directory: {summary['run_dir']}")
        if stop.requested:
            print("interrupted: run the same command again to resume", file=sys.stderr)
    return EXIT_INTERRUPTED if stop.requested else 0
