"""`latent-studio addon build`: the extension zip (see server.addon_build)."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("addon", help="Blender extension tasks")
    sub = p.add_subparsers(dest="addon_command", metavar="ACTION")
    sub.required = True
    b = sub.add_parser("build", help="build the installable Blender extension zip")
    b.add_argument("-o", "--output", default="dist", metavar="DIR", help="folder for the zip")
    b.add_argument("--source", default=None, help="project checkout holding addon/ and blender_manifest.toml")
    b.set_defaults(func=_run_build)


def _run_build(args) -> int:
    from server.addon_build import build_addon

    zip_path = build_addon(Path(args.output), source=Path(args.source) if args.source else None)
    print(zip_path)
    return 0


