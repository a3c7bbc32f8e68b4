"""`latent-studio` command line: one sub-command per job, each defined in server.cli.

Each command module has `register(subparsers)`, which adds its parser and sets `func`
(args -> exit code). Heavy imports (torch, flask) happen inside `func`, so `--help` is fast.

One flag vocabulary across commands: `-o/--output` names every output (file or folder),
`--batch` every batch size, `--quiet` turns progress output off, `--processes` is worker
processes (dataset build) and `--workers` concurrent training jobs (serve). Every option
has help text, and `--help` shows its default (tests/unit/test_cli.py checks both).
"""

from __future__ import annotations

import argparse
import sys

from gan_core import __version__
from server.cli import addon
from server.cli import data
from server.cli import delete
from server.cli import dataset
from server.cli import db
from server.cli import generate
from server.cli import import_pkl
from server.cli import project
from server.cli import serve
from server.cli import train

COMMAND_MODULES = (serve, dataset, train, generate, import_pkl, addon, data, delete, db, project)


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 1, no traceback."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions as written and appends each option's default to its help, unless
    it is an on/off flag, the default is unset (None) or the help already explains it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        takes_value = action.nargs != 0  # an on/off flag's default is "not given"
        unset = action.default is None or action.default is argparse.SUPPRESS  # (0 is a real default)
        if action.option_strings and takes_value and not unset and "default" not in text:
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """Every (sub)parser of the CLI: nested sub-parsers inherit the class, so all of them
    show defaults the same way."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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


