"""`latent-studio generate` and `latent-studio walk`: images and latent walks from a model.

Output files:
  generate: DIR/seed0007.png, one per seed (the reference tools' naming, 4+ digits);
  walk:     DIR/frame_0001.png, one per frame number (4+ digits, the `####` pattern that
            Blender's image sequences expect; numbers are the walk's own frame numbers).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gan_core import rules



def seed_filename(seed: int) -> str:
    return f"seed{seed:04d}.png"


def frame_filename(frame: int) -> str:
    return f"frame_{frame:04d}.png"


def _common(p) -> None:
    p.add_argument("--model", required=True, help="network checkpoint (.safetensors)")
    p.add_argument("--psi", type=float, default=1.0,
                   help=f"truncation psi, {rules.PSI_MIN:g}..{rules.PSI_MAX:g} (1 = none, 0.7 = typical)")
    p.add_argument("--noise-mode", default="const", choices=rules.NOISE_MODES, help="per-pixel noise")
    p.add_argument("--class", dest="class_idx", type=int, default=None, help="class index for conditional models")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seamless", action=argparse.BooleanOptionalAction, default=None,
                   help="tileable images: every padding in the network wraps around (default: on for models "
                        "trained with --tileable, off for others)")
    p.add_argument("--size-multiplier", type=int, default=1, metavar="N",
                   help=f"seamless images N times the model's resolution, 1..{rules.MAX_SIZE_MULTIPLIER} (a 256 px "
                        "model gives 512-2048 px textures; needs seamless, so it turns it on unless --no-seamless)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the PNG files (created if missing)")
    p.add_argument("--quiet", action="store_true", help="no progress or summary lines")


def register(subparsers) -> None:
    p = subparsers.add_parser("generate", help="generate images from seeds",
                              description="Write DIR/seedNNNN.png for each seed.")
    _common(p)
    p.add_argument("--seeds", required=True, help="seeds like 0-9,12 (same seed = same image as the reference tools)")
    p.add_argument("--batch", type=int, default=16, help="images per forward pass")
    p.set_defaults(func=_run_generate)

    p = subparsers.add_parser("walk", help="render a latent walk as an image sequence",
                              description="Write DIR/frame_NNNN.png for each frame of a keyed latent walk.")
    _common(p)
    p.add_argument("--keys", required=True, help="keys like 0:seed=1,48:seed=7,96:seed=1")
    p.add_argument("--interp", default="slerp", choices=rules.INTERPOLATIONS,
                   help="slerp walks in z space, lerp in w space")
    p.add_argument("--easing", default="linear", help=f"speed profile between keys: {', '.join(rules.EASINGS)}")
    p.add_argument("--loop", action="store_true",
                   help="make the last frame lead smoothly back to the first; a last key equal to the first "
                        "(0:seed=1,...,96:seed=1) closes the loop and is not rendered twice")
    p.add_argument("--frames", default=None,
                   help="frame range START-END (default: first key to last key, or to one before a closing key)")
    p.add_argument("--batch", type=int, default=8, help="frames per forward pass")
    p.add_argument("--direction", action="append", default=[], metavar="ID=KEYS",
                   help="also move along a direction of the model (SeFa; ids as GET /models/{id}/directions "
                        "lists them): coarse:0=2.5 for one amount throughout, coarse:0=0:0,48:3,96:0 for "
                        "amounts keyed on frames (straight lines between keys); repeatable")
    p.set_defaults(func=_run_walk)


def _write(path: Path, data: bytes) -> None:
    from gan_core.fileio import atomic_write_bytes
    from gan_core.generate import GenerateError

    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise GenerateError(f"cannot write {path}: {exc.strerror or exc}") from None


def _check_texture_flags(args) -> None:
    """--seamless / --size-multiplier checked before the model is loaded (ModelRunner checks again)."""
    from gan_core.generate import GenerateError, validate_size_multiplier

    if validate_size_multiplier(args.size_multiplier) > 1 and args.seamless is False:
        raise GenerateError(f"--size-multiplier {args.size_multiplier} needs seamless mode: drop --no-seamless "
                            "(or use --size-multiplier 1)")


def _run_generate(args) -> int:
    from gan_core.generate import ModelRunner, encode_png
    from gan_core.latent import parse_seeds

    seeds = parse_seeds(args.seeds)  # cheap checks before loading torch weights
    _check_texture_flags(args)
    runner = ModelRunner(args.model, device=args.device)
    outdir = Path(args.output)
    batch = max(1, args.batch)
    for i in range(0, len(seeds), batch):
        chunk = seeds[i:i + batch]
        images = runner.generate(seeds=chunk, psi=args.psi, noise_mode=args.noise_mode, class_idx=args.class_idx,
                                 batch_size=args.batch, seamless=args.seamless,
                                 size_multiplier=args.size_multiplier)
        for seed, image in zip(chunk, images):
            _write(outdir / seed_filename(seed), encode_png(image))
    if not args.quiet:
        print(f"wrote {len(seeds)} image(s) to {outdir}")
    return 0


def _run_walk(args) -> int:
    from gan_core.directions import WalkDirection, direction_by_id, keyed_amounts, parse_direction_keys
    from gan_core.generate import ModelRunner, encode_png
    from gan_core.latent import loop_keys_and_range, parse_frame_range, parse_keys

    keys = parse_keys(args.keys)
    if args.frames:
        start, end = parse_frame_range(args.frames)
    elif args.loop:
        keys, start, end = loop_keys_and_range(keys)
    else:
        start, end = keys[0].frame, keys[-1].frame
    _check_texture_flags(args)
    direction_keys = [parse_direction_keys(spec) for spec in args.direction]  # bad syntax: before loading
    runner = ModelRunner(args.model, device=args.device)
    directions = []
    for direction_id, amounts in direction_keys:
        found = direction_by_id(runner, direction_id)
        directions.append(WalkDirection(found.vector, found.layers, keyed_amounts(amounts, start, end)))
    outdir = Path(args.output)
    frames = runner.render_walk(keys, start, end, interp=args.interp, easing=args.easing, loop=args.loop,
                                psi=args.psi, noise_mode=args.noise_mode, batch_size=args.batch,
                                class_idx=args.class_idx, seamless=args.seamless,
                                size_multiplier=args.size_multiplier, directions=directions)
    total = end - start + 1
    count = 0
    for frame, image in frames:
        _write(outdir / frame_filename(frame), encode_png(image))
        count += 1
        if count % 50 == 0 and not args.quiet:
            print(f"{count}/{total} frames", file=sys.stderr)
    if not args.quiet:
        print(f"wrote {count} frame(s) to {outdir} ({frame_filename(start)} .. {frame_filename(end)})")
    return 0
