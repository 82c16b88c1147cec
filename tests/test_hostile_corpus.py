"""The hostile-input corpus (tests/data/hostile_inputs.toml) through the real CLI.

Every case: no traceback, the exact exit code, the expected fragment on stderr, and no sheet for an
invalid input (empty stdout for text, one dosecalc.error/1 object for JSON, no file in --out for a
batch row that fails). Passing this module is the scoreboard's "0 tracebacks, 0 wrong exit codes,
0 sheets for invalid input".
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers import DATA, TEST_PROTOCOLS

from dosecalc.cli import cli

CORPUS = tomllib.loads((DATA / "hostile_inputs.toml").read_text(encoding="utf-8"))
DATE = "2026-11-21"
UNSAFE = ("\x1b", "\x00", "\x07", "\x9b", "\u202e", "\u200b")


def _ids(kind: str) -> list[str]:
    return [f"{kind}{i:03d}-{case['field']}" for i, case in enumerate(CORPUS[kind])]


def _input(case: dict[str, Any], tmp_path: Path) -> Any:
    value = case["input"]
    if isinstance(value, list):
        return [v.replace("{tmp}", str(tmp_path)) for v in value]
    return value.replace("{tmp}", str(tmp_path)) * case.get("repeat", 1)


def assert_clean_run(result: Result) -> None:
    """No traceback: the CLI exited by itself (SystemExit), never through another exception."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.stdout
    assert "Traceback" not in result.stderr


def test_the_corpus_has_150_cases_and_30_broken_protocols_files() -> None:
    total = sum(len(cases) for cases in CORPUS.values())
    assert total >= 150
    assert len(CORPUS["protocols"]) >= 30


def test_the_corpus_covers_every_sheet_option_and_every_batch_column() -> None:
    from dosecalc.batch import COLUMNS

    sheet_params = {
        p.name.replace("_", "-")
        for p in cli.commands["sheet"].params  # type: ignore[attr-defined]
    }
    options = {"patient-id", "override-reason", "protocol-id", "fmt", "protocols-file"}
    named = {
        "override-reason": "override",
        "protocol-id": "protocol",
        "fmt": "format",
        "protocols-file": "protocols",
    }
    wanted = {named.get(n, n) for n in sheet_params} | (options - set(named))
    assert wanted - {c["field"] for c in CORPUS["sheet"]} == set()
    assert set(COLUMNS) - {c["field"] for c in CORPUS["batch"]} == set()


# --- sheet --------------------------------------------------------------------------------------


def _sheet(case: dict[str, Any], tmp_path: Path, fmt: str) -> Result:
    value = _input(case, tmp_path)
    args = ["--weight", "70 kg", "--date", DATE]
    field = case["field"]
    if field in ("weight", "date"):
        args[args.index(f"--{field}") + 1] = value
    elif field == "force":
        args.append(f"--force={value}")
    elif field == "protocols":
        args += ["--protocols", value]
    else:
        args += [f"--{field}", value]
    for given in case.get("args", []):  # a case's own --weight replaces the default (given once)
        if given in ("--weight", "--date") and given in args:
            del args[args.index(given) : args.index(given) + 2]
    args += case.get("args", [])
    if fmt != "text" and field != "format":
        args += ["--format", fmt]
    protocols = [] if field == "protocols" else ["--protocols", str(TEST_PROTOCOLS)]
    return CliRunner().invoke(cli, [*protocols, "sheet", *args])


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", CORPUS["sheet"], ids=_ids("sheet"))
def test_a_hostile_sheet_option_gives_its_exit_code_and_message_and_no_sheet(
    case: dict[str, Any], tmp_path: Path
) -> None:
    if "setup" in case:
        (tmp_path / case["setup"]).write_text("previous sheet\n")
    for fmt in ("text", "json"):
        before = _files(tmp_path)
        result = _sheet(case, tmp_path, fmt)
        assert_clean_run(result)
        assert result.exit_code == case["exit"], (fmt, result.stderr)
        for ch in UNSAFE:
            assert ch not in result.stdout, (fmt, repr(ch))
            assert ch not in result.stderr, (fmt, repr(ch))
        if case["exit"] == 0:  # hostile text accepted: shown literally on a real sheet
            if fmt == "text":
                assert case["message"] in result.stdout
            else:
                assert json.loads(result.stdout)["schema"] == "dosecalc.sheet/1"
            continue
        assert case["message"] in result.stderr, (fmt, result.stderr)
        assert _files(tmp_path) == before, "a file was written for an invalid input"
        if fmt == "text" or case.get("usage"):
            assert result.stdout == ""
        else:
            error = json.loads(result.stdout)
            assert error["schema"] == "dosecalc.error/1"
            assert error["status"] == ("refused" if case["exit"] == 1 else "error")
            assert error["errors"]
            assert all(set(e) == {"field", "code", "message"} for e in error["errors"])


# --- batch --------------------------------------------------------------------------------------


def _row(cells: dict[str, str], header: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([cells.get(c, "") for c in header])
    return buffer.getvalue()


def _day_list(case: dict[str, Any], tmp_path: Path) -> tuple[Path, int]:
    """The day list file and the line number of the hostile row."""
    field, value = case["field"], _input(case, tmp_path)
    if case.get("input_format") == "jsonl":
        path = tmp_path / "list.jsonl"
        path.write_text('{"patient_id": "G001", "weight": "70 kg"}\n' + value + "\n")
        return path, 2
    path = tmp_path / "list.csv"
    if field == "header":
        path.write_text(value + ("\nH001,70 kg\n" if value else ""))
        return path, 0
    weight_column = field if field in ("weight_kg", "weight_lb") else "weight"
    good_weight = {"weight": "70 kg", "weight_kg": "70", "weight_lb": "154"}[weight_column]
    hostile = {"patient_id": "H001", weight_column: good_weight}
    hostile.update(case.get("cells", {}))
    if field not in ("row", "option"):
        hostile[field] = value
    header = [
        "patient_id",
        weight_column,
        *(k for k in hostile if k not in ("patient_id", weight_column)),
    ]
    good = {"patient_id": "G001", weight_column: good_weight}
    text = ",".join(header) + "\n" + _row(good, header)
    data = text.encode("utf-8")
    if case.get("raw"):
        data += value.encode("latin-1" if case.get("latin1") else "utf-8") + b"\n"
    else:
        data += _row(hostile, header).encode("utf-8")
    path.write_bytes(data)
    return path, 3


@pytest.mark.parametrize("case", CORPUS["batch"], ids=_ids("batch"))
def test_a_hostile_day_list_cell_is_accounted_for_and_gets_no_sheet(
    case: dict[str, Any], tmp_path: Path
) -> None:
    daylist, line = _day_list(case, tmp_path)
    out = tmp_path / "out"
    (tmp_path / "afile").write_text("not a folder\n")
    options = _input(case, tmp_path) if case["field"] == "option" else []
    if "--out" not in options:
        options = ["--out", str(out), *options]
    date = [] if "--date" in options else ["--date", DATE]  # an option is given once
    result = CliRunner().invoke(
        cli,
        ["--protocols", str(TEST_PROTOCOLS), "batch", str(daylist), *date, *options],
    )
    assert_clean_run(result)
    assert result.exit_code == case["exit"], result.stderr
    assert case["message"] in result.stderr, result.stderr
    for ch in UNSAFE:
        assert ch not in result.stdout, repr(ch)
        assert ch not in result.stderr, repr(ch)
    if case["exit"] == 2:  # header, option or folder: nothing written at all
        assert not out.exists() or not any(out.iterdir())
        assert (tmp_path / "afile").read_text() == "not a folder\n"
        return
    with open(out / "results.csv", newline="", encoding="utf-8") as handle:
        rows = {int(r["line"]): r for r in csv.DictReader(handle)}
    assert sorted(rows) == sorted({1, line} if line == 2 else {2, line})
    assert rows[line]["status"] == case["status"]
    if case["status"] in ("refused", "invalid"):
        assert case["message"] in rows[line]["message"]
    ok_lines = case.get("ok_lines", [1 if line == 2 else 2])
    expected = {"results.csv", "errors.csv", "manifest.json"}
    expected |= {f"{DATE}_G001.txt" for _ in ok_lines}
    if case["status"] == "ok":
        expected.add(f"{DATE}_H001.txt")
    assert set(_files(out)) == expected
    for cells in rows.values():
        for cell in cells.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
            assert not any(ch in cell for ch in UNSAFE)


# --- protocols files ----------------------------------------------------------------------------


def _protocols_file(case: dict[str, Any], tmp_path: Path) -> Path:
    text = case["text"] if "text" in case else TEST_PROTOCOLS.read_text(encoding="utf-8")
    if "replace" in case:
        old, new = case["replace"]
        assert old in text, f"the corpus case does not apply: {old!r}"
        text = text.replace(old, new, 1)
    if "pad" in case:
        text += "# " + "x" * case["pad"] + "\n"
    data = text.encode("latin-1" if case.get("latin1") else "utf-8")
    if case.get("bom"):
        data = b"\xef\xbb\xbf" + data
    path = tmp_path / "protocols.toml"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", CORPUS["protocols"], ids=_ids("protocols"))
def test_a_broken_protocols_file_exits_3_with_its_key_path_and_no_sheet(
    case: dict[str, Any], tmp_path: Path
) -> None:
    path = _protocols_file(case, tmp_path)
    runs = {
        "check": ["protocols", "check", str(path)],
        "sheet": ["--protocols", str(path), "sheet", "--weight", "70 kg", "--date", DATE],
        "json": ["--protocols", str(path), "sheet", "--weight", "70 kg", "--format", "json"],
    }
    for name, args in runs.items():
        result = CliRunner().invoke(cli, args)
        assert_clean_run(result)
        assert result.exit_code == case["exit"], (name, result.stderr)
        assert case["message"] in result.stderr, (name, result.stderr)
        for ch in UNSAFE:
            assert ch not in result.stderr, repr(ch)
        if name == "json":
            assert json.loads(result.stdout)["schema"] == "dosecalc.error/1"
        elif name == "sheet":
            assert result.stdout == ""
