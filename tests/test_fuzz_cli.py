"""Hypothesis drives the real CLI (`sheet` and `batch` through CliRunner, and a smaller sample through
`python -m dosecalc` as a subprocess) with generated weights, units, numbers, names, ids and day-list
rows.

Properties: the exit code is always 0, 1, 2 or 3; never a traceback; `--format json` stdout always
parses as the documented dosecalc.sheet/1 or dosecalc.error/1 object; no escape or other control
character in any output when not on a terminal; every day-list line is accounted for.

DOSECALC_FUZZ_EXAMPLES is the number of generated cases in total (default 2,100: 1% through a real
subprocess, at least 10; of the rest 40% each to the JSON and text sheet tests, 20% to the batch
test, whose every case is a whole day list of 1 to 8 rows). 100,000 cases:

    DOSECALC_FUZZ_EXAMPLES=100000 python -m pytest tests/test_fuzz_cli.py
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from helpers import TEST_PROTOCOLS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dosecalc.cli import cli

TOTAL = int(os.environ.get("DOSECALC_FUZZ_EXAMPLES", "2100"))
SUBPROCESS_EXAMPLES = max(10, TOTAL // 100)
SHEET_EXAMPLES = max(1, (TOTAL - SUBPROCESS_EXAMPLES) * 2 // 5)  # each: json, then text
BATCH_EXAMPLES = max(1, TOTAL - SUBPROCESS_EXAMPLES - 2 * SHEET_EXAMPLES)


def fuzz(examples: int) -> settings:
    """The fuzz profile: no deadline (a shared, noisy machine: time is not a property)."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )


# Written by hand from README "JSON" (issue 2, section 7): exactly these keys.
SHEET_KEYS = {
    "schema", "dosecalc_version", "protocol_id", "protocol_version", "protocols_file",
    "protocols_sha256", "drug", "patient_id", "date", "weight_entered", "weight_kg",
    "dosing_weight_kg", "dose_per_kg", "dose_per_kg_unit", "dose", "dose_unit", "stock",
    "stock_unit", "drug_volume_ml", "diluent", "diluent_volume_ml", "total_volume_ml",
    "preparation", "concentration", "concentration_unit", "duration_min", "rate_ml_per_h",
    "dose_rate_per_h", "dose_rate_per_kg_per_h", "checkpoints", "warnings", "overrides", "status",
    # issue 9
    "max_rounding_change_percent", "reverse_check", "changed_from_protocol", "stock_label",
    # issue 13 (a protocol with a pre-infusion gate adds "preinfusion"; the test protocols have none)
    "check_code",
    # issue 11
    "stock_per_ml",
}  # fmt: skip
NUMBER_KEYS = {
    "weight_kg", "dosing_weight_kg", "dose_per_kg", "dose", "stock", "drug_volume_ml",
    "diluent_volume_ml", "total_volume_ml", "concentration", "duration_min", "rate_ml_per_h",
    "dose_rate_per_h", "dose_rate_per_kg_per_h",
}  # fmt: skip
ERROR_KEYS = {"schema", "status", "errors"}
# Never in output off a terminal: controls (ESC, NUL, C1...), format characters (bidi, zero width),
# surrogates, private use, unassigned, line/paragraph separators. Newline is the one exception.
UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}

# --- strategies ---------------------------------------------------------------------------------

HOSTILE_NUMBERS = [
    "0", "-70", "+70", "70,5", "1,000", "1e3", "7e1", "nan", "inf", "NaN", "0x46", "70.5.3", ".5",
    "070", "70.", "70_0", "9**9**9", "2**10", "(70)", "\u0667\u0660", "\uff17\uff10", "1" * 40,
    "0.000000000000000000000000001", "9999999999999999999999999999", "",
]  # fmt: skip
UNITS = [
    "kg", "KG", "Kg", "g", "lb", "lbs", "LB", "mg", "mcg", "ug", "\u00b5g", "\u03bcg", "mL", "ml",
    "L", "min", "h", "hr", "s", "mg/kg", "mcg/kg", "mg/mL", "mcg/mL", "mL/h", "mg/h", "mg/kg/h",
    "kilos", "KGS", "m", "k g", "kg + 5 lb", "kg # note", "", "d", "mins", "mg/lb", "g/mL",
]  # fmt: skip
numbers = st.one_of(
    st.decimals(min_value=0, max_value=1000, places=3, allow_nan=False).map(str),
    st.integers(min_value=0, max_value=10**9).map(str),
    st.sampled_from(HOSTILE_NUMBERS),
    st.text(max_size=6),
)
units = st.one_of(st.sampled_from(UNITS), st.text(max_size=5))
spaces = st.sampled_from(["", " ", "  ", "\t"])
quantities = st.one_of(
    st.builds(lambda n, s, u: f"{n}{s}{u}", numbers, spaces, units),
    st.text(max_size=40),
)
# Plausible weights, so a good share of the runs produce real sheets (and hit soft/hard limits).
weights = st.one_of(
    st.builds(
        lambda n, u: f"{n} {u}",
        st.decimals(min_value=1, max_value=700, places=1, allow_nan=False),
        st.sampled_from(["kg", "lb", "g"]),
    ).map(lambda w: w if not w.endswith(" g") else w.replace(" g", "000 g")),
    quantities,
)
HOSTILE_TEXTS = [
    "[red]x[/red]", "[/]", "[link=https://example.org]x[/link]", "\x1b[2J", "\x1b]0;t\x07",
    "A\u202eB", "<script>alert(1)</script>", '=HYPERLINK("x")', "@SUM(1)", "+1", "-1",
    "\u00c9lodie M\u00fcller", "\x9b31m", "a\u200bb", "x" * 120,
]  # fmt: skip
texts = st.one_of(st.text(max_size=30), st.sampled_from(HOSTILE_TEXTS))
ids = st.one_of(
    st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    st.sampled_from(["../x", "/etc/passwd", "a b", "CON", "..", "", "A" * 65, "P\x00", "P\u00e9"]),
    st.text(max_size=10),
)
protocol_ids = st.one_of(
    st.sampled_from(["ketamine-iv", "dex-load", "ketamine-undiluted", "KETAMINE-IV", "nope", ""]),
    st.text(max_size=8),
)
dates = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["2026-02-30", "21/11/2026", "", "tomorrow"]),
    st.text(max_size=12),
)
optional = {
    "--patient-id": ids,
    "--name": texts,
    "--dose": st.one_of(st.builds(lambda n, u: f"{n} {u}", numbers, units), quantities),
    "--duration": st.one_of(st.builds(lambda n: f"{n} min", numbers), quantities),
    "--stock": st.one_of(st.sampled_from(["10 mg/mL", "50 mg/mL", "100 mcg/mL"]), quantities),
    "--protocol": protocol_ids,
    "--override": texts,
    "--operator": texts,
    "--date": dates,
}
sheet_args = st.builds(
    lambda weight, chosen: ["--weight", weight, *[a for pair in chosen for a in pair]],
    weights,
    st.lists(
        st.sampled_from(sorted(optional)).flatmap(lambda o: optional[o].map(lambda v: (o, v))),
        max_size=4,
        unique_by=lambda pair: pair[0],
    ),
)

# --- oracles ------------------------------------------------------------------------------------


def unsafe_characters(text: str) -> list[str]:
    return [ch for ch in text if ch != "\n" and unicodedata.category(ch) in UNSAFE_CATEGORIES]


def check_common(code: int, stdout: str, stderr: str) -> None:
    assert code in (0, 1, 2, 3), (code, stderr)
    assert "Traceback" not in stdout, stdout
    assert "Traceback" not in stderr, stderr
    assert unsafe_characters(stdout) == [], stdout
    assert unsafe_characters(stderr) == [], stderr


def check_runner(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    check_common(result.exit_code, result.stdout, result.stderr)


def check_json_object(obj: Any, code: int) -> None:
    """One dosecalc.sheet/1 (exit 0) or dosecalc.error/1 object (exit 1, 2, 3)."""
    assert isinstance(obj, dict)
    if code == 0:
        assert set(obj) == SHEET_KEYS
        assert obj["schema"] == "dosecalc.sheet/1"
        assert obj["status"] == "ok"
        for key in NUMBER_KEYS:
            assert isinstance(obj[key], int | float), key
            assert obj[key] > 0, key
        assert obj["checkpoints"], "a sheet has at least the end checkpoint"
        for point in obj["checkpoints"]:
            assert set(point) == {"minute", "volume_ml", "dose"}
        for warning in obj["warnings"]:
            assert set(warning) == {"code", "message"}
        for override in obj["overrides"]:
            assert set(override) == {"limit", "value", "reason", "operator"}
    else:
        assert set(obj) == ERROR_KEYS
        assert obj["schema"] == "dosecalc.error/1"
        assert obj["status"] == ("refused" if code == 1 else "error")
        assert obj["errors"]
        for error in obj["errors"]:
            assert set(error) == {"field", "code", "message"}


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(cli, ["--protocols", str(TEST_PROTOCOLS), *args])


# --- sheet --------------------------------------------------------------------------------------


@fuzz(SHEET_EXAMPLES)
@given(args=sheet_args)
def test_a_generated_json_sheet_exits_0_to_3_and_prints_one_documented_object(
    args: list[str],
) -> None:
    result = invoke(["sheet", *args, "--format", "json"])
    check_runner(result)
    if result.exit_code == 2 and result.stdout == "":
        assert "Usage:" in result.stderr  # click's own usage errors only
        return
    check_json_object(json.loads(result.stdout), result.exit_code)


@fuzz(SHEET_EXAMPLES)
@given(args=sheet_args)
def test_a_generated_text_sheet_exits_0_to_3_with_no_control_characters(args: list[str]) -> None:
    result = invoke(["sheet", *args])
    check_runner(result)
    if result.exit_code == 0:
        assert "PUMP" in result.stdout
    else:
        assert result.stdout == ""
        assert result.stderr.startswith(("dosecalc: ", "Usage:"))


# --- batch --------------------------------------------------------------------------------------

COLUMN_VALUES = {
    "weight": weights,
    "name": texts,
    "dose": optional["--dose"],
    "duration": optional["--duration"],
    "stock": optional["--stock"],
    "protocol": protocol_ids,
    "override_reason": texts,
    "operator": texts,
    "date": dates,
}
no_line_breaks = st.characters(blacklist_characters="\r\n\x00", blacklist_categories=["Cs"])


def _one_line(value: str) -> str:
    return value.replace("\r", "").replace("\n", "")


@st.composite
def day_lists(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    extra = draw(st.lists(st.sampled_from(sorted(COLUMN_VALUES)), unique=True, max_size=4))
    header = ["patient_id", *(["weight"] if "weight" not in extra else []), *extra]
    rows = []
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        shape = draw(st.sampled_from(["row", "row", "row", "blank", "short", "long", "text"]))
        if shape == "blank":
            rows.append([""] * len(header))
        elif shape == "text":  # anything on one line: quotes, separators, stray cells
            rows.append([draw(st.text(no_line_breaks, max_size=40))])
        else:
            cells = [_one_line(draw(ids))]
            for column in header[1:]:
                strategy = COLUMN_VALUES[column]
                cells.append(_one_line(draw(st.one_of(st.just(""), strategy))))
            if shape == "short":
                cells = cells[:-1]
            elif shape == "long":
                cells.append("extra")
            rows.append(cells)
    return header, rows


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        if len(row) == 1:
            buffer.write(row[0] + "\n")  # written raw: the reader sees it as typed
        else:
            writer.writerow(row)
    return buffer.getvalue()


@fuzz(BATCH_EXAMPLES)
@given(day=day_lists(), fmt=st.sampled_from(["csv", "jsonl"]))
def test_a_generated_day_list_accounts_for_every_line(
    day: tuple[list[str], list[list[str]]], fmt: str
) -> None:
    header, rows = day
    text = _csv_text(header, rows)
    result = CliRunner().invoke(
        cli,
        ["--protocols", str(TEST_PROTOCOLS), "batch", "-", "--format", fmt, "--date", "2026-11-21"],
        input=text.encode("utf-8"),
    )
    check_runner(result)
    lines = list(range(2, text.count("\n") + 1))  # not splitlines(): it splits at \x1e too
    if result.exit_code == 2:  # a quoted field over several lines: the list is refused whole
        assert "opens a quoted field that is not closed on that line" in result.stderr
        assert result.stdout == ""
        return
    assert result.exit_code in (0, 1)  # the header is always valid here
    if fmt == "csv":
        records = list(csv.DictReader(io.StringIO(result.stdout)))
        # Every physical line is its own record, in order: none swallowed, none skipped.
        assert [int(r["line"]) for r in records] == lines
        statuses = {r["status"] for r in records}
        assert statuses <= {"ok", "warning", "refused", "invalid", "blank"}
        failed = sum(r["status"] in ("refused", "invalid") for r in records)
        assert result.exit_code == (1 if failed else 0)
        assert f"{len(records)} line(s) read" in result.stderr
    else:
        objects = [json.loads(line) for line in result.stdout.splitlines()]
        for obj in objects:
            status = obj["status"]
            assert status in ("ok", "warning", "refused", "invalid", "blank")
            if status == "blank":
                assert set(obj) == {"line", "status"}
                continue
            code = {"ok": 0, "warning": 0, "refused": 1, "invalid": 2}[status]
            extra = {"line", "patient_id"} if code else {"line"}
            as_single = {"ok": "ok", "warning": "ok", "refused": "refused", "invalid": "error"}
            body = {k: v for k, v in obj.items() if k not in extra}
            check_json_object({**body, "status": as_single[status]}, code)
        assert [obj["line"] for obj in objects] == lines


# --- a real process -----------------------------------------------------------------------------

argv_text = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=30
)


@fuzz(SUBPROCESS_EXAMPLES)
@given(
    weight=st.one_of(weights, argv_text).filter(lambda w: "\x00" not in w),
    name=argv_text,
    fmt=st.sampled_from(["text", "json"]),
)
def test_a_real_dosecalc_process_exits_0_to_3_without_a_traceback(
    weight: str, name: str, fmt: str, tmp_path_factory: Any
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSECALC_", "FORCE_COLOR"))}
    completed = subprocess.run(
        [sys.executable, "-m", "dosecalc", "--protocols", str(TEST_PROTOCOLS), "sheet",
         "--weight", weight, "--name", name, "--format", fmt, "--date", "2026-11-21"],
        capture_output=True, stdin=subprocess.DEVNULL, env=env, timeout=60,
        cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    stdout = completed.stdout.decode("utf-8")
    stderr = completed.stderr.decode("utf-8", errors="replace")
    check_common(completed.returncode, stdout, stderr)
    if fmt == "json":
        check_json_object(json.loads(stdout), completed.returncode)
    elif completed.returncode:
        assert stdout == ""
