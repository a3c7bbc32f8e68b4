"""`latent-studio dataset build|info`: make a training-ready dataset zip, or describe one."""

from __future__ import annotations

import json

from gan_core import rules


def register(subparsers) -> None:
    p = subparsers.add_parser("dataset", help="build or inspect a dataset zip")
    sub = p.add_subparsers(dest="dataset_command", metavar="ACTION")
    sub.required = True

    b = sub.add_parser("build", help="build a dataset zip from images, a zip of images, or a video")
    b.add_argument("sources", nargs="+", metavar="SRC", help="a folder, a zip, a video, or image files")
    b.add_argument("-o", "--output", required=True, metavar="OUT.zip", help="the dataset zip to write")
    b.add_argument("--res", type=int, default=rules.DEFAULT_DATASET_RESOLUTION,
                   help=f"output side in pixels, a power of two from {rules.DATASET_MIN_RESOLUTION} to "
                        f"{rules.DATASET_MAX_RESOLUTION}; smaller images are rejected as too_small "
                        "unless --allow-upscale")
    b.add_argument("--crop", default="center", choices=rules.CROP_MODES,
                   help="how a non-square image becomes square: center crop, none (pad with --background), "
                        "random crop, or stretch")
    b.add_argument("--background", default="#000000", metavar="#RRGGBB",
                   help="colour behind transparent pixels and around padded images")
    b.add_argument("--inflate", default="", metavar="LIST",
                   help=f"comma list of extra variants per image: {','.join(rules.INFLATIONS)} (default: none)")
    b.add_argument("--labels-from-folders", action="store_true", help="one class per top-level sub-folder")
    video = b.add_mutually_exclusive_group()
    video.add_argument("--fps", type=float, default=None, help="video: frames per second to take")
    video.add_argument("--every-nth", type=int, default=None, metavar="N", help="video: take every Nth frame")
    b.add_argument("--allow-upscale", action="store_true", help="enlarge images smaller than --res")
    b.add_argument("--seed", type=int, default=0, help="for random crops and the preview sample")
    b.add_argument("--processes", type=int, default=None, metavar="N",
                   help="worker processes decoding images (default: the number of CPUs, at most 8)")
    b.add_argument("--max-images", type=int, default=25000, help="refuse a source with more images than this")
    b.add_argument("--max-source-gb", type=float, default=5.0, help="refuse a source larger than this many GB")
    b.add_argument("--max-megapixels", type=float, default=None,
                   help="refuse images whose header claims more (default 67.1 = 8192x8192)")
    b.add_argument("--near-duplicate-distance", type=int, default=None, metavar="BITS",
                   help="dHash bits within which images count as near duplicates (default 4; -1 = off)")
    b.add_argument("--report", default=None, help="report.json path (default <OUT stem>.report.json)")
    b.add_argument("--preview", default=None, help="preview.png path (default <OUT stem>.preview.png)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=_build)

    i = sub.add_parser("info", help="describe a dataset zip (JSON)")
    i.add_argument("path", metavar="DATASET.zip", help="a dataset zip made by `dataset build`")
    i.set_defaults(func=_info)


def _build(args) -> int:
    from tqdm import tqdm

    from gan_core.data import build_dataset

    source = args.sources[0] if len(args.sources) == 1 else args.sources
    bar = None

    def on_progress(state: dict) -> None:
        nonlocal bar
        if args.quiet or state["stage"] not in ("processing", "writing"):
            return
        if bar is None:
            bar = tqdm(total=state["total"], unit="img", desc="dataset")
        bar.total = state["total"]
        bar.update(state["done"] - bar.n)
        bar.set_postfix(accepted=state["accepted"], rejected=state["rejected"])

    extra = {}
    if args.max_megapixels is not None:
        extra["max_pixels"] = int(args.max_megapixels * 1e6)
    if args.near_duplicate_distance is not None:
        extra["near_duplicate_distance"] = None if args.near_duplicate_distance < 0 else args.near_duplicate_distance
    try:
        report = build_dataset(
            source, args.output, resolution=args.res, crop=args.crop, background=args.background,
            allow_upscale=args.allow_upscale, inflate=args.inflate, labels_from_folders=args.labels_from_folders,
            fps=args.fps, every_nth=args.every_nth, seed=args.seed, workers=args.processes,
            max_images=args.max_images, max_source_bytes=int(args.max_source_gb * 1e9), on_progress=on_progress,
            report_path=args.report, preview_path=args.preview, **extra,
        )
    finally:
        if bar is not None:
            bar.close()
    c = report["counts"]
    print(
        f"wrote {report['output']}: {c['images']} images ({c['accepted']} accepted + {c['inflated']} inflated), "
        f"{c['rejected']} rejected; report {report['report_path']}, preview {report['preview_path']}"
    )
    if report["rejected_by_reason"]:
        reasons = ", ".join(f"{n} {code}" for code, n in sorted(report["rejected_by_reason"].items(), key=lambda kv: -kv[1]))
        print(f"rejected: {reasons} (every file and reason is in the report)")
    too_small = report["rejected_by_reason"].get("too_small", 0)
    if too_small:
        print(f"hint: {too_small} image(s) were smaller than {args.res} px: use a lower --res "
              f"(e.g. --res {max(rules.DATASET_MIN_RESOLUTION, args.res // 2)}) or --allow-upscale")
    return 0


def _info(args) -> int:
    from gan_core.data import dataset_info

    print(json.dumps(dataset_info(args.path), indent=2))
    return 0
