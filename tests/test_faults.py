"""Faults around a sheet: a nearly full disk, closed or failing streams, hostile log targets and
paths, Ctrl-C and broken pipes. Each test failed on the code before issue 12."""

from __future__ import annotations

import decimal
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import DATE, TEST_PROTOCOLS, assert_no_traceback

from dosecalc import cli as cli_module
from dosecalc import files
from dosecalc.cli import cli

BASE = ["--protocols", str(TEST_PROTOCOLS), "sheet", "--date", DATE]
SHEET = [sys.executable, "-m", "dosecalc", *BASE, "--weight", "72 kg"]


def log_lines(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


# --- the audit log ------------------------------------------------------------------------------


def test_a_short_audit_write_on_a_full_disk_fails_loudly_and_leaves_no_cut_record(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "audit.jsonl"
    first = runner.invoke(cli, [*BASE, "--weight", "72 kg", "--audit-log", str(log)])
    assert first.exit_code == 0
    real_write = os.write

    def nearly_full(fd: int, data: bytes) -> int:  # the disk takes the first 20 bytes only
        return real_write(fd, bytes(data)[:20])

    monkeypatch.setattr(files.os, "write", nearly_full)
    cut = runner.invoke(cli, [*BASE, "--weight", "72 kg", "--audit-log", str(log)])
    assert cut.exit_code == 2
    assert cut.stdout == ""  # no sheet without its record
    assert "the record was not logged" in cut.stderr
    monkeypatch.setattr(files.os, "write", real_write)
    after = runner.invoke(cli, [*BASE, "--weight", "80 kg", "--audit-log", str(log)])
    assert after.exit_code == 0
    records = log_lines(log)  # every line is a whole record: nothing cut, nothing glued
    assert [r["inputs"]["weight"] for r in records] == ["72 kg", "80 kg"]  # type: ignore[index]


def test_a_record_after_a_cut_one_starts_on_its_own_line(runner: CliRunner, tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text('{"time": "20')  # cut by a crash of some earlier version
    result = runner.invoke(cli, [*BASE, "--weight", "72 kg", "--audit-log", str(log)])
    assert result.exit_code == 0
    cut, record = log.read_text().splitlines()
    assert cut == '{"time": "20'
    assert json.loads(record)["event"] == "sheet"


def test_a_refused_giving_set_or_dose_rate_is_logged_as_typed(
    runner: CliRunner, tmp_path: Path
) -> None:
    # 13 gtt/mL is no giving set (10, 15, 20 or 60): refused, and the record must say what was
    # typed, or the log of a refusal does not show why.
    log = tmp_path / "audit.jsonl"
    result = runner.invoke(
        cli, [*BASE, "--weight", "72 kg", "--drop-factor", "13 gtt/mL", "--audit-log", str(log)]
    )
    assert result.exit_code == 2
    (record,) = log_lines(log)
    assert record["event"] == "refusal"
    assert record["inputs"]["drop_factor"] == "13 gtt/mL"  # type: ignore[index]


@pytest.mark.parametrize("name", ["5", "L", "mg"])
def test_withholding_the_name_never_changes_a_limits_numbers_or_units(
    runner: CliRunner, tmp_path: Path, name: str
) -> None:
    # The name was cut out of every message by plain replacement: with the name "5" the log read
    # "weight 1[name withheld]8 kg is above the soft limit 1[name withheld]0 kg".
    log = tmp_path / "audit.jsonl"
    result = runner.invoke(
        cli, [*BASE, "--weight", "158 kg", "--name", name, "--audit-log", str(log)]
    )
    assert result.exit_code == 1
    (record,) = log_lines(log)
    messages = [e["message"] for e in record["error"]["errors"]]  # type: ignore[index]
    assert messages[0].startswith("weight 158 kg is above the soft limit 150 kg (range 40 kg")
    # 0.5 mg/kg x 158 kg = 79 mg, above the soft limit 75 mg.
    assert messages[1].startswith("dose 79 mg is above the soft limit 75 mg")
    assert "withheld" not in " ".join(messages)


def test_a_number_for_a_name_never_changes_a_decimal_in_the_log(
    runner: CliRunner, tmp_path: Path
) -> None:
    # With the name "5", "--dose 0.5 mg" was logged as "dose: '0.[name withheld] mg'".
    log = tmp_path / "audit.jsonl"
    args = ["--weight", "70.5 kg", "--name", "5", "--dose", "0.5 mg", "--audit-log", str(log)]
    assert runner.invoke(cli, [*BASE, *args]).exit_code == 2
    (record,) = log_lines(log)
    (problem,) = record["error"]["errors"]  # type: ignore[index]
    assert problem["message"].startswith("dose: '0.5 mg' ")
    assert "withheld" not in problem["message"]


def test_a_name_typed_where_a_message_repeats_it_is_still_withheld(
    runner: CliRunner, tmp_path: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    args = ["--weight", "Jane Roe", "--name", "Jane Roe", "--audit-log", str(log)]
    assert runner.invoke(cli, [*BASE, *args]).exit_code == 2
    (record,) = log_lines(log)
    (problem,) = record["error"]["errors"]  # type: ignore[index]
    assert problem["message"].startswith("weight: '[name withheld]' ")
    # A name with a digit in it, beside a comma and a number, is still withheld.
    from dosecalc import audit
    from dosecalc.errors import InputError, Problem

    echoed = InputError(Problem("row", "bad_csv", "line 2: A1,Ann5,72 kg"))
    assert audit.without_name(echoed, "Ann5")["errors"][0]["message"] == (
        "line 2: A1,[name withheld],72 kg"
    )


def test_every_input_but_the_name_can_reach_the_log() -> None:
    # A field added to Order and not to the log would leave it out of every record again.
    from dataclasses import fields

    from dosecalc import audit
    from dosecalc.model import Order

    given = {f.name: f"typed {f.name}" for f in fields(Order)}
    logged = audit._inputs(Order(**given))
    renamed = {"protocol_id": "protocol"}
    assert {renamed.get(f, f) for f in given} - {"name"} == set(logged)
    assert "name" not in logged


def test_an_audit_log_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = subprocess.run(
        [*SHEET, "--audit-log", str(fifo)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert "it is a FIFO" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "env", "code", "says"),
    [
        (["--protocols", "{fifo}", "sheet", "--weight", "72 kg"], {}, 3, "protocols file"),
        (["protocols", "check", "{fifo}"], {}, 3, "protocols file"),
        (["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "72 kg"],
         {"DOSECALC_CONFIG": "{fifo}"}, 2, "settings file"),
    ],
)  # fmt: skip
def test_a_protocols_or_settings_file_that_is_a_fifo_is_refused_at_once(
    tmp_path: Path, args: list[str], env: dict[str, str], code: int, says: str
) -> None:
    # Opening a FIFO for reading waits for a writer: these waited for ever.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "dosecalc", *(a.replace("{fifo}", str(fifo)) for a in args)],
        env={**os.environ, **{k: v.replace("{fifo}", str(fifo)) for k, v in env.items()}},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == code, done.stderr
    assert f"cannot read the {says}" in done.stderr
    assert "not a regular file (a FIFO, a device or a folder)" in done.stderr


def test_an_audit_log_that_is_a_symlink_or_a_device_is_refused(
    runner: CliRunner, tmp_path: Path
) -> None:
    real = tmp_path / "real.jsonl"
    real.write_text("")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    linked = runner.invoke(cli, [*BASE, "--weight", "72 kg", "--audit-log", str(link)])
    assert linked.exit_code == 2
    assert "symbolic link" in linked.stderr
    assert real.read_text() == ""
    device = runner.invoke(cli, [*BASE, "--weight", "72 kg", "--audit-log", os.devnull])
    assert device.exit_code == 2
    assert "it is a device" in device.stderr


def test_an_empty_audit_log_option_is_refused_not_taken_as_no_log(runner: CliRunner) -> None:
    result = runner.invoke(cli, [*BASE, "--weight", "72 kg", "--audit-log", ""])
    assert result.exit_code == 2
    assert "--audit-log is empty" in result.stderr
    assert result.stdout == ""


def test_an_output_that_exists_is_logged_as_a_refusal_never_as_a_sheet(
    runner: CliRunner, tmp_path: Path
) -> None:
    log, existing = tmp_path / "audit.jsonl", tmp_path / "existing.txt"
    existing.write_text("keep")
    result = runner.invoke(
        cli, [*BASE, "--weight", "72 kg", "-o", str(existing), "--audit-log", str(log)]
    )
    assert result.exit_code == 2
    assert existing.read_text() == "keep"
    (record,) = log_lines(log)
    assert record["event"] == "refusal"
    assert record["error"]["errors"][0]["code"] == "file_exists"  # type: ignore[index]


@pytest.mark.parametrize(
    "name", ["Ada\tLovelace", "Ada Lovelace Byron " * 6, "Ada\x1b[2J Lovelace"]
)
def test_a_refused_name_never_reaches_the_log_not_even_in_a_message(
    runner: CliRunner, tmp_path: Path, name: str
) -> None:
    log = tmp_path / "audit.jsonl"
    result = runner.invoke(
        cli, [*BASE, "--weight", "72 kg", "--name", name, "--audit-log", str(log)]
    )
    assert result.exit_code == 2
    text = log.read_text()
    assert "Ada" not in text
    assert "Lovelace" not in text
    assert log_lines(log)[0]["event"] == "refusal"


# --- streams ------------------------------------------------------------------------------------


def test_force_never_replaces_a_fifo_or_a_symlink_with_a_sheet(
    runner: CliRunner, tmp_path: Path
) -> None:
    """As root, `--output /dev/null --force` replaced the device with a regular file; a FIFO in
    a folder of our own shows the same, and /dev/stdout is a symbolic link."""
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "elsewhere.txt")
    for target, kind in ((fifo, "a FIFO"), (link, "a symbolic link")):
        result = runner.invoke(
            cli, [*BASE, "--weight", "72 kg", "--output", str(target), "--force"]
        )
        assert result.exit_code == 2, kind
        assert f"output: {target} is {kind}; --force replaces only a regular file" in result.stderr
    assert fifo.is_fifo()
    assert link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.txt", "link.txt"]


@pytest.mark.parametrize(("mask", "mode"), [(0o077, 0o600), (0o022, 0o644), (0o002, 0o664)])
def test_a_written_file_has_the_mode_the_users_umask_gives(
    tmp_path: Path, mask: int, mode: int
) -> None:
    """A sheet with a patient's name was 0644 whatever the umask (a clinic's 077 ignored)."""
    before = os.umask(mask)
    try:
        files.write_atomic(tmp_path / "sheet.txt", b"a sheet\n")
        files.write_atomic(tmp_path / "sheet.txt", b"a sheet\n", force=True)
    finally:
        os.umask(before)
    assert (tmp_path / "sheet.txt").stat().st_mode & 0o777 == mode


def test_a_closed_stdout_is_an_error_not_a_traceback() -> None:
    command = " ".join(f"'{part}'" for part in SHEET)
    done = subprocess.run(
        ["bash", "-c", f"{command} >&-"], capture_output=True, text=True, timeout=60
    )
    assert_no_traceback(done.stderr)
    assert done.returncode == 2
    assert "stdout is closed" in done.stderr


def test_a_full_disk_on_stdout_exits_4_without_a_traceback() -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(SHEET, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert_no_traceback(done.stderr)
    assert done.returncode == 4
    assert "No space left on device" in done.stderr


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_sheet_that_never_reached_stdout_is_logged_as_output_failed(
    tmp_path: Path, fmt: str
) -> None:
    # The record "sheet" is appended before the sheet is shown (never a sheet without its record);
    # when stdout then fails, the log must say so, or it claims a sheet was issued that nobody saw.
    log = tmp_path / "audit.jsonl"
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*SHEET, "--format", fmt, "--audit-log", str(log)],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 4
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [r["event"] for r in records] == ["sheet", "output_failed"]
    (problem,) = records[1]["error"]["errors"]
    assert problem["code"] == "stdout_failed"
    assert "No space left on device" in problem["message"]


def run_with_a_full_stderr(*args: str) -> subprocess.CompletedProcess[str]:
    """`dosecalc ARGS 2>/dev/full`: every message to stderr fails with ENOSPC."""
    with open("/dev/full", "w") as full:
        return subprocess.run(
            [sys.executable, "-m", "dosecalc", *args],
            stdout=subprocess.PIPE, stderr=full, text=True, timeout=60,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("weight", "code"),
    [("bad", 2), ("700 kg", 1)],  # invalid input; a hard limit (the test protocols: 200 kg)
)
def test_a_full_stderr_never_changes_a_refusals_exit_code(weight: str, code: int) -> None:
    done = run_with_a_full_stderr(*BASE, "--weight", weight)
    assert done.returncode == code
    assert done.stdout == ""


def test_a_full_stderr_on_a_sheet_with_a_warning_exits_4_and_keeps_the_sheet() -> None:
    done = run_with_a_full_stderr(*BASE, "--weight", "154 lb")  # warns WEIGHT_IN_LB on stderr
    assert done.returncode == 4  # the warning was lost: not 0, and not 1 ("refused")
    assert "KETAMINE DOSE SHEET" in done.stdout
    assert "WEIGHT_IN_LB" in done.stdout  # the sheet's own warnings box
    assert "155.2 mL/h" in done.stdout  # 69.853 kg x 0.5 mg/kg / 10 mg/mL + 100 mL over 40 min


def test_a_full_stderr_with_nothing_to_say_exits_0() -> None:
    done = run_with_a_full_stderr(*BASE, "--weight", "72 kg")
    assert done.returncode == 0
    assert "155.4 mL/h" in done.stdout


def test_a_stdout_encoding_that_cannot_show_the_sheet_exits_without_a_traceback(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    with open(tmp_path / "f.txt", "w") as out:
        done = subprocess.run(
            SHEET, stdout=out, stderr=subprocess.PIPE, text=True, env=env, timeout=60
        )
    assert_no_traceback(done.stderr)
    assert done.returncode == 4
    assert "PYTHONIOENCODING=utf-8" in done.stderr


def test_ctrl_c_exits_130_never_1(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("dosecalc.model.make_sheet", interrupted)
    monkeypatch.setattr(sys, "argv", ["dosecalc", *BASE, "--weight", "72 kg"])
    with pytest.raises(SystemExit) as stop:
        cli_module.main()
    assert stop.value.code == 130


def test_an_arithmetic_failure_in_the_engine_is_invalid_input_not_a_traceback(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def overflow(*args: object, **kwargs: object) -> None:
        raise decimal.InvalidOperation([decimal.DivisionUndefined])

    # Inside make_sheet, which turns it into invalid input for every caller (sheet, batch, check).
    monkeypatch.setattr("dosecalc.model._make_sheet", overflow)
    result = runner.invoke(cli, [*BASE, "--weight", "72 kg"])
    assert result.exit_code == 2
    assert "cannot be calculated exactly" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --- escape sequences in echoed paths -----------------------------------------------------------

OSC = "\x1b]0;owned\x07"


def test_a_path_with_escape_sequences_is_echoed_as_escapes(
    runner: CliRunner, tmp_path: Path
) -> None:
    bad = str(tmp_path / f"x{OSC}.toml")
    for args in (
        ["protocols", "check", bad],
        ["--protocols", bad, "sheet", "--weight", "72 kg"],
        [*BASE, "--weight", "72 kg", "--protocol", "nope"],
    ):
        result = runner.invoke(cli, args)
        assert "\x1b" not in result.stderr, args
        assert "\x07" not in result.stderr, args
    (tmp_path / f"out{OSC}").write_text("x")
    exists = runner.invoke(cli, [*BASE, "--weight", "72 kg", "-o", str(tmp_path / f"out{OSC}")])
    assert exists.exit_code == 2
    assert "\x1b" not in exists.stderr
    assert "\\x1b]0;owned\\x07" in exists.stderr


def test_a_protocols_path_with_escapes_is_not_echoed_raw_by_an_unknown_protocol(
    runner: CliRunner, tmp_path: Path
) -> None:
    copy = tmp_path / f"p{OSC}.toml"
    copy.write_bytes(TEST_PROTOCOLS.read_bytes())
    result = runner.invoke(
        cli, ["--protocols", str(copy), "sheet", "--weight", "72 kg", "--protocol", "nope"]
    )
    assert result.exit_code == 2
    assert "is not in" in result.stderr
    assert "\x1b" not in result.stderr


def test_a_toml_key_with_escape_sequences_is_echoed_as_escapes(
    runner: CliRunner, tmp_path: Path
) -> None:
    hostile = tmp_path / "p.toml"
    hostile.write_text(
        TEST_PROTOCOLS.read_text() + '\n"\\u001b]0;owned\\u0007" = 1\n', encoding="utf-8"
    )
    result = runner.invoke(cli, ["protocols", "check", str(hostile)])
    assert result.exit_code == 3
    assert "unknown key" in result.stderr
    assert "\x1b" not in result.stderr


def test_the_audit_log_is_never_the_sheet_or_the_protocols_file(
    runner: CliRunner, tmp_path: Path
) -> None:
    """`--output X --audit-log X --force` replaced the log with the sheet; `--audit-log` naming the
    protocols file appended JSON to it, and the next run failed on invalid TOML."""
    protocols = tmp_path / "protocols.toml"
    protocols.write_bytes(TEST_PROTOCOLS.read_bytes())
    log = tmp_path / "audit.jsonl"
    log.write_text('{"earlier": "record"}\n')
    base = ["--protocols", str(protocols), "sheet", "--date", DATE, "--weight", "72 kg"]
    for args, what in (
        (["--output", str(log), "--force", "--audit-log", str(log)], "output"),
        (["--audit-log", str(protocols)], "protocols file"),
    ):
        result = runner.invoke(cli, [*base, *args])
        assert result.exit_code == 2, result.output
        assert f"is also the {what}; give the audit log a file of its own" in result.stderr
    check = ["--protocols", str(protocols), "check", "--date", DATE, "--weight", "72 kg",
             "--vial", "10 mg/mL", "--operator", "RN Kim", "--audit-log", str(protocols)]  # fmt: skip
    assert runner.invoke(cli, check).exit_code == 2
    over = runner.invoke(cli, [*base, "--output", str(protocols), "--force"])
    assert over.exit_code == 2
    assert "output: " in over.stderr
    assert "is also the protocols file" in over.stderr
    assert protocols.read_bytes() == TEST_PROTOCOLS.read_bytes()
    assert log.read_text() == '{"earlier": "record"}\n'
