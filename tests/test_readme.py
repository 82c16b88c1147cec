"""The README's Quick start and exit codes must match what the tool does."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dosecalc.cli import EXIT_HELP, cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_quick_start_holds_the_two_set_up_commands() -> None:
    assert 'python -m pip install . && dosecalc sheet --weight "72 kg"' in README
    assert 'python -m pip install -e ".[test]" && python -m pytest' in README


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
