"""The `latent-studio` command: usage errors, version, sub-commands present."""

import subprocess
import sys

import pytest

from gan_core import __version__
from server.cli import build_parser, main

REQUIRED = ["serve", "dataset", "train", "generate", "walk", "import-pkl", "addon"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True, text=True, timeout=120)


def test_every_required_subcommand_is_registered():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(REQUIRED) <= set(sub.choices)


def test_unknown_subcommand_prints_usage_and_fails():
    proc = run_cli("frobnicate")
    assert proc.returncode == 2
    assert "usage:" in proc.stderr and "invalid choice" in proc.stderr


def test_unknown_option_prints_usage_and_fails():
    proc = run_cli("addon", "build", "--no-such-option")
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


def test_no_subcommand_is_an_error():
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


def test_version():
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert __version__ in proc.stdout
