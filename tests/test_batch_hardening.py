"""`dosecalc batch` after the second outside attack (issue 12): every physical line accounted for,
a folder complete only with its manifest, nothing written when a target clashes, faults undone,
an audit record per row, and no patient data left behind. Each test failed on the code before."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import DATE, TEST_PROTOCOLS, assert_no_traceback, command, day_list, need

from dosecalc import cli as cli_module
from dosecalc.cli import cli
from dosecalc.sanitize import csv_cell as neutralise

GOOD = "B002,72 kg\nC003,73 kg\nD004,74 kg\n"


def batch(runner: CliRunner, *args: str, stdin: bytes | None = None) -> Result:
    return runner.invoke(
        cli, ["--protocols", str(TEST_PROTOCOLS), "batch", *args, "--date", DATE], input=stdin
    )


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def disk_full_on_write(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """The batch's n-th file write fails as on a full disk (the writes before it succeed)."""
    from dosecalc.batch import write as batch_write
    from dosecalc.errors import OutputError, Problem

    real_write, calls = batch_write.write_atomic, []

    def full_on_the_nth(path: Path, data: object, **kwargs: object) -> None:
        if path.name != "INCOMPLETE":  # the run's own marker (Writer.begin) is not counted
            calls.append(path.name)
        if len(calls) == n and path.name != "INCOMPLETE":
            raise OutputError(Problem("out", "cannot_write", "out: No space left on device"))
        real_write(path, data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(batch_write, "write_atomic", full_on_the_nth)


# --- every physical line ------------------------------------------------------------------------


def test_a_stray_quote_refuses_the_list_naming_the_line_and_the_hidden_patients(
    runner: CliRunner, tmp_path: Path
) -> None:
    daylist = tmp_path / "day.csv"
    daylist.write_text('patient_id,weight,name\nA001,72 kg,"Smith\n' + GOOD.replace(" kg", " kg,x"))
    out = tmp_path / "out"
    result = batch(runner, str(daylist), "--out", str(out))
    assert result.exit_code == 2
    assert "line 2 opens a quoted field" in result.stderr
    assert "B002, C003, D004" in result.stderr
    assert "nothing was written" in result.stderr
    assert not out.exists()  # not even the folder


def test_a_stray_quote_on_stdout_output_writes_nothing(runner: CliRunner) -> None:
    result = batch(runner, "-", stdin=b'patient_id,weight\nA001,"72 kg\n' + GOOD.encode())
    assert result.exit_code == 2
    assert result.stdout == ""


def test_a_bare_carriage_return_is_one_invalid_line_naming_both_patients(
    runner: CliRunner,
) -> None:
    result = batch(runner, "-", stdin=b"patient_id,weight\nA001,72 kg\rB002,72 kg\nC003,72 kg\n")
    assert result.exit_code == 1
    rows = rows_of(result.stdout)
    assert [(r["line"], r["status"]) for r in rows] == [("2", "invalid"), ("3", "ok")]
    assert "A001, B002" in rows[0]["message"]
    assert "carriage return" in rows[0]["message"]


def test_two_json_objects_on_one_line_are_refused_naming_both(runner: CliRunner) -> None:
    two = b'{"patient_id": "A001", "weight": "72 kg"} {"patient_id": "B002", "weight": "72 kg"}\n'
    result = batch(runner, "-", "--input-format", "jsonl", "--format", "jsonl", stdin=two)
    assert result.exit_code == 1
    (obj,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert obj["status"] == "invalid"
    assert "A001, B002" in obj["errors"][0]["message"]
    assert "exactly one object per line" in obj["errors"][0]["message"]


def jsonl_batch(runner: CliRunner, stdin: bytes) -> list[dict[str, object]]:
    result = batch(runner, "-", "--input-format", "jsonl", "--format", "jsonl", stdin=stdin)
    assert_no_traceback(result.stderr)
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_json_line_with_spaces_or_tabs_around_its_object_is_read_as_json_reads_it(
    runner: CliRunner,
) -> None:
    # json.loads accepts JSON whitespace (space, tab, CR) before and after the value.
    stdin = b'  {"patient_id": "A001", "weight": "72 kg"}\n\t{"patient_id": "B002", "weight": "72 kg"} \t\n'
    objs = jsonl_batch(runner, stdin)
    assert [(o["patient_id"], o["status"]) for o in objs] == [("A001", "ok"), ("B002", "ok")]


def test_a_line_that_is_not_json_says_where_and_names_its_patient(runner: CliRunner) -> None:
    (obj,) = jsonl_batch(runner, b'{"patient_id": "A001", "weight": 72 kg}\n')
    assert obj["status"] == "invalid"
    assert obj["errors"] == [
        {
            "field": "row",
            "code": "bad_json",
            "message": "line 1 is not valid JSON: Expecting ',' delimiter at column 37 "
            "(patient id(s) in it: A001)",
        }
    ]


@pytest.mark.parametrize(
    ("cells", "patient_id", "message"),
    [
        (
            '"patient_id": 1e2',
            None,
            "patient_id: the JSON number 1e2 is not accepted: patient_id is text. "
            "Accepted: text in quotes, or null",
        ),
        (
            '"patient_id": "A001", "operator": 2',
            "A001",
            "operator: the JSON number 2 is not accepted: operator is text. "
            "Accepted: text in quotes, or null",
        ),
        (
            '"patient_id": "A001", "override_reason": 1',
            "A001",
            "override_reason: the JSON number 1 is not accepted: override_reason is text. "
            "Accepted: text in quotes, or null",
        ),
        ('"patient_id": "A001", "Name": true', "A001", "Name: must be text in quotes or null"),
        (
            '"patient_id": "A001", "dose": [1]',
            "A001",
            "dose: must be text in quotes, a number or null",
        ),
    ],
)
def test_a_json_number_where_text_is_expected_is_refused_naming_the_field(
    runner: CliRunner, cells: str, patient_id: str | None, message: str
) -> None:
    (obj,) = jsonl_batch(runner, ('{"weight": "72 kg", ' + cells + "}\n").encode())
    assert (obj["status"], obj["patient_id"]) == ("invalid", patient_id)
    assert obj["errors"] == [{"field": "row", "code": "bad_json", "message": message}]


def test_a_json_number_in_a_quantity_column_meets_the_quantity_grammar(runner: CliRunner) -> None:
    # weight_kg and hr take plain numbers; weight needs its unit.
    stdin = (
        b'{"patient_id": "A001", "weight_kg": 72, "hr": 76}\n{"patient_id": "B002", "weight": 72}\n'
    )
    ok, bad = jsonl_batch(runner, stdin)
    assert (ok["patient_id"], ok["weight_kg"]) == ("A001", 72)
    assert bad["status"] == "invalid"
    assert bad["errors"][0]["message"].startswith("weight: '72' has no unit")


class NoLineEnds(io.RawIOBase):
    """A stream of `size` bytes of zeros and no line end, counting what was read from it."""

    def __init__(self, size: int) -> None:
        self.left, self.taken = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        self.taken += n
        return n


def test_a_stream_without_line_ends_is_refused_after_a_bounded_read() -> None:
    # /dev/zero read for ever; here 8 MB (a test must end): the reader stops after the 16 KB line
    # and 1 MB (1,048,576 bytes) more without a line end, at most a buffer beyond.
    from dosecalc.batch.read import Source, csv_rows
    from dosecalc.errors import InputError

    stream = NoLineEnds(8 * 1024 * 1024)
    with pytest.raises(InputError) as raised:
        csv_rows(Source(io.BufferedReader(stream)))
    assert stream.taken < 2 * 1024 * 1024
    (problem,) = raised.value.problems
    assert (problem.field, problem.code) == ("daylist", "no_line_end")


def test_a_line_without_a_line_end_for_megabytes_refuses_the_list(
    runner: CliRunner, tmp_path: Path
) -> None:
    stdin = b"patient_id,weight\nA001,72 kg\n" + b"7" * (3 * 1024 * 1024)
    out = tmp_path / "out"
    result = batch(runner, "-", "--out", str(out), stdin=stdin)
    assert result.exit_code == 2
    assert result.stderr == (
        "dosecalc: daylist: line 3 runs on for more than 1,048,576 bytes without a line end (LF): "
        "this is not a day list (a line has at most 16,384 bytes); check the file given (nothing "
        "was written)\n"
    )
    assert not out.exists()
    # A long line that does end is still one invalid line, the others computed.
    stdin = b"patient_id,weight\nA001,72 kg\n" + b"7" * (100 * 1024) + b"\nB002,72 kg\n"
    result = batch(runner, "-", stdin=stdin)
    assert result.exit_code == 1
    assert [(r["line"], r["status"]) for r in rows_of(result.stdout)] == [
        ("2", "ok"),
        ("3", "invalid"),
        ("4", "ok"),
    ]


def test_the_manifest_counts_physical_lines(runner: CliRunner, tmp_path: Path) -> None:
    daylist = tmp_path / "day.csv"
    daylist.write_bytes(b"patient_id,weight\nA001,72 kg\n\nB002,72 kg\rX,1\nC003,72 kg\n")
    out = tmp_path / "out"
    result = batch(runner, str(daylist), "--out", str(out), "--sheets", "json")
    assert result.exit_code == 1
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["lines_read"] == 4
    assert (counts["ok"], counts["blank"], counts["invalid"]) == (2, 1, 1)


def test_jsonl_output_uses_the_statuses_of_results_csv_and_keeps_blank_lines(
    runner: CliRunner,
) -> None:
    data = b"patient_id,weight\nA001,72 kg\n\nB002,158 lb\nC003,700 kg\nD004,70\n"
    result = batch(runner, "-", "--format", "jsonl", stdin=data)
    statuses = [json.loads(line)["status"] for line in result.stdout.splitlines()]
    assert statuses == ["ok", "blank", "warning", "refused", "invalid"]
    csv_result = batch(runner, "-", stdin=data)
    assert [r["status"] for r in rows_of(csv_result.stdout)] == statuses


def test_column_names_are_matched_ignoring_case(runner: CliRunner) -> None:
    result = batch(runner, "-", stdin=b"Patient_ID,Weight\nA001,72 kg\n")
    assert result.exit_code == 0
    assert rows_of(result.stdout)[0]["patient_id"] == "A001"


def test_a_semicolon_separated_list_gets_a_hint(runner: CliRunner) -> None:
    result = batch(runner, "-", stdin=b"patient_id;weight\nA001;72 kg\n")
    assert result.exit_code == 2
    assert "separated by semicolons" in result.stderr


# --- targets, lock, and the folder ---------------------------------------------------------------


def test_a_combined_pdf_named_like_the_manifest_is_refused_before_any_write(
    runner: CliRunner, tmp_path: Path
) -> None:
    daylist = day_list(tmp_path / "day.csv", 5)
    out = tmp_path / "out"
    for extra in ([], ["--force"]):
        result = batch(
            runner, str(daylist), "--out", str(out), "--combined", str(out / "manifest.json"),
            *extra,
        )  # fmt: skip
        assert result.exit_code == 2, extra
        assert "does not end in .pdf" in result.stderr  # before the clash could be looked at
        assert listing(out) == []


def test_a_combined_pdf_on_a_sheets_own_path_is_refused_before_any_write(
    runner: CliRunner, tmp_path: Path
) -> None:
    daylist = day_list(tmp_path / "day.csv", 5)
    out = tmp_path / "out"
    sheet = out / f"{DATE}_P000002.pdf"
    result = batch(
        runner, str(daylist), "--out", str(out), "--sheets", "pdf", "--combined", str(sheet)
    )
    assert result.exit_code == 2
    assert "P000002.pdf" in result.stderr
    assert "does not end in .pdf" not in result.stderr
    assert listing(out) == []


@pytest.mark.parametrize("sheets", ["text,text", "json, text ,json"])
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_a_format_given_twice_in_sheets_is_refused_before_any_write(
    runner: CliRunner, tmp_path: Path, sheets: str, force: list[str]
) -> None:
    daylist = day_list(tmp_path / "day.csv", 2)
    out = tmp_path / "out"
    result = batch(runner, str(daylist), "--out", str(out), "--sheets", sheets, *force)
    assert result.exit_code == 2
    repeated = "text" if sheets == "text,text" else "json"
    assert f"sheets: format '{repeated}' is given twice; give each format once" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("sheets", ["pdf", "text"])  # the default, given: still ignored
def test_sheets_without_out_is_refused_not_ignored(runner: CliRunner, sheets: str) -> None:
    result = batch(runner, "-", "--sheets", sheets, stdin=b"patient_id,weight\nA001,72 kg\n")
    assert result.exit_code == 2
    assert "--sheets applies with --out only" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("name", ["day.txt", "day.pdf.txt", "day"])
def test_a_combined_name_not_ending_in_pdf_is_refused(
    runner: CliRunner, tmp_path: Path, name: str
) -> None:
    daylist = day_list(tmp_path / "day.csv", 2)
    result = batch(runner, str(daylist), "--combined", str(tmp_path / name), "--force")
    assert result.exit_code == 2
    assert f"combined: --combined '{tmp_path / name}' does not end in .pdf" in result.stderr
    assert listing(tmp_path) == ["day.csv"]


@pytest.mark.parametrize("name", ["folder", "folder/", "new.pdf/"])
def test_a_combined_path_that_names_a_folder_is_refused(
    runner: CliRunner, tmp_path: Path, name: str
) -> None:
    daylist = day_list(tmp_path / "day.csv", 2)
    (tmp_path / "folder").mkdir()
    target = f"{tmp_path}/{name}"
    result = batch(runner, str(daylist), "--combined", target, "--force")
    assert result.exit_code == 2
    assert f"combined: --combined '{target}' names a folder" in result.stderr
    assert listing(tmp_path) == ["day.csv", "folder"]
    assert listing(tmp_path / "folder") == []


def test_a_combined_name_ending_in_pdf_in_capitals_is_accepted(
    runner: CliRunner, tmp_path: Path
) -> None:
    daylist = day_list(tmp_path / "day.csv", 2)
    result = batch(runner, str(daylist), "--combined", str(tmp_path / "DAY.PDF"))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "DAY.PDF").read_bytes().startswith(b"%PDF-")


def test_an_existing_combined_pdf_is_refused_even_when_out_does_not_exist_yet(
    runner: CliRunner, tmp_path: Path
) -> None:
    daylist = day_list(tmp_path / "day.csv", 3)
    (tmp_path / "day.pdf").write_bytes(b"yesterday")
    out = tmp_path / "new-out"
    result = batch(runner, str(daylist), "--out", str(out), "--combined", str(tmp_path / "day.pdf"))
    assert result.exit_code == 2
    assert (tmp_path / "day.pdf").read_bytes() == b"yesterday"
    assert not out.exists()


def test_a_second_run_into_a_locked_folder_exits_2_at_once_having_written_nothing(
    runner: CliRunner, tmp_path: Path
) -> None:
    daylist = day_list(tmp_path / "day.csv", 3)
    out = tmp_path / "out"
    out.mkdir()
    holder = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a first run holds it
        result = batch(runner, str(daylist), "--out", str(out))
    finally:
        os.close(holder)
    assert result.exit_code == 2
    assert "another dosecalc batch is writing to" in result.stderr
    assert "line(s) read" not in result.stderr  # stopped before computing anything
    assert listing(out) == []


def test_an_empty_out_is_refused_not_the_current_folder(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daylist = day_list(tmp_path / "day.csv", 2)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = batch(runner, str(daylist), "--out", "")
    assert result.exit_code == 2
    assert "--out is empty" in result.stderr
    assert listing(work) == []


def test_a_run_never_overwrites_its_own_day_list_even_with_force(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    daylist = out / "results.csv"
    daylist.write_text("patient_id,weight\nA001,72 kg\n")
    result = batch(runner, str(daylist), "--out", str(out), "--force")
    assert result.exit_code == 2
    assert "would overwrite its own input" in result.stderr
    assert daylist.read_text() == "patient_id,weight\nA001,72 kg\n"
    assert listing(out) == ["results.csv"]


def test_a_forced_rerun_removes_the_earlier_runs_files_it_does_not_replace(
    runner: CliRunner, tmp_path: Path
) -> None:
    """A corrected list rerun with --force: the earlier run's sheets for A001 (PDF, 36 mg) and for
    B002 (no longer on the list) would sit beside the new A001 sheet (31 mg) in a folder whose
    manifest looks complete."""
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("patient_id,weight\nA001,72 kg\nB002,80 kg\n")
    second.write_text("patient_id,weight\nA001,62 kg\n")
    out = tmp_path / "out"
    assert batch(runner, str(first), "--out", str(out), "--sheets", "text,json").exit_code == 0
    (out / "notes-from-the-pharmacy.txt").write_text("keep me\n")
    result = batch(runner, str(second), "--out", str(out), "--sheets", "text", "--force")
    assert result.exit_code == 0, result.stderr
    assert "removed 3 file(s) of an earlier run" in result.stderr
    assert listing(out) == [
        f"{DATE}_A001.txt", "errors.csv", "manifest.json", "notes-from-the-pharmacy.txt",
        "results.csv",
    ]  # fmt: skip
    assert "31 mg" in (out / f"{DATE}_A001.txt").read_text()  # 0.5 mg/kg x 62 kg
    manifest = json.loads((out / "manifest.json").read_text())
    assert [f["name"] for f in manifest["files"]] == [
        f"{DATE}_A001.txt",
        "results.csv",
        "errors.csv",
    ]


def test_a_rerun_without_force_into_a_folder_of_earlier_sheets_writes_nothing(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    old = out / f"{DATE}_B002.txt"
    old.write_text("an earlier run's sheet\n")
    daylist = tmp_path / "day.csv"
    daylist.write_text("patient_id,weight\nA001,62 kg\n")
    result = batch(runner, str(daylist), "--out", str(out), "--sheets", "text")
    assert result.exit_code == 2
    assert (
        f"holds 1 file(s) named like sheets that no manifest of an earlier run lists ({old.name})"
        in (result.stderr)
    )
    assert listing(out) == [old.name]
    # Not even with --force: no manifest says the file is dosecalc's to remove.
    result = batch(runner, str(daylist), "--out", str(out), "--sheets", "text", "--force")
    assert result.exit_code == 2
    assert "--force never removes them" in result.stderr
    assert listing(out) == [old.name]


def test_a_forced_rerun_never_removes_its_own_inputs_or_what_a_foreign_manifest_lists(
    runner: CliRunner, tmp_path: Path
) -> None:
    """A day list and a protocols file kept in the output folder under sheet-like names were
    removed as "files of an earlier run"; a manifest that is not dosecalc's drove removals."""
    out = tmp_path / "out"
    out.mkdir()
    daylist = out / f"{DATE}_list.json"
    daylist.write_text('{"patient_id": "A001", "weight": "72 kg"}\n')
    protocols = out / f"{DATE}_protocols.txt"
    protocols.write_bytes(TEST_PROTOCOLS.read_bytes())
    (out / "handover.txt").write_text("the ward's own file\n")
    (out / "manifest.json").write_text('{"files": [{"name": "handover.txt"}]}')
    result = runner.invoke(
        cli,
        ["--protocols", str(protocols), "batch", str(daylist), "--input-format", "jsonl",
         "--out", str(out), "--sheets", "text", "--force", "--date", DATE],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "earlier run" not in result.stderr
    assert daylist.exists()
    assert protocols.read_bytes() == TEST_PROTOCOLS.read_bytes()
    assert (out / "handover.txt").read_text() == "the ward's own file\n"


def test_a_forced_rerun_failing_after_removing_earlier_files_says_so_in_its_marker(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("patient_id,weight\nA001,72 kg\nB002,80 kg\n")
    second.write_text("patient_id,weight\nA001,62 kg\n")
    out = tmp_path / "out"
    assert batch(runner, str(first), "--out", str(out), "--sheets", "text").exit_code == 0
    disk_full_on_write(monkeypatch, 2)
    result = batch(runner, str(second), "--out", str(out), "--sheets", "text", "--force")
    assert result.exit_code == 4
    assert "the 1 file(s) of an earlier run it removed cannot be restored" in result.stderr
    marker = (out / "INCOMPLETE").read_text()
    assert f"this run removed (they cannot be restored):\n  {DATE}_B002.txt\n" in marker
    assert "manifest.json" not in listing(out)


@pytest.mark.parametrize("clash", ["day list", "protocols file", "combined PDF", "output folder"])
def test_the_audit_log_is_never_a_file_the_run_reads_or_writes(
    runner: CliRunner, tmp_path: Path, clash: str
) -> None:
    """--audit-log naming the day list appended JSON to it; naming results.csv or the combined
    PDF, the records were lost when the file was written; naming the protocols file, it broke."""
    daylist = day_list(tmp_path / "day.csv", 2)
    protocols = tmp_path / "protocols.toml"
    protocols.write_bytes(TEST_PROTOCOLS.read_bytes())
    out, combined = tmp_path / "out", tmp_path / "day.pdf"
    log = {
        "day list": daylist,
        "protocols file": protocols,
        "combined PDF": combined,
        "output folder": out / "results.csv",
    }[clash]
    before = {p: p.read_bytes() for p in (daylist, protocols)}
    result = runner.invoke(
        cli,
        ["--protocols", str(protocols), "batch", str(daylist), "--out", str(out), "--combined",
         str(combined), "--force", "--audit-log", str(log), "--date", DATE],
    )  # fmt: skip
    assert result.exit_code == 2
    assert f"audit_log: {log} is " in result.stderr
    assert "nothing was written" in result.stderr
    assert {p: p.read_bytes() for p in (daylist, protocols)} == before
    assert not out.exists()
    assert not combined.exists()


def test_force_replaces_a_regular_file_only_never_a_fifo_or_a_link(
    runner: CliRunner, tmp_path: Path
) -> None:
    daylist = day_list(tmp_path / "day.csv", 2)
    fifo = tmp_path / "fifo.pdf"
    os.mkfifo(fifo)
    result = batch(runner, str(daylist), "--combined", str(fifo), "--force")
    assert result.exit_code == 2
    assert f"combined: {fifo} is a FIFO; --force replaces only a regular file" in result.stderr
    assert fifo.is_fifo()
    out = tmp_path / "out"
    out.mkdir()
    real = tmp_path / "real.csv"
    real.write_text("someone else's file\n")
    (out / "results.csv").symlink_to(real)
    result = batch(runner, str(daylist), "--out", str(out), "--force")
    assert result.exit_code == 2
    assert "results.csv is a symbolic link" in result.stderr
    assert (out / "results.csv").is_symlink()
    assert real.read_text() == "someone else's file\n"
    assert listing(out) == ["results.csv"]


@pytest.mark.parametrize(
    ("failing", "code", "said"),
    [
        (4, 4, "removed the 3 file(s) it had written"),
        # The first write (a read-only folder) gave exit 4, "stopped part-way: removed the 0
        # file(s)", where nothing was written: exit 2, as for a folder refused before the run.
        (1, 2, "out: No space left on device; nothing was written"),
    ],
)
def test_a_write_failing_part_way_removes_what_the_run_wrote(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: int, code: int,
    said: str,
) -> None:  # fmt: skip
    daylist = day_list(tmp_path / "day.csv", 5)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("not ours")
    disk_full_on_write(monkeypatch, failing)
    result = batch(runner, str(daylist), "--out", str(out), "--sheets", "json")
    assert result.exit_code == code
    assert said in result.stderr
    assert listing(out) == ["keep.txt"]


def stopped_on_the_third_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: type[BaseException], *extra: str
) -> tuple[int, Path]:
    """A 5-row batch into tmp_path/out, through cli.main, stopped by `stop` as its third file is
    about to be written (as Ctrl-C's or SIGTERM's handler raises it): (exit code, out)."""
    from dosecalc.batch import write as batch_write

    daylist = day_list(tmp_path / "day.csv", 5)
    out = tmp_path / "out"
    real_write, calls = batch_write.write_atomic, []

    def stopped_on_the_third(path: Path, data: object, **kwargs: object) -> None:
        if path.name != "INCOMPLETE":  # the run's own marker (Writer.begin) is not counted
            calls.append(path.name)
        if len(calls) == 3 and path.name != "INCOMPLETE":
            raise stop
        real_write(path, data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(batch_write, "write_atomic", stopped_on_the_third)
    argv = ["dosecalc", "--protocols", str(TEST_PROTOCOLS), "batch", str(daylist), "--out",
            str(out), "--date", DATE, *extra]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stopped:
        cli_module.main()
    assert isinstance(stopped.value.code, int)
    return stopped.value.code, out


def test_ctrl_c_while_writing_exits_130_and_removes_what_the_run_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = stopped_on_the_third_write(tmp_path, monkeypatch, KeyboardInterrupt)
    assert code == 130
    assert not out.exists()  # the run made the folder, wrote two sheets, and took it all back


def test_sigterm_while_writing_exits_143_and_removes_what_the_run_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dosecalc.errors import Terminated

    before = signal.getsignal(signal.SIGTERM)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("not this run's")
    code, out = stopped_on_the_third_write(tmp_path, monkeypatch, Terminated)
    assert code == 143
    assert listing(out) == ["keep.txt"]  # the two sheets it wrote are gone, the rest untouched
    assert signal.getsignal(signal.SIGTERM) is before  # main put the handler back


def test_a_stop_as_a_file_lands_waits_until_the_run_has_it_on_its_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM just after a sheet appears under its name, before the batch has noted it: the stop
    waits for the note (stopping.held), so the undo removes that sheet too."""
    from dosecalc import files, stopping

    daylist = day_list(tmp_path / "day.csv", 5)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("not this run's")
    real_link, calls = os.link, []

    def link_then_sigterm(source: str, target: Path) -> None:
        real_link(source, target)
        calls.append(target)
        if len(calls) == 3:
            stopping.handler(signal.SIGTERM, None)  # as the signal would, with main's handler

    monkeypatch.setattr(files.os, "link", link_then_sigterm)
    argv = ["dosecalc", "--protocols", str(TEST_PROTOCOLS), "batch", str(daylist), "--out",
            str(out), "--date", DATE]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stop:
        cli_module.main()
    assert stop.value.code == 143
    assert len(calls) == 3  # it stopped at the third file
    assert listing(out) == ["keep.txt"]  # the third sheet was on the list, and undone


def test_sigterm_to_the_whole_process_group_while_computing_never_hangs(tmp_path: Path) -> None:
    """`timeout` signals the whole process group: the workers ignore SIGTERM (a worker killed while
    sending its results would leave the pool waiting for ever); the main process stops them and
    exits 143 (or, before its handler is in, is ended by the signal), within seconds, without a
    traceback."""
    import random

    daylist = day_list(tmp_path / "day.csv", 60000)  # long enough not to finish first
    rng = random.Random(20261125)
    codes = []
    for attempt in range(6):
        err = tmp_path / f"err{attempt}.txt"
        with open(err, "w") as stderr:
            process = subprocess.Popen(
                command(str(daylist), "--format", "jsonl", "--date", DATE, "--jobs", "2"),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
            try:
                time.sleep(rng.uniform(0.2, 2.5))
                assert process.poll() is None, "the run ended before the signal"
                os.killpg(process.pid, signal.SIGTERM)
                codes.append(process.wait(timeout=60))
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        text = err.read_text()
        assert codes[-1] in (143, -signal.SIGTERM), (attempt, codes, text)
        assert_no_traceback(text)
    assert 143 in codes  # at least one signal came once dosecalc's handler was in


def test_a_stopped_run_leaves_its_run_record_in_the_audit_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dosecalc.errors import Terminated

    log = tmp_path / "audit.jsonl"
    code, out = stopped_on_the_third_write(
        tmp_path, monkeypatch, Terminated, "--audit-log", str(log)
    )
    assert code == 143
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["event"] for r in records] == ["sheet"] * 5 + ["batch"]
    assert records[-1]["outcome"] == "terminated"
    assert records[-1]["files_written"] == 2  # written, then removed by the undo
    assert not out.exists()


def test_a_real_sigterm_during_the_writes_undoes_the_run(tmp_path: Path) -> None:
    """A scheduler's timeout or a stopping service sends SIGTERM: the run stops as on Ctrl-C (its
    files removed, exit 143, no traceback), where the default action would leave a folder of
    sheets without a manifest. Two worker processes (the default for a list this long)."""
    daylist = day_list(tmp_path / "day.csv", 3000)
    out = tmp_path / "out"
    err = tmp_path / "err.txt"
    with open(err, "w") as stderr:
        process = subprocess.Popen(
            command(str(daylist), "--out", str(out), "--sheets", "json", "--date", DATE),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            while len(listing(out)) < 5:  # the second phase has begun: sheets are landing
                assert process.poll() is None, f"the run ended first: {err.read_text()[-3000:]}"
                time.sleep(0.005)
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    text = err.read_text()
    assert_no_traceback(text)
    assert code == 143, text
    assert "out: terminated (SIGTERM); the run stopped part-way: removed the" in text
    assert "dosecalc: terminated (SIGTERM); nothing more was written" in text
    assert not out.exists(), listing(out)  # the run made the folder: gone with the files


def test_a_broken_pipe_exits_141_without_a_traceback(tmp_path: Path) -> None:
    daylist = day_list(tmp_path / "list.csv", 1500)
    dosecalc = " ".join(f"'{part}'" for part in command(str(daylist), "--format", "jsonl"))
    err, code = tmp_path / "err.txt", tmp_path / "code.txt"
    pipeline = f"{dosecalc} 2>'{err}' | head -1 >/dev/null; echo ${{PIPESTATUS[0]}} > '{code}'"
    subprocess.run(["bash", "-c", pipeline], check=True, timeout=120)
    assert code.read_text().strip() == "141"
    assert_no_traceback(err.read_text())


def test_a_closed_stdin_is_an_error_not_a_traceback() -> None:
    line = " ".join(f"'{part}'" for part in command("-", "--date", DATE))
    done = subprocess.run(["bash", "-c", f"{line} <&-"], capture_output=True, text=True, timeout=60)
    assert_no_traceback(done.stderr)
    assert done.returncode == 2
    assert "stdin is closed" in done.stderr


# --- cells and the combined PDF ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("Jones;@SUM(1+1)", "'Jones;@SUM(1+1)"),
        ("Jones; =1+1", "'Jones; =1+1"),
        ("Smith,-2+3", "'Smith,-2+3"),
        ("Jones; Ann", "Jones; Ann"),
    ],
)
def test_a_formula_after_a_separator_is_neutralised(cell: str, shown: str) -> None:
    assert neutralise(cell) == shown


def test_a_combined_pdf_of_too_many_rows_is_refused_before_any_row_is_computed(
    runner: CliRunner, tmp_path: Path
) -> None:
    daylist = day_list(tmp_path / "day.csv", 1001)
    out = tmp_path / "out"
    result = batch(runner, str(daylist), "--out", str(out), "--combined", str(out / "day.pdf"))
    assert result.exit_code == 2
    assert "at most 1,000 sheets" in result.stderr
    assert "line(s) read" not in result.stderr  # refused before phase 1
    assert not out.exists()


def test_the_combined_cover_has_the_lists_date_and_overrides_apart_from_problems(
    runner: CliRunner, tmp_path: Path
) -> None:
    tool = need("pdftotext", "poppler-utils")
    daylist = tmp_path / "day.csv"
    daylist.write_text(
        "patient_id,weight,date,override_reason,operator\n"
        "A1,72 kg,2026-11-20,,\nB2,700 kg,2026-11-20,,\nC3,158 lb,2026-11-20,,\n"
        "D4,160 kg,2026-11-20,weighed twice,RN Kim\n"
    )
    out = tmp_path / "out"
    result = batch(runner, str(daylist), "--out", str(out), "--combined", str(out / "day.pdf"))
    assert result.exit_code == 1
    cover = subprocess.run(
        [tool, "-f", "1", "-l", "1", "-layout", str(out / "day.pdf"), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "2026-11-20" in cover
    assert DATE not in cover  # the run's --date is not the list's date
    assert "Warnings / problems" in cover
    assert "WEIGHT_IN_LB" in cover  # a warning is shown, not hidden
    assert "weighed twice" in cover  # the override, in its own column
    b2 = next(line for line in cover.splitlines() if "B2" in line)
    assert "refused" in b2


# --- audit --------------------------------------------------------------------------------------


def test_batch_writes_one_audit_record_per_row_and_one_for_the_run_without_names(
    runner: CliRunner, tmp_path: Path
) -> None:
    daylist = tmp_path / "day.csv"
    daylist.write_text(
        "patient_id,weight,name\nA1,72 kg,Ann Secret\n\nB2,700 kg,Bob Hidden\n"
        "C3,72 kg,Cy\tTabbed\nD4,72 kg," + "Longname" * 20 + "\n"
    )
    log, out = tmp_path / "audit.jsonl", tmp_path / "out"
    result = batch(runner, str(daylist), "--out", str(out), "--audit-log", str(log))
    assert result.exit_code == 1
    text = log.read_text()
    for secret in ("Ann", "Secret", "Bob", "Hidden", "Tabbed", "Longname"):
        assert secret not in text, secret
    records = [json.loads(line) for line in text.splitlines()]
    assert [(r["event"], r.get("line")) for r in records] == [
        ("sheet", 2), ("refusal", 4), ("refusal", 5), ("refusal", 6), ("batch", None),
    ]  # fmt: skip
    assert records[0]["result"]["dose"] == 36  # the same schema as `dosecalc sheet`
    assert records[1]["error"]["status"] == "refused"
    run = records[-1]
    assert run["outcome"] == "complete"
    assert run["counts"]["lines_read"] == 5
    assert {r["batch_run"] for r in records} == {run["batch_run"]}


def test_batch_audit_env_variable_is_honoured(runner: CliRunner, tmp_path: Path) -> None:
    daylist = day_list(tmp_path / "day.csv", 2)
    log = tmp_path / "audit.jsonl"
    result = runner.invoke(
        cli,
        ["--protocols", str(TEST_PROTOCOLS), "batch", str(daylist), "--date", DATE],
        env={"DOSECALC_AUDIT_LOG": str(log)},
    )
    assert result.exit_code == 0
    assert [json.loads(line)["event"] for line in log.read_text().splitlines()] == [
        "sheet", "sheet", "batch",
    ]  # fmt: skip


# --- no patient data left behind ----------------------------------------------------------------


@pytest.mark.slow
def test_a_sigkill_during_the_computation_leaves_nothing_in_tmpdir(tmp_path: Path) -> None:
    spool_dir = tmp_path / "tmp"
    spool_dir.mkdir()
    env = {**os.environ, "TMPDIR": str(spool_dir), "SQLITE_TMPDIR": str(spool_dir)}
    process = subprocess.Popen(
        command("-", "--date", DATE, "--format", "jsonl"),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert process.stdin is not None
    process.stdin.write(b"patient_id,weight,name\n")
    # More than a pipe holds: when this returns, the process is reading (and spooling) rows.
    process.stdin.write(b"".join(b"P%06d,72 kg,Secret Name\n" % i for i in range(20000)))
    process.stdin.flush()
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdin.close()
    assert list(spool_dir.iterdir()) == []


# --- progress on stderr (issue 13) ----------------------------------------------------------------


def _stderr_at_a_terminal(args: list[str]) -> str:
    """Run with stderr on a pseudo-terminal; what the terminal received."""
    master, slave = pty.openpty()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the other end is closed: the process has finished
            break
        if not data:
            break
        chunks.append(data)
    process.wait()
    os.close(master)
    return b"".join(chunks).decode("utf-8", errors="replace")


@pytest.mark.slow
def test_progress_is_shown_at_a_terminal_and_never_piped_or_with_quiet(tmp_path: Path) -> None:
    daylist = day_list(tmp_path / "day.csv", 300)
    shown = _stderr_at_a_terminal(
        command(str(daylist), "--date", DATE, "--out", str(tmp_path / "a"))
    )
    assert "rows computed" in shown
    assert "files written" in shown
    assert "wrote 303 file(s)" in shown  # 300 sheets, results, errors, manifest
    quiet = _stderr_at_a_terminal(
        command(str(daylist), "--date", DATE, "--out", str(tmp_path / "b"), "--quiet")
    )
    assert "rows computed" not in quiet
    assert "wrote 303 file(s)" in quiet
    piped = subprocess.run(
        command(str(daylist), "--date", DATE, "--out", str(tmp_path / "c")),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert piped.returncode == 0
    assert "rows computed" not in piped.stderr
    assert "\x1b" not in piped.stderr


def test_a_closed_stderr_still_gives_the_right_exit_code(tmp_path: Path) -> None:
    daylist = day_list(tmp_path / "day.csv", 3)
    line = " ".join(f"'{part}'" for part in command(str(daylist), "--date", DATE))
    done = subprocess.run(["bash", "-c", f"{line} 2>&-"], capture_output=True, timeout=60)
    assert done.returncode == 0  # three good rows: not 1 ("refused") from a crash on stderr
    assert len(done.stdout.splitlines()) == 4  # the header and three rows


def test_a_full_stderr_exits_4_and_keeps_the_results_on_stdout(tmp_path: Path) -> None:
    daylist = day_list(tmp_path / "day.csv", 3)
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            command(str(daylist), "--date", DATE),
            stdout=subprocess.PIPE, stderr=full, timeout=60,
        )  # fmt: skip
    assert done.returncode == 4  # the summary was lost: not 0, and not 1 ("a row was refused")
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 4  # the header and three rows
    assert lines[1].startswith("2,P000000,")


# --- a patient named on a line that cannot be read (found by the script-author attack) ----------


def test_a_patient_also_named_on_an_unreadable_line_gets_no_sheet(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Each patient below has a good line at 72 kg and a second line at 80 kg that cannot be read
    (an extra cell, an id with a space after it, a date in another form, a carriage return running
    two rows together). The unreadable line was left out of the duplicate check, so the good line
    got a sheet although the list also says 80 kg: which was meant cannot be known."""
    day = (
        "patient_id,weight,date\n"
        "A1,72 kg,2026-11-21\nA1,80 kg,2026-11-21,oops\n"
        "B1,72 kg,2026-11-21\nB1 ,80 kg,2026-11-21\n"
        "C1,72 kg,2026-11-21\nC1,80 kg,21/11/2026\n"
        "D1,72 kg,2026-11-21\nD1,80 kg,2026-11-21\rE1,60 kg,2026-11-21\n"
        "F1,72 kg,2026-11-21\n"
    )
    out = tmp_path / "out"
    result = batch(runner, "-", "--out", str(out), "--sheets", "json", stdin=day.encode())
    assert result.exit_code == 1
    rows = rows_of((out / "results.csv").read_text(encoding="utf-8"))
    assert [(r["line"], r["status"]) for r in rows] == [
        *((str(n), "invalid") for n in range(2, 10)),
        ("10", "ok"),
    ]
    assert "is also named on line(s) 3, which could not be read" in rows[0]["message"]
    assert [p.name for p in out.iterdir() if p.name.endswith(".json") and "_" in p.name] == [
        "2026-11-21_F1.json"
    ]


def test_a_patient_also_named_on_a_json_line_that_is_not_json_gets_no_sheet(
    runner: CliRunner,
) -> None:
    lines = b'{"patient_id": "A1", "weight": "72 kg"}\n{"patient_id": "A1", "weight": "80 kg",}\n'
    result = batch(runner, "-", "--input-format", "jsonl", "--format", "jsonl", stdin=lines)
    assert result.exit_code == 1
    objs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["status"] for o in objs] == ["invalid", "invalid"]
    assert "is also named on line(s) 2" in objs[0]["errors"][0]["message"]


@pytest.mark.parametrize(
    "day",
    [
        b'patient_id,weight,name\nA003,72 kg,Cy\n"A003,80 kg,Cy"\nB1,70 kg,Bo\n',
        # patient_id not the first column: the quoted row's id is in its second cell.
        b'weight,patient_id,name\n72 kg,A003,Cy\n"80 kg,A003,Cy"\n70 kg,B1,Bo\n',
    ],
)
def test_a_whole_row_quoted_into_one_cell_still_names_its_patient(
    runner: CliRunner, day: bytes
) -> None:
    # '"A003,80 kg,Cy"' is one cell: a short row whose id read as 'A003,80 kg,Cy', so A003's
    # good line at 72 kg got a sheet although the list also says 80 kg.
    result = batch(runner, "-", stdin=day)
    assert result.exit_code == 1
    rows = rows_of(result.stdout)
    assert [(r["line"], r["status"]) for r in rows] == [
        ("2", "invalid"),
        ("3", "invalid"),
        ("4", "ok"),
    ]
    assert "is also named on line(s) 3, which could not be read" in rows[0]["message"]


@pytest.mark.parametrize(
    "second",
    [
        rb'{"patient_id": "A\u0030\u00301", "weight": "80 kg",}',
        rb'{"patient\u005fid": "A001", "weight": "80 kg",}',
    ],
)
def test_an_escaped_id_on_a_json_line_that_is_not_json_still_names_its_patient(
    runner: CliRunner, second: bytes
) -> None:
    # JSON escapes spell A001 and patient_id; the raw text was searched, so neither was found.
    lines = b'{"patient_id": "A001", "weight": "72 kg"}\n' + second + b"\n"
    result = batch(runner, "-", "--input-format", "jsonl", "--format", "jsonl", stdin=lines)
    assert result.exit_code == 1
    objs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["status"] for o in objs] == ["invalid", "invalid"]
    assert "is also named on line(s) 2" in objs[0]["errors"][0]["message"]
    assert objs[1]["errors"][0]["message"].endswith("(patient id(s) in it: A001)")


def test_a_line_that_is_not_utf8_names_its_patient_and_keeps_it_from_another_sheet(
    runner: CliRunner,
) -> None:
    """A Latin-1 "José" in an Excel export: the line was invalid without naming anyone."""
    day = b"patient_id,name,weight\nL1,Jos\xe9,72 kg\nL1,Jose,72 kg\nL2,Ann,72 kg\n"
    result = batch(runner, "-", stdin=day)
    assert result.exit_code == 1
    rows = rows_of(result.stdout)
    assert [(r["line"], r["status"]) for r in rows] == [
        ("2", "invalid"),
        ("3", "invalid"),
        ("4", "ok"),
    ]
    assert rows[0]["message"] == "line 2 is not valid UTF-8 (byte 7) (patient id(s) in it: L1)"


# --- a --force rerun that stops part-way (found by the script-author attack) --------------------


def test_a_forced_rerun_stopped_part_way_names_the_old_sheets_and_the_next_run_completes(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A corrected list rerun with --force stopped after two sheets: the INCOMPLETE marker named
    only the two it replaced, not the three sheets (and results.csv) still holding the earlier
    doses; and after a SIGKILL nothing named them at all, so every later rerun was refused."""
    out = tmp_path / "out"
    old = tmp_path / "old.csv"
    old.write_text("patient_id,weight\n" + "".join(f"P{i},{60 + i} kg\n" for i in range(1, 6)))
    assert batch(runner, str(old), "--out", str(out), "--sheets", "json").exit_code == 0
    new = tmp_path / "new.csv"
    new.write_text("patient_id,weight\n" + "".join(f"P{i},{70 + i} kg\n" for i in range(1, 6)))
    stale_temporary = out / ".dosecalc-tmp-killed"  # what a SIGKILL mid-write leaves
    stale_temporary.write_text('{"patient": "a whole sheet"}')
    with monkeypatch.context() as patched:
        disk_full_on_write(patched, 3)  # P1 and P2 replaced, then the disk is full
        stopped = batch(runner, str(new), "--out", str(out), "--sheets", "json", "--force")
    assert stopped.exit_code == 4
    # P3 to P5, results.csv and errors.csv of the earlier run; the message says "out:" once.
    assert "5 file(s) of an earlier run remain, out of date" in stopped.stderr
    assert "out: out:" not in stopped.stderr
    assert not (out / "manifest.json").exists()
    marker = (out / "INCOMPLETE").read_text(encoding="utf-8")
    stale = marker.split("Files of an earlier run still here (out of date: do not use):\n")[1]
    for name in (f"{DATE}_P3.json", f"{DATE}_P4.json", f"{DATE}_P5.json", "results.csv"):
        assert f"  {name}\n" in stale
    assert not stale_temporary.exists()  # removed by the run that held the folder next
    done = batch(runner, str(new), "--out", str(out), "--sheets", "json", "--force")
    assert done.exit_code == 0, done.stderr
    assert not (out / "INCOMPLETE").exists()
    # 71 to 75 kg, every sheet from the new list.
    weights = [
        json.loads((out / f"{DATE}_P{i}.json").read_text())["weight_kg"] for i in range(1, 6)
    ]
    assert weights == [71, 72, 73, 74, 75]


def test_a_sigterm_after_the_run_is_complete_keeps_its_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGTERM as the complete run's record was written gave exit 143 ("removed what it had
    written") over a complete folder (found by the script-author attack)."""
    import dosecalc.batch as core

    real = core._run_record

    def then_sigterm(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)  # type: ignore[arg-type]
        if args[-1] == "complete":
            os.kill(os.getpid(), signal.SIGTERM)  # the handler cli.main installed takes it

    monkeypatch.setattr(core, "_run_record", then_sigterm)
    daylist = day_list(tmp_path / "day.csv", 3)
    out = tmp_path / "out"
    argv = ["dosecalc", "--protocols", str(TEST_PROTOCOLS), "batch", str(daylist), "--out",
            str(out), "--date", DATE]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    # A complete run leaves SIGINT and SIGTERM ignored for the moments the process takes to exit
    # (stopping.restore): both are put back, or every later test's subprocess inherits SIGINT
    # ignored (a Ctrl-C test then waited for ever).
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(SystemExit) as ended:
            cli_module.main()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert ended.value.code == 0
    assert (out / "manifest.json").exists()


def test_a_day_list_rewritten_while_it_is_read_is_refused_writing_nothing(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export saved over the list while a batch read it gave rows of both files, and a manifest
    hash matching neither (found by the script-author attack)."""
    import dosecalc.batch as core

    daylist = day_list(tmp_path / "day.csv", 3)
    real = core.csv_rows

    def saved_over_while_read(source: object) -> tuple[list[str], object]:
        header, records = real(source)  # type: ignore[arg-type]

        def rows() -> object:
            for i, record in enumerate(records):
                if i == 1:  # another program writes the file in place, mid-read
                    with open(daylist, "a", encoding="utf-8") as handle:
                        handle.write("Z999,72 kg\n")
                yield record

        return header, rows()

    monkeypatch.setattr(core, "csv_rows", saved_over_while_read)
    out = tmp_path / "out"
    result = batch(runner, str(daylist), "--out", str(out), "--sheets", "json")
    assert result.exit_code == 2
    assert "changed while it was read" in result.stderr
    assert not out.exists()


def test_a_last_line_without_a_line_end_is_pointed_out(runner: CliRunner) -> None:
    """A list cut short in the middle of its last row ("T2,45" of "T2,45.9") read as complete,
    exit 0, with nothing said (found by the script-author attack): the row is read, and the
    summary says the last line has no line end."""
    result = batch(runner, "-", stdin=b"patient_id,weight_kg\nT1,72\nT2,45")
    assert result.exit_code == 0
    assert "line 3, the last, has no line end: if the list was cut short" in result.stderr
    ended = batch(runner, "-", stdin=b"patient_id,weight_kg\nT1,72\nT2,45\n")
    assert "no line end" not in ended.stderr


def test_a_list_with_only_its_header_is_pointed_out(runner: CliRunner) -> None:
    result = batch(runner, "-", stdin=b"patient_id,weight\n")
    assert result.exit_code == 0
    assert "the day list has no rows after its header: check it is complete" in result.stderr


def test_a_stop_while_the_rows_audit_records_are_appended_ends_with_the_runs_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGTERM while a batch appended its rows' records left them in the log with no run
    record, as if the sheets had been issued (found by the script-author attack)."""
    from dosecalc import audit
    from dosecalc.errors import Terminated

    real, calls = audit.append, []

    def stopped_after_the_rows(path: object, records: object) -> None:
        real(path, records)  # type: ignore[arg-type]
        calls.append(path)
        if len(calls) == 1:  # the rows' records are in: the stop arrives now
            raise Terminated

    monkeypatch.setattr(audit, "append", stopped_after_the_rows)
    daylist = day_list(tmp_path / "day.csv", 3)
    out, log = tmp_path / "out", tmp_path / "audit.jsonl"
    argv = ["dosecalc", "--protocols", str(TEST_PROTOCOLS), "batch", str(daylist), "--out",
            str(out), "--date", DATE, "--audit-log", str(log)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stopped:
        cli_module.main()
    assert stopped.value.code == 143
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["event"] for r in records] == ["sheet"] * 3 + ["batch"]
    assert records[-1]["outcome"] == "terminated"
    assert records[-1]["files_written"] == 0
    assert not out.exists()


# --- the INCOMPLETE marker (found by the review of this change) ---------------------------------


def _killed_folder(runner: CliRunner, tmp_path: Path) -> Path:
    """A folder as a SIGKILLed --force rerun leaves it: sheets, no manifest, the run's marker."""
    daylist = tmp_path / "day.csv"
    daylist.write_text("patient_id,weight\nA001,72 kg\nB002,73 kg\n")
    out = tmp_path / "out"
    assert batch(runner, str(daylist), "--out", str(out)).exit_code == 0
    (out / "manifest.json").unlink()
    names = sorted(p.name for p in out.iterdir())
    (out / "INCOMPLETE").write_text(
        "This folder is INCOMPLETE: a dosecalc batch run started writing it at X and has not "
        "finished.\nFiles this run writes:\n" + "".join(f"  {n}\n" for n in names)
    )
    return out


@pytest.mark.parametrize("failing", ["marker", "audit"])
def test_a_run_failing_before_its_first_change_keeps_an_earlier_runs_marker(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """The undo removed the INCOMPLETE marker of an earlier, killed run although the old sheets
    were still there without a manifest: only the run's own marker is removed."""
    from dosecalc import audit
    from dosecalc.batch import write as batch_write
    from dosecalc.errors import OutputError, Problem

    out = _killed_folder(runner, tmp_path)
    full = OutputError(Problem("out", "cannot_write", "out: No space left on device"))
    if failing == "marker":
        real = batch_write.write_atomic

        def no_marker(path: Path, data: object, **kwargs: object) -> None:
            if path.name == "INCOMPLETE":
                raise full
            real(path, data, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(batch_write, "write_atomic", no_marker)
    else:

        def no_log(*args: object, **kwargs: object) -> None:
            raise full

        monkeypatch.setattr(audit, "append", no_log)
    daylist = tmp_path / "day2.csv"
    daylist.write_text("patient_id,weight\nA001,80 kg\n")
    result = batch(
        runner, str(daylist), "--out", str(out), "--force", "--audit-log", str(tmp_path / "a.log")
    )
    assert result.exit_code == 2
    assert (out / "INCOMPLETE").read_text().startswith("This folder is INCOMPLETE")
    assert (out / f"{DATE}_A001.txt").exists()  # the old sheets, still without a manifest


def test_a_text_file_written_like_a_marker_never_lets_force_remove_a_users_file(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.docx").write_text("the ward's notes")
    (out / "INCOMPLETE").write_text(
        "This folder is INCOMPLETE: a dosecalc batch run\n  notes.docx\n"
    )
    daylist = tmp_path / "day.csv"
    daylist.write_text("patient_id,weight\nA001,72 kg\n")
    assert batch(runner, str(daylist), "--out", str(out), "--force").exit_code == 0
    assert (out / "notes.docx").read_text() == "the ward's notes"


KILLED_BEFORE_THE_MANIFEST = """
import os, sys
from dosecalc.batch import write
real = write.Writer.file
def file(self, path, data, field, listed=True):
    if path.name == "manifest.json":
        os._exit(9)  # as a SIGKILL: no undo
    real(self, path, data, field, listed)
write.Writer.file = file
from dosecalc.cli import cli
cli.main(sys.argv[1:], prog_name="dosecalc")
"""


def test_a_combined_pdf_of_a_killed_run_is_named_and_removed_by_the_next_forced_run(
    runner: CliRunner, tmp_path: Path
) -> None:
    """A run killed after its combined PDF, before its manifest: the marker did not name the PDF,
    so a --force rerun without --combined kept the 72 kg PDF beside its complete 80 kg folder."""
    daylist = tmp_path / "day.csv"
    daylist.write_text("patient_id,weight\nA001,72 kg\n")
    out = tmp_path / "out"
    args = ["--protocols", str(TEST_PROTOCOLS), "batch", str(daylist), "--out", str(out),
            "--combined", str(out / "all.pdf"), "--date", DATE]  # fmt: skip
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_THE_MANIFEST, *args], capture_output=True, text=True
    )
    assert killed.returncode == 9, killed.stderr
    assert "  all.pdf\n" in (out / "INCOMPLETE").read_text()
    daylist.write_text("patient_id,weight\nA001,80 kg\n")
    assert batch(runner, str(daylist), "--out", str(out), "--force").exit_code == 0
    assert not (out / "all.pdf").exists()
    assert not (out / "INCOMPLETE").exists()


def test_stdin_from_a_file_read_past_its_start_is_not_taken_for_a_changed_list(
    tmp_path: Path,
) -> None:
    """`{ read -r title; dosecalc batch -; } < list.csv` (a title line skipped by the shell) was
    refused as "changed while it was read": the read starts past the file's first byte."""
    daylist = tmp_path / "day.csv"
    daylist.write_text("Ward 4 list\npatient_id,weight\nA001,72 kg\n")
    fd = os.open(daylist, os.O_RDONLY)
    try:
        os.read(fd, len("Ward 4 list\n"))  # the title line, read by the shell first
        done = subprocess.run(
            [*command("-", "--date", DATE)], stdin=fd, capture_output=True, text=True
        )
    finally:
        os.close(fd)
    assert done.returncode == 0, done.stderr
    assert ",A001," in done.stdout


def test_a_day_list_that_cannot_be_read_is_invalid_input_not_a_failed_write(
    tmp_path: Path,
) -> None:
    # Reading /proc/self/mem from its start fails with EIO: a disk error on the day list. It was
    # reported as "cannot write the output" with exit 4 (output incomplete), which tells a
    # scheduler that files were partly written; nothing was, and the list is what failed.
    out = tmp_path / "out"
    done = subprocess.run(
        [*command("/proc/self/mem"), "--out", str(out), "--date", DATE],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert_no_traceback(done.stderr)
    assert done.returncode == 2
    assert "daylist: cannot read line 1: Input/output error" in done.stderr
    assert "cannot write" not in done.stderr
    assert not out.exists()


@pytest.mark.parametrize("out", [False, True])
def test_a_full_spool_is_an_error_not_a_traceback(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: bool
) -> None:
    # The spool's anonymous database lives in $TMPDIR; on a full disk SQLite says "database or
    # disk is full" (SQLITE_FULL), which escaped as a traceback. A real SQLite error, not a
    # stand-in: the database is held to a few pages, as a full disk would hold it.
    from dosecalc.batch import spool as spool_module

    made = spool_module.Spool.__init__

    def small(self: spool_module.Spool) -> None:
        made(self)
        self.db.execute("PRAGMA max_page_count = 8")

    monkeypatch.setattr(spool_module.Spool, "__init__", small)
    daylist = day_list(tmp_path / "day.csv", 100)
    folder = tmp_path / "out"
    args = ["--out", str(folder)] if out else ["--format", "jsonl"]
    result = batch(runner, str(daylist), *args, "--jobs", "1")
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "spool: the batch's temporary storage (in $TMPDIR) failed: database or disk is full" in (
        result.stderr
    )
    assert not folder.exists()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_results_that_cannot_be_written_to_stdout_exit_4_as_a_sheet_does(
    tmp_path: Path, fmt: str
) -> None:
    # `batch > /dev/full` gave exit 2 "out: [Errno 28] No space left on device; nothing was
    # written": no --out was given, and a disk that fills half-way leaves part of the results.
    daylist = day_list(tmp_path / "day.csv", 3)
    log = tmp_path / "audit.jsonl"
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            command(str(daylist), "--format", fmt, "--audit-log", str(log), "--date", DATE),
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    assert_no_traceback(done.stderr)
    assert done.returncode == 4
    assert (
        "output: stdout could not be written: No space left on device; the results on stdout "
        "are incomplete"
    ) in done.stderr
    assert "out:" not in done.stderr.replace("output:", "")
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert records[-1]["event"] == "batch"
    assert records[-1]["outcome"] == "incomplete"


def test_a_spool_that_fails_while_the_results_stream_out_is_output_incomplete(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The spool's temporary file failing after the first row went to stdout was reported as
    # "...; nothing was written", exit 2: a scheduler would take the rows already out for none.
    import sqlite3

    from dosecalc.batch import spool as spool_module

    def failing(self: spool_module.Spool):  # type: ignore[no-untyped-def]
        yield from list(made(self))[:1]
        raise spool_module._spool_error(sqlite3.OperationalError("disk I/O error"))

    made = spool_module.Spool.jsonl
    monkeypatch.setattr(spool_module.Spool, "jsonl", failing)
    daylist = day_list(tmp_path / "day.csv", 3)
    result = batch(runner, str(daylist), "--format", "jsonl", "--jobs", "1")
    assert result.exit_code == 4, result.output
    assert len(result.stdout.splitlines()) == 1  # the one row out, and no error object after it
    assert "spool: the batch's temporary storage (in $TMPDIR) failed: disk I/O error" in (
        result.stderr
    )
    assert "the results on stdout are incomplete" in result.stderr
    assert "nothing was written" not in result.stderr
