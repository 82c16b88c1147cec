"""`dosecalc sheet` through the real CLI: stdout, stderr and exit code asserted separately."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import SHIPPED_PROTOCOLS, TEST_PROTOCOLS

from dosecalc import __version__
from dosecalc.cli import cli

BASE = ["--protocols", str(TEST_PROTOCOLS), "sheet", "--date", "2026-11-21"]


def test_text_sheet_goes_to_stdout_with_every_part(runner: CliRunner) -> None:
    result = runner.invoke(cli, [*BASE, "--weight", "72 kg", "--patient-id", "P-001"])
    assert result.exit_code == 0
    assert result.stderr == ""
    out = result.stdout
    for expected in (
        "KETAMINE DOSE SHEET",
        "version test-1",
        "0.5 mg/kg x 72 kg = 36 mg",
        "Draw up 3.6 mL of ketamine 10 mg/mL (36 mg).",
        "Add it to 100 mL 0.9% sodium chloride.",
        "Total 103.6 mL, 0.347 mg/mL",
        "155.4 mL/h",
        "103.6 mL",
        "Dose rate: 54 mg/h (0.75 mg/kg/h)",
        "REVERSE CHECK",
        "Prepared by",
        "Independent double check by",
        "P-001",
    ):
        assert expected in out, expected
    assert "\x1b" not in out
    assert all(line == line.rstrip() for line in out.splitlines())


def test_json_sheet_has_exactly_the_documented_keys_and_rounded_numbers(runner: CliRunner) -> None:
    result = runner.invoke(cli, [*BASE, "--weight", "72 kg", "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert list(data) == [
        "schema", "dosecalc_version", "protocol_id", "protocol_version", "protocols_file",
        "protocols_sha256", "drug", "patient_id", "date", "weight_entered", "weight_kg",
        "dosing_weight_kg", "dose_per_kg", "dose_per_kg_unit", "dose", "dose_unit", "stock",
        "stock_unit", "drug_volume_ml", "diluent_volume_ml", "total_volume_ml", "duration_min",
        "rate_ml_per_h", "concentration", "concentration_unit", "dose_rate_per_h",
        "dose_rate_per_kg_per_h", "stock_label", "stock_per_ml", "diluent", "preparation",
        "max_rounding_change_percent", "checkpoints", "reverse_check", "check_code",
        "changed_from_protocol", "warnings", "overrides", "status",
    ]  # fmt: skip
    assert data["schema"] == "dosecalc.sheet/1"
    assert data["dosecalc_version"] == __version__
    assert data["patient_id"] is None
    assert (data["dose"], data["dose_unit"], data["drug_volume_ml"]) == (36, "mg", 3.6)
    assert (data["total_volume_ml"], data["rate_ml_per_h"], data["concentration"]) == (
        103.6,
        155.4,
        0.347,
    )
    assert data["checkpoints"][0] == {"minute": 10, "volume_ml": 25.9, "dose": 9}
    assert data["status"] == "ok"
    # JSON numbers are written as the exact decimal digits, never a float artefact.
    assert '"rate_ml_per_h": 155.4,' in result.stdout


def test_a_lb_weight_warns_on_stderr_and_in_json(runner: CliRunner) -> None:
    result = runner.invoke(cli, [*BASE, "--weight", "154 lb", "--format", "json"])
    assert result.exit_code == 0
    assert "weight entered in lb" in result.stderr
    data = json.loads(result.stdout)
    assert data["weight_entered"] == "154 lb"
    assert data["weight_kg"] == 69.9
    assert [w["code"] for w in data["warnings"]] == ["WEIGHT_IN_LB"]


def test_a_soft_limit_without_override_is_refused_with_how_to(runner: CliRunner) -> None:
    result = runner.invoke(cli, [*BASE, "--weight", "154 kg", "--format", "json"])
    assert result.exit_code == 1
    assert "--override" in result.stderr
    error = json.loads(result.stdout)
    assert error["schema"] == "dosecalc.error/1"
    assert error["status"] == "refused"
    assert [e["field"] for e in error["errors"]] == ["weight", "dose"]


def test_an_override_needs_an_operator(runner: CliRunner) -> None:
    result = runner.invoke(cli, [*BASE, "--weight", "154 kg", "--override", "weighed today"])
    assert result.exit_code == 2
    assert "operator" in result.stderr
    assert result.stdout == ""


def test_an_override_with_operator_from_the_environment_is_on_the_sheet(
    runner: CliRunner,
) -> None:
    result = runner.invoke(
        cli,
        [*BASE, "--weight", "154 kg", "--override", "weighed today", "--format", "json"],
        env={"DOSECALC_OPERATOR": "RN Lee"},
    )
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["overrides"][0] == {
        "limit": "weight",
        "value": "154 kg",
        "reason": "weighed today",
        "operator": "RN Lee",
    }
    text = runner.invoke(
        cli,
        [*BASE, "--weight", "154 kg", "--override", "weighed today", "--operator", "RN Lee"],
    )
    assert "WARNINGS AND OVERRIDES" in text.stdout
    assert "overridden by RN Lee: weighed today" in text.stdout


def test_at_a_terminal_the_nurse_confirms_and_types_a_reason(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dosecalc.cli.is_interactive", lambda: True)
    result = runner.invoke(
        cli, [*BASE, "--weight", "154 kg", "--format", "json"], input="y\nweighed today\nRN Lee\n"
    )
    assert result.exit_code == 0, result.stderr
    assert "SOFT LIMIT: weight 154 kg is above the soft limit 150 kg" in result.stderr
    data = json.loads(result.stdout)
    assert {o["reason"] for o in data["overrides"]} == {"weighed today"}
    declined = runner.invoke(cli, [*BASE, "--weight", "154 kg"], input="n\n")
    assert declined.exit_code == 1
    assert declined.stdout == ""


def test_at_a_terminal_a_missing_weight_is_asked_for(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dosecalc.cli.is_interactive", lambda: True)
    result = runner.invoke(cli, [*BASE, "--format", "json"], input="72 kg\n")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["dose"] == 36
    assert "Weight" in result.stderr


def test_without_a_terminal_a_missing_weight_is_invalid(runner: CliRunner) -> None:
    result = runner.invoke(cli, BASE)
    assert result.exit_code == 2
    assert "weight: is required" in result.stderr


def test_output_is_written_atomically_and_never_clobbered(
    runner: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "sheet.json"
    first = runner.invoke(cli, [*BASE, "--weight", "72 kg", "--format", "json", "-o", str(target)])
    assert first.exit_code == 0
    assert first.stdout == ""
    assert json.loads(target.read_text())["dose"] == 36
    second = runner.invoke(cli, [*BASE, "--weight", "80 kg", "--format", "json", "-o", str(target)])
    assert second.exit_code == 2
    assert "already exists" in second.stderr
    assert json.loads(target.read_text())["dose"] == 36  # unchanged
    forced = runner.invoke(
        cli, [*BASE, "--weight", "80 kg", "--format", "json", "-o", str(target), "--force"]
    )
    assert forced.exit_code == 0
    assert json.loads(target.read_text())["dose"] == 40  # 0.5 x 80
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sheet.json"]  # no temporary left


@pytest.mark.parametrize("force", [[], ["--force"]])
@pytest.mark.parametrize("name", ["newdir/", "folder", "folder/"])
def test_an_output_that_names_a_folder_is_refused_and_nothing_is_written(
    runner: CliRunner, tmp_path: Path, name: str, force: list[str]
) -> None:
    (tmp_path / "folder").mkdir()
    target = f"{tmp_path}/{name}"
    result = runner.invoke(cli, [*BASE, "--weight", "72 kg", "--output", target, *force])
    assert result.exit_code == 2
    assert f"output: --output '{target}' names a folder: give the path of a file" in result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]  # no file named newdir
    assert list((tmp_path / "folder").iterdir()) == []


def test_the_audit_log_gets_one_line_per_sheet_or_refusal_without_the_name(
    runner: CliRunner, tmp_path: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    ok = runner.invoke(cli, [*BASE, "--weight", "72 kg", "--name", "Ada Example",
                             "--audit-log", str(log)])  # fmt: skip
    refused = runner.invoke(
        cli, [*BASE, "--weight", "700 kg"], env={"DOSECALC_AUDIT_LOG": str(log)}
    )
    assert (ok.exit_code, refused.exit_code) == (0, 1)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [entry["event"] for entry in lines] == ["sheet", "refusal"]
    assert lines[0]["result"]["dose"] == 36
    assert lines[0]["protocols_sha256"] == lines[0]["result"]["protocols_sha256"]
    assert set(lines[0]["versions"]) == {"dosecalc", "pint", "rich", "click", "python"}
    assert lines[1]["error"]["status"] == "refused"
    assert "Ada Example" not in log.read_text()


def test_a_name_is_shown_literally_never_as_markup(runner: CliRunner) -> None:
    name = "[red]Ada[/red] [link=https://example.org]x[/link] <script>"
    result = runner.invoke(cli, [*BASE, "--weight", "72 kg", "--name", name])
    assert result.exit_code == 0
    assert name in result.stdout


def test_help_documents_the_exit_codes(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["sheet", "--help"])
    assert result.exit_code == 0
    assert "0 sheet produced; 1 refused by a limit; 2 invalid input or usage" in " ".join(
        result.stdout.split()
    )


def test_version_and_python_dash_m_work() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "dosecalc", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"dosecalc {__version__}"


def test_the_shipped_protocols_are_used_by_default(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["sheet", "--weight", "72 kg", "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["protocol_id"] == "ketamine-iv"
    assert Path(data["protocols_file"]).read_bytes() == SHIPPED_PROTOCOLS.read_bytes()


def test_piped_text_output_has_no_escape_codes_even_with_force_color(tmp_path: Path) -> None:
    env = {**os.environ, "FORCE_COLOR": "1", "DOSECALC_PROTOCOLS": str(TEST_PROTOCOLS)}
    out = subprocess.run(
        [sys.executable, "-m", "dosecalc", "sheet", "--weight", "72 kg", "--date", "2026-11-21"],
        capture_output=True,
        env=env,
        check=True,
    )
    assert b"\x1b" not in out.stdout
    assert b"155.4 mL/h" in out.stdout


# --- at a real terminal: prompts and messages (an outside check in tmux) ------------------------


def at_a_terminal(
    args: list[str], answers: list[bytes | int], stderr_too: bool = True
) -> tuple[int, str]:
    """`dosecalc ARGS` on a pseudo-terminal 80 columns wide (stdin, stdout and, with `stderr_too`,
    stderr), typing each answer once the program has waited a moment (an int: that signal, as the
    terminal sends SIGINT for Ctrl-C): (exit code, screen)."""
    import pty
    import select
    import time

    main_fd, terminal_fd = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("LINES", "NO_COLOR")}
    process = subprocess.Popen(
        [sys.executable, "-m", "dosecalc", "--protocols", str(TEST_PROTOCOLS), *args],
        stdin=terminal_fd, stdout=terminal_fd,
        stderr=terminal_fd if stderr_too else subprocess.DEVNULL,
        env={**env, "COLUMNS": "80"},
    )  # fmt: skip
    os.close(terminal_fd)
    screen = b""

    def read(seconds: float) -> None:
        nonlocal screen
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if select.select([main_fd], [], [], 0.1)[0]:
                try:
                    data = os.read(main_fd, 65536)
                except OSError:  # the program ended
                    return
                if not data:
                    return
                screen += data

    try:
        for answer in answers:
            read(2.0)
            if isinstance(answer, int):
                process.send_signal(answer)
            else:
                os.write(main_fd, answer)
        read(10.0)
        process.wait(timeout=30)
    finally:
        os.close(main_fd)
    return process.returncode, screen.decode(errors="replace").replace("\r\n", "\n")


def test_a_bad_weight_at_the_prompt_is_asked_again() -> None:
    code, screen = at_a_terminal(["sheet", "--date", "2026-11-25"], [b"72\n", b"72 kg\n"])
    assert code == 0, screen
    assert "Error: weight: '72' has no unit" in screen
    assert screen.count("Weight, with its unit (for example 72 kg):") == 2
    assert "36 mg" in screen  # 0.5 mg/kg x 72 kg


def test_ctrl_d_at_the_weight_prompt_is_a_missing_weight_not_an_interrupt() -> None:
    code, screen = at_a_terminal(["sheet", "--date", "2026-11-25"], [b"\x04"])
    assert code == 2, screen
    assert '\ndosecalc: weight: is required, for example --weight "72 kg"' in screen
    assert "interrupted" not in screen


def test_ctrl_d_at_the_override_question_is_a_no() -> None:
    code, screen = at_a_terminal(["sheet", "--weight", "154 kg", "--date", "2026-11-25"], [b"\x04"])
    assert code == 1, screen
    assert "Override the soft limit? [y/N]: \ndosecalc: weight 154 kg is above" in screen
    assert "not confirmed" in screen
    assert "interrupted" not in screen


def test_an_answer_other_than_yes_or_no_says_what_is_accepted() -> None:
    # click.confirm said only "Error: invalid input".
    code, screen = at_a_terminal(
        ["sheet", "--weight", "154 kg", "--date", "2026-11-25"], [b"maybe\n", b"n\n"]
    )
    assert code == 1, screen
    assert "answer y (yes) or n (no); just Enter is no" in screen
    assert "invalid input" not in screen
    assert screen.count("Override the soft limit? [y/N]:") == 2


def test_ctrl_c_at_a_question_ends_its_line_before_the_message() -> None:
    # "Override the soft limit? [y/N]: ^Cdosecalc: interrupted; ..." on one line. Ctrl-C is
    # SIGINT from the terminal: sent to the process once the question is on the screen.
    code, screen = at_a_terminal(
        ["sheet", "--weight", "154 kg", "--date", "2026-11-25"], [signal.SIGINT]
    )
    assert code == 130, screen
    assert "Override the soft limit? [y/N]: \ndosecalc: interrupted" in screen


def test_no_question_is_asked_where_stderr_is_not_a_terminal() -> None:
    """With 2>/dev/null the override question was asked where nobody could see it: it looked hung."""
    code, screen = at_a_terminal(
        ["sheet", "--weight", "154 kg", "--date", "2026-11-25"], [], stderr_too=False
    )
    assert code == 1, screen
    assert "[y/N]" not in screen


def test_messages_at_a_terminal_are_broken_at_spaces_never_inside_a_number() -> None:
    """At 80 columns the terminal cut "(range 10 mg to 7" / "5 mg)" in the soft-limit message."""
    code, screen = at_a_terminal(["sheet", "--weight", "154 kg", "--date", "2026-11-25"], [b"n\n"])
    assert code == 1, screen
    messages = [line for line in screen.splitlines() if "soft limit" in line or line[:2] == "  "]
    assert messages, screen
    assert max(len(line) for line in screen.splitlines()) <= 80
    assert "(range 10 mg to\n  75 mg)" in screen or "(range 10 mg to 75 mg)" in screen
    assert "7\n5 mg" not in screen
