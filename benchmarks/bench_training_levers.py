"""Which levers speed up our CPU training step: each variant of our trainer timed against the
default, interleaved in one run on the same machine (issue 17: "levers to measure, not assume").

Variants (each its own run of the same 32 px networks from the same seed, batch 16, aug off):
  default        the trainer as it is
  clamp_always   conv_clamp applied even when nothing is out of range (before the shortcut)
  adam_foreach   Adam foreach=True (the default is torch's: a per-parameter loop on the CPU)
  adam_fused     Adam fused=True (not resume-exact on the CPU: not used)
  channels_last  networks and images in NHWC
  compile        torch.compile of D (first-order phases; compile time reported apart)
  threads_1      the default trainer on 1 torch thread (others: --threads)
Rounds alternate the order (ABBA); every variant runs --steps steps a round (16 = one R1
cycle). Prints one JSON document: sec/kimg per variant and its ratio to the default.

    python benchmarks/bench_training_levers.py [--rounds 2] [--steps 16] [--threads 2] [--variants a,b]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_training import make_dataset, our_run  # noqa: E402

import gan_core.nn.layers as layers  # noqa: E402

VARIANTS = ("default", "clamp_always", "adam_foreach", "adam_fused", "channels_last", "compile", "threads_1")


@contextlib.contextmanager
def _clamp_always():
    """The clamp as it was: a clamp pass (and its backward) whatever the values."""
    shortcut = layers.clamp_symmetric

    def always(x, clamp, inplace=False):
        if clamp is None or clamp < 0:
            return x
        return x.clamp_(-clamp, clamp) if inplace else x.clamp(-clamp, clamp)

    layers.clamp_symmetric = always
    try:
        yield
    finally:
        layers.clamp_symmetric = shortcut


@contextlib.contextmanager
def _threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _swap_adam(run, **options) -> None:
    for name, net in (("G_opt", run.G), ("D_opt", run.D)):
        old = getattr(run, name)
        group = old.param_groups[0]
        setattr(run, name, torch.optim.Adam(net.parameters(), lr=group["lr"], betas=group["betas"], eps=group["eps"],
                                            **options))


def _nhwc(run) -> None:
    for net in (run.G, run.D, run.G_ema):
        net.to(memory_format=torch.channels_last)
    batches = run.loader

    def nhwc_batches():
        for img, c in batches:
            yield img.contiguous(memory_format=torch.channels_last), c

    run.loader = nhwc_batches()


def build(variant: str, tmp: Path, data: Path):
    """(run, context manager factory for its chunks)."""
    run = our_run(tmp / variant, data, net="tiny", batch=16, case="off", device="cpu", compile=variant == "compile")
    context = contextlib.nullcontext
    if variant == "clamp_always":
        context = _clamp_always
    elif variant == "adam_foreach":
        _swap_adam(run, foreach=True)
    elif variant == "adam_fused":
        _swap_adam(run, fused=True)
    elif variant == "channels_last":
        _nhwc(run)
    elif variant == "threads_1":
        context = lambda: _threads(1)  # noqa: E731
    return run, context


def timed(run, context, steps: int) -> float:
    with context():
        t0 = time.perf_counter()
        for _ in range(steps):
            run.train_step()
        return time.perf_counter() - t0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default: 2)")
    ap.add_argument("--steps", type=int, default=16, help="steps per variant per round (default: 16)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first (default: 2)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of: {', '.join(VARIANTS)}")
    args = ap.parse_args(argv)
    chosen = [v for v in args.variants.split(",") if v]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"bench_training_levers: unknown variant(s) {unknown}: use {', '.join(VARIANTS)}")
    if "default" not in chosen:
        chosen.insert(0, "default")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {"torch": torch.__version__, "machine": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "load_avg_start": [round(x, 2) for x in os.getloadavg()],
              "command": [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])],
              "config": {"resolution": 32, "net": "tiny", "batch": 16, "aug": "off", "steps": args.steps,
                         "rounds": args.rounds}}
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "d.zip", 32)
        runs, warm_s = {}, {}
        for variant in chosen:
            t0 = time.perf_counter()
            runs[variant] = build(variant, Path(tmp), data)
            timed(*runs[variant], args.warmup)
            warm_s[variant] = round(time.perf_counter() - t0, 1)
        times = {v: [] for v in chosen}
        for r in range(args.rounds):
            for variant in (chosen if r % 2 == 0 else reversed(chosen)):
                times[variant].append(timed(*runs[variant], args.steps))
        for run, _ in runs.values():
            run.dataset.close()
    images = args.steps * 16 * args.rounds
    spk = {v: sum(t) / images * 1000 for v, t in times.items()}
    result["variants"] = {v: {"sec_per_kimg": round(spk[v], 3), "vs_default": round(spk[v] / spk["default"], 3),
                              "rounds_s": [round(x, 2) for x in times[v]], "setup_and_warmup_s": warm_s[v]}
                          for v in chosen}
    compiled = runs.get("compile")
    if compiled is not None:
        result["variants"]["compile"]["compiled"] = compiled[0].loss.compiled_D is not None
        result["variants"]["compile"]["note"] = compiled[0].compile_note
    result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
