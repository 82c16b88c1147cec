"""A clinic's day list -> one dose sheet per patient, results.csv, errors.csv and a manifest.

Two phases, so nothing is written until every row has been parsed, checked and calculated: phase 1
streams the list through the same `model.make_sheet` as `dosecalc sheet` and spools each row's
outcome (and its rendered sheets) to a temporary SQLite file; phase 2 checks every target, then
writes atomically, the manifest last. Memory does not grow with the number of rows. No click here.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from dosecalc.display import clean
from dosecalc.errors import DosecalcError, InputError, LimitError, OutputError, Problem
from dosecalc.files import exists_error, write_atomic
from dosecalc.model import (
    PATIENT_ID,
    TEXT_LIMITS,
    Order,
    Sheet,
    check_date,
    check_patient_id,
    check_text,
    dosing_basis,
    make_sheet,
)
from dosecalc.protocols import Library
from dosecalc.render import FORMATS, extension, render
from dosecalc.render.as_json import dumps, error_object, sheet_json
from dosecalc.units import parse_number, safe_echo

MANIFEST_SCHEMA = "dosecalc.batch-manifest/1"
OPTIONAL_COLUMNS = (
    "protocol",
    "name",
    "dose",
    "duration",
    "stock",
    "override_reason",
    "operator",
    "date",
    "height",  # issue 10: where the protocol needs them (model.Order checks)
    "sex",
)
# Weight column -> the unit its plain numbers are in (None: the cell carries its own unit).
WEIGHT_COLUMNS: dict[str, str | None] = {"weight": None, "weight_kg": "kg", "weight_lb": "lb"}
COLUMNS = ("patient_id", *WEIGHT_COLUMNS, *OPTIONAL_COLUMNS)
RESULT_COLUMNS = (
    "line",
    "patient_id",
    "name",
    "date",
    "protocol",
    "status",
    "weight_kg",
    "dose",
    "dose_unit",
    "drug_volume_ml",
    "total_volume_ml",
    "rate_ml_per_h",
    "message",
)
# Issue 10: where the protocols file has a protocol dosing on another weight than the actual one
# (or capped), results.csv also gives the dosing weight and its basis, before the message.
BASIS_COLUMNS = ("dosing_weight_kg", "dosing_weight_basis")
STATUSES = ("ok", "warning", "refused", "invalid", "blank")
FAILED = ("refused", "invalid")
RESULTS_FILE, ERRORS_FILE, MANIFEST_FILE = "results.csv", "errors.csv", "manifest.json"
# A physical line longer than this is refused (and never held whole in memory).
MAX_LINE_BYTES = 16 * 1024
# A list this large (or of unknown size, on stdin) gets a progress bar on a terminal.
LONG_LIST_BYTES = 256 * 1024
# CSV cells starting with these are formulas to a spreadsheet (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
INSERT_BATCH = 500
MAX_COMBINED = 1000


@dataclass(frozen=True)
class Options:
    """What the command line asked for; defaults for rows that leave a cell empty."""

    date: str
    protocol_id: str | None = None
    operator: str | None = None
    out: Path | None = None
    sheets: tuple[str, ...] = ("text",)
    output_format: str = "csv"  # without `out`: csv or jsonl on stdout
    input_format: str | None = None  # None: from the file's extension (csv unless .jsonl/.ndjson)
    strict: bool = False
    force: bool = False
    paper: str = "a4"  # for html and pdf sheets
    combined: Path | None = None  # one PDF: a cover page, then a page per sheet
    basis_columns: bool = False  # results.csv gives the dosing weight and basis (BASIS_COLUMNS)


@dataclass
class Report:
    """What the run did: counts by status (they add up to lines_read) and what was written."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    with_override: int = 0
    written: int = 0

    @property
    def lines_read(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> int:
        return self.counts["refused"] + self.counts["invalid"]


@dataclass(frozen=True)
class RawRow:
    """One record of the day list: its first physical line, its cells, or why it cannot be read."""

    line: int
    cells: dict[str, str] | None
    problem: Problem | None = None
    blank: bool = False


@dataclass
class Entry:
    """One row's outcome, as spooled between the phases."""

    line: int
    status: str
    cells: list[str]
    key: str | None = None
    overridden: bool = False
    jsonl: str | None = None
    sheets: list[tuple[str, bytes]] = field(default_factory=list)
    sheet: Sheet | None = None  # kept only for --combined (capped at MAX_COMBINED sheets)


# --- reading ------------------------------------------------------------------------------------


class Source:
    """The day list as decoded physical lines: hashed as read, BOM dropped, each line bounded."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0
        self.line_no = 0
        self.flags: list[str] = []  # problems seen since the last record, reset by the reader

    def _read(self, limit: int) -> bytes:
        raw = self.stream.readline(limit)
        self.sha256.update(raw)
        self.bytes_read += len(raw)
        return raw

    def lines(self) -> Iterator[str]:
        while True:
            raw = self._read(MAX_LINE_BYTES + 1)
            if not raw:
                return
            self.line_no += 1
            if self.line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while (more := self._read(MAX_LINE_BYTES)) and not more.endswith(b"\n"):
                    pass
                self.flags.append(f"line {self.line_no} is longer than {MAX_LINE_BYTES} bytes")
                yield "\n"
                continue
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.flags.append(f"line {self.line_no} is not valid UTF-8 (byte {exc.start + 1})")
                yield "\n"

    def take_flags(self) -> list[str]:
        flags, self.flags = self.flags, []
        return flags


def _row_problem(code: str, message: str) -> Problem:
    return Problem("row", code, message)


def check_header(header: list[str]) -> None:
    """Refuse a header with missing, unknown or duplicate columns, or not exactly one weight."""
    problems = []
    seen: set[str] = set()
    duplicates = sorted({name for name in header if name in seen or seen.add(name)})  # type: ignore[func-returns-value]
    if duplicates:
        names = ", ".join(safe_echo(n) for n in duplicates)
        problems.append(
            Problem("header", "duplicate_column", f"header: duplicate column(s): {names}")
        )
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        names = ", ".join(f"'{safe_echo(n)}'" for n in unknown)
        problems.append(
            Problem(
                "header",
                "unknown_column",
                f"header: unknown column(s): {names}. Accepted: {', '.join(COLUMNS)}",
            )
        )
    if "patient_id" not in header:
        problems.append(
            Problem("header", "missing_column", "header: the patient_id column is required")
        )
    weights = [name for name in WEIGHT_COLUMNS if name in header]
    if not weights:
        problems.append(
            Problem(
                "header",
                "missing_column",
                "header: a weight column is required: weight (with its unit, '72 kg'), "
                "weight_kg or weight_lb (plain numbers)",
            )
        )
    elif len(weights) > 1:
        problems.append(
            Problem(
                "header",
                "conflicting_columns",
                f"header: more than one weight column ({', '.join(weights)}): give exactly one",
            )
        )
    if problems:
        raise InputError(problems)


def csv_rows(source: Source) -> tuple[list[str], Iterator[RawRow]]:
    """The checked header, and every record after it (blank lines included, as blank records)."""
    reader = csv.reader(source.lines(), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InputError(
            Problem("header", "bad_csv", f"header: line 1 is not valid CSV: {exc}")
        ) from None
    flags = source.take_flags()
    if flags:
        raise InputError(Problem("header", "bad_line", f"header: {flags[0]}"))
    if not header:
        raise InputError(
            Problem("header", "missing_header", "header: line 1 must name the columns")
        )
    check_header(header)

    def records() -> Iterator[RawRow]:
        previous = reader.line_num
        while True:
            try:
                cells = next(reader, None)
                problem = None
            except csv.Error as exc:
                cells, problem = [], _row_problem("bad_csv", f"not valid CSV: {exc}")
            line, previous = previous + 1, reader.line_num
            if cells is None:
                return
            flags = source.take_flags()
            if flags:
                problem = _row_problem("bad_line", "; ".join(flags))
            if problem is not None:
                yield RawRow(line, None, problem)
            elif all(not c.strip(" ") for c in cells):
                yield RawRow(line, None, blank=True)
            elif len(cells) != len(header):
                which = "short" if len(cells) < len(header) else "long"
                yield RawRow(
                    line,
                    None,
                    _row_problem(
                        f"{which}_row",
                        f"line {line} has {len(cells)} cells, the header has {len(header)} "
                        f"({', '.join(header)})",
                    ),
                )
            else:
                yield RawRow(line, {k: v for k, v in zip(header, cells, strict=True) if v != ""})

    return header, records()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number dosecalc accepts")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key '{safe_echo(key)}' appears twice")
        result[key] = value
    return result


def jsonl_rows(source: Source) -> Iterator[RawRow]:
    """One record per line; numbers kept as their literal text so the strict grammar sees them."""
    for text in source.lines():
        line = source.line_no
        flags = source.take_flags()
        if flags:
            yield RawRow(line, None, _row_problem("bad_line", "; ".join(flags)))
            continue
        if not text.strip():
            yield RawRow(line, None, blank=True)
            continue
        try:
            data = json.loads(
                text,
                parse_float=str,
                parse_int=str,
                parse_constant=_no_constant,
                object_pairs_hook=_unique_pairs,
            )
        except (ValueError, RecursionError) as exc:
            yield RawRow(line, None, _row_problem("bad_json", f"not valid JSON: {exc}"))
            continue
        problem = _json_problem(data)
        if problem is not None:
            yield RawRow(line, None, problem)
        else:
            yield RawRow(line, {k: v for k, v in data.items() if v is not None and v != ""})


def _json_problem(data: Any) -> Problem | None:
    if not isinstance(data, dict):
        return _row_problem("bad_json", "must be a JSON object with one key per column")
    try:
        check_header(list(data))
    except InputError as exc:
        return _row_problem(
            "bad_keys", "; ".join(p.message.replace("header: ", "keys: ", 1) for p in exc.problems)
        )
    for key, value in data.items():
        if value is not None and not isinstance(value, str):
            return _row_problem("not_text", f"{key}: must be text in quotes, a number or null")
    return None


# --- phase 1: every row through the one calculation path ----------------------------------------


def _weight(cells: dict[str, str]) -> str:
    for column, unit in WEIGHT_COLUMNS.items():
        if column in cells:
            text = cells[column]
            if unit is None:
                return text
            parse_number(text, column)  # the grammar first: only an accepted number gets a unit
            return f"{text.strip(' ')} {unit}"
    raise InputError(
        Problem(
            "weight",
            "missing",
            "weight: is empty: every row needs the patient's weight, for example 72 kg",
        )
    )


def _order(cells: dict[str, str], options: Options) -> Order:
    """The row as an Order, exactly as `dosecalc sheet` would receive it; raises InputError."""
    problems: list[Problem] = []
    if "patient_id" not in cells:
        problems.append(
            Problem("patient_id", "missing", "patient_id: is empty: every row needs one")
        )
    else:
        try:
            check_patient_id(cells["patient_id"])
        except InputError as exc:
            problems.extend(exc.problems)
    weight = ""
    try:
        weight = _weight(cells)
    except InputError as exc:
        problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return Order(
        weight=weight,
        date=cells.get("date", options.date),
        protocol_id=cells.get("protocol", options.protocol_id),
        patient_id=cells["patient_id"],
        name=cells.get("name"),
        dose=cells.get("dose"),
        duration=cells.get("duration"),
        stock=cells.get("stock"),
        override_reason=cells.get("override_reason"),
        operator=cells.get("operator", options.operator),
        height=cells.get("height"),
        sex=cells.get("sex"),
    )


def _shown(text: str | None, limit: int = 64) -> str:
    return "" if text is None else safe_echo(text, limit)


def _row_cells(line: int, cells: dict[str, str] | None, options: Options) -> list[str]:
    """The identifying cells of results.csv for a row, as typed (made safe), numbers empty."""
    cells = cells or {}
    return [
        str(line),
        _shown(cells.get("patient_id")),
        _shown(cells.get("name"), TEXT_LIMITS["name"]),
        _shown(cells.get("date", options.date)),
        _shown(cells.get("protocol", options.protocol_id)),
    ]


def _failure(raw: RawRow, options: Options, error: DosecalcError, key: str | None) -> Entry:
    status = "refused" if isinstance(error, LimitError) else "invalid"
    message = "; ".join(p.message for p in error.problems)
    cells = [*_row_cells(raw.line, raw.cells, options), status, "", "", "", "", "", "", message]
    entry = Entry(raw.line, status, cells, key)
    if options.out is None and options.output_format == "jsonl":
        patient = (raw.cells or {}).get("patient_id")
        obj = {**error_object(error), "line": raw.line, "patient_id": _shown(patient) or None}
        entry.jsonl = dumps(obj)
    return entry


def _success(raw: RawRow, options: Options, sheet: Sheet, key: str) -> Entry:
    f = sheet.figures
    status = "warning" if sheet.warnings else "ok"
    message = "; ".join(f"{w.code}: {w.message}" for w in sheet.warnings)
    cells = [
        str(raw.line),
        sheet.order.patient_id or "",
        _shown(sheet.order.name, TEXT_LIMITS["name"]),
        sheet.order.date,
        sheet.protocol.id,
        status,
        f.weight_kg.json,
        f.dose.json,
        f.dose.unit,
        f.drug_volume.json,
        f.total_volume.json,
        f.rate.json,
        *(basis_cells(sheet) if options.basis_columns else ()),
        message,
    ]
    entry = Entry(raw.line, status, cells, key, overridden=bool(sheet.overrides))
    if options.out is not None:
        stem = f"{sheet.order.date}_{sheet.order.patient_id}"
        entry.sheets = [
            (f"{stem}.{extension(fmt)}", render(sheet, fmt, paper=options.paper))
            for fmt in options.sheets
        ]
    elif options.output_format == "jsonl":
        entry.jsonl = sheet_json(sheet, extra={"line": raw.line})
    if options.combined is not None:
        entry.sheet = sheet
    return entry


def _duplicate_key(cells: dict[str, str] | None, options: Options) -> str | None:
    """Same date and same id (ignoring case: the files would collide on many file systems)."""
    if not cells or not PATIENT_ID.fullmatch(cells.get("patient_id", "")):
        return None
    return f"{cells.get('date', options.date)}\x00{cells['patient_id'].lower()}"


def evaluate(raw: RawRow, library: Library, options: Options) -> Entry:
    """One record's outcome: blank, invalid, refused, or a sheet (ok / warning)."""
    entry = _evaluate(raw, library, options)
    if options.basis_columns and entry.status not in ("ok", "warning"):
        entry.cells[-1:-1] = basis_cells(None)  # _success gave a sheet's own
    return entry


def basis_cells(sheet: Sheet | None) -> list[str]:
    """The dosing weight and its basis, for results.csv (empty for a row without a sheet)."""
    if sheet is None:
        return ["", ""]
    return [sheet.figures.dosing_weight_kg.json, dosing_basis(sheet)[0]]


def result_columns(options: Options) -> tuple[str, ...]:
    if not options.basis_columns:
        return RESULT_COLUMNS
    return (*RESULT_COLUMNS[:-1], *BASIS_COLUMNS, RESULT_COLUMNS[-1])


def _evaluate(raw: RawRow, library: Library, options: Options) -> Entry:
    if raw.blank:
        cells = [str(raw.line), "", "", "", "", "blank", "", "", "", "", "", "", "blank line"]
        return Entry(raw.line, "blank", cells)
    if raw.problem is not None:
        return _failure(raw, options, InputError(raw.problem), None)
    assert raw.cells is not None
    key = _duplicate_key(raw.cells, options)
    try:
        sheet = make_sheet(library, _order(raw.cells, options), confirm=None)
    except (InputError, LimitError) as exc:
        return _failure(raw, options, exc, key)
    assert key is not None
    return _success(raw, options, sheet, key)


# --- the spool ----------------------------------------------------------------------------------


class Spool:
    """Row outcomes between the phases, in a temporary SQLite file (bounded memory at any size)."""

    def __init__(self, folder: str) -> None:
        self.db = sqlite3.connect(os.path.join(folder, "spool.sqlite"), isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute(
            "CREATE TABLE rows (line INTEGER PRIMARY KEY, status TEXT, cells TEXT, key TEXT, "
            "overridden INTEGER, jsonl TEXT)"
        )
        self.db.execute(
            "CREATE TABLE sheets (line INTEGER, seq INTEGER, name TEXT, data BLOB, "
            "PRIMARY KEY (line, seq))"
        )
        self.db.execute(
            "CREATE TABLE written (seq INTEGER PRIMARY KEY, name TEXT, sha256 TEXT, size INTEGER)"
        )
        self.db.execute("BEGIN")
        self._rows: list[tuple[Any, ...]] = []
        self._sheets: list[tuple[Any, ...]] = []
        self.kept: dict[int, Sheet] = {}  # for --combined only

    def add(self, entry: Entry) -> None:
        if entry.sheet is not None:
            if len(self.kept) >= MAX_COMBINED:
                raise InputError(
                    Problem(
                        "combined",
                        "too_many_sheets",
                        f"combined: a combined PDF holds at most {MAX_COMBINED:,} sheets; "
                        "split the day list",
                    )
                )
            self.kept[entry.line] = entry.sheet
        self._rows.append(
            (
                entry.line,
                entry.status,
                json.dumps(entry.cells),
                entry.key,
                entry.overridden,
                entry.jsonl,
            )
        )
        self._sheets.extend((entry.line, i, n, d) for i, (n, d) in enumerate(entry.sheets))
        if len(self._rows) >= INSERT_BATCH:
            self.flush()

    def flush(self) -> None:
        self.db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?)", self._rows)
        self.db.executemany("INSERT INTO sheets VALUES (?, ?, ?, ?)", self._sheets)
        self._rows, self._sheets = [], []

    def mark_duplicates(self, options: Options) -> None:
        """Every row whose (date, patient_id) appears more than once becomes invalid."""
        self.flush()
        self.db.execute("CREATE INDEX rows_key ON rows (key)")
        keys = self.db.execute(
            "SELECT key, COUNT(*) FROM rows WHERE key IS NOT NULL GROUP BY key HAVING COUNT(*) > 1"
        ).fetchall()
        for key, count in keys:
            lines = [
                r[0]
                for r in self.db.execute(
                    "SELECT line FROM rows WHERE key = ? ORDER BY line LIMIT 10", (key,)
                )
            ]
            listed = ", ".join(map(str, lines)) + (", ..." if count > len(lines) else "")
            for line, cells_json, old_jsonl in self._iter_key(key):
                cells = json.loads(cells_json)
                problem = Problem(
                    "patient_id",
                    "duplicate_patient_id",
                    f"patient_id: '{cells[1]}' appears {count} times for {cells[3]} "
                    f"(lines {listed}): every such row is refused; fix the list and rerun",
                )
                old = cells[-1] if cells[5] in FAILED else ""
                message = problem.message + (f"; {old}" if old else "")
                cells[5:] = ["invalid", "", "", "", "", "", "", message]
                jsonl = None
                if options.out is None and options.output_format == "jsonl":
                    obj = {
                        **error_object(InputError(problem)),
                        "line": line,
                        "patient_id": cells[1] or None,
                    }
                    if old:  # keep the row's own problems after the duplicate
                        obj["errors"] += json.loads(old_jsonl)["errors"]
                    jsonl = dumps(obj)
                self.db.execute(
                    "UPDATE rows SET status = 'invalid', cells = ?, overridden = 0, jsonl = ? "
                    "WHERE line = ?",
                    (json.dumps(cells), jsonl, line),
                )
                self.db.execute("DELETE FROM sheets WHERE line = ?", (line,))

    def _iter_key(self, key: str) -> Iterator[tuple[int, str, str | None]]:
        last = 0
        while True:
            batch = self.db.execute(
                "SELECT line, cells, jsonl FROM rows WHERE key = ? AND line > ? "
                "ORDER BY line LIMIT 1000",
                (key, last),
            ).fetchall()
            if not batch:
                return
            yield from batch
            last = batch[-1][0]

    def fill(self, report: Report) -> None:
        for status, count in self.db.execute("SELECT status, COUNT(*) FROM rows GROUP BY status"):
            report.counts[status] = count
        (report.with_override,) = self.db.execute(
            "SELECT COUNT(*) FROM rows WHERE overridden AND status = 'warning'"
        ).fetchone()

    def rows(self, *statuses: str) -> Iterator[tuple[int, str, list[str], str | None]]:
        """Rows in line order, all of them or only those with the given statuses."""
        query = "SELECT line, status, cells, jsonl FROM rows ORDER BY line"
        if statuses:
            marks = ", ".join("?" * len(statuses))
            query = query.replace("ORDER", f"WHERE status IN ({marks}) ORDER")
        cursor = self.db.execute(query, statuses)
        for line, status, cells, jsonl in cursor:
            yield line, status, json.loads(cells), jsonl

    def sheet_names(self) -> Iterator[str]:
        for (name,) in self.db.execute("SELECT name FROM sheets ORDER BY line, seq"):
            yield name

    def sheets(self) -> Iterator[tuple[str, bytes]]:
        yield from self.db.execute("SELECT name, data FROM sheets ORDER BY line, seq")


# --- output -------------------------------------------------------------------------------------


def neutralise(cell: str) -> str:
    """A CSV cell that is never a formula (OWASP) and never carries control characters."""
    cell = clean(cell)
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def csv_chunks(
    rows: Iterator[list[str]], columns: tuple[str, ...] = RESULT_COLUMNS
) -> Iterator[bytes]:
    """results.csv / errors.csv: header, then one line per row, in chunks of bytes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for i, cells in enumerate(rows, 1):
        writer.writerow([neutralise(c) for c in cells])
        if i % 1000 == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


class Hashed:
    """Chunks passed through, hashed and counted: the manifest's sha256 without a second read."""

    def __init__(self, chunks: Iterator[bytes] | list[bytes]) -> None:
        self.chunks = chunks
        self.sha256 = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.sha256.update(chunk)
            self.size += len(chunk)
            yield chunk


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _target(out: Path, name: str) -> Path:
    """`name` inside `out`, or refuse: a file name can never leave the output folder."""
    if not name or Path(name).name != name or name in (".", ".."):
        raise OutputError(
            Problem("out", "bad_name", f"out: refusing file name '{safe_echo(name)}'")
        )
    return out / name


def _check_targets(spool: Spool, out: Path, force: bool) -> None:
    """Every target checked before the first write, so a refused run writes nothing."""
    if out.exists() and not out.is_dir():
        raise OutputError(Problem("out", "not_a_folder", f"out: {out} exists and is not a folder"))
    if force or not out.exists():
        return
    names = [RESULTS_FILE, ERRORS_FILE, MANIFEST_FILE]
    existing, count = [], 0  # only the first few names are kept: the list can be long
    for name in itertools.chain(names, spool.sheet_names()):
        if os.path.lexists(_target(out, name)):
            count += 1
            if len(existing) < 5:
                existing.append(name)
    if count:
        shown = ", ".join(existing) + (f" and {count - 5} more" if count > 5 else "")
        raise OutputError(
            Problem(
                "out",
                "file_exists",
                f"out: {count} file(s) already exist in {out} ({shown}); nothing was "
                "written; use --force to replace them",
            )
        )


def _make_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            Problem("out", "cannot_write", f"out: cannot create {out}: {exc.strerror}")
        ) from None


def _retire_manifest(out: Path) -> None:
    """With --force, remove an old manifest before the first write: until the new one is written
    last, the folder is visibly incomplete, never an old manifest over a mix of old and new files."""
    try:
        os.unlink(out / MANIFEST_FILE)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise OutputError(
            Problem("out", "cannot_write", f"out: cannot replace {MANIFEST_FILE}: {exc.strerror}")
        ) from None


def _write_folder(
    spool: Spool, out: Path, options: Options, started: str, inputs: dict[str, Any], report: Report
) -> None:
    def record(name: str, data: bytes | Hashed) -> None:
        chunks = data if isinstance(data, Hashed) else Hashed([data])
        write_atomic(_target(out, name), chunks, force=options.force, field="out")
        spool.db.execute(
            "INSERT INTO written (name, sha256, size) VALUES (?, ?, ?)",
            (name, chunks.sha256.hexdigest(), chunks.size),
        )
        report.written += 1

    for name, data in spool.sheets():
        record(name, data)
    columns = result_columns(options)
    record(RESULTS_FILE, Hashed(csv_chunks((c for _, _, c, _ in spool.rows()), columns)))
    record(
        ERRORS_FILE,
        Hashed(csv_chunks((c for _, _, c, _ in spool.rows(*FAILED)), columns)),
    )
    write_atomic(
        _target(out, MANIFEST_FILE),
        _manifest_chunks(spool, options, started, inputs, report),
        force=options.force,
        field="out",
    )
    report.written += 1


def _manifest_chunks(
    spool: Spool, options: Options, started: str, inputs: dict[str, Any], report: Report
) -> Iterator[bytes]:
    """manifest.json, streamed: the file list can be as long as the day list."""
    from dosecalc.audit import versions

    head = {
        "schema": MANIFEST_SCHEMA,
        "started": started,
        "finished": _now(),
        "versions": versions(),
        **inputs,
        "options": {
            "sheets": list(options.sheets),
            "strict": options.strict,
            "force": options.force,
            "date": options.date,
            "protocol": options.protocol_id,
        },
        "counts": {
            "lines_read": report.lines_read,
            **report.counts,
            "warning_with_override": report.with_override,
        },
    }
    text = json.dumps(head, indent=2)
    yield (text[: text.rindex("}")].rstrip() + ',\n  "files": [').encode("utf-8")
    separator = "\n"
    for name, sha, size in spool.db.execute("SELECT name, sha256, size FROM written ORDER BY seq"):
        item = json.dumps({"name": name, "sha256": sha, "bytes": size})
        yield f"{separator}    {item}".encode()
        separator = ",\n"
    yield b"\n  ]\n}\n"


def _prepare(spool: Spool, options: Options) -> None:
    """Every target checked before the first write (so a refused run writes nothing); then the
    folder made and, with --force, its old manifest removed, so it looks incomplete until the end."""
    if options.combined is not None and os.path.lexists(options.combined) and not options.force:
        raise exists_error(options.combined, "combined")
    if options.out is not None:
        _check_targets(spool, options.out, options.force)
        _make_folder(options.out)
        _retire_manifest(options.out)


def _write_combined(spool: Spool, options: Options, report: Report) -> None:
    """The combined PDF: a cover line for every input line, then the produced sheets in order."""
    from dosecalc.render import content
    from dosecalc.render.as_pdf import render_combined

    assert options.combined is not None
    cover, sheets = [], []
    for line, status, cells, _ in spool.rows():
        sheet = spool.kept.get(line) if status in ("ok", "warning") else None
        if sheet is not None:
            cover.append(content.cover_row(sheet, str(line), status))
            sheets.append(sheet)
        else:
            cover.append((str(line), cells[1], status, "", "", "", cells[-1]))
    data = render_combined(
        cover, sheets, title="Day list dose sheets", date=options.date, paper=options.paper
    )
    write_atomic(options.combined, data, force=options.force, field="combined")
    report.written += 1
    if options.out is not None and options.combined.resolve().parent == options.out.resolve():
        spool.db.execute(
            "INSERT INTO written (name, sha256, size) VALUES (?, ?, ?)",
            (options.combined.name, hashlib.sha256(data).hexdigest(), len(data)),
        )


def _write_stdout(spool: Spool, options: Options, stdout: IO[bytes]) -> None:
    if options.output_format == "jsonl":
        for _, status, _, jsonl in spool.rows():
            if status != "blank":
                stdout.write(jsonl.encode("utf-8") + b"\n")  # type: ignore[union-attr]
    else:
        for chunk in csv_chunks((c for _, _, c, _ in spool.rows()), result_columns(options)):
            stdout.write(chunk)
    stdout.flush()


def _summary(spool: Spool, report: Report, stderr: IO[str]) -> None:
    """For people, on stderr: the counts, blank lines, and every row that failed or warns."""
    c = report.counts
    stderr.write(
        f"dosecalc: batch: {report.lines_read} line(s) read: {c['ok']} ok, {c['warning']} with "
        f"warnings ({report.with_override} overridden), {c['refused']} refused, "
        f"{c['invalid']} invalid, {c['blank']} blank\n"
    )
    blanks = [str(line) for line, *_ in spool.rows("blank")]
    if blanks:
        shown = ", ".join(blanks[:20]) + (", ..." if len(blanks) > 20 else "")
        stderr.write(f"dosecalc: blank line(s) counted, not skipped silently: {shown}\n")
    for line, status, cells, _ in spool.rows("refused", "invalid", "warning"):
        who = f" (patient_id {cells[1]})" if cells[1] else ""
        stderr.write(clean(f"dosecalc: line {line}{who}: {status}: {cells[-1]}") + "\n")


def _progress(enabled: bool, total: int | None, stderr: IO[str]) -> AbstractContextManager[Any]:
    if not enabled or (total is not None and total < LONG_LIST_BYTES):
        return nullcontext(None)
    from rich.progress import Progress

    from dosecalc.render.as_text import make_console

    return Progress(
        console=make_console(stderr, terminal=True),
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )


def _open(daylist: str, stdin: IO[bytes]) -> tuple[IO[bytes], int | None]:
    if daylist == "-":
        return stdin, None
    try:
        handle = open(daylist, "rb")  # noqa: SIM115 - closed by the caller
        return handle, os.fstat(handle.fileno()).st_size
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or "the file name is not valid"
        raise InputError(
            Problem("daylist", "unreadable", f"daylist: cannot read {safe_echo(daylist)}: {why}")
        ) from None


def input_format(daylist: str, chosen: str | None) -> str:
    if chosen:
        return chosen
    return "jsonl" if daylist.lower().endswith((".jsonl", ".ndjson")) else "csv"


def run(
    library: Library,
    daylist: str,
    options: Options,
    *,
    stdin: IO[bytes],
    stdout: IO[bytes],
    stderr: IO[str],
    progress: bool = False,
) -> Report:
    """The whole batch. Raises InputError (header, options) or OutputError before writing anything."""
    check_date(options.date, "date")
    check_text(options.operator, "operator", TEXT_LIMITS["operator"])
    if options.protocol_id is not None:
        library.get(options.protocol_id)
    for fmt in options.sheets:
        if fmt not in FORMATS:
            raise InputError(
                Problem(
                    "sheets",
                    "unknown_format",
                    f"sheets: unknown format '{safe_echo(fmt)}'. Accepted: {', '.join(FORMATS)}",
                )
            )
    options = replace(
        options,
        protocol_id=options.protocol_id or library.default,
        basis_columns=any(
            p.config().weights != "actual" or p.weight_max is not None
            for p in library.protocols.values()
        ),
    )
    started = _now()
    report = Report()
    fmt = input_format(daylist, options.input_format)
    stream, total = _open(daylist, stdin)
    with tempfile.TemporaryDirectory(prefix="dosecalc-batch-") as folder:
        spool = Spool(folder)
        try:
            with stream if stream is not stdin else nullcontext(stream):
                source = Source(stream)
                records = jsonl_rows(source) if fmt == "jsonl" else csv_rows(source)[1]
                with _progress(progress, total, stderr) as bar:
                    task = bar.add_task("dose sheets", total=total) if bar else None
                    for i, raw in enumerate(records, 1):
                        spool.add(evaluate(raw, library, options))
                        if bar is not None and i % 500 == 0:
                            bar.update(task, completed=source.bytes_read)
            spool.mark_duplicates(options)
            spool.fill(report)
            _summary(spool, report, stderr)
            if options.strict and report.failed:
                stderr.write(
                    f"dosecalc: --strict: {report.failed} row(s) failed: nothing was written\n"
                )
                return report
            inputs = {
                "day_list": {
                    "path": clean(daylist),
                    "format": fmt,
                    "sha256": source.sha256.hexdigest(),
                },
                "protocols_file": {"path": clean(library.path), "sha256": library.sha256},
            }
            _prepare(spool, options)
            if options.combined is not None:
                _write_combined(spool, options, report)
            if options.out is None:
                _write_stdout(spool, options, stdout)
            else:
                _write_folder(spool, options.out, options, started, inputs, report)
                stderr.write(
                    f"dosecalc: wrote {report.written} file(s) to {clean(str(options.out))}, "
                    f"{MANIFEST_FILE} last\n"
                )
            return report
        finally:
            spool.db.close()
