"""The `flmn` command: installed by `pip install -e .` (requirements-dev.txt), the same as `python -m flmn_core`."""

import subprocess
import sys
from pathlib import Path

import pytest

from flmn_core import cli

ROOT = Path(__file__).resolve().parents[1]
INSTALLED = Path(sys.executable).parent / "flmn"  # the console script pyproject.toml declares


def run(*command):
    return subprocess.run([*map(str, command)], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_installed_command_lists_every_subcommand():
    assert INSTALLED.is_file(), f"{INSTALLED} is missing: pip install -e . (requirements-dev.txt does)"
    result = run(INSTALLED, "--help")
    assert result.returncode == 0, result.stderr
    for name in cli.COMMANDS:
        assert f"\n  {name} " in result.stdout


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_each_subcommand_answers_help_under_its_own_name(name):
    result = run(sys.executable, "-m", "flmn_core", name, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: flmn {name}")


def test_an_unknown_command_is_refused_with_the_list():
    result = run(sys.executable, "-m", "flmn_core", "trian")
    assert result.returncode == 2 and "unknown command 'trian'" in result.stderr and "train" in result.stderr
