"""`dosecalc batch`: every line accounted for, nothing clobbered, nothing outside --out.

Expected numbers are worked by hand here (ketamine-iv: 0.5 mg/kg, 10 mg/mL stock, 100 mL bag,
40 min), never taken from the code under test.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import DATA, TEST_PROTOCOLS

from dosecalc.cli import cli
from dosecalc.sanitize import csv_cell as neutralise

FAULTY = DATA / "daylist_faulty.csv"
HEADER = "patient_id,weight,name,override_reason,operator"
DATE = "2026-11-21"

# line -> status, worked out by reading tests/data/daylist_faulty.csv (line 1 is the header).
FAULTY_STATUS = {
    2: "ok",  # A001 72 kg
    3: "blank",
    4: "invalid",  # short row
    5: "invalid",  # long row
    6: "invalid",  # missing weight
    7: "invalid",  # unitless weight
    8: "invalid",  # decimal comma
    9: "warning",  # 158 lb
    10: "invalid",  # A008, duplicated on line 19
    11: "invalid",  # ../../etc/passwd
    12: "ok",  # =HYPERLINK name
    13: "ok",  # @SUM(1) name
    14: "ok",  # rich markup name
    15: "invalid",  # escape sequences in the name
    16: "refused",  # soft limit, no override_reason
    17: "warning",  # soft limit, overridden
    18: "refused",  # hard limit
    19: "invalid",  # A008 again
    20: "blank",
}
GOOD_IDS = ("A001", "A007", "A009", "A010", "A011", "A014")


def batch(runner: CliRunner, *args: str, stdin: bytes | None = None) -> Result:
    return runner.invoke(
        cli, ["--protocols", str(TEST_PROTOCOLS), "batch", *args, "--date", DATE], input=stdin
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder (the cwd) inside tmp_path, with the faulty list beside it, not in it."""
    (tmp_path / "in").mkdir()
    shutil.copy(FAULTY, tmp_path / "in" / "daylist.csv")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


def test_faulty_day_list_accounts_for_every_line_and_writes_only_good_sheets(
    runner: CliRunner, work: Path
) -> None:
    result = batch(
        runner, str(work / "in" / "daylist.csv"), "--out", "out", "--sheets", "text,json"
    )
    assert result.exit_code == 1, result.stderr
    out = work / "work" / "out"

    rows = read_csv(out / "results.csv")
    assert {int(r["line"]): r["status"] for r in rows} == FAULTY_STATUS
    assert [int(r["line"]) for r in rows] == list(range(2, 21))

    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts == {
        "lines_read": 19,
        "ok": 4,
        "warning": 2,
        "refused": 2,
        "invalid": 9,
        "blank": 2,
        "warning_with_override": 1,
    }
    assert sum(counts[s] for s in ("ok", "warning", "refused", "invalid", "blank")) == 19

    errors = read_csv(out / "errors.csv")
    assert [int(r["line"]) for r in errors] == [4, 5, 6, 7, 8, 10, 11, 15, 16, 18, 19]

    by_line = {int(r["line"]): r for r in rows}
    assert "cells" in by_line[4]["message"]
    assert "line 4" in by_line[4]["message"]
    assert "line 5" in by_line[5]["message"]
    assert "no unit" in by_line[7]["message"]
    assert "comma" in by_line[8]["message"]
    assert "lines 10, 19" in by_line[10]["message"]
    assert "lines 10, 19" in by_line[19]["message"]
    assert "override" in by_line[16]["message"]
    assert "hard limit" in by_line[18]["message"]
    # OWASP: formula-looking cells are quoted with a leading apostrophe.
    assert by_line[12]["name"] == '\'=HYPERLINK("https://example.org","x")'
    assert by_line[13]["name"] == "'@SUM(1)"
    # No control characters anywhere in the CSV files.
    for name in ("results.csv", "errors.csv"):
        text = (out / name).read_text(encoding="utf-8")
        assert not any(ord(ch) < 32 and ch != "\n" for ch in text)
        assert "\x1b" not in text

    # 72 kg: dose 0.5 x 72 = 36 mg; 36 / 10 = 3.6 mL; 100 + 3.6 = 103.6 mL; 103.6 / 40 x 60 = 155.4
    a001 = by_line[2]
    assert (a001["dose"], a001["dose_unit"], a001["drug_volume_ml"]) == ("36", "mg", "3.6")
    assert (a001["total_volume_ml"], a001["rate_ml_per_h"]) == ("103.6", "155.4")
    sheet = json.loads((out / f"{DATE}_A001.json").read_text())
    assert (sheet["dose"], sheet["drug_volume_ml"]) == (36, 3.6)
    assert (sheet["total_volume_ml"], sheet["rate_ml_per_h"]) == (103.6, 155.4)
    text = (out / f"{DATE}_A001.txt").read_text()
    assert "155.4 mL/h" in text
    assert "Ann Lee" in text
    # 158 lb x 0.45359237 = 71.66759446 kg -> 71.7 kg; dose 35.83379723 -> 35.8 mg;
    # 3.583379723 mL -> 3.58 mL; 103.583379723 mL -> 103.6 mL; x 60 / 40 = 155.375... -> 155.4 mL/h
    a007 = by_line[9]
    assert (a007["weight_kg"], a007["dose"], a007["drug_volume_ml"]) == ("71.7", "35.8", "3.58")
    assert (a007["total_volume_ml"], a007["rate_ml_per_h"]) == ("103.6", "155.4")
    assert "WEIGHT_IN_LB" in a007["message"]
    # 160 kg overridden: 80 mg, 8 mL, 108 mL, 108 / 40 x 60 = 162 mL/h
    a014 = json.loads((out / f"{DATE}_A014.json").read_text())
    assert (a014["dose"], a014["drug_volume_ml"], a014["total_volume_ml"]) == (80, 8, 108)
    assert a014["rate_ml_per_h"] == 162
    assert {o["operator"] for o in a014["overrides"]} == {"Nurse Kim"}
    # Markup in a name is printed literally, never interpreted.
    rich_sheet = (out / f"{DATE}_A011.txt").read_text()
    assert "[red]Rich[/red] [link=https://example.org]x[/link]" in rich_sheet

    expected = {f"{DATE}_{i}.{ext}" for i in GOOD_IDS for ext in ("txt", "json")}
    expected |= {"results.csv", "errors.csv", "manifest.json"}
    assert {p.name for p in out.iterdir()} == expected
    listed = [f["name"] for f in manifest["files"]]
    assert set(listed) == expected - {"manifest.json"}
    # Nothing was written outside --out: only the input and the output folder exist.
    everything = {str(p.relative_to(work)) for p in work.rglob("*") if p.is_file()}
    assert everything == {"in/daylist.csv"} | {f"work/out/{n}" for n in expected}
    assert "passwd" not in result.stdout
    assert result.stdout == ""
    assert "line 16" in result.stderr
    assert "19 line(s) read" in result.stderr


def test_manifest_hashes_match_the_files_and_the_inputs(runner: CliRunner, work: Path) -> None:
    import hashlib

    daylist = work / "in" / "daylist.csv"
    batch(runner, str(daylist), "--out", "out")
    out = work / "work" / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["day_list"]["sha256"] == hashlib.sha256(daylist.read_bytes()).hexdigest()
    assert manifest["protocols_file"]["sha256"] == (
        hashlib.sha256(TEST_PROTOCOLS.read_bytes()).hexdigest()
    )
    for item in manifest["files"]:
        data = (out / item["name"]).read_bytes()
        assert item["sha256"] == hashlib.sha256(data).hexdigest()
        assert item["bytes"] == len(data)
    assert set(manifest["versions"]) == {"dosecalc", "pint", "rich", "click", "python"}
    assert manifest["started"] <= manifest["finished"]


def test_strict_writes_nothing_when_a_row_fails(runner: CliRunner, work: Path) -> None:
    result = batch(runner, str(work / "in" / "daylist.csv"), "--out", "out", "--strict")
    assert result.exit_code == 1
    assert not (work / "work" / "out").exists()
    assert "nothing was written" in result.stderr


def test_strict_without_out_prints_nothing(runner: CliRunner, work: Path) -> None:
    result = batch(runner, str(work / "in" / "daylist.csv"), "--strict")
    assert result.exit_code == 1
    assert result.stdout == ""


def test_second_run_refuses_to_overwrite_and_writes_nothing(runner: CliRunner, work: Path) -> None:
    daylist = str(work / "in" / "daylist.csv")
    batch(runner, daylist, "--out", "out", "--sheets", "text,json")
    out = work / "work" / "out"
    before = tree(out)
    (out / f"{DATE}_A001.txt").unlink()  # one target missing, the others present
    del before[f"{DATE}_A001.txt"]
    result = batch(runner, daylist, "--out", "out", "--sheets", "text,json")
    assert result.exit_code == 2
    assert "already exist" in result.stderr
    assert "--force" in result.stderr
    assert tree(out) == before  # the missing sheet was not written either


def test_force_replaces_and_a_rerun_is_byte_identical(runner: CliRunner, work: Path) -> None:
    daylist = str(work / "in" / "daylist.csv")
    batch(runner, daylist, "--out", "first", "--sheets", "text,json")
    (work / "work" / "first" / f"{DATE}_A001.txt").write_text("stale")
    result = batch(runner, daylist, "--out", "first", "--sheets", "text,json", "--force")
    assert result.exit_code == 1
    batch(runner, daylist, "--out", "second", "--sheets", "text,json")
    first, second = tree(work / "work" / "first"), tree(work / "work" / "second")
    assert first.keys() == second.keys()
    for name in first:
        if name != "manifest.json":  # the only file with the wall-clock time
            assert first[name] == second[name], name
    assert b"stale" not in first[f"{DATE}_A001.txt"]


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("weight,name", "patient_id column is required"),
        ("patient_id,name", "a weight column is required"),
        ("patient_id,weight,wieght_kg", "unknown column(s): 'wieght_kg'"),
        ("patient_id,weight,weight", "duplicate column(s): weight"),
        ("patient_id,weight,weight_kg", "more than one weight column"),
        ("", "must name the columns"),
    ],
)
def test_a_bad_header_exits_2_and_writes_nothing(
    runner: CliRunner, tmp_path: Path, header: str, fragment: str
) -> None:
    daylist = tmp_path / "list.csv"
    daylist.write_text(f"{header}\nA001,72 kg,x\n")
    result = batch(runner, str(daylist), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert fragment in result.stderr
    assert not (tmp_path / "out").exists()


def test_an_empty_day_list_is_a_bad_header(runner: CliRunner) -> None:
    result = batch(runner, "-", stdin=b"")
    assert result.exit_code == 2
    assert "header" in result.stderr


def test_weight_kg_and_lb_columns_take_plain_numbers_through_the_strict_grammar(
    runner: CliRunner,
) -> None:
    rows = "patient_id,weight_kg\nK1,72\nK2,7e1\nK3,-70\nK4,72 kg\nK5,0\n"
    result = batch(runner, "-", stdin=rows.encode())
    assert result.exit_code == 1
    out = {r["patient_id"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert (out["K1"]["status"], out["K1"]["dose"]) == ("ok", "36")
    assert [out[k]["status"] for k in ("K2", "K3", "K4", "K5")] == ["invalid"] * 4
    assert "weight_kg" in out["K2"]["message"]

    # 100 lb = 45.359237 kg -> 45.4 kg; dose 22.6796185 mg -> 22.7 mg
    lb = batch(runner, "-", stdin=b"patient_id,weight_lb\nL1,100\n")
    row = next(csv.DictReader(io.StringIO(lb.stdout)))
    assert (row["status"], row["weight_kg"], row["dose"]) == ("warning", "45.4", "22.7")


def test_jsonl_in_and_out_one_object_per_row_with_its_line(runner: CliRunner) -> None:
    lines = [
        '{"patient_id": "J1", "weight": "72 kg"}',
        '{"patient_id": "J2", "weight_kg": 72}',
        "",
        '{"patient_id": "J3", "weight_kg": 7e1}',
        '{"patient_id": "J4", "weight": "72 kg", "wieght": "1"}',
        '{"patient_id": "J5", "weight": "72 kg", "weight": "70 kg"}',
        '{"patient_id": "J6", "weight": NaN}',
        "[1, 2]",
    ]
    result = batch(
        runner, "-", "--input-format", "jsonl", "--format", "jsonl", stdin="\n".join(lines).encode()
    )
    assert result.exit_code == 1
    everything = [json.loads(line) for line in result.stdout.splitlines()]
    # Every line, the blank one included, with the statuses of results.csv.
    assert [o["line"] for o in everything] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [o["status"] for o in everything] == ["ok", "ok", "blank"] + ["invalid"] * 5
    objects = [o for o in everything if o["status"] != "blank"]
    assert [o["schema"] for o in objects[:2]] == ["dosecalc.sheet/1"] * 2
    assert objects[0]["rate_ml_per_h"] == 155.4
    assert objects[1]["dose"] == 36
    assert all(o["schema"] == "dosecalc.error/1" for o in objects[2:])
    assert objects[2]["patient_id"] == "J3"
    assert "wieght" in objects[3]["errors"][0]["message"]
    assert "appears twice" in objects[4]["errors"][0]["message"]
    assert "blank" in result.stderr


def test_csv_on_stdout_has_one_line_per_input_line_and_the_summary_on_stderr(
    runner: CliRunner,
) -> None:
    result = batch(runner, "-", stdin=f"{HEADER}\nS1,72 kg,,,\n\nS2,72 kg,,,\n".encode())
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["line"], r["status"]) for r in rows] == [("2", "ok"), ("3", "blank"), ("4", "ok")]
    assert "3 line(s) read: 2 ok" in result.stderr
    assert "dosecalc:" not in result.stdout


def test_soft_limit_override_needs_an_operator_from_cell_option_or_environment(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = f"{HEADER}\nO1,160 kg,,checked twice,\n".encode()
    assert "operator" in batch(runner, "-", stdin=rows).stdout.splitlines()[1]
    assert batch(runner, "-", stdin=rows).exit_code == 1
    assert batch(runner, "-", "--operator", "Nurse Kim", stdin=rows).exit_code == 0
    monkeypatch.setenv("DOSECALC_OPERATOR", "Nurse Lee")
    assert batch(runner, "-", stdin=rows).exit_code == 0


def test_an_unknown_sheet_format_or_bad_date_is_a_usage_error(
    runner: CliRunner, tmp_path: Path
) -> None:
    rows = f"{HEADER}\nS1,72 kg,,,\n".encode()
    out = ["--out", str(tmp_path / "out")]
    bad = runner.invoke(
        cli, ["--protocols", str(TEST_PROTOCOLS), "batch", "-", *out, "--sheets", "txt"], input=rows
    )
    assert bad.exit_code == 2
    assert "sheets: unknown format 'txt'" in bad.stderr
    date = runner.invoke(
        cli, ["--protocols", str(TEST_PROTOCOLS), "batch", "-", "--date", "21/11/2026"], input=rows
    )
    assert date.exit_code == 2
    assert "date" in date.stderr


def test_bad_protocols_file_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "p.toml"
    broken.write_text("format = [")
    result = runner.invoke(cli, ["--protocols", str(broken), "batch", "-"], input=b"")
    assert result.exit_code == 3


def test_invalid_utf8_and_overlong_lines_are_invalid_rows_not_crashes(runner: CliRunner) -> None:
    data = f"{HEADER}\n".encode() + b"U1,72 kg,M\xfcller,,\n" + b"U2," + b"9" * 20000 + b"\n"
    data += b"U3,72 kg,Bo\rU4,72 kg,Al,,\n"
    result = batch(runner, "-", stdin=data)
    assert result.exit_code == 1
    statuses = [r["status"] for r in csv.DictReader(io.StringIO(result.stdout))]
    assert statuses == ["invalid", "invalid", "invalid"]
    assert "carriage return" in result.stdout
    assert "UTF-8" in result.stdout
    assert "longer than" in result.stdout


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\tx", "x"),
        ("a\x1b[2Jb", "a[2Jb"),
        ("plain", "plain"),
    ],
)
def test_csv_cells_are_neutralised(cell: str, shown: str) -> None:
    assert neutralise(cell) == shown


def test_duplicate_ids_differing_only_in_case_are_refused(runner: CliRunner) -> None:
    result = batch(runner, "-", stdin=f"{HEADER}\nab1,72 kg,,,\nAB1,72 kg,,,\n".encode())
    assert result.exit_code == 1
    assert [r["status"] for r in csv.DictReader(io.StringIO(result.stdout))] == ["invalid"] * 2


def test_same_id_on_different_dates_is_not_a_duplicate(runner: CliRunner) -> None:
    rows = "patient_id,weight,date\nD1,72 kg,2026-11-21\nD1,72 kg,2026-11-22\n"
    result = batch(runner, "-", stdin=rows.encode())
    assert result.exit_code == 0


def test_pint_is_asked_once_per_distinct_unit_not_once_per_row(runner: CliRunner) -> None:
    from dosecalc import units

    def misses(rows: int) -> int:
        units.dimensionality.cache_clear()
        units.factor.cache_clear()
        lines = [f"R{i},{40 + i % 50} kg" for i in range(rows)]
        result = batch(runner, "-", stdin=("patient_id,weight\n" + "\n".join(lines)).encode())
        assert result.exit_code == 0
        return units.dimensionality.cache_info().misses + units.factor.cache_info().misses

    # The first run of each weight fills the engine's own cache (model._calculated), which asks
    # pint once more for a new weight: warm it, so that only the per-row path is measured.
    misses(200)
    assert misses(5) == misses(200)


def test_an_empty_date_option_is_refused_not_replaced_by_today(runner: CliRunner) -> None:
    rows = f"{HEADER}\nS1,72 kg,,,\n".encode()
    result = runner.invoke(
        cli, ["--protocols", str(TEST_PROTOCOLS), "batch", "-", "--date", ""], input=rows
    )
    assert result.exit_code == 2
    assert "date" in result.stderr
    assert result.stdout == ""


def test_a_duplicate_row_that_was_already_invalid_keeps_both_reasons_in_jsonl(
    runner: CliRunner,
) -> None:
    rows = f"{HEADER}\nX1,72 kg,,,\nX1,70,,,\n".encode()
    result = batch(runner, "-", "--format", "jsonl", stdin=rows)
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert [e["code"] for e in first["errors"]] == ["duplicate_patient_id"]
    assert [e["code"] for e in second["errors"]] == ["duplicate_patient_id", "no_unit"]


@pytest.mark.parametrize(
    ("args", "stdin", "code", "field"),
    [
        (("-", "--format", "jsonl"), b"patient,weight\nA1,72 kg\n", 2, "header"),
        (("-", "--format", "jsonl", "--combined", "day.txt"), b"", 2, "combined"),
        (("-", "--format", "jsonl", "--audit-log", ""), b"", 2, "audit_log"),
    ],
)
def test_a_jsonl_run_that_stops_says_why_on_stdout_in_one_line(
    runner: CliRunner, args: tuple[str, ...], stdin: bytes, code: int, field: str
) -> None:
    result = batch(runner, *args, stdin=stdin)
    assert result.exit_code == code
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    error = json.loads(lines[0])
    assert error["schema"] == "dosecalc.error/1"
    assert error["status"] == "error"
    assert "line" not in error
    assert error["errors"][0]["field"] == field
    # The same messages as stderr, which still has them for people.
    assert error["errors"][0]["message"] in result.stderr


def test_a_jsonl_run_with_an_unreadable_protocols_file_says_why_on_stdout(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(
        cli, ["--protocols", str(tmp_path / "none.toml"), "batch", "-", "--format", "jsonl"]
    )
    assert result.exit_code == 3
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["errors"][0]["field"] == "protocols"


def test_a_csv_run_that_stops_writes_nothing_on_stdout(runner: CliRunner) -> None:
    result = batch(runner, "-", stdin=b"patient,weight\nA1,72 kg\n")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "header" in result.stderr


@pytest.mark.parametrize("jobs", ["\uff12", " 2", "2_0", "+2", "0"])
def test_jobs_is_a_count_in_ascii_digits(runner: CliRunner, jobs: str) -> None:
    # click's int() read "２" (fullwidth), " 2" and "2_0" as numbers: strict input everywhere.
    result = batch(runner, "-", "--jobs", jobs, stdin=b"patient_id,weight\nA1,72 kg\n")
    assert result.exit_code == 2
    assert "--jobs" in result.stderr
    assert result.stdout == ""


def test_a_column_name_with_a_kelvin_sign_is_unknown_not_weight_kg(runner: CliRunner) -> None:
    # "weight_\u212ag" (KELVIN SIGN) lowers to "weight_kg": the column was taken for weight_kg.
    result = batch(runner, "-", stdin="patient_id,weight_\u212ag\nA1,72\n".encode())
    assert result.exit_code == 2
    assert "unknown column(s): 'weight_\\u212ag' (not ASCII)" in result.stderr
    assert "spaces around it" not in result.stderr
    assert result.stdout == ""
