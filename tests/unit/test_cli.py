"""The `latent-studio` command: usage errors, version, sub-commands present."""

import argparse
import json
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


def _parsers(parser: argparse.ArgumentParser, name: str = "latent-studio"):
    """Every parser of the CLI, each with its command path ("latent-studio dataset build")."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def _options(parser: argparse.ArgumentParser):
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction,
                                                              argparse._VersionAction))]


def test_every_option_has_help_and_shows_its_default():
    missing, hidden_default = [], []
    for name, parser in _parsers(build_parser()):
        for action in _options(parser):
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if not (action.help or "").strip():
                missing.append(label)
            elif action.option_strings and action.nargs != 0 and action.default is not None and "default" not in (
                    parser.formatter_class(prog=name)._get_help_string(action)):
                hidden_default.append(label)
    assert not missing, f"options without help text: {missing}"
    assert not hidden_default, f"options whose --help hides the default: {hidden_default}"


def test_one_flag_vocabulary():
    """-o/--output for outputs, --batch for batch sizes, --quiet for silence, never the old spellings."""
    old_spellings = {"--outdir", "--out", "--output-dir", "--models-dir", "--batch-size", "--no-progress-bar"}
    used = {}
    for name, parser in _parsers(build_parser()):
        for action in _options(parser):
            for flag in action.option_strings:
                used.setdefault(flag, set()).add(action.dest)
            assert not old_spellings & set(action.option_strings), f"{name}: {action.option_strings}"
    assert used["-o"] == used["--output"] == {"output"}
    assert used["--batch"] == {"batch"} and used["--quiet"] == {"quiet"}
    # one meaning per flag: --workers (serve: training jobs) is not dataset build's processes
    assert all(len(dests) == 1 for dests in used.values()), {f: d for f, d in used.items() if len(d) > 1}


def test_help_shows_defaults():
    proc = run_cli("dataset", "build", "--help")
    assert proc.returncode == 0
    assert "(default: 256)" in proc.stdout and "too_small" in proc.stdout


def test_data_usage_shows_what_takes_the_space(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "jobs" / "3" / "run" / "snapshots").mkdir(parents=True)
    (data / "jobs" / "3" / "run" / "snapshots" / "state-000000.pt").write_bytes(b"x" * 5000)
    (data / "jobs" / "4").mkdir()
    (data / "jobs" / "4" / "worker.lock").write_bytes(b"x" * 10)
    (data / "models").mkdir()
    (data / "models" / "ffhq.safetensors").write_bytes(b"x" * 700)
    (data / "datasets" / ".uploads").mkdir(parents=True)
    (data / "datasets" / ".uploads" / "upload-1.part").write_bytes(b"x" * 40)
    assert main(["data", "usage", "--data-dir", str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_folder = {c["folder"]: c for c in report["categories"]}
    assert report["bytes"] == 5750
    assert by_folder["jobs"]["bytes"] == 5010 and [i["name"] for i in by_folder["jobs"]["largest"]] == ["3", "4"]
    assert by_folder["models"]["largest"] == [{"name": "ffhq.safetensors", "bytes": 700}]
    assert by_folder["datasets"]["bytes"] == 40 and by_folder["datasets"]["count"] == 0  # counted, not listed
    assert "delete job" in by_folder["jobs"]["free_with"]
    assert main(["data", "usage", "--data-dir", str(data)]) == 0
    assert "5.0 KB" in capsys.readouterr().out
    assert main(["data", "usage", "--data-dir", str(tmp_path / "none")]) == 1
    assert "no data directory" in capsys.readouterr().err


def test_delete_without_a_server_or_token_says_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LATENT_STUDIO_TOKEN", raising=False)
    assert main(["delete", "job", "3", "--data-dir", str(tmp_path)]) == 1
    assert "no token" in capsys.readouterr().err
    assert main(["delete", "job", "3", "--token", "x" * 20, "--url", "http://127.0.0.1:9"]) == 1
    assert "is `latent-studio serve` running?" in capsys.readouterr().err
