"""`latent-studio` command line: one sub-command per job, each defined in server.cli.

Each command module has `register(subparsers)`, which adds its parser and sets `func`
(args -> exit code). Heavy imports (torch, flask) happen inside `func`, so `--help` is fast.
"""

from __future__ import annotations

import argparse
import sys

from gan_core import __version__
from server.cli import addon
from server.cli import dataset
from server.cli import generate
from server.cli import import_pkl
from server.cli import serve
from server.cli import train

COMMAND_MODULES = (serve, dataset, train, generate, import_pkl, addon)


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 1, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latent-studio",
        description="Train StyleGAN models on your own images and use them from Blender.",
    )
    parser.add_argument("--version", action="version", version=f"latent-studio {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # unknown commands/options: usage on stderr, exit 2
    try:
        return int(args.func(args) or 0)
    except (CommandError, ValueError, FileNotFoundError) as exc:
        print(f"latent-studio {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


