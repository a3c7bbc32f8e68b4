"""`latent-studio project`: find the latent that reproduces an image (gan_core.project).

Output files, in the -o folder:
  latent.npy          float32 [w_dim] (one w for every layer) or [num_ws, w_dim] (--w-plus)
  latent.json         {"w": ...} in the form a walk key takes (POST /walks waypoints[].w),
                      with the options, the loss used, the final loss and the loss per step
  reconstruction.png  the latent rendered (with the optimised noise under --noise)
  target.png          the image as compared: its centre square at the model's side
  noise.npz           the optimised noise buffers, by layer (--noise only)
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from gan_core import rules

FILES = ("latent.npy", "latent.json", "reconstruction.png", "target.png")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "project", help="find the latent of an image (projection)",
        description="Optimise a latent so the model renders IMAGE; write it to DIR (latent.npy, latent.json, "
                    "reconstruction.png, target.png). The latent can be a walk key (waypoints[].w).")
    p.add_argument("--model", required=True, help="network checkpoint (.safetensors); a training snapshot holds the "
                                                  "discriminator that the dfeat loss needs")
    p.add_argument("--image", required=True, help="the image to reproduce (PNG, JPEG, WebP, BMP, TIFF); its centre "
                                                  "square is resized to the model's side")
    p.add_argument("--steps", type=int, default=rules.DEFAULT_PROJECTION_STEPS,
                   help=f"optimisation steps, {rules.MIN_PROJECTION_STEPS}..{rules.MAX_PROJECTION_STEPS}")
    p.add_argument("--w-plus", action="store_true", help="one w per layer (W+): closer, less typical latents")
    p.add_argument("--noise", action="store_true",
                   help="also optimise the per-pixel noise (saved to noise.npz; walks use only the latent)")
    p.add_argument("--loss", default="dfeat", choices=rules.PROJECTION_LOSSES,
                   help="dfeat: the model's discriminator features + pixel + multi-scale terms; pixel: pixel + "
                        "multi-scale only (a model without a discriminator falls back to it, with a note)")
    p.add_argument("--seed", type=int, default=0, help="seeds the optimisation: same inputs, same result")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the result files (created if "
                                                                       "missing)")
    p.add_argument("--quiet", action="store_true", help="no progress or summary lines")
    p.set_defaults(func=_run)


def _read_image(path: str):
    import numpy as np

    from gan_core.data.decode import decode_rgb, open_image
    from gan_core.data.errors import RejectedImage

    if not Path(path).is_file():
        raise FileNotFoundError(f"no image at {path}")
    try:
        return np.asarray(decode_rgb(open_image(path, max_pixels=rules.MAX_PROJECTION_PIXELS), (0, 0, 0)))
    except RejectedImage as exc:
        raise ValueError(f"{path}: {exc.reason}") from None


def _load(model: str, device: str):
    """(G_ema, D or None), D only when the file holds one."""
    from gan_core.device import resolve_device
    from gan_core.models.checkpoint import load_network, read_network_config

    parts = ("G_ema", "D") if "D" in (read_network_config(model).get("parts") or ()) else ("G_ema",)
    loaded = load_network(model, device=resolve_device(device), parts=parts)
    return loaded["G_ema"], loaded.get("D")


def _run(args) -> int:
    import numpy as np

    from gan_core.fileio import atomic_write_bytes, atomic_write_text
    from gan_core.generate import encode_png
    from gan_core.project import project

    rules.check_int(args.steps, "--steps", rules.MIN_PROJECTION_STEPS, rules.MAX_PROJECTION_STEPS)
    rules.check_int(args.seed, "--seed", 0, rules.MAX_SEED)
    image = _read_image(args.image)  # cheap checks before the weights are read
    G, D = _load(args.model, args.device)
    tick = max(1, args.steps // 10)

    def progress(event: dict) -> None:
        if not args.quiet and (event["step"] % tick == 0 or event["step"] == event["steps"]):
            print(f"step {event['step']}/{event['steps']}: loss {event['loss']:.4f}", file=sys.stderr)

    result = project(G, D if args.loss == "dfeat" else None, image, steps=args.steps, w_plus=args.w_plus,
                     optimize_noise=args.noise, loss=args.loss, seed=args.seed, on_progress=progress)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, result.latent)
    atomic_write_bytes(out / "latent.npy", buf.getvalue())
    summary = {"w": result.latent.tolist(), "w_plus": result.w_plus, "model": str(args.model), "image": str(args.image),
               "loss": result.loss, "steps": result.steps, "seed": args.seed, "noise": args.noise,
               "final_loss": result.final_loss, "note": result.note, "losses": result.losses}
    atomic_write_text(out / "latent.json", json.dumps(summary) + "\n")
    atomic_write_bytes(out / "reconstruction.png", encode_png(result.image))
    atomic_write_bytes(out / "target.png", encode_png(result.target))
    if result.noise:
        buf = io.BytesIO()
        np.savez(buf, **result.noise)
        atomic_write_bytes(out / "noise.npz", buf.getvalue())
    if not args.quiet:
        if result.note:
            print(f"note: {result.note}")
        print(f"wrote {', '.join(FILES)}{', noise.npz' if result.noise else ''} to {out} "
              f"(loss {result.losses[0]:.4f} -> {result.final_loss:.4f})")
    return 0
