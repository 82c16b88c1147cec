"""The README's Quick start and exit codes must match what the tool does."""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from click.testing import CliRunner

from dosecalc.cli import EXIT_HELP, cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _quickstart() -> ModuleType:
    spec = importlib.util.spec_from_file_location("quickstart", ROOT / "scripts" / "quickstart.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_quick_start_holds_the_two_set_up_commands() -> None:
    assert _quickstart().commands(README) == [
        'python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/dosecalc sheet --weight "72 kg"',
        'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/python -m pytest',
    ]


def test_the_quick_start_needs_only_python3_and_installs_only_into_a_virtual_environment() -> None:
    # A stock Debian or Ubuntu has no `python` command, and its pip refuses installs outside a
    # virtual environment (PEP 668).
    for command in _quickstart().commands(README):
        words = shlex.split(command)
        assert "python" not in words, command
        assert "pip" not in words, command
        assert command.startswith("python3 -m venv .venv && "), command
        assert all(w.startswith(".venv/bin/") for w in words if w.endswith(("pip", "dosecalc"))), (
            command
        )


def test_ci_runs_the_quick_start_commands_extracted_from_the_readme() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'command_1="$(python3 scripts/quickstart.py 1)"' in ci
    assert 'command_2="$(python3 scripts/quickstart.py 2)"' in ci
    assert 'bash -euo pipefail -c "$command_1"' in ci
    assert 'bash -euo pipefail -c "$command_2"' in ci
    assert "site-packages" in ci  # the shipped-protocols check after command 1
    assert "tmux" in ci  # the first-screen test's terminal


def test_the_quickstart_script_prints_each_command_and_refuses_anything_else() -> None:
    script = [sys.executable, str(ROOT / "scripts" / "quickstart.py")]
    for n, expected in enumerate(_quickstart().commands(README), 1):
        done = subprocess.run([*script, str(n)], capture_output=True, text=True, check=False)
        assert (done.returncode, done.stdout) == (0, expected + "\n")
    assert subprocess.run([*script, "3"], capture_output=True, check=False).returncode == 2


def test_the_quick_start_sheet_command_works_on_the_shipped_protocols(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["sheet", "--weight", "72 kg"])
    assert result.exit_code == 0
    assert "155.4 mL/h" in result.stdout  # 103.6 mL over 40 min


def test_every_exit_code_in_the_help_is_in_the_readme() -> None:
    assert EXIT_HELP.startswith("Exit codes: 0 sheet produced; 1 refused by a limit;")
    for row in ("| 0 | sheet produced |", "| 1 | refused by a limit", "| 2 | invalid input",
                "| 3 | invalid protocols file"):  # fmt: skip
        assert row in README, row


def test_the_process_exit_codes_are_in_the_help_and_the_readme() -> None:
    for code in ("4 output incomplete", "130 interrupted", "141 broken pipe"):
        assert code in EXIT_HELP, code
    for row in ("| 4 | output incomplete", "| 130 | interrupted", "| 141 | broken pipe"):
        assert row in README, row
