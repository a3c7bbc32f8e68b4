"""`latent-studio train`: train a StyleGAN2-ADA model on a prepared dataset.

Ctrl-C asks the loop to stop after the current step; it then writes a final snapshot, so
the run can be resumed by running the same command again. A second Ctrl-C aborts at once.
Works under torchrun (one process per GPU); only rank 0 prints and writes files.
"""

from __future__ import annotations

import signal


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model on a prepared dataset zip",
                              description="Train (or resume) a StyleGAN2-ADA model. Running it again on the same "
                                          "--out directory resumes from the newest valid snapshot.")
    p.add_argument("--data", required=True, help="dataset zip (from `latent-studio dataset`)")
    p.add_argument("--out", required=True, help="run directory (snapshots, progress.jsonl)")
    p.add_argument("--base", help="checkpoint to fine-tune from (same resolution as the dataset)")
    p.add_argument("--steps", type=int, default=5000, help="total steps (one minibatch each; default 5000)")
    p.add_argument("--batch", type=int, default=16, help="global batch size (default 16)")
    p.add_argument("--res", type=int, default=None, help="expected resolution (default: the dataset's)")
    p.add_argument("--aug", choices=("ada", "fixed", "off"), default="ada", help="augmentation mode (default ada)")
    p.add_argument("--aug-p", type=float, default=0.0, help="fixed augmentation probability, or ADA's start")
    p.add_argument("--ada-kimg", type=float, default=500.0, help="ADA speed: kimg for p to go 0->1 (default 500)")
    p.add_argument("--mirror", action="store_true", help="add x-flipped copies of the dataset")
    p.add_argument("--snapshot-every", type=int, default=500, help="steps between snapshots (default 500)")
    p.add_argument("--gamma", type=float, default=None, help="R1 weight (default: 0.0002 * res^2 / batch)")
    p.add_argument("--no-pl", action="store_true", help="turn path-length regularisation off")
    p.add_argument("--freeze-d", type=int, default=0, help="freeze the first N D blocks (transfer learning)")
    p.add_argument("--preset", choices=("auto", "tiny", "small", "stylegan2"), default="auto",
                   help="network size when training from scratch")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--metrics", default="", help="comma-separated metrics at snapshots: swd, fid, kid")
    p.add_argument("--report-every", type=int, default=10, help="steps between progress lines")
    p.add_argument("--channels-last", action="store_true", help="CUDA: channels-last memory layout")
    p.add_argument("--compile", action="store_true", help="CUDA: torch.compile the discriminator")
    p.add_argument("--no-progress-bar", action="store_true", help="no tqdm bar (log lines only)")
    p.set_defaults(func=run)


def config_from_args(args):
    from gan_core.train.loop import TrainingConfig
    return TrainingConfig(
        data=args.data, run_dir=args.out, base=args.base, steps=args.steps, batch=args.batch,
        resolution=args.res, aug=args.aug, aug_p=args.aug_p, ada_kimg=args.ada_kimg, mirror=args.mirror,
        snapshot_every=args.snapshot_every, gamma=args.gamma, pl_weight=0.0 if args.no_pl else 2.0,
        freeze_d=args.freeze_d, preset=args.preset, device=args.device, seed=args.seed,
        metrics=tuple(m.strip() for m in args.metrics.split(",") if m.strip()), report_every=args.report_every,
        channels_last=args.channels_last, compile=args.compile)


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


def run(args) -> int:
    from tqdm import tqdm

    from gan_core.train.distributed import env_dist_info
    from gan_core.train.loop import train

    config = config_from_args(args)
    is_main = env_dist_info().is_main
    show_bar = is_main and not args.no_progress_bar
    bar = None  # made on the 'start' event, i.e. after train() has validated the config

    def on_progress(event: dict) -> None:
        nonlocal bar
        kind = event.get("event")
        if kind == "start" and show_bar:
            bar = tqdm(total=config.steps, unit="step", dynamic_ncols=True)
        if bar is not None and kind in ("progress", "resumed"):
            bar.n = event["step"]
            if kind == "progress":
                bar.set_postfix(kimg=f"{event['kimg']:.1f}", p=f"{event['ada_p']:.3f}",
                                s_kimg=f"{event['sec_per_kimg']:.1f}",
                                **{k: f"{v:.3f}" for k, v in event["losses"].items()})
            bar.refresh()
        elif kind == "start":
            line = (f"training {event['resolution']}px on {event['device']} x{event['world_size']}: batch "
                    f"{event['batch']}, gamma {event['gamma']:.4g}, lr {event['lr']:.4g}, aug {event['aug']}, "
                    f"G {event['G_params'] / 1e6:.2f}M / D {event['D_params'] / 1e6:.2f}M params")
            (bar.write if bar is not None else print)(line)
        elif kind == "snapshot" and is_main:
            (bar.write if bar is not None else print)(f"snapshot step {event['step']}: {event['network']}")

    with _StopOnSigint() as stop:
        try:
            summary = train(config, on_progress=on_progress, should_stop=stop)
        finally:
            if bar is not None:
                bar.close()
    if is_main:
        state = "stopped early" if summary["stopped"] else "finished"
        print(f"{state} at step {summary['step']} ({summary['kimg']:.2f} kimg); run directory: {summary['run_dir']}")
    return 0
